"""Speed of a converted StyleSDF / E3DGE bundle at the released sizes (random weights), this tree beside a baseline commit.

    PYTHONPATH=. python benchmarks/stylesdf_speed.py [--baseline d21ae23] [--bundle /tmp/e3dge-stylesdf-speed]

Writes official-format files with random weights at the released sizes once (StyleSDF FFHQ 1024 + its volume
renderer, an E3DGE full runner), converts them with e3dge's converter into ``--bundle``, then times on 2 CPU
threads what a user gets by default (the local branch on): invert the astronaut (alignment, E0, pose, the hybrid
reconstruction at 1024), a full novel view, a preview, a 128^3 mesh (the field on the grid and marching cubes; random
weights have no face-like surface to clean up). The same worker runs in a git worktree of
``--baseline`` in the same run, alternating with this tree, so both columns see the same machine. This tree also
times bf16 autocast (``precision="bf16"``) and measures its cost in grey levels against its own fp32 result.
Writes benchmarks/results/stylesdf_speed.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"invert": 4.0, "full view": 3.0, "preview": 1.0, "mesh 128^3": 20.0}
"""Issue targets in seconds (2 CPU threads)."""


def _perturbed(module: torch.nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The module's random init with every tensor moved a little, so zero-initialised layers do real work."""
    with torch.no_grad():
        for _, v in list(module.named_parameters()) + list(module.named_buffers()):
            if v.is_floating_point():
                v.add_(0.02 * torch.randn(v.shape, generator=gen))
    return {k: v.clone() for k, v in module.state_dict().items()}


def build_bundle(out: Path, seed: int = 0, tiny: bool = False) -> None:
    """Random official-format files at the released sizes (``tiny``: test sizes), converted by e3dge into a bundle at ``out``."""
    from e3dge.backbones.stylesdf.network import StyleSDFGenerator, stylesdf_config
    from e3dge.encoders.aligner import AlignerConfig
    from e3dge.encoders.fusion import FeatureFusion
    from e3dge.encoders.local import LocalEncoderConfig
    from e3dge.encoders.stylesdf_encoder import StyleSDFEncoderConfig
    from e3dge.encoders.volume_pose import VolumePoseConfig
    from e3dge.inversion.convert_official import convert_e3dge, convert_stylesdf

    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    sizes = {
        "generator": {"n_samples": 6} if tiny else None,
        "pose_estimator": VolumePoseConfig.tiny() if tiny else VolumePoseConfig.official(),
        "encoder": (
            dataclasses.replace(
                StyleSDFEncoderConfig.tiny(), renderer_ws=4, renderer_dim=16, decoder_dim=32, decoder_spatials=(16,) * 6
            )
            if tiny
            else StyleSDFEncoderConfig.official()
        ),
        "local_encoder": LocalEncoderConfig.tiny() if tiny else LocalEncoderConfig.official(),
        "aligner_2d": AlignerConfig.tiny() if tiny else AlignerConfig.official(),
        "fusion": 16 if tiny else 256,
    }
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        g = _perturbed(StyleSDFGenerator(**stylesdf_config("tiny" if tiny else "ffhq1024")), gen)
        vol = {k: v for k, v in g.items() if not k.startswith("decoder.")}
        torch.save({"g_ema": g}, root / "full.pt")
        torch.save({"g_ema": vol, "d": _perturbed(sizes["pose_estimator"].build(), gen)}, root / "vol.pt")
        runner = {
            "encoder": _perturbed(sizes["encoder"].build(), gen),
            "netLocal": _perturbed(sizes["local_encoder"].build(), gen),
            "grid_align": _perturbed(sizes["aligner_2d"].build(), gen),
            "Fuse_sft_block": _perturbed(FeatureFusion(sizes["fusion"]), gen),
        }
        torch.save(runner, root / "runner.pt")
        configs = {k: v for k, v in sizes.items() if v is not None} if tiny else None
        convert_stylesdf(root / "full.pt", root / "vol.pt", out, mean_samples=1000, seed=2, configs=configs)
        convert_e3dge(root / "runner.pt", out, mean_samples=1000, configs=configs)


def _timed(fn, repeat: int) -> tuple[object, float]:
    """The last result and the median seconds of ``repeat`` calls."""
    runs, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - t)
    return result, statistics.median(runs)


