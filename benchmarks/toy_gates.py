"""Quality gates of the toy EG3D vs the procedural heads -> benchmarks/results/toy_gates.{json,md} + docs/toy grids.

PYTHONPATH=. python benchmarks/toy_gates.py                # the shipped weights
PYTHONPATH=. python benchmarks/toy_gates.py --model DIR    # any config.json + model.safetensors folder
PYTHONPATH=. python benchmarks/toy_gates.py --seed 20000 --heads 48 --out /tmp/val --docs /tmp/val   # a validation set for choices
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import asdict
from pathlib import Path

import torch

from e3dge.backbones.eg3d.network import TriPlaneGenerator
from e3dge.toy.gates import HELD_OUT_SEED, measure_render_gates, measure_separability
from e3dge.toy.grids import save_grids

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS = {"psnr_db": 24.0, "depth_mae_fraction": 0.02, "separability": 0.95}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", default=None, help="folder with config.json + model.safetensors (default: shipped toy weights)"
    )
    parser.add_argument("--heads", type=int, default=64, help="held-out heads for PSNR / depth")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--docs", default=str(ROOT / "docs" / "toy"))
    parser.add_argument(
        "--seed",
        type=int,
        default=HELD_OUT_SEED,
        help="latents of the held-out set; tune on another seed, keep the gate set untouched",
    )
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.model is None:
        from e3dge.toy import load_toy_generator

        G, model = load_toy_generator(), "e3dge/toy/assets/toy-eg3d (shipped)"
    else:
        G, model = TriPlaneGenerator.from_pretrained(args.model).eval().requires_grad_(False), args.model
    t0 = time.time()
    render = measure_render_gates(G, num_heads=args.heads, seed=args.seed)
    sep = measure_separability(G, seed=args.seed)
    grids = save_grids(G, args.docs)
    passed = {
        "psnr": render.psnr_db >= THRESHOLDS["psnr_db"],
        "depth": render.depth_mae_fraction <= THRESHOLDS["depth_mae_fraction"],
        **{f"separability_{g.attribute}": g.accuracy >= THRESHOLDS["separability"] for g in sep},
    }
    result = {
        "model": model,
        "seed": args.seed,
        "render": asdict(render),
        "separability": [asdict(g) for g in sep],
        "thresholds": THRESHOLDS,
        "passed": passed,
        "seconds": round(time.time() - t0, 1),
        "hardware": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} CPU threads",
        "grids": [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in grids],
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "toy_gates.json").write_text(json.dumps(result, indent=2) + "\n")
    mark = {True: "pass", False: "FAIL"}
    lines = [
        "# Toy EG3D quality gates",
        "",
        f"Model: `{model}`. Held-out latents (seed {args.seed}) at random cameras (yaw +-0.7, pitch +-0.3 rad), deterministic rendering.",
        "Reproduce: `PYTHONPATH=. python benchmarks/toy_gates.py`",
        "",
        "| gate | value | threshold | |",
        "|---|---|---|---|",
        f"| PSNR image_raw vs procedural, {render.resolution}x{render.resolution} ({render.num_heads} heads) | {render.psnr_db:.2f} dB | >= 24 dB | {mark[passed['psnr']]} |",
        f"| depth MAE on head mask / (ray_end - ray_start) | {100 * render.depth_mae_fraction:.2f} % ({render.depth_mae:.4f}) | <= 2 % | {mark[passed['depth']]} |",
        *[
            f"| linear classifier on w: {g.attribute} (held-out {g.test_size}) | {100 * g.accuracy:.1f} % | >= 95 % | {mark[passed['separability_' + g.attribute]]} |"
            for g in sep
        ],
        f"| PSNR super-resolved image pooled to {render.resolution}x{render.resolution} | {render.psnr_sr_db:.2f} dB | (info) | |",
        f"| mask IoU (opacity > 0.5) | {render.mask_iou:.3f} | (info) | |",
        "",
        "Grids: " + ", ".join(f"`{g}`" for g in result["grids"]),
        "",
    ]
    (out / "toy_gates.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
