"""Picture grids (rows: latents, columns: yaw) of the generator and the procedural heads, for people to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from e3dge.backbones.eg3d.network import TriPlaneGenerator
from e3dge.core.cameras import label_from_yaw_pitch
from e3dge.core.files import write_png
from e3dge.toy.heads import HeadFactorMap
from e3dge.toy.render import render_heads

__all__ = ["tile", "save_grids"]


def tile(images: torch.Tensor, cols: int) -> np.ndarray:
    """``[N, 3|1, H, W]`` in [-1, 1] -> one uint8 ``[rows*H, cols*W, 3]`` picture."""
    x = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    x = x.permute(0, 2, 3, 1).cpu().numpy()
    rows = [np.concatenate(list(x[i : i + cols]), 1) for i in range(0, len(x), cols)]
    return np.concatenate(rows, 0)


def _depth_to_unit(depth: torch.Tensor, near: float, far: float) -> torch.Tensor:
    return 1 - 2 * ((depth - near) / (far - near)).clamp(0, 1)  # near = white


@torch.no_grad()
def save_grids(
    G: TriPlaneGenerator, out_dir: str | Path, num_z: int = 6, yaws=(-0.6, -0.3, 0.0, 0.3, 0.6), seed: int = 10_000
) -> list[Path]:
    """Write generator (SR and raw), procedural (plain and photo-like) and depth grids as PNGs; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fm = HeadFactorMap(G.z_dim)
    z = fm.sample_z(num_z, seed)
    k = len(yaws)
    zz = z.repeat_interleave(k, 0)
    c = label_from_yaw_pitch(torch.tensor(list(yaws) * num_z), torch.zeros(num_z * k))
    rk = G.rendering_kwargs
    res = G.neural_rendering_resolution
    gen, raw, depth = [], [], []
    for s in range(0, len(zz), 10):
        o = G.synthesis(G.mapping(zz[s : s + 10], c[s : s + 10]), c[s : s + 10], deterministic=True)
        gen.append(o.image)
        raw.append(o.image_raw)
        depth.append(torch.where(o.mask > 0.5, o.depth, torch.full_like(o.depth, rk["ray_end"])))
    ref = render_heads(fm.factors(zz), c, res)
    ref128 = render_heads(fm.factors(zz), c, G.img_resolution)
    photo128 = render_heads(fm.factors(zz), c, G.img_resolution, photo=True)
    near, far = rk["ray_start"] + 0.1, rk["ray_start"] + 0.7
    paths = {
        "grid_generator.png": tile(torch.cat(gen), k),
        "grid_generator_raw.png": tile(torch.cat(raw), k),
        "grid_procedural.png": tile(ref128.image, k),
        "grid_procedural_photo.png": tile(photo128.image, k),
        "grid_depth_generator.png": tile(_depth_to_unit(torch.cat(depth), near, far), k),
        "grid_depth_procedural.png": tile(_depth_to_unit(ref.depth, near, far), k),
    }
    written = []
    for name, arr in paths.items():
        write_png(out / name, arr)
        written.append(out / name)
    return written
