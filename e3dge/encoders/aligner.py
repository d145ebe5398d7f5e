"""E_ADA, the 2D residual aligner (HFGI-style U-Net): moves the input view's residual to a novel view.

In: ``cat(residual, query-view reconstruction)`` (6 channels). Out: the aligned 3-channel residual
(no activation). Encoder: a stem and three stages of IR bottlenecks (stride 2 at each stage's first
block); decoder: three stages, each on ``cat(bilinear-up(previous), skip)``. Key names and shapes of
the default configuration match the official ``grid_align`` state dict (BatchNorm with running stats).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.core.hub import IntField, ListField, PretrainedMixin
from e3dge.encoders.irse import BottleneckIR, UnitSpec

__all__ = ["AlignerConfig", "ResidualAligner"]


@dataclass(frozen=True)
class AlignerConfig:
    """Sizes of E_ADA: :meth:`official` is the released grid_align (295 keys, 0.60 M values); :meth:`tiny` a toy-lab/test size."""

    widths: tuple[int, int, int, int] = (16, 32, 48, 64)  # stem, then the three encoder stages (each halves the size)
    blocks: int = 3  # IR bottlenecks per encoder / decoder stage

    @classmethod
    def official(cls) -> AlignerConfig:
        """The released ResidualAligner sizes."""
        return cls()

    @classmethod
    def tiny(cls) -> AlignerConfig:
        """4-16 channels, 2 blocks per stage."""
        return cls(widths=(4, 8, 8, 16), blocks=2)

    def build(self) -> ResidualAligner:
        """A randomly initialised E_ADA of these sizes."""
        return ResidualAligner(widths=list(self.widths), blocks=self.blocks)


def _stage(widths: list[int], stride: int) -> nn.Sequential:
    """IR bottlenecks without SE, ``widths[0] -> widths[1] -> ...``; the first block has ``stride``."""
    units = [UnitSpec(a, b, stride if i == 0 else 1) for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))]
    return nn.Sequential(*[BottleneckIR(u, use_se=False) for u in units])


class ResidualAligner(PretrainedMixin, nn.Module):
    """2D aligner E_ADA: ``(residual [B,3,H,W], reconstruction at the query view [B,3,H,W]) -> aligned residual [B,3,H,W]``."""

    CONFIG_SPEC = {"widths": ListField(IntField(1, 1024), 4, 4), "blocks": IntField(2, 8)}

    def __init__(self, widths: tuple[int, ...] | list[int] = (16, 32, 48, 64), blocks: int = 3) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ValueError(f"widths must have 4 values (stem and three stages), got {list(widths)}")
        w1, w2, w3, w4 = (int(v) for v in widths)
        self.config = {"widths": [w1, w2, w3, w4], "blocks": blocks}
        self.conv_layer1 = nn.Sequential(nn.Conv2d(6, w1, 3, 1, 1, bias=False), nn.BatchNorm2d(w1), nn.PReLU(w1))
        self.conv_layer2 = _stage([w1] + [w2] * blocks, 2)
        self.conv_layer3 = _stage([w2] + [w3] * blocks, 2)
        self.conv_layer4 = _stage([w3] + [w4] * blocks, 2)
        self.dconv_layer1 = _stage(self._decoder_widths(w4 + w3, w4, w2, blocks), 1)
        self.dconv_layer2 = _stage(self._decoder_widths(w2 + w2, w2, w1, blocks), 1)
        self.dconv_layer3 = _stage(self._decoder_widths(w1 + w1, w1, 3, blocks), 1)

    @staticmethod
    def _decoder_widths(cin: int, mid: int, out: int, blocks: int) -> list[int]:
        """Official layout: ``cin -> mid -> out -> out ...`` (``blocks`` blocks)."""
        return [cin, mid] + [out] * (blocks - 1)

    def forward(self, residual: torch.Tensor, reconstruction: torch.Tensor) -> torch.Tensor:
        """Aligned residual at the reconstruction's view."""
        x = torch.cat([residual, reconstruction], 1)
        f1 = self.conv_layer1(x)
        f2 = self.conv_layer2(f1)
        f3 = self.conv_layer3(f2)
        f4 = self.conv_layer4(f3)
        d1 = self.dconv_layer1(_up_cat(f4, f3))
        d2 = self.dconv_layer2(_up_cat(d1, f2))
        return self.dconv_layer3(_up_cat(d2, f1))


def _up_cat(coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """``cat(bilinear-up(coarse) to the skip's size, skip)``: the decoder's input at each scale."""
    return torch.cat([F.interpolate(coarse, size=skip.shape[-2:], mode="bilinear", align_corners=False), skip], 1)
