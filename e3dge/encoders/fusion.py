"""Stage II feature fusion (official ``Fuse_sft_MLP``, SFT-style) and the FiLM head that turns fused features into modulations.

Fusion: ``h = ResnetBlockFC(cat[f2d, visibility, f3d])``; ``fused = f3d + f3d * scale(h) + shift(h)``
with ``scale``/``shift`` = Linear -> LeakyReLU(0.2) -> Linear (official key names, 13 keys at C = 256).
FiLM head: ``ResnetBlockFC(cat[fused, PE(world point)]) -> (alpha, beta)``, applied as
``(alpha + 1) * features + beta`` (:func:`~e3dge.encoders.blocks.apply_film`).
"""

from __future__ import annotations

import torch
from torch import nn

from e3dge.core.hub import IntField, PretrainedMixin
from e3dge.encoders.blocks import ResnetBlockFC, apply_film, pe_dim, positional_encoding

__all__ = ["FeatureFusion", "FilmHead", "apply_film"]


def _mlp(width: int) -> nn.Sequential:
    """``Linear -> LeakyReLU(0.2) -> Linear`` (keys ``0.*``, ``2.*``)."""
    return nn.Sequential(nn.Linear(width, width), nn.LeakyReLU(0.2, inplace=True), nn.Linear(width, width))


class FeatureFusion(PretrainedMixin, nn.Module):
    """Fuses per-point ``f2d`` (sampled from the 2D-aligned residual) into ``f3d`` (projected into the input view)."""

    CONFIG_SPEC = {"channels": IntField(1, 4096)}

    def __init__(self, channels: int = 256) -> None:
        super().__init__()
        self.config = {"channels": channels}
        self.encode_enc = ResnetBlockFC(2 * channels + 1, channels)
        self.scale, self.shift = _mlp(channels), _mlp(channels)

    def forward(self, f2d: torch.Tensor, visibility: torch.Tensor, f3d: torch.Tensor) -> torch.Tensor:
        """``f2d [..., C]``, ``visibility [..., 1]``, ``f3d [..., C]`` -> fused ``[..., C]``."""
        h = self.encode_enc(torch.cat([f2d, visibility.to(f2d.dtype), f3d], -1))
        return torch.addcmul(self.shift(h) + f3d, f3d, self.scale(h))


class FilmHead(ResnetBlockFC):
    """``(features [..., C_f], world points [..., 3]) -> (alpha, beta) [..., channels]``; a ResnetBlockFC, so its keys are the official ones."""

    def __init__(self, feature_channels: int, channels: int, num_frequencies: int = 7) -> None:
        super().__init__(feature_channels + pe_dim(num_frequencies), 2 * channels)
        self.channels, self.num_frequencies = channels, num_frequencies

    def modulations(self, features: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-point ``(alpha, beta)``: the first ``channels`` outputs, then the rest (official split)."""
        out = self(torch.cat([features, positional_encoding(points, self.num_frequencies)], -1))
        return out[..., : self.channels], out[..., self.channels :]

    def modulate(self, target: torch.Tensor, features: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """``(alpha + 1) * target + beta`` for ``target [..., channels]`` (e.g. the generator's colour features)."""
        alpha, beta = self.modulations(features, points)
        return apply_film(target, alpha, beta)
