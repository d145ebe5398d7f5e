"""E1, the local encoder of E3DGE Stage II: pixel-aligned features from the input's residual and depth.

``residual_conv(residual)`` and ``depth_conv(depth)`` (conv3x3 -> a pre-activation residual block with
affine InstanceNorm -> conv1x1; reflect padding, no biases) are concatenated and run through a
stacked-hourglass filter (PIFu's HGFilter: GroupNorm, average-pool down, bicubic up); the last stack's
output is the feature map F_L (``[B, C, H/4, W/4]``). ``local_feat_to_tex_modulations_linear`` maps a
point's fused feature + positional encoding to the FiLM (alpha, beta) of the generator's colour path.
The default configuration has the official ``netLocal`` key names and shapes (456 keys, 15.35 M values).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.encoders.blocks import ResnetBlockFC, pe_dim, positional_encoding
from e3dge.hub import IntField, PretrainedMixin

__all__ = ["ConvBlock", "HourGlass", "HGFilter", "LocalEncoder"]


class ConvBlock(nn.Module):
    """Three 3x3 convs (out/2, out/4, out/4 channels, concatenated), each after GroupNorm + ReLU; a 1x1 shortcut when widths differ."""

    def __init__(self, cin: int, cout: int, groups: int) -> None:
        super().__init__()
        c2, c4 = cout // 2, cout // 4
        self.conv1 = nn.Conv2d(cin, c2, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(c2, c4, 3, 1, 1, bias=False)
        self.conv3 = nn.Conv2d(c4, c4, 3, 1, 1, bias=False)
        self.bn1, self.bn2, self.bn3 = nn.GroupNorm(groups, cin), nn.GroupNorm(groups, c2), nn.GroupNorm(groups, c4)
        self.bn4 = nn.GroupNorm(groups, cin)  # the shortcut's norm: stored under both names, as the official state dict
        self.downsample = nn.Sequential(self.bn4, nn.ReLU(True), nn.Conv2d(cin, cout, 1, bias=False)) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1 = self.conv1(F.relu(self.bn1(x)))
        o2 = self.conv2(F.relu(self.bn2(o1)))
        o3 = self.conv3(F.relu(self.bn3(o2)))
        return torch.cat([o1, o2, o3], 1) + (self.downsample(x) if self.downsample is not None else x)


class HourGlass(nn.Module):
    """Recursive hourglass of ``depth`` levels (``b1_L`` skip, ``b2_L`` down, ``b3_L`` up; ``b2_plus_1`` at the bottom)."""

    def __init__(self, depth: int, channels: int, groups: int) -> None:
        super().__init__()
        self.depth = depth
        for level in range(depth, 0, -1):
            for name in ("b1", "b2", "b3"):
                self.add_module(f"{name}_{level}", ConvBlock(channels, channels, groups))
        self.add_module("b2_plus_1", ConvBlock(channels, channels, groups))

    def _level(self, level: int, x: torch.Tensor) -> torch.Tensor:
        up1 = getattr(self, f"b1_{level}")(x)
        low = getattr(self, f"b2_{level}")(F.avg_pool2d(x, 2, stride=2))
        low = self._level(level - 1, low) if level > 1 else self.b2_plus_1(low)
        low = getattr(self, f"b3_{level}")(low)
        return up1 + F.interpolate(low, size=up1.shape[-2:], mode="bicubic", align_corners=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(self.depth, x)


class HGFilter(nn.Module):
    """Stacked hourglass image filter (stride-2 7x7 stem, ConvBlocks, average pool; ``num_stack`` hourglasses); returns the last stack's map."""

    def __init__(self, cin: int, stem: int, width: int, num_stack: int, depth: int, groups: int) -> None:
        super().__init__()
        self.num_stack = num_stack
        self.conv1 = nn.Conv2d(cin, stem, 7, 2, 3)
        self.bn1 = nn.GroupNorm(groups, stem)
        self.conv2 = ConvBlock(stem, width // 2, groups)
        self.conv3 = ConvBlock(width // 2, width // 2, groups)
        self.conv4 = ConvBlock(width // 2, width, groups)
        for i in range(num_stack):
            self.add_module(f"m{i}", HourGlass(depth, width, groups))
            self.add_module(f"top_m_{i}", ConvBlock(width, width, groups))
            self.add_module(f"conv_last{i}", nn.Conv2d(width, width, 1))
            self.add_module(f"bn_end{i}", nn.GroupNorm(groups, width))
            self.add_module(f"l{i}", nn.Conv2d(width, width, 1))
            if i < num_stack - 1:
                self.add_module(f"bl{i}", nn.Conv2d(width, width, 1))
                self.add_module(f"al{i}", nn.Conv2d(width, width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.conv4(self.conv3(F.avg_pool2d(self.conv2(x), 2, stride=2)))
        previous, out = x, x
        for i in range(self.num_stack):
            ll = getattr(self, f"top_m_{i}")(getattr(self, f"m{i}")(previous))
            ll = F.relu(getattr(self, f"bn_end{i}")(getattr(self, f"conv_last{i}")(ll)))
            out = getattr(self, f"l{i}")(ll)
            if i < self.num_stack - 1:
                previous = previous + getattr(self, f"bl{i}")(ll) + getattr(self, f"al{i}")(out)
        return out


class _ResidualBlock(nn.Module):
    """``x + conv(x)``, conv = IN, ReLU, conv3x3, IN, ReLU, conv3x3 (affine InstanceNorm, reflect padding, no bias)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        conv = lambda: nn.Conv2d(channels, channels, 3, 1, 1, bias=False, padding_mode="reflect")  # noqa: E731
        self.conv = nn.Sequential(nn.InstanceNorm2d(channels, affine=True), nn.ReLU(True), conv(),
                                  nn.InstanceNorm2d(channels, affine=True), nn.ReLU(True), conv())  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def _stem(cin: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, width, 3, 1, 1, bias=False, padding_mode="reflect"), _ResidualBlock(width), nn.Conv2d(width, width, 1, bias=False))


class _ChannelDown(nn.Module):
    """Stored by the official model but unused at inference (kept so official weights load strict)."""

    def __init__(self, cin: int, cout: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn = nn.GroupNorm(groups, cout)


class LocalEncoder(PretrainedMixin, nn.Module):
    """E1 (official ``netLocal``): ``(residual [B,3,H,W], depth [B,1,H,W]) -> feature map [B, width, H/4, W/4]``; plus the FiLM head."""

    CONFIG_SPEC = {"stem_width": IntField(2, 1024), "width": IntField(4, 2048), "num_stack": IntField(1, 8), "depth": IntField(1, 6),
                   "groups": IntField(1, 256), "film_channels": IntField(1, 2048), "num_frequencies": IntField(0, 16)}  # fmt: skip

    def __init__(self, stem_width: int = 32, width: int = 256, num_stack: int = 4, depth: int = 2, groups: int = 32,
                 film_channels: int = 256, num_frequencies: int = 7) -> None:  # fmt: skip
        super().__init__()
        if width % 8:
            raise ValueError(f"width must be a multiple of 8, got {width}")
        for name, channels in (("2 x stem_width", 2 * stem_width), ("width / 8", width // 8)):
            if channels % groups:
                raise ValueError(f"groups ({groups}) must divide {name} ({channels})")
        self.config = {"stem_width": stem_width, "width": width, "num_stack": num_stack, "depth": depth, "groups": groups,
                       "film_channels": film_channels, "num_frequencies": num_frequencies}  # fmt: skip
        self.num_frequencies, self.film_channels = num_frequencies, film_channels
        self.residual_conv = _stem(3, stem_width)
        self.depth_conv = _stem(1, stem_width)
        self.image_filter = HGFilter(2 * stem_width, 2 * stem_width, width, num_stack, depth, groups)
        head_in = width + pe_dim(num_frequencies)
        self.local_feat_to_tex_modulations_linear = ResnetBlockFC(head_in, 2 * film_channels)
        self.downsample_channel_conv = _ChannelDown(2 * width, 2 * stem_width, groups)

    def forward(self, residual: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Feature map F_L of a residual image and its depth (same size)."""
        return self.image_filter(torch.cat([self.residual_conv(residual), self.depth_conv(depth)], 1))

    def film(self, features: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-point ``(alpha, beta)`` ``[..., film_channels]`` from fused features ``[..., width]`` and world points ``[..., 3]``."""
        out = self.local_feat_to_tex_modulations_linear(torch.cat([features, positional_encoding(points, self.num_frequencies)], -1))
        return out[..., : self.film_channels], out[..., self.film_channels :]
