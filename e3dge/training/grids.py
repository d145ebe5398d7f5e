"""Sample grids: what the encoder sees next to what the generator makes of its code (Stage I, Stage II)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from e3dge.backbones.base import Backbone
from e3dge.core.files import write_png
from e3dge.training.pseudo_pairs import PseudoPairBatch

__all__ = ["sample_grid", "save_columns", "depth_to_rgb"]


def depth_to_rgb(depth: torch.Tensor, mask: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """Depth ``[N, 1, H, W]`` -> grey image in [-1, 1] (near = bright), black where ``mask < 0.5``."""
    d = 1 - ((depth - lo) / max(hi - lo, 1e-6)).clamp(0, 1)
    return (d * (mask > 0.5)).expand(-1, 3, -1, -1) * 2 - 1


@torch.no_grad()
def sample_grid(
    E: torch.nn.Module,
    backbone: Backbone,
    batch: PseudoPairBatch,
    path: str | Path,
    resolution: int,
    novel_yaw: float = 0.5,
) -> Path:
    """Rows = samples; columns = input, reconstruction, novel view (input yaw + ``novel_yaw``), pseudo-GT depth, predicted depth."""
    enc = E(batch.image)
    scene = backbone.scene(enc.ws)
    out = backbone.render(enc.ws, scene, batch.camera, "full", neural_resolution=resolution)
    yaw = batch.pose[:, 0] + novel_yaw * torch.where(batch.pose[:, 0] > 0, -1.0, 1.0).to(batch.pose)
    novel = backbone.render(enc.ws, scene, backbone.camera(yaw, batch.pose[:, 1]), "full", neural_resolution=resolution)
    size = batch.image.shape[-1]

    def up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(size, size), mode="nearest")

    on = batch.depth[batch.mask > 0.5]
    lo, hi = (float(on.min()), float(on.max())) if on.numel() else backbone.rig.depth_range
    cols = [
        batch.image,
        out.image.clamp(-1, 1),
        novel.image.clamp(-1, 1),
        up(depth_to_rgb(batch.depth, batch.mask, lo, hi)),
        up(depth_to_rgb(out.depth, out.mask, lo, hi)),
    ]
    return save_columns(cols, path)


def save_columns(cols: list[torch.Tensor], path: str | Path) -> Path:
    """Write images ``[N, 3, S, S]`` in [-1, 1], one column per tensor and one row per sample, as a PNG."""
    rows = torch.cat([torch.cat(list(c), dim=-1) for c in zip(*cols)], dim=-2)  # [3, N*S, C*S]
    img = ((rows.permute(1, 2, 0).float().cpu().numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, img)
    return path