def worker(bundle: Path, bf16: bool, repeat: int) -> dict:
    """Times of the default path in whatever e3dge is on the path (this tree or the baseline's)."""
    from e3dge.export import field_grid, mesh_from_grid
    from e3dge.inversion import InversionPipeline
    from e3dge.inversion.examples import astronaut_example

    torch.set_num_threads(2)
    photo = astronaut_example().pixels
    rows, images = {}, {}
    for precision in ("fp32", "bf16") if bf16 else ("fp32",):
        extra = {} if precision == "fp32" else {"precision": precision}
        pipe = InversionPipeline.from_pretrained(bundle, **extra)
        tag = "" if precision == "fp32" else " (bf16)"
        pipe.invert(photo)  # warm-up: first-call allocations, dlib's models
        inv, rows[f"invert{tag}"] = _timed(lambda: pipe.invert(photo), repeat)
        yaws = iter(0.05 + 0.02 * i for i in range(100))  # a new view each call: nothing cached but the input view
        full, rows[f"full view{tag}"] = _timed(lambda: pipe.render(inv, yaw=next(yaws), quality="full"), repeat)
        preview, rows[f"preview{tag}"] = _timed(lambda: pipe.render(inv, yaw=next(yaws), quality="preview"), repeat)
        images[precision] = [
            np.asarray(pipe.render(inv, yaw=0.3, quality=q).image, np.float32) for q in ("full", "preview")
        ]
        if precision == "fp32":  # random weights have no face-like surface, so time the grid and marching cubes
            backbone, ws, scene = pipe.scene_for(inv)
            half = backbone.rig.field_half_size

            def mesh():
                grid = field_grid(backbone, ws, scene, 128, half)
                return mesh_from_grid(grid, half, float(np.quantile(grid, 0.9)))

            _, rows["mesh 128^3"] = _timed(mesh, 1)
    accuracy = {}
    if bf16:
        for i, q in enumerate(("full view", "preview")):
            d = np.abs(images["bf16"][i] - images["fp32"][i])
            accuracy[q] = {"max_grey_levels": float(d.max()), "mean_grey_levels": float(d.mean())}
    return {"seconds": rows, "bf16_vs_fp32": accuracy}


def _run_worker(tree: Path, bundle: Path, bf16: bool, repeat: int) -> dict:
    """This script's worker in a fresh process with ``tree`` first on the path."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="2")
    cmd = [sys.executable, __file__, "--worker", str(out), "--bundle", str(bundle), "--repeat", str(repeat)]
    subprocess.run(cmd + (["--bf16"] if bf16 else []), env=env, check=True)
    result = json.loads(out.read_text())
    out.unlink()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="d21ae23", help="the commit to compare with (a git worktree of it is made)")
    ap.add_argument("--bundle", type=Path, default=Path(tempfile.gettempdir()) / "e3dge-stylesdf-speed")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.worker.write_text(json.dumps(worker(args.bundle, args.bf16, args.repeat)))
        return
    if not (args.bundle / "pipeline.json").is_file():
        build_bundle(args.bundle)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.baseline], check=True)
        try:
            before = _run_worker(base, args.bundle, False, args.repeat)
            after = _run_worker(ROOT, args.bundle, True, args.repeat)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True)
    result = {
        "machine": f"{platform.machine()}; torch {torch.__version__}; 2 CPU threads",
        "baseline": args.baseline,
        "before": before["seconds"],
        "after": after["seconds"],
        "bf16_vs_fp32": after["bf16_vs_fp32"],
        "targets": TARGETS,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stylesdf_speed.json").write_text(json.dumps(result, indent=1))
    lines = [
        "# StyleSDF / E3DGE bundle speed (released sizes, random weights)",
        "",
        f"Machine: {result['machine']}. Reproduce: `PYTHONPATH=. python benchmarks/stylesdf_speed.py --baseline {args.baseline}`.",
        f"Median seconds; before = commit {args.baseline}, after = this tree, measured in the same run. Default path "
        "(the local branch on), the astronaut photo, a new yaw for every view.",
        "",
        "| what | before | after | speed-up | target | |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in after["seconds"].items():
        b = before["seconds"].get(name)
        target = TARGETS.get(name)
        verdict = "" if target is None else ("pass" if t <= target else f"MISS by {t - target:.1f} s")
        lines.append(
            f"| {name} | {'' if b is None else f'{b:.2f}'} | {t:.2f} | {'' if b is None else f'{b / t:.2f}x'} | "
            f"{'' if target is None else f'<= {target:g}'} | {verdict} |"
        )
    lines += ["", "bf16 autocast against fp32 (this tree, the same inversion and view, 8-bit images):", ""]
    lines += ["| view | max grey levels | mean grey levels |", "|---|---|---|"]
    for name, a in after["bf16_vs_fp32"].items():
        lines.append(f"| {name} | {a['max_grey_levels']:.0f} | {a['mean_grey_levels']:.2f} |")
    (args.out / "stylesdf_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
