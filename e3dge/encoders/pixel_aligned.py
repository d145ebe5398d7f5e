"""Pixel-aligned feature lookup for EG3D cameras: project world points into a view, sample a feature map, test visibility.

Conventions (EG3D labels, :mod:`e3dge.cameras`): ``cam2world`` is OpenCV (x right, y down, +z forward)
and the intrinsics are normalised, so a point projects to ``(u, v)`` in [0, 1] over the image; the
grid for ``grid_sample`` is ``2 (u, v) - 1`` with ``align_corners=False`` (pixel centres at
``(j + 0.5) / res``, as the renderer's rays). Depth is the distance from the camera centre, as the
renderer's depth maps (distance along the unit ray).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from e3dge.cameras import split_label

__all__ = ["Projection", "project", "sample_features", "visibility", "VISIBILITY_MODES"]

VISIBILITY_MODES = ("in_image", "occlusion")
"""``in_image``: the official rule (the point projects inside the image); ``occlusion``: also not behind the view's surface."""


@dataclass(frozen=True)
class Projection:
    """Points ``[B, M, 3]`` seen from one camera."""

    grid: torch.Tensor  # [B, M, 2] grid_sample coordinates (x, y) in [-1, 1] inside the image
    distance: torch.Tensor  # [B, M, 1] distance from the camera centre
    in_front: torch.Tensor  # [B, M, 1] bool: camera-space z > 0


def project(points: torch.Tensor, label: torch.Tensor) -> Projection:
    """Project world points ``[B, M, 3]`` into the camera of an EG3D label ``[B, 25]``."""
    cam2world, intrinsics = split_label(label)
    cam2world, intrinsics = cam2world.to(points), intrinsics.to(points)
    rot, origin = cam2world[:, :3, :3], cam2world[:, :3, 3]
    cam = torch.einsum("bji,bmj->bmi", rot, points - origin[:, None])  # world -> camera (R^T (p - o))
    z = cam[..., 2:3]
    safe_z = torch.where(z.abs() < 1e-8, torch.full_like(z, 1e-8), z)
    uv1 = torch.einsum("bij,bmj->bmi", intrinsics, cam / safe_z)
    return Projection(grid=2 * uv1[..., :2] - 1, distance=(points - origin[:, None]).norm(dim=-1, keepdim=True), in_front=z > 0)


def sample_features(feature_map: torch.Tensor, projection: Projection) -> torch.Tensor:
    """Bilinear samples ``[B, M, C]`` of ``feature_map [B, C, H, W]`` at projected points (zeros outside the image)."""
    grid = projection.grid[:, :, None]  # [B, M, 1, 2]
    out = F.grid_sample(feature_map, grid.to(feature_map.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[..., 0].permute(0, 2, 1)


def visibility(projection: Projection, mode: str = "in_image", depth: torch.Tensor | None = None, tolerance: float = 0.02) -> torch.Tensor:
    """``[B, M, 1]`` float mask: the point is inside the image (and, for ``occlusion``, at most ``tolerance`` behind the view's ``depth [B, 1, H, W]``)."""
    if mode not in VISIBILITY_MODES:
        raise ValueError(f"visibility mode must be one of {VISIBILITY_MODES}, got {mode!r}")
    inside = (projection.grid.abs() <= 1).all(-1, keepdim=True) & projection.in_front
    if mode == "occlusion":
        if depth is None:
            raise ValueError("occlusion-aware visibility needs the view's depth map")
        surface = sample_features(depth, projection)  # distance to the view's surface along the same pixel
        inside = inside & (projection.distance <= surface + tolerance)
    return inside.to(projection.distance.dtype)
