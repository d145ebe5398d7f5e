"""GPU readiness in one run (under 8 minutes on one GPU): every CUDA path end to end, then speed in fp32 / bf16 / compiled.

    python benchmarks/gpu.py                      # on a GPU machine: writes benchmarks/results/gpu.{json,md}
    python benchmarks/gpu.py --dry --out DIR      # CPU, tiny models, one repeat: every step runs (the test suite)

Checks (each one compared with the same computation on the CPU): the toy bundle's invert, refinement P+C, a new
view, an orbit video, one Stage I and one Stage II training step; EG3D FFHQ 512 and StyleSDF 1024 with random
weights at the released sizes: synthesis, invert (E0 + render) and a new view. Speed: batch 1 and batched
throughput of EG3D synthesis in fp32, bf16 autocast and ``torch.compile``; invert + render at batch 1; the
StyleSDF full view. Targets (H100-class GPU): EG3D invert + render <= 40 ms, EG3D batched >= 50 images/s,
StyleSDF full view <= 60 ms.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

TARGETS = {
    "eg3d512: invert + render, batch 1 (fp32)": ("<=", 0.040),
    "eg3d512: synthesis throughput, batched (bf16) [images/s]": (">=", 50.0),
    "stylesdf1024: full view with the local branch (fp32)": ("<=", 0.060),
}


@dataclass
class Check:
    """One CUDA path: did it run, how far its output is from the CPU's, how long it took."""

    name: str
    ok: bool
    seconds: float | None = None
    max_diff: float | None = None  # against the CPU result (grey levels for images, raw values otherwise)
    detail: str = ""


class Run:
    """Collects checks and timings; a failing step is recorded with its error and the run goes on."""

    def __init__(self, device: torch.device, repeat: int) -> None:
        self.device, self.repeat = device, repeat
        self.checks: list[Check] = []
        self.speed: dict[str, float] = {}

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def timed(self, fn, repeat: int | None = None) -> tuple[object, float]:
        """The result and the median seconds of ``fn()`` after one warm-up call."""
        result = fn()
        self.sync()
        runs = []
        for _ in range(repeat or self.repeat):
            t = time.perf_counter()
            result = fn()
            self.sync()
            runs.append(time.perf_counter() - t)
        return result, statistics.median(runs)

    def check(self, name: str, fn) -> None:
        """Run ``fn() -> (max_diff, seconds, detail)`` as one check."""
        try:
            diff, seconds, detail = fn()
            self.checks.append(Check(name, True, seconds, diff, detail))
        except Exception as err:  # noqa: BLE001 - a broken path is a result of this script, not its end
            self.checks.append(Check(name, False, detail=f"{type(err).__name__}: {err}".splitlines()[0][:300]))
            traceback.print_exc()
        print(self.checks[-1])


def _grey(a, b) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).max())


def toy_checks(run: Run, tmp: Path) -> None:
    """The toy bundle on the device against the CPU: invert, refine P+C, a view, an orbit, a Stage I and II step."""
    from e3dge.cli.main import main as cli
    from e3dge.inversion import InversionPipeline
    from e3dge.inversion.examples import toy_photo_examples
    from e3dge.inversion.outputs import orbit_angles, write_video

    cpu = InversionPipeline.from_pretrained("toy")
    dev = InversionPipeline.from_pretrained("toy", device=run.device)
    photo = toy_photo_examples(1, seed=4)[0].pixels
    ref = cpu.invert(photo, align=False)
    state = {}

    def invert():
        state["inv"], sec = run.timed(lambda: dev.invert(photo, align=False))
        return float((state["inv"].ws.cpu() - ref.ws).abs().max()), sec, "ws"

    def refine():
        inv, sec = run.timed(lambda: dev.invert(photo, align=False, refine="pose+code", steps=5), repeat=1)
        want = cpu.invert(photo, align=False, refine="pose+code", steps=5)
        return _grey(inv.reconstruction, want.reconstruction), sec, "5 steps, reconstruction"

    def view():
        out, sec = run.timed(lambda: dev.render(state["inv"], yaw=0.3, quality="full"))
        return _grey(out.image, cpu.render(ref, yaw=0.3, quality="full").image), sec, "full quality"

    def orbit():
        def frames():
            return [dev.render(state["inv"], yaw=y, pitch=p, quality="preview").image for y, p in orbit_angles(12)]

        images, sec = run.timed(frames, repeat=1)
        write_video(tmp / "orbit.mp4", images, 12)
        return None, sec, "12 preview frames + H.264"

    def stage(which: str, config: str, extra: list[str]):
        def step():
            out = tmp / which
            t = time.perf_counter()
            code = cli(["train", which, "--config", config, "--steps", "2", "--out", str(out), "--quiet", *extra])
            if code != 0:
                raise RuntimeError(f"e3dge train {which} exited with {code}")
            return None, time.perf_counter() - t, "2 steps (the trainer picks the GPU itself)"

        return step

    run.check("toy: invert", invert)
    run.check("toy: refine P+C", refine)
    run.check("toy: new view", view)
    run.check("toy: orbit video", orbit)
    run.check("toy: Stage I step", stage("stage1", "tiny-test", []))
    run.check("toy: Stage II step", stage("stage2", "tiny-test", ["--set", "data=synthetic"]))


