"""E1, the local encoder of E3DGE Stage II: pixel-aligned features from the input's residual and depth.

``residual_conv(residual)`` and ``depth_conv(depth)`` (conv3x3 -> a pre-activation residual block with
affine InstanceNorm -> conv1x1; reflect padding, no biases) are concatenated and run through a
stacked-hourglass filter (PIFu's HGFilter: GroupNorm, average-pool down, bicubic up); the last stack's
output is the feature map F_L (``[B, C, H/4, W/4]``). ``local_feat_to_tex_modulations_linear`` maps a
point's fused feature + positional encoding to the FiLM (alpha, beta) of the generator's colour path.
The default configuration has the official ``netLocal`` key names and shapes (456 keys, 15.35 M values).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.core.hub import IntField, PretrainedMixin
from e3dge.encoders.fusion import FilmHead
from e3dge.encoders.global_encoder import resize_to

__all__ = ["ConvBlock", "HourGlass", "HGFilter", "LocalEncoder", "LocalEncoderConfig"]


@dataclass(frozen=True)
class LocalEncoderConfig:
    """Sizes of E1: :meth:`official` is netLocal (456 keys, 256 px in, 256 x 64 x 64 out); :meth:`tiny` a toy-lab/test size."""

    stem_width: int = 32  # channels of each stem (residual, depth); the hourglass filter reads twice this
    width: int = 256  # channels of the feature map F_L (hourglass width)
    num_stack: int = 4  # stacked hourglasses; only the last one's output is used
    depth: int = 2  # levels per hourglass
    groups: int = 32  # GroupNorm groups: must divide 2 x stem_width and width / 8
    film_channels: int = 256  # generator channels the FiLM head modulates (it outputs alpha and beta)
    num_frequencies: int = 7  # positional-encoding octaves of the FiLM head (7 -> 45 values per point)
    input_size: int = 256  # side of the residual / depth E1 reads (others are resized); F_L is a quarter of it

    def __post_init__(self) -> None:
        if self.input_size % (4 << self.depth):
            raise ValueError(f"input_size must be a multiple of {4 << self.depth} (4 x 2^depth), got {self.input_size}")
        if self.width % 8:
            raise ValueError(f"width must be a multiple of 8, got {self.width}")
        for name, channels in (("2 x stem_width", 2 * self.stem_width), ("width / 8", self.width // 8)):
            if channels % self.groups:
                raise ValueError(f"groups ({self.groups}) must divide {name} ({channels})")

    @property
    def feature_size(self) -> int:
        """Side of the feature map F_L."""
        return self.input_size // 4

    @classmethod
    def official(cls) -> LocalEncoderConfig:
        """The released netLocal (HGPIFuNetGANResidualResnetFC) sizes."""
        return cls()

    @classmethod
    def tiny(cls) -> LocalEncoderConfig:
        """One stack of depth 1, 16 channels, 64 px inputs (16 x 16 feature maps): toy lab and fast tests."""
        return cls(stem_width=8, width=16, num_stack=1, depth=1, groups=2, film_channels=16, input_size=64)

    def build(self) -> LocalEncoder:
        """A randomly initialised E1 of these sizes."""
        return LocalEncoder(**asdict(self))


class ConvBlock(nn.Module):
    """Three 3x3 convs (out/2, out/4, out/4 channels, concatenated), each after GroupNorm + ReLU; a 1x1 shortcut when widths differ."""

    def __init__(self, cin: int, cout: int, groups: int) -> None:
        super().__init__()
        c2, c4 = cout // 2, cout // 4
        self.conv1 = nn.Conv2d(cin, c2, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(c2, c4, 3, 1, 1, bias=False)
        self.conv3 = nn.Conv2d(c4, c4, 3, 1, 1, bias=False)
        self.bn1, self.bn2, self.bn3 = nn.GroupNorm(groups, cin), nn.GroupNorm(groups, c2), nn.GroupNorm(groups, c4)
        # The shortcut's norm: one module under two names (`bn4.*` = `downsample.0.*`, same shapes in the official
        # listing); it also exists, unused, when cin == cout (the official state dict stores it there too).
        self.bn4 = nn.GroupNorm(groups, cin)
        self.downsample = (
            nn.Sequential(self.bn4, nn.ReLU(True), nn.Conv2d(cin, cout, 1, bias=False)) if cin != cout else None
        )

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
        self.conv = nn.Sequential(
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(True),
            conv(),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(True),
            conv(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


def _stem(cin: int, width: int) -> nn.Sequential:
    """``residual_conv`` / ``depth_conv``: conv3x3 -> residual block -> conv1x1 (keys ``0``, ``1.conv.*``, ``2``)."""
    first = nn.Conv2d(cin, width, 3, 1, 1, bias=False, padding_mode="reflect")
    return nn.Sequential(first, _ResidualBlock(width), nn.Conv2d(width, width, 1, bias=False))


class _ChannelDown(nn.Module):
    """Stored by the official model but unused at inference (kept so official weights load strict)."""

    def __init__(self, cin: int, cout: int, groups: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, 1, 1)
        self.bn = nn.GroupNorm(groups, cout)


class LocalEncoder(PretrainedMixin, nn.Module):
    """E1 (official ``netLocal``): ``(residual [B,3,H,W], depth [B,1,H,W]) -> feature map [B, width, H/4, W/4]``; plus the FiLM head."""

    CONFIG_SPEC = {
        "stem_width": IntField(2, 1024),
        "width": IntField(8, 2048),
        "num_stack": IntField(1, 8),
        "depth": IntField(1, 6),
        "groups": IntField(1, 256),
        "film_channels": IntField(1, 2048),
        "num_frequencies": IntField(0, 16),
        "input_size": IntField(16, 2048),
    }

    def __init__(
        self,
        stem_width: int = 32,
        width: int = 256,
        num_stack: int = 4,
        depth: int = 2,
        groups: int = 32,
        film_channels: int = 256,
        num_frequencies: int = 7,
        input_size: int = 256,
    ) -> None:
        super().__init__()
        sizes = LocalEncoderConfig(
            stem_width, width, num_stack, depth, groups, film_channels, num_frequencies, input_size
        )  # checks them
        self.config = asdict(sizes)
        self.residual_conv = _stem(3, stem_width)
        self.depth_conv = _stem(1, stem_width)
        self.image_filter = HGFilter(2 * stem_width, 2 * stem_width, width, num_stack, depth, groups)
        self.local_feat_to_tex_modulations_linear = FilmHead(width, film_channels, num_frequencies)
        self.downsample_channel_conv = _ChannelDown(2 * width, 2 * stem_width, groups)

    @property
    def sizes(self) -> LocalEncoderConfig:
        """This encoder's sizes as a :class:`LocalEncoderConfig`."""
        return LocalEncoderConfig(**self.config)

    def forward(self, residual: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Feature map F_L ``[B, width, input_size/4, input_size/4]`` of a square residual and its depth (resized to input_size first)."""
        size = self.config["input_size"]
        residual = resize_to(residual, size)  # average pooling for integer factors, as E3DGE pools the photo to 256
        if depth.shape[-1] != size:
            depth = F.interpolate(depth, size=(size, size), mode="nearest")  # the official depth is nearest-upsampled
        return self.image_filter(torch.cat([self.residual_conv(residual), self.depth_conv(depth)], 1))

    def film(self, features: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-point ``(alpha, beta)`` ``[..., film_channels]`` from fused features ``[..., width]`` and world points ``[..., 3]``."""
        return self.local_feat_to_tex_modulations_linear.modulations(features, points)
