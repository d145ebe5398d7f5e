"""Pose estimator of the StyleSDF-based E3DGE: StyleSDF's volume-render discriminator on the 64 px image.

E3DGE predicts the input's camera with the discriminator StyleSDF trained on its 64 px volume renders
(``d`` of ``ffhq_vol_renderer.pt``). Its 3-channel head gives a real/fake logit and the camera's
azimuth and elevation in radians (the values StyleSDF's camera sampler takes).

Layout (64 px input, official key names):

- ``convs.0``: 1x1 conv 3 -> 128 (no conv bias) + ``activation.bias`` and LeakyReLU(0.2), gain 1.
- ``convs.1..5``: residual blocks, each halving the side (64 -> 32 -> 16 -> 8 -> 4 -> 2), widths
  256, 400, 400, 400, 400. ``conv1`` / ``conv2`` are CoordConv layers: the input gets two coordinate
  channels appended, row then column, each running linearly from -1 to 1 across the map (so
  ``conv1.conv.conv`` reads ``C + 2`` channels), then a 3x3 conv (no bias) + bias + LeakyReLU(0.2).
  ``out = (avgpool2(conv2(conv1(x))) + skip(avgpool2(x))) / sqrt(2)``; ``skip`` is a 1x1 conv with bias
  where the width changes, else the identity.
- ``final_conv``: 2x2 conv (with bias) on the 2x2 map -> 3 values: ``[logit, azim, elev]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.core.hub import IntField, ListField, PretrainedMixin
from e3dge.core.options import OptionError

__all__ = ["VolumePoseConfig", "VolumePoseOutput", "VolumePoseEstimator", "add_coords"]


@dataclass(frozen=True)
class VolumePoseConfig:
    """Sizes: :meth:`official` is StyleSDF's VolumeRenderDiscriminator at 64 px (28 keys, 12.1 M values); :meth:`tiny` a test size."""

    input_size: int = 64  # images are average-pooled to this side
    widths: tuple[int, ...] = (
        128,
        256,
        400,
        400,
        400,
        400,
    )  # convs.0 width, then each block's output (log2(input_size) values)

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if self.input_size < 4 or self.input_size & (self.input_size - 1):
            raise ValueError(f"input_size must be a power of two >= 4, got {self.input_size}")
        n = int(math.log2(self.input_size))
        if len(self.widths) != n:
            raise ValueError(
                f"widths needs log2(input_size) = {n} values (stem, then one per block), got {list(self.widths)}"
            )

    @classmethod
    def official(cls) -> VolumePoseConfig:
        """StyleSDF's VolumeRenderDiscriminator at 64 px (renderer_spatial_output_dim 64, viewpoint head on)."""
        return cls()

    @classmethod
    def tiny(cls) -> VolumePoseConfig:
        """16 px input, 4-8 channels (about 2.5 k values)."""
        return cls(input_size=16, widths=(4, 8, 8, 8))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly constructor kwargs of :class:`VolumePoseEstimator`."""
        return {"input_size": self.input_size, "widths": list(self.widths)}

    def build(self) -> VolumePoseEstimator:
        """A randomly initialised estimator of these sizes."""
        return VolumePoseEstimator(**self.to_dict())


@dataclass
class VolumePoseOutput:
    """Predictions for a batch of B images."""

    logit: torch.Tensor  # [B, 1]: real/fake logit (output channel 0)
    azim: torch.Tensor  # [B]: azimuth, radians (output channel 1)
    elev: torch.Tensor  # [B]: elevation, radians (output channel 2)

    @property
    def viewpoint(self) -> torch.Tensor:
        """``[B, 2]`` = (azim, elev), the layout StyleSDF's camera sampler takes as locations."""
        return torch.stack([self.azim, self.elev], dim=1)


def add_coords(x: torch.Tensor) -> torch.Tensor:
    """Append two channels to ``[B, C, H, W]``: the row coordinate, then the column coordinate, each ``2 i / (n - 1) - 1``."""
    b, _, h, w = x.shape
    rows = torch.arange(h, dtype=torch.float32, device=x.device) / (h - 1) * 2 - 1
    cols = torch.arange(w, dtype=torch.float32, device=x.device) / (w - 1) * 2 - 1
    rows = rows.to(x.dtype).view(1, 1, h, 1).expand(b, 1, h, w)
    cols = cols.to(x.dtype).view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([x, rows, cols], dim=1)


