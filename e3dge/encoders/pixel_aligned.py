"""Pixel-aligned feature lookup for EG3D cameras: project world points into a view, sample a feature map, test visibility.

Conventions (EG3D labels, :mod:`e3dge.cameras`): ``cam2world`` is OpenCV (x right, y down, +z forward)
and the intrinsics are normalised, so a point projects to ``(u, v)`` in [0, 1] over the image; the
``grid_sample`` grid is ``2 (u, v) - 1`` with ``align_corners=False`` (pixel centres at ``(j + 0.5) / res``,
as the renderer's rays). Two depths are returned: ``depth``, the camera-space z, and ``distance``, the
distance from the camera centre, which is what EG3D's depth maps hold (depth along the unit ray).
``sample_features`` and ``visibility`` take world points with the reference camera's ``label`` or a
:class:`Projection` from :func:`project` (to project once and use it twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from e3dge.cameras import split_label

__all__ = ["Projection", "project", "sample_projected", "sample_features", "visibility", "VISIBILITY_MODES", "DEPTH_KINDS"]

VISIBILITY_MODES = ("in_image", "occlusion")
"""``in_image``: the official rule (projects inside the image, in front of the camera); ``occlusion``: also not behind the view's surface."""
DEPTH_KINDS = ("distance", "z")
"""What a reference depth map holds: ``distance`` along the unit ray (EG3D renders) or camera-space ``z``."""


@dataclass(frozen=True)
class Projection:
    """Points ``[B, M, 3]`` seen from one camera."""

    grid: torch.Tensor  # [B, M, 2] grid_sample coordinates (x, y); inside the image when both are in [-1, 1]
    depth: torch.Tensor  # [B, M, 1] camera-space z (> 0 in front of the camera)
    distance: torch.Tensor  # [B, M, 1] distance from the camera centre

    @property
    def in_front(self) -> torch.Tensor:
        """``[B, M, 1]`` bool: in front of the camera (z > 0)."""
        return self.depth > 0


def project(points: torch.Tensor, label: torch.Tensor) -> Projection:
    """Project world points ``[B, M, 3]`` into the camera of an EG3D label ``[B, 25]`` (or ``[1, 25]`` for all)."""
    cam2world, intrinsics = split_label(label)
    batch = (points.shape[0], -1, -1)
    cam2world, intrinsics = cam2world.to(points).expand(batch), intrinsics.to(points).expand(batch)
    rot, origin = cam2world[:, :3, :3], cam2world[:, :3, 3]
    offset = points - origin[:, None]
    cam = torch.einsum("bji,bmj->bmi", rot, offset)  # world -> camera: R^T (p - o)
    z = cam[..., 2:3]
    safe_z = torch.where(z.abs() < 1e-8, torch.full_like(z, 1e-8), z)  # a point in the camera plane lands far outside
    uv1 = torch.einsum("bij,bmj->bmi", intrinsics, cam / safe_z)
    return Projection(grid=2 * uv1[..., :2] - 1, depth=z, distance=offset.norm(dim=-1, keepdim=True))


def _as_projection(where: Projection | torch.Tensor, label: torch.Tensor | None) -> Projection:
    """A :class:`Projection` as given, or world points ``[B, M, 3]`` projected into ``label``'s camera."""
    if isinstance(where, Projection):
        if label is not None:
            raise ValueError("pass either a Projection or points with a label, not both")
        return where
    if label is None:
        raise ValueError("points need the reference camera's label [B, 25]")
    return project(where, label)


def sample_projected(feature_map: torch.Tensor, projection: Projection, mode: str = "bilinear") -> torch.Tensor:
    """Samples ``[B, M, C]`` of ``feature_map [B, C, H, W]`` at projected points (zeros outside the image)."""
    grid = projection.grid[:, :, None].to(feature_map.dtype)  # [B, M, 1, 2]
    out = F.grid_sample(feature_map, grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out[..., 0].transpose(1, 2)


def sample_features(feature_map: torch.Tensor, where: Projection | torch.Tensor, label: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-aligned features ``[B, M, C]`` of ``feature_map [B, C, H, W]`` (bilinear, zeros outside) at ``points, label`` or a Projection."""
    return sample_projected(feature_map, _as_projection(where, label))


def visibility(
    where: Projection | torch.Tensor,
    mode: str = "in_image",
    depth: torch.Tensor | None = None,
    tolerance: float = 0.02,
    *,
    label: torch.Tensor | None = None,
    depth_kind: str = "distance",
) -> torch.Tensor:
    """``[B, M, 1]`` float mask: in the reference image (``occlusion``: also <= its depth map ``depth [B,1,H,W]`` + tolerance)."""
    if mode not in VISIBILITY_MODES:
        raise ValueError(f"visibility mode must be one of {VISIBILITY_MODES}, got {mode!r}")
    if depth_kind not in DEPTH_KINDS:
        raise ValueError(f"depth_kind must be one of {DEPTH_KINDS}, got {depth_kind!r}")
    projection = _as_projection(where, label)
    visible = (projection.grid.abs() <= 1).all(-1, keepdim=True) & projection.in_front
    if mode == "occlusion":
        if depth is None:
            raise ValueError("occlusion-aware visibility needs the reference view's depth map")
        # nearest: a bilinear depth would blend foreground and background across silhouettes
        surface = sample_projected(depth.to(projection.depth), projection, mode="nearest")
        own = projection.distance if depth_kind == "distance" else projection.depth
        visible = visible & (own <= surface + tolerance)
    return visible.to(projection.distance.dtype)
