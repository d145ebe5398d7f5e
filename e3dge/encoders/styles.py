"""Map-to-style heads and FPN merging of pSp's GradualStyleEncoder (key names ``convs.<i>``, ``linear``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.backbones.stylegan2 import FullyConnectedLayer

__all__ = ["GradualStyleBlock", "upsample_add"]


class GradualStyleBlock(nn.Module):
    """A ``spatial x spatial`` map -> one style: stride-2 3x3 convs (LeakyReLU 0.01) to 1x1, then an equalised linear."""

    def __init__(self, in_channels: int, out_channels: int, spatial: int) -> None:
        super().__init__()
        if spatial < 2 or spatial & (spatial - 1):
            raise ValueError(f"GradualStyleBlock needs a power-of-two spatial size >= 2, got {spatial}")
        self.out_channels = out_channels
        self.spatial = spatial
        layers: list[nn.Module] = []
        for i in range(int(math.log2(spatial))):
            layers += [
                nn.Conv2d(in_channels if i == 0 else out_channels, out_channels, 3, stride=2, padding=1),
                nn.LeakyReLU(),
            ]
        self.convs = nn.Sequential(*layers)
        self.linear = FullyConnectedLayer(
            out_channels, out_channels
        )  # equalised lr, keys weight/bias as pSp's EqualLinear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.spatial, self.spatial):
            raise ValueError(f"GradualStyleBlock expects a {self.spatial}x{self.spatial} map, got {list(x.shape)}")
        x = self.convs(x)
        return self.linear(x.reshape(x.shape[0], self.out_channels))


def upsample_add(top: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """FPN merge: bilinearly resize ``top`` (align_corners=True, as pSp) to ``lateral``'s size and add."""
    return F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=True) + lateral
