"""Fusion of the 2D-aligned and 3D-projected local features (official ``Fuse_sft_MLP``, SFT-style).

``h = ResnetBlockFC(cat[f2d, visibility, f3d])``; ``fused = f3d + f3d * scale(h) + shift(h)`` with
``scale``/``shift`` = Linear -> LeakyReLU(0.2) -> Linear. Key names match the official state dict.
"""

from __future__ import annotations

import torch
from torch import nn

from e3dge.encoders.blocks import ResnetBlockFC
from e3dge.hub import IntField, PretrainedMixin

__all__ = ["FeatureFusion"]


def _mlp(width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.2), nn.Linear(width, width))


class FeatureFusion(PretrainedMixin, nn.Module):
    """Fuses per-point features ``f2d`` (from the 2D-aligned view) and ``f3d`` (projected into the input view)."""

    CONFIG_SPEC = {"channels": IntField(1, 4096)}

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        self.config = {"channels": channels}
        self.encode_enc = ResnetBlockFC(2 * channels + 1, channels)
        self.scale, self.shift = _mlp(channels), _mlp(channels)

    def forward(self, f2d: torch.Tensor, visibility: torch.Tensor, f3d: torch.Tensor) -> torch.Tensor:
        """``f2d [..., C]``, ``visibility [..., 1]``, ``f3d [..., C]`` -> fused ``[..., C]``."""
        h = self.encode_enc(torch.cat([f2d, visibility.to(f2d.dtype), f3d], -1))
        return f3d + f3d * self.scale(h) + self.shift(h)
