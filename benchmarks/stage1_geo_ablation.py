"""Science check: Stage I on the toy lab with and without L_geo, several seeds.

Trains the ``toy`` preset (same seeds, steps and data stream) twice per seed — with the geometry
loss and with its three weights set to 0 — then scores each encoder with
``e3dge.toy.evaluate.evaluate_toy_inversion`` on held-out synthetic renders and on the toy
world's photo-like heads (exact SDF depth as ground truth), at the source view and a novel view.

    PYTHONPATH=. python benchmarks/stage1_geo_ablation.py --seeds 0 1 2 --steps 600   # train (resumes) + report
    PYTHONPATH=. python benchmarks/stage1_geo_ablation.py --variants with_geo --seeds 0  # one slice (run slices in parallel)
    PYTHONPATH=. python benchmarks/stage1_geo_ablation.py --report-only                  # tables from finished runs

Writes benchmarks/results/stage1_geo_ablation.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import asdict
from pathlib import Path

import torch

from e3dge.encoders import GlobalEncoder
from e3dge.toy.evaluate import evaluate_toy_inversion
from e3dge.training.config import load_stage1_config
from e3dge.training.sources import load_generator
from e3dge.training.stage1 import train_stage1

VARIANTS = {
    "with_geo": {},
    "without_geo": {"weights.geo_surface_density": 0, "weights.geo_surface_depth": 0, "weights.geo_near_density": 0},
}
RESULTS = Path(__file__).parent / "results"
METRICS = (
    "source_mae",
    "source_ssim",
    "source_depth_pct",
    "novel_mae",
    "novel_ssim",
    "novel_depth_pct",
    "pose_error_deg",
)


def run_dir(root: Path, variant: str, seed: int) -> Path:
    return root / f"{variant}_seed{seed}"


def train(root: Path, variant: str, seed: int, steps: int, threads: int, generator: str) -> float:
    cfg = load_stage1_config(
        "toy",
        {
            "out_dir": str(run_dir(root, variant, seed)),
            "seed": seed,
            "steps": steps,
            "threads": threads,
            "generator": generator,
            "sample_every": steps,
            **VARIANTS[variant],
        },
    )
    t0 = time.time()
    train_stage1(cfg)
    return time.time() - t0


def evaluate(root: Path, variant: str, seed: int, G) -> dict:
    path = run_dir(root, variant, seed) / "final"
    E = GlobalEncoder.from_pretrained(path, local_files_only=True).eval()
    out = {kind: asdict(evaluate_toy_inversion(E, G, kind=kind)) for kind in ("synthetic", "photo")}
    (path.parent / "scores.json").write_text(json.dumps(out, indent=2))
    return out


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def generator_digest(spec: str) -> str:
    """sha256 (first 16 hex) of the generator's weights, so a table names the exact model it measured."""
    import hashlib

    from e3dge.toy import TOY_WEIGHTS_DIR

    folder = TOY_WEIGHTS_DIR if spec == "toy" else Path(spec)
    return hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()[:16]


def report(root: Path, seeds: list[int], steps: int, generator: str = "toy") -> dict:
    G = load_generator(generator)
    table: dict = {
        "steps": steps,
        "seeds": seeds,
        "generator": generator,
        "generator_sha256_16": generator_digest(generator),
        "runs": {},
        "summary": {},
    }
    for variant in VARIANTS:
        for seed in seeds:
            d = run_dir(root, variant, seed)
            if not (d / "final").exists():
                continue
            scores = (
                json.loads((d / "scores.json").read_text())
                if (d / "scores.json").exists()
                else evaluate(root, variant, seed, G)
            )
            table["runs"][f"{variant}/seed{seed}"] = scores
    for variant in VARIANTS:
        for kind in ("synthetic", "photo"):
            runs = [v[kind] for k, v in table["runs"].items() if k.startswith(variant + "/")]
            if runs:
                table["summary"][f"{variant}/{kind}"] = {m: mean_std([r[m] for r in runs]) for m in METRICS} | {
                    "n": len(runs)
                }
    s = table["summary"]
    for kind in ("synthetic", "photo"):
        a, b = s.get(f"with_geo/{kind}"), s.get(f"without_geo/{kind}")
        if a and b:
            for view in ("source", "novel"):
                m = f"{view}depth_error_pct"
                table.setdefault("depth_reduction_pct", {})[f"{kind}/{view}"] = 100 * (1 - a[m][0] / b[m][0])
    table["hardware"] = (
        f"{platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, no GPU"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "stage1_geo_ablation.json").write_text(json.dumps(table, indent=2))
    (RESULTS / "stage1_geo_ablation.md").write_text(markdown(table))
    return table


def markdown(t: dict) -> str:
    lines = [
        "# Stage I science check: with vs without L_geo (toy lab)",
        "",
        f"toy preset, {t['steps']} steps, batch 8, seeds {t['seeds']}; mean +- std over seeds. Images: raw render at 64x64, "
        "[0,1] scale. Depth: mean |error| on the reference head mask, % of the ray range (1.05). "
        "LPIPS: not reported (no AlexNet weights on this machine; a random-backbone score is not LPIPS).",
        "",
        "| variant | inputs | src MAE | src SSIM | src depth % | novel MAE | novel SSIM | novel depth % | pose err deg | n |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, row in t["summary"].items():
        variant, kind = key.split("/")
        cells = " | ".join(
            f"{row[m][0]:.4f} +- {row[m][1]:.4f}"
            if "ssim" in m or "mae" in m
            else f"{row[m][0]:.2f} +- {row[m][1]:.2f}"
            for m in METRICS
        )
        lines.append(f"| {variant} | {kind} | {cells} | {row['n']} |")
    if "depth_reduction_pct" in t:
        lines += ["", "Depth error reduction with L_geo (target >= 30 %):", ""]
        lines += [f"- {k}: {v:.1f} %" for k, v in t["depth_reduction_pct"].items()]
    gen_name = "the shipped toy EG3D" if t.get("generator", "toy") == "toy" else f"toy EG3D from `{t['generator']}`"
    lines += [
        "",
        f"Generator: {gen_name}, weights sha256 {t['generator_sha256_16']}... Hardware: {t['hardware']}.",
        "Reproduce: `PYTHONPATH=. python benchmarks/stage1_geo_ablation.py --seeds 0 1 2`",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="outputs/bench/stage1_geo", help="run folders (resumable)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--generator", default="toy", help="'toy' (shipped) or a saved generator folder")
    p.add_argument("--report-only", action="store_true")
    p.add_argument("--no-report", action="store_true", help="train only (when slices run in parallel)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    root = Path(a.root)
    if not a.report_only:
        for seed in a.seeds:
            for variant in a.variants:
                print(f"{variant} seed {seed}: {train(root, variant, seed, a.steps, a.threads, a.generator):.0f} s")
    if not a.no_report:
        t = report(root, a.seeds, a.steps, a.generator)
        print(markdown(t))


if __name__ == "__main__":
    main()
