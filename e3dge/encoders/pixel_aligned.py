"""Pixel-aligned feature lookup for EG3D cameras: project world points into a view, sample a feature map, test visibility.

Conventions (EG3D labels, :mod:`e3dge.core.cameras`): ``cam2world`` is OpenCV (x right, y down, +z forward)
and the intrinsics are normalised, so a point projects to ``(u, v)`` in [0, 1] over the image; the
``grid_sample`` grid is ``2 (u, v) - 1`` with ``align_corners=False`` (pixel centres at ``(j + 0.5) / res``,
as the renderer's rays). Two depths are returned: ``depth``, the camera-space z, and ``distance``, the
distance from the camera centre, which is what EG3D's depth maps hold (depth along the unit ray).
``sample_features`` and ``visibility`` take world points with the reference camera's ``label`` or a
:class:`Projection` from :func:`project` (to project once and use it twice).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from e3dge.core.cameras import Projection, project_points

__all__ = [
    "Projection",
    "project",
    "sample_projected",
    "sample_features",
    "visibility",
    "VISIBILITY_MODES",
    "VisibilityMode",
    "DEPTH_KINDS",
]

VisibilityMode = Literal["in_image", "occlusion"]
VISIBILITY_MODES: tuple[VisibilityMode, ...] = ("in_image", "occlusion")
"""``in_image``: the official rule (projects inside the image, in front of the camera); ``occlusion``: also not behind the view's surface."""
DEPTH_KINDS = ("distance", "z")
"""What a reference depth map holds: ``distance`` along the unit ray (EG3D renders) or camera-space ``z``."""


def project(points: torch.Tensor, label: torch.Tensor) -> Projection:
    """Project world points ``[B, M, 3]`` into the camera of an EG3D label ``[B, 25]`` (or ``[1, 25]`` for all)."""
    return project_points(points, label)


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


def sample_features(
    feature_map: torch.Tensor, where: Projection | torch.Tensor, label: torch.Tensor | None = None
) -> torch.Tensor:
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