def eg3d_checks(run: Run, dry: bool) -> None:
    """EG3D FFHQ 512 (random weights): synthesis against the CPU, speed in fp32 / bf16 / compiled, invert + render."""
    from e3dge.backbones.eg3d.network import TriPlaneGenerator, eg3d_config
    from e3dge.core.cameras import label_from_yaw_pitch
    from e3dge.encoders.global_encoder import GlobalEncoder
    from e3dge.inversion import InversionPipeline

    torch.manual_seed(0)
    G_cpu = TriPlaneGenerator(**eg3d_config("tiny" if dry else "ffhq512-128")).eval().requires_grad_(False)
    tiny = {"input_size": 64, "stem_width": 8, "widths": (8, 8, 8, 8), "units": (1, 1, 1, 1), "coarse_ws": 2}
    sizes = dict(tiny, medium_ws=2, pose_hidden=16) if dry else {}
    E_cpu = GlobalEncoder(num_ws=G_cpu.num_ws, w_dim=G_cpu.w_dim, **sizes).eval().requires_grad_(False)
    G = TriPlaneGenerator(**G_cpu.config).to(run.device).eval().requires_grad_(False)
    G.load_state_dict(G_cpu.state_dict())
    z = torch.randn(1, G.z_dim)
    c = label_from_yaw_pitch(0.3, 0.0)
    tag = "eg3d-tiny" if dry else "eg3d512"

    def synthesis(batch: int = 1, dtype: torch.dtype | None = None, model=None):
        zb, cb = z.repeat(batch, 1).to(run.device), c.repeat(batch, 1).to(run.device)
        model = model or G.synthesis

        def go():
            with (
                torch.no_grad(),
                torch.autocast(run.device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
            ):
                return model(G.mapping(zb, cb, truncation_psi=0.7), cb, deterministic=True).image

        return go

    def against_cpu():
        image, sec = run.timed(synthesis())
        with torch.no_grad():
            want = G_cpu.synthesis(G_cpu.mapping(z, c, truncation_psi=0.7), c, deterministic=True).image
        return float((image.float().cpu() - want).abs().max()), sec, "image in [-1, 1], fp32"

    run.check(f"{tag}: synthesis", against_cpu)
    batch = 2 if dry else 16
    for label, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        _, sec = run.timed(synthesis(dtype=dtype))
        run.speed[f"{tag}: synthesis, batch 1 ({label})"] = sec
        _, sec = run.timed(synthesis(batch, dtype))
        run.speed[f"{tag}: synthesis throughput, batched ({label}) [images/s]"] = batch / sec
    if not dry:  # inductor on the CPU of the dry run would take minutes; on the GPU it is part of the budget

        def compiled():
            fn = torch.compile(G.synthesis)
            _, sec = run.timed(synthesis(model=fn))
            run.speed[f"{tag}: synthesis, batch 1 (compiled)"] = sec
            return None, sec, "torch.compile(G.synthesis), default mode"

        run.check(f"{tag}: torch.compile", compiled)
    photo = np.asarray(torch.rand(G.img_resolution, G.img_resolution, 3).mul(255).byte())
    cpu_pipe = InversionPipeline(G_cpu, encoder=E_cpu)
    E = GlobalEncoder(**E_cpu.config).to(run.device).eval().requires_grad_(False)
    E.load_state_dict(E_cpu.state_dict())
    pipe = InversionPipeline(G, encoder=E)

    def invert_and_render():
        def go():
            inv = pipe.invert(photo, align=False, local=False)
            return pipe.render(inv, yaw=0.3, quality="full", local=False)

        out, sec = run.timed(go)
        want = cpu_pipe.render(cpu_pipe.invert(photo, align=False, local=False), yaw=0.3, quality="full", local=False)
        run.speed[f"{tag}: invert + render, batch 1 (fp32)"] = sec
        return _grey(out.image, want.image), sec, "E0 + a full new view"

    run.check(f"{tag}: invert + render", invert_and_render)


def stylesdf_checks(run: Run, dry: bool, tmp: Path) -> None:
    """StyleSDF 1024 + E3DGE (random weights, the released sizes): invert and a full view with the local branch."""
    from stylesdf_speed import build_bundle

    from e3dge.inversion import InversionPipeline

    bundle = tmp / "stylesdf"
    build_bundle(bundle, tiny=dry)
    cpu = InversionPipeline.from_pretrained(bundle)
    dev = InversionPipeline.from_pretrained(bundle, device=run.device)
    size = cpu.backbone.image_resolution
    photo = np.asarray(torch.rand(size, size, 3).mul(255).byte())
    tag = "stylesdf-tiny" if dry else "stylesdf1024"
    state = {}

    def invert():
        state["inv"], sec = run.timed(lambda: dev.invert(photo, align=False))
        state["ref"] = cpu.invert(photo, align=False)
        return float((state["inv"].ws.cpu() - state["ref"].ws).abs().max()), sec, "ws"

    def view():
        yaws = iter(0.05 + 0.01 * i for i in range(100))
        out, sec = run.timed(lambda: dev.render(state["inv"], yaw=next(yaws), quality="full"))
        run.speed[f"{tag}: full view with the local branch (fp32)"] = sec
        want = cpu.render(state["ref"], yaw=0.3, quality="full")
        return _grey(dev.render(state["inv"], yaw=0.3, quality="full").image, want.image), sec, "new view, 8-bit"

    run.check(f"{tag}: invert", invert)
    run.check(f"{tag}: full view", view)


def markdown(result: dict) -> str:
    lines = [
        "# GPU readiness",
        "",
        f"Device: {result['device']}; torch {result['torch']}. Reproduce: `python benchmarks/gpu.py` on a GPU machine.",
        "",
        "| check | runs | max diff vs CPU | seconds | detail |",
        "|---|---|---|---|---|",
    ]
    for c in result["checks"]:
        diff = "" if c["max_diff"] is None else f"{c['max_diff']:.2e}"
        sec = "" if c["seconds"] is None else f"{c['seconds']:.3f}"
        lines.append(f"| {c['name']} | {'yes' if c['ok'] else 'NO'} | {diff} | {sec} | {c['detail']} |")
    lines += ["", "| speed | value | target | |", "|---|---|---|---|"]
    for name, value in result["speed"].items():
        op, goal = TARGETS.get(name, (None, None))
        verdict = "" if op is None else ("pass" if (value <= goal if op == "<=" else value >= goal) else "MISS")
        lines.append(f"| {name} | {value:.4g} | {'' if op is None else f'{op} {goal:g}'} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry", action="store_true", help="CPU, tiny models, one repeat (what the tests run)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    if not args.dry and not torch.cuda.is_available():
        print("no CUDA device: run this on a GPU machine, or pass --dry for the CPU check of the script itself")
        return 2
    device = torch.device("cpu" if args.dry else "cuda")
    run = Run(device, 1 if args.dry else args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        toy_checks(run, Path(tmp))
        eg3d_checks(run, args.dry)
        stylesdf_checks(run, args.dry, Path(tmp))
    result = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else f"cpu ({platform.machine()}, dry run)",
        "torch": torch.__version__,
        "dry": args.dry,
        "checks": [asdict(c) for c in run.checks],
        "speed": run.speed,
        "targets": {k: list(v) for k, v in TARGETS.items()},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps(result, indent=1))
    (args.out / "gpu.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if all(c.ok for c in run.checks) else 1


if __name__ == "__main__":
    sys.exit(main())
