"""Copy a finished toy Stage I run into the package (e3dge/toy/assets/toy-e0), score it, write its card.

    PYTHONPATH=. python benchmarks/toy_encoder_export.py RUN_DIR --hardware "2 shared CPU cores, no GPU"

RUN_DIR is the ``--out`` of ``e3dge train stage1 --config toy`` (holds final/, log.jsonl, config.json).
The encoder is scored with e3dge.toy.evaluate on held-out synthetic renders and photo-like heads.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "e3dge" / "toy" / "assets" / "toy-e0"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--hardware", default="2 shared CPU cores (x86_64), no GPU")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--dtype",
        choices=("float32", "float16"),
        default="float32",
        help="storage type of the shipped weights (float16 halves the file; loads back as float32)",
    )
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from e3dge.encoders import GlobalEncoder
    from e3dge.toy import load_toy_generator
    from e3dge.toy.evaluate import evaluate_toy_inversion

    run = Path(a.run)
    cfg = json.loads((run / "config.json").read_text())
    from e3dge.training.loop import LOG, read_log

    rows = read_log(run / LOG)
    minutes = float(rows[-1]["time_s"]) / 60
    ASSETS.mkdir(parents=True, exist_ok=True)
    GlobalEncoder.from_pretrained(run / "final", local_files_only=True).save_pretrained(
        ASSETS, dtype=getattr(torch, a.dtype)
    )
    E = GlobalEncoder.from_pretrained(
        ASSETS, local_files_only=True
    ).eval()  # scored as shipped (after any float16 rounding)
    G = load_toy_generator()
    scores = {kind: asdict(evaluate_toy_inversion(E, G, kind=kind)) for kind in ("synthetic", "photo")}
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "toy_e0_scores.json").write_text(json.dumps(scores, indent=2))
    last = rows[-50:]
    mean = {k: sum(float(r.get(k) or 0) for r in last) / len(last) for k in ("l2", "code", "geo", "pose")}
    w = cfg["weights"]
    size = (ASSETS / "model.safetensors").stat().st_size / 1e6
    lines = [
        "# toy-e0: the Stage I global encoder for the toy EG3D",
        "",
        f"E0 of e3dge.encoders.GlobalEncoder at the `{cfg['encoder']}` size (IR-SE body, FPN, GradualStyle heads, pose head),",
        f"predicting W+ offsets (num_ws and w_dim of the toy EG3D) around the generator's mean w, and (yaw, pitch). {size:.1f} MB"
        + (" (stored as float16, loaded as float32)." if a.dtype == "float16" else "."),
        "Input: toy-world images in [-1, 1], any square size (resized to 64). Not a face model.",
        "",
        "## Training",
        "",
        f"`e3dge train stage1 --config toy` (method `{cfg['method']}`): pseudo pairs from the shipped toy EG3D, truncation",
        f"{cfg['truncation_psi']}, yaw/pitch ~ N(0, {cfg['yaw_std']}) / N(0, {cfg['pitch_std']}) clipped to +-{cfg['yaw_max']} / +-{cfg['pitch_max']} rad,",
        f"neural renders at {cfg['neural_rendering_resolution']}x{cfg['neural_rendering_resolution']}; losses: L2 (x{w['l2']}, SR and raw), "
        f"L_geo (surface density x{w['geo_surface_density']}, depth x{w['geo_surface_depth']}, near density x{w['geo_near_density']}), "
        f"L_code x{w['code']}, L_pose x{w['pose']}. No LPIPS / ID (their weights cannot be downloaded on the machines this was trained on).",
        "",
        f"- steps {cfg['steps']}, batch {cfg['batch_size']}, Adam lr {cfg['lr']}, seed {cfg['seed']}",
        f"- wall time {minutes:.1f} min on {a.hardware}, torch {torch.__version__}",
        f"- last 50 steps: L2 {mean['l2']:.4f}, L_code {mean['code']:.3f}, L_geo {mean['geo']:.3f}, L_pose {mean['pose']:.3f}",
        f"- reproduce: `e3dge train stage1 --config toy --out outputs/toy-e0 --steps {cfg['steps']} --seed {cfg['seed']}`, then "
        f"`PYTHONPATH=. python benchmarks/toy_encoder_export.py outputs/toy-e0 --dtype {a.dtype}` (copies it here, scores it, writes this card)",
        "",
        "## Held-out scores (`e3dge.toy.evaluate.evaluate_toy_inversion`, 48 inputs, raw render at 64x64, true camera)",
        "",
        "| inputs | source MAE | source SSIM | source depth err (% of range) | novel MAE | novel SSIM | novel depth err | pose err (deg) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, s in scores.items():
        lines.append(
            f"| {kind} | {s['source_mae']:.4f} | {s['source_ssim']:.3f} | {s['source_depth_pct']:.2f} | {s['novel_mae']:.4f} | "
            f"{s['novel_ssim']:.3f} | {s['novel_depth_pct']:.2f} | {s['pose_error_deg']:.2f} |"
        )
    lines += [
        "",
        "`synthetic`: the generator's own renders (targets: its renders and depth for the true w); `photo`: the toy world's",
        "photo-like heads (targets: procedural images and exact SDF depth). Novel view: yaw turned 0.5 rad across the front.",
        "",
    ]
    (ASSETS / "README.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
