"""Pipeline speed on this machine: invert, new views on cached planes, refinement steps; EG3D FFHQ 512 renders.

    PYTHONPATH=. python benchmarks/pipeline.py            # writes benchmarks/results/pipeline.{json,md}

Toy bundle: invert (align + E0 + render) for a toy photo (no face detection) and the astronaut
(dlib alignment), a new view on cached planes (preview and full), one refinement step (P, P+C). The targeted rows
time the default path (the bundle's Stage II local branch on, as `invert`, `render`, the CLI and the app use it);
E0-only rows (`local=False`) are extra rows without targets.
EG3D FFHQ 512 (official architecture, random weights): a full render (backbone + 128^2 rays x 96
samples + SR), a new view on cached planes, and a preview (64^2 rays, half the samples). Targets:
invert <= 0.5 s, new view <= 0.15 s (toy), preview <= 2.5 s (FFHQ 512). GPU rows when CUDA is there.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

TARGETS = {
    "toy: invert (toy photo)": 0.5,
    "toy: invert (astronaut, with alignment)": 0.5,
    "toy: new view, cached planes (preview)": 0.15,
    "toy: new view, cached planes (full)": 0.15,
    "ffhq512: new view, preview": 2.5,
}


def timed(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Median seconds of ``fn()``."""
    for _ in range(warmup):
        fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def toy_rows() -> dict[str, float]:
    from e3dge.inversion import InversionPipeline
    from e3dge.inversion.examples import astronaut_example, toy_photo_examples
    from e3dge.inversion.refine import refine_latent

    pipe = InversionPipeline.from_pretrained("toy")
    photo = toy_photo_examples(1, seed=4)[0].pixels
    rows: dict[str, float] = {}
    astronaut = astronaut_example()
    yaws = iter([0.01 * i for i in range(1000)])  # a new angle each time
    for tag, local in (
        ("", True),
        (", E0 only (local=False)", False),
    ):  # what users get by default (the bundle's local branch: the targets), then E0 alone as extra rows
        rows[f"toy{tag}: invert (toy photo)"] = timed(lambda: pipe.invert(photo, align=False, local=local))
        if astronaut is not None:
            rows[f"toy{tag}: invert (astronaut, with alignment)"] = timed(
                lambda: pipe.invert(astronaut.pixels, local=local), repeat=3
            )
        inv = pipe.invert(photo, align=False, local=local)
        rows[f"toy{tag}: new view, cached planes (preview)"] = timed(
            lambda: pipe.render(inv, yaw=next(yaws), quality="preview", local=local), repeat=10
        )
        rows[f"toy{tag}: new view, cached planes (full)"] = timed(
            lambda: pipe.render(inv, yaw=next(yaws), quality="full", local=local), repeat=10
        )
    target = pipe.backbone.photo(photo)
    for mode in ("pose", "pose+code"):
        t = timed(
            lambda: refine_latent(pipe.backbone, inv.ws, inv.yaw, inv.pitch, target, mode=mode, steps=5, patience=100),
            repeat=3,
        )
        rows[f"toy: refine {mode}, per step"] = t / 5
    return rows


def ffhq_rows(device: str = "cpu") -> dict[str, float]:
    from e3dge.backbones.eg3d.network import TriPlaneGenerator, eg3d_config
    from e3dge.core.cameras import label_from_yaw_pitch
    from e3dge.inversion import InversionPipeline

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        G = TriPlaneGenerator(**eg3d_config("ffhq512-128")).to(device).eval().requires_grad_(False)
    pipe = InversionPipeline(G)
    ws = G.mapping(
        torch.randn(1, G.z_dim, device=device), label_from_yaw_pitch(0.0, 0.0, device=device), truncation_psi=0.7
    )
    c = label_from_yaw_pitch(0.3, 0.0, device=device)
    rows = {}
    with torch.no_grad():
        rows["ffhq512: full render (backbone + rays + SR)"] = timed(
            lambda: G.synthesis(ws, c, deterministic=True), repeat=2
        )
    inv = pipe.from_latent(ws, yaw=0.0, pitch=0.0)
    yaws = iter([0.01 * i for i in range(1000)])
    rows["ffhq512: new view, cached planes (full)"] = timed(
        lambda: pipe.render(inv, yaw=next(yaws), quality="full"), repeat=2
    )
    rows["ffhq512: new view, preview"] = timed(lambda: pipe.render(inv, yaw=next(yaws), quality="preview"), repeat=3)
    return rows


def markdown(result: dict) -> str:
    lines = [
        "# Pipeline speed",
        "",
        f"Machine: {result['machine']}; torch {result['torch']}; {result['threads']} CPU threads.",
        "Reproduce: `PYTHONPATH=. python benchmarks/pipeline.py`. Median seconds.",
        "",
        "| what | seconds | target | |",
        "|---|---|---|---|",
    ]
    for name, sec in result["rows"].items():
        target = TARGETS.get(name)
        mark = "" if target is None else ("pass" if sec <= target else "MISS")
        lines.append(f"| {name} | {sec:.3f} | {'' if target is None else f'<= {target}'} | {mark} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument("--skip-ffhq", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows = toy_rows()
    if not a.skip_ffhq:
        rows.update(ffhq_rows())
    if torch.cuda.is_available():
        rows.update({f"cuda {k}": v for k, v in ffhq_rows("cuda").items()})
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "threads": a.threads,
        "rows": rows,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "pipeline.json").write_text(json.dumps(result, indent=1))
    (a.out / "pipeline.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
