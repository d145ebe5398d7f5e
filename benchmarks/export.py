"""Mesh accuracy in the toy lab against the procedural heads' exact surface, and mesh extraction time.

For held-out heads, meshes come from ``e3dge.export.extract_mesh`` (auto level, largest component)
and are compared with the exact surface: ``|SDF|`` at the mesh vertices (accuracy), the mean distance
from a dense procedural surface to the mesh (completeness), and their mean (Chamfer). Rows:
- the generator's own head (the true code ``G.mapping(z)``, procedural SDF without photo detail):
  the floor set by the distilled toy EG3D and the grid;
- photo-like heads inverted by E0 and by E0 + P + C (50 steps), against the photo's SDF;
- the mean face (``w_avg``) against the same photos: what a mesh that ignores the photo scores.
Distances are in the toy world's units (the head is about 0.4 wide; the grid spans 1.0).

    PYTHONPATH=. python benchmarks/export.py --heads 8 --seeds 3131 4141   # writes benchmarks/results/export.{json,md}
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from scipy.spatial import cKDTree

from e3dge.export import MeshOptions, extract_mesh, mesh_from_grid
from e3dge.inversion import InversionPipeline
from e3dge.toy import HeadFactorMap, sdf_at


def true_surface(factors: torch.Tensor, photo: bool, resolution: int = 160) -> np.ndarray:
    """Vertices of the procedural head's zero level set (marching cubes on the exact SDF), a dense sample of the surface."""
    axis = torch.linspace(-0.5, 0.5, resolution)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    sdf = torch.cat(
        [
            sdf_at(factors[None], grid[None, s : s + 500000], photo=photo).reshape(-1)
            for s in range(0, len(grid), 500000)
        ]
    )
    verts, _ = mesh_from_grid((-sdf).reshape(resolution, resolution, resolution).numpy(), 0.5, 0.0)
    return verts


def photo_heads(fm: HeadFactorMap, num: int, seed: int, resolution: int = 128) -> tuple[np.ndarray, torch.Tensor]:
    """Photo-like renders (uint8) at mild random poses and their factors."""
    from e3dge.core.cameras import label_from_yaw_pitch
    from e3dge.toy import render_heads

    gen = torch.Generator().manual_seed(seed)
    f = fm.factors(torch.randn(num, fm.z_dim, generator=gen))
    yaw, pitch = (torch.rand(num, generator=gen) * 2 - 1) * 0.35, (torch.rand(num, generator=gen) * 2 - 1) * 0.15
    with torch.no_grad():
        image = render_heads(f, label_from_yaw_pitch(yaw, pitch), resolution, photo=True).image
    return ((image.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy(), f


def score(mesh_vertices: np.ndarray, factors: torch.Tensor, truth: np.ndarray, photo: bool) -> dict[str, float]:
    """Accuracy (|SDF| at the vertices), completeness (truth -> mesh), Chamfer (their mean)."""
    acc = float(sdf_at(factors[None], torch.from_numpy(mesh_vertices)[None], photo=photo).abs().mean())
    comp = float(cKDTree(mesh_vertices).query(truth)[0].mean())
    return {"accuracy": acc, "completeness": comp, "chamfer": (acc + comp) / 2}


def run(heads: int, seed: int, resolution: int, steps: int) -> dict:
    """One seed: every row's mean metrics and seconds per mesh."""
    torch.set_num_threads(2)
    pipe = InversionPipeline.from_pretrained("toy")
    G = pipe.generator
    fm = HeadFactorMap(G.z_dim)
    z = fm.sample_z(heads, seed)
    pixels, photo_factors = photo_heads(fm, heads, seed + 1)
    options = MeshOptions(resolution=resolution)
    rows: dict[str, list[dict]] = {
        k: [] for k in ("generator's own head (true code)", "mean face (w_avg)", "E0", "E0 + P + C")
    }
    w_avg = (
        G.backbone.mapping.w_avg[None, None].expand(1, G.num_ws, -1) if hasattr(G.backbone.mapping, "w_avg") else None
    )
    for i in range(heads):
        f_own = fm.factors(z[i : i + 1])[0]
        own = pipe.from_latent(G.mapping(z[i : i + 1], torch.zeros(1, G.c_dim)), yaw=0.2)
        t = time.perf_counter()
        mesh = extract_mesh(pipe, own, options=options)
        rows["generator's own head (true code)"].append(
            {**score(mesh.vertices, f_own, true_surface(f_own, False), False), "time_s": time.perf_counter() - t}
        )
        f_photo = photo_factors[i]
        truth = true_surface(f_photo, True)
        candidates = {
            "E0": pipe.invert(pixels[i], align=False),
            "E0 + P + C": pipe.invert(pixels[i], align=False, refine="pose+code", steps=steps, progress=False),
        }
        if w_avg is not None:
            candidates["mean face (w_avg)"] = pipe.from_latent(w_avg.clone())
        for name, inv in candidates.items():
            t = time.perf_counter()
            mesh = extract_mesh(pipe, inv, options=options)
            rows[name].append({**score(mesh.vertices, f_photo, truth, True), "time_s": time.perf_counter() - t})
        print(f"seed {seed} head {i}: " + ", ".join(f"{k} {v[-1]['chamfer']:.4f}" for k, v in rows.items() if v))
    table = {k: {"heads": len(v), **{m: float(np.mean([r[m] for r in v])) for m in v[0]}} for k, v in rows.items() if v}
    return {"seed": seed, "heads": heads, "grid": resolution, "refine_steps": steps, "rows": table}


def markdown(results: list[dict]) -> str:
    lines = [
        "# Toy-lab mesh accuracy (exact procedural surfaces)",
        "",
        "Reproduce: `PYTHONPATH=. python benchmarks/export.py` (2 CPU threads). Distances in world units (head about 0.4 wide);",
        "accuracy = mean |SDF| at the mesh vertices, completeness = mean distance from the true surface to the mesh, Chamfer = their mean;",
        "time = seconds per mesh (grid, marching cubes, clean-up, colours).",
        "",
    ]
    for res in results:
        lines += [
            f"## seed {res['seed']} ({res['heads']} heads, grid {res['grid']}^3, refinement {res['refine_steps']} steps)",
            "",
            "| mesh | heads | accuracy | completeness | Chamfer | time (s) |",
            "|---|---|---|---|---|---|",
        ]
        for name, m in res["rows"].items():
            lines.append(
                f"| {name} | {m['heads']} | {m['accuracy']:.4f} | {m['completeness']:.4f} | {m['chamfer']:.4f} | {m['time_s']:.2f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--heads", type=int, default=8)
    p.add_argument(
        "--seeds", type=int, nargs="+", default=[3131, 4141], help="held-out seeds (first: gate, second: check)"
    )
    p.add_argument("--grid", type=int, default=128, help="marching-cubes grid points per side")
    p.add_argument("--steps", type=int, default=50, help="P+C refinement steps")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    results = []
    for seed in a.seeds:
        results.append(run(a.heads, seed, a.grid, a.steps))
        (a.out / "export.json").write_text(json.dumps(results, indent=1))  # saved after each seed
        (a.out / "export.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
