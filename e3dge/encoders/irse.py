"""IR / IR-SE residual backbone (ArcFace "improved residual" units with squeeze-excitation), as used by pSp.

Module and parameter names follow pSp's encoder (``input_layer.0``, ``body.<i>.shortcut_layer``,
``body.<i>.res_layer.<j>``, ``res_layer.5.fc1``) so its IR-SE50 checkpoints load with strict keys.
Layout: a 3x3 stem at full resolution, then four stages whose first unit has stride 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["UnitSpec", "stage_units", "IRSE_DEPTHS", "SEModule", "BottleneckIR", "make_input_layer", "make_body"]

IRSE_DEPTHS: dict[int, tuple[int, int, int, int]] = {50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 152: (3, 8, 36, 3)}
"""Units per stage of the IR(-SE) 50/100/152 networks (stage widths 64, 128, 256, 512)."""


@dataclass(frozen=True)
class UnitSpec:
    """One residual unit: input channels, output channels, stride of its second conv."""

    in_channels: int
    out_channels: int
    stride: int


def stage_units(stem_width: int, widths: tuple[int, ...], units: tuple[int, ...]) -> list[list[UnitSpec]]:
    """Per-stage unit specs: the first unit of each stage changes width and has stride 2."""
    if len(widths) != len(units) or any(u < 1 for u in units):
        raise ValueError(f"widths {widths} and units {units} must have the same length and units >= 1")
    stages, in_ch = [], stem_width
    for width, n in zip(widths, units):
        stages.append([UnitSpec(in_ch, width, 2)] + [UnitSpec(width, width, 1) for _ in range(n - 1)])
        in_ch = width
    return stages


class SEModule(nn.Module):
    """Squeeze-excitation: channel gates from globally pooled features (``fc1``/``fc2`` 1x1 convs, no bias)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=False)
        self.relu = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))


class BottleneckIR(nn.Module):
    """IR unit ``BN-conv3x3-PReLU-conv3x3(stride)-BN[-SE]`` plus a shortcut (subsample or 1x1 conv + BN)."""

    def __init__(self, spec: UnitSpec, use_se: bool = True) -> None:
        super().__init__()
        cin, cout, s = spec.in_channels, spec.out_channels, spec.stride
        if cin == cout:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(kernel_size=1, stride=s)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=s, bias=False), nn.BatchNorm2d(cout))
        layers: list[nn.Module] = [
            nn.BatchNorm2d(cin),
            nn.Conv2d(cin, cout, 3, stride=1, padding=1, bias=False),
            nn.PReLU(cout),
            nn.Conv2d(cout, cout, 3, stride=s, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if use_se:
            layers.append(SEModule(cout, 16))
        self.res_layer = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


def make_input_layer(in_channels: int, width: int) -> nn.Sequential:
    """Stem ``conv3x3 (no bias) - BN - PReLU`` at full resolution (pSp's ``input_layer``)."""
    conv = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(width), nn.PReLU(width))


def make_body(stages: list[list[UnitSpec]], use_se: bool = True) -> nn.Sequential:
    """All units of all stages in one flat ``Sequential`` (pSp's ``body``; indices run across stages)."""
    return nn.Sequential(*(BottleneckIR(spec, use_se) for stage in stages for spec in stage))
