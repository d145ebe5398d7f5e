"""Camera-pose head of the global encoder, and pose -> EG3D camera label."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from e3dge.core.cameras import FFHQ_FOCAL, FFHQ_PIVOT, FFHQ_RADIUS, label_from_yaw_pitch

__all__ = ["PoseHead", "pose_to_label"]


class PoseHead(nn.Module):
    """MLP on globally pooled deepest features -> (yaw, pitch) offsets from frontal, radians ``[N, 2]``.

    The last layer starts at zero, so an untrained head predicts the frontal pose (EG3D's mean camera).
    """

    def __init__(self, in_channels: int, hidden: int = 256) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_channels, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 2))
        nn.init.zeros_(self.net[2].weight)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        if pooled.ndim != 2:
            raise ValueError(f"PoseHead expects pooled features [N, C], got {list(pooled.shape)}")
        return self.net(pooled)


def pose_to_label(
    pose: torch.Tensor,
    radius: float = FFHQ_RADIUS,
    pivot: Sequence[float] = FFHQ_PIVOT,
    focal: float = FFHQ_FOCAL,
) -> torch.Tensor:
    """EG3D camera labels ``[N, 25]`` from predicted ``pose [N, 2]`` = (yaw, pitch) radians; differentiable."""
    if not isinstance(pose, torch.Tensor) or pose.ndim != 2 or pose.shape[1] != 2:
        shape = list(pose.shape) if isinstance(pose, torch.Tensor) else type(pose).__name__
        raise ValueError(f"pose must be a tensor [N, 2] of (yaw, pitch) in radians, got {shape}")
    return label_from_yaw_pitch(pose[:, 0], pose[:, 1], radius=radius, pivot=pivot, focal=focal, device=pose.device)