class _BiasLeakyReLU(nn.Module):
    """``leaky_relu(x + bias, 0.2)`` (gain 1) with a per-channel ``bias``."""

    def __init__(self, channels: int, fan_in: int) -> None:
        super().__init__()
        bound = 1 / math.sqrt(fan_in)
        self.bias = nn.Parameter(torch.empty(channels).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1).to(x.dtype), 0.2)


class _Conv(nn.Module):
    """``conv`` (bias only without activation) optionally followed by ``activation`` (bias + LeakyReLU)."""

    def __init__(self, cin: int, cout: int, kernel: int, activate: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, bias=not activate)
        self.activation = _BiasLeakyReLU(cout, cin * kernel * kernel) if activate else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return self.activation(x) if self.activation is not None else x


class _CoordConv(nn.Module):
    """``conv`` on the input with :func:`add_coords` channels (``C + 2`` in), 3x3, zero padding 1, no bias."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin + 2, cout, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(add_coords(x))


class _CoordConvLayer(nn.Module):
    """CoordConv 3x3 then bias + LeakyReLU(0.2) (keys ``conv.conv.weight``, ``activation.bias``)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _CoordConv(cin, cout)
        self.activation = _BiasLeakyReLU(cout, cin * 9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.conv(x))


class _ResBlock(nn.Module):
    """Two CoordConv layers, 2x average-pool down, plus a pooled (and, when widths differ, 1x1-projected) skip; / sqrt(2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = _CoordConvLayer(cin, cout)
        self.conv2 = _CoordConvLayer(cout, cout)
        self.skip = _Conv(cin, cout, 1, activate=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.avg_pool2d(self.conv2(self.conv1(x)), 2)
        skip = F.avg_pool2d(x, 2)
        if self.skip is not None:
            skip = self.skip(skip)
        return (out + skip) / math.sqrt(2)


class VolumePoseEstimator(PretrainedMixin, nn.Module):
    """StyleSDF's volume-render discriminator used as E3DGE's pose estimator: image -> :class:`VolumePoseOutput`."""

    CONFIG_SPEC = {"input_size": IntField(4, 1024, power_of_two=True), "widths": ListField(IntField(1, 4096), 2, 10)}

    def __init__(
        self, input_size: int = 64, widths: tuple[int, ...] | list[int] = (128, 256, 400, 400, 400, 400)
    ) -> None:
        super().__init__()
        self.sizes = VolumePoseConfig(input_size, tuple(widths))  # checks them
        self.config: dict[str, Any] = self.sizes.to_dict()
        w = self.sizes.widths
        layers: list[nn.Module] = [_Conv(3, w[0], 1, activate=True)]
        layers += [_ResBlock(a, b) for a, b in zip(w[:-1], w[1:])]
        self.convs = nn.Sequential(*layers)
        self.final_conv = _Conv(w[-1], 3, 2, activate=False)

    @classmethod
    def validate_config(cls, config: Any, where: str = "") -> dict[str, Any]:
        """Check keys, types and ranges, then that ``widths`` fits ``input_size``."""
        config = super().validate_config(config, where)
        try:
            VolumePoseConfig(config.get("input_size", 64), tuple(config.get("widths", VolumePoseConfig.widths)))
        except ValueError as err:
            raise OptionError(f"{where}: {err}" if where else str(err)) from None
        return config

    def _check(self, x: Any) -> None:
        if (
            not isinstance(x, torch.Tensor)
            or x.ndim != 4
            or x.shape[1] != 3
            or x.shape[0] == 0
            or min(x.shape[-2:]) == 0
        ):
            shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"VolumePoseEstimator expects images [B, 3, H, W] in [-1, 1] with B, H, W >= 1, got {shape}"
            )

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The head's 3 channels ``[B, 3]`` (logit, azim, elev) of images already at ``input_size``."""
        return self.final_conv(self.convs(x)).reshape(x.shape[0], 3)

    def forward(self, x: torch.Tensor) -> VolumePoseOutput:
        """Logit and (azim, elev) in radians of images ``[B, 3, H, W]`` (average-pooled to ``input_size``, as E3DGE's 64 px thumb)."""
        self._check(x)
        s = self.sizes.input_size
        if tuple(x.shape[-2:]) != (s, s):
            x = F.adaptive_avg_pool2d(x, (s, s))
        out = self.raw(x)
        return VolumePoseOutput(logit=out[:, 0:1], azim=out[:, 1], elev=out[:, 2])

    def extra_repr(self) -> str:
        return f"input_size={self.sizes.input_size}, widths={list(self.sizes.widths)}"
