"""E0 of the StyleSDF-based E3DGE: IR-SE50 + FPN encoder -> renderer and decoder ``W+`` offsets.

Image ``[B, 3, H, W]`` in [-1, 1] -> average-pooled to ``input_size`` (256) -> ``input_layer`` and the
IR-SE units ``body.0..23``. The last unit of each stage is a tap, named after its side at 256 px input:
``c128`` (stage 1, 64 ch), ``c64`` (stage 2, 128 ch), ``c32`` (stage 3, 256 ch), ``c16`` (stage 4, 512 ch).
The FPN merges top-down with bilinear upsampling (``align_corners=True``) and 1x1 lateral convs to 512
channels, the lateral layers being named after their *input* channels:

    p32 = up(c16) + latlayer256(c32);   p64 = up(p32) + latlayer128(c64);   p128 = up(p64) + latlayer64(c128)

Renderer (SDF/colour MLP): ``styles_pigan.0..8`` all read ``p32``. Each is a :class:`GradualStyleBlock` built
for a 128 px map (7 stride-2 3x3 convs): on the 32 px map the first five reach 1x1 and the last two run on
1x1 maps, then an equalised linear (lr multiplier 1). Rows are stacked to ``[B, 9, 256]``.

Decoder (StyleGAN2 upsampler): ``styles_stylegan.0..9`` are all stored (heads 0-2 built for 128 px, 3-9 for
256 px) so the official state dict loads strict, but only head 0 runs, on ``p128``; its 512-d output is
repeated to all 10 rows ``[B, 10, 512]``. The caller adds the generator's mean latents.

With :meth:`StyleSDFEncoderConfig.official` the state dict has the official key names and shapes
(709 keys, 258.6 M values), so the ``encoder`` of an E3DGE checkpoint loads with ``strict=True``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.core.hub import IntField, ListField, PretrainedMixin
from e3dge.core.options import OptionError
from e3dge.encoders.irse import IRSE_DEPTHS, make_body, make_input_layer, stage_units
from e3dge.encoders.styles import GradualStyleBlock, upsample_add

__all__ = ["StyleSDFEncoderConfig", "StyleSDFEncoderOutput", "StyleSDFGlobalEncoder", "MAX_PARAMETERS"]

MAX_PARAMETERS = 1 << 29
"""Largest encoder a config may describe (~537 M values; the official one has 258.6 M)."""

_OFFICIAL_DECODER_SPATIALS = (128, 128, 128, 256, 256, 256, 256, 256, 256, 256)


def _is_pow2(n: int) -> bool:
    return n >= 1 and not n & (n - 1)


@dataclass(frozen=True)
class StyleSDFEncoderConfig:
    """Sizes of E0: :meth:`official` matches the released encoder; :meth:`tiny` is a test size with the same structure."""

    input_size: int = 256  # images are average-pooled to this side
    in_channels: int = 3
    stem_width: int = 64  # input_layer channels
    widths: tuple[int, ...] = (64, 128, 256, 512)  # IR-SE stage widths; the FPN works at widths[3]
    units: tuple[int, ...] = IRSE_DEPTHS[50]  # IR-SE units per stage (IR-SE50: 3, 4, 14, 3)
    renderer_ws: int = 9  # styles_pigan heads = rows of the renderer W+
    renderer_dim: int = 256  # renderer style width
    renderer_spatial: int = 128  # map size the pigan heads are built for (log2 -> stride-2 convs); they read p32
    decoder_dim: int = 512  # decoder style width
    decoder_spatials: tuple[int, ...] = _OFFICIAL_DECODER_SPATIALS  # one per styles_stylegan head; head 0 reads p128

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "units", tuple(int(u) for u in self.units))
        object.__setattr__(self, "decoder_spatials", tuple(int(s) for s in self.decoder_spatials))
        if len(self.widths) != 4 or len(self.units) != 4 or min(self.units) < 1:
            raise ValueError(
                f"widths and units need 4 stages (units >= 1), got widths={list(self.widths)}, units={list(self.units)}"
            )
        if self.input_size < 16 or not _is_pow2(self.input_size):
            raise ValueError(
                f"input_size must be a power of two >= 16 (the deepest map is input_size/16), got {self.input_size}"
            )
        if not self.decoder_spatials:
            raise ValueError("decoder_spatials needs at least one head (head 0 is the one used)")
        spatials = (self.renderer_spatial, *self.decoder_spatials)
        if any(s < 2 or not _is_pow2(s) for s in spatials):
            raise ValueError(
                f"head spatial sizes must be powers of two >= 2, got renderer {self.renderer_spatial}, decoder {list(self.decoder_spatials)}"
            )
        if self.renderer_spatial < self.p32_size:
            raise ValueError(
                f"renderer_spatial ({self.renderer_spatial}) must be >= the p32 map side ({self.p32_size}) to reduce it to 1x1"
            )
        if self.decoder_spatials[0] < self.p128_size:
            raise ValueError(
                f"decoder_spatials[0] ({self.decoder_spatials[0]}) must be >= the p128 map side ({self.p128_size})"
            )

    @property
    def p32_size(self) -> int:
        """Side of the map the renderer heads read (32 at 256 px input)."""
        return self.input_size // 8

    @property
    def p128_size(self) -> int:
        """Side of the map decoder head 0 reads (128 at 256 px input)."""
        return self.input_size // 2

    @property
    def decoder_ws(self) -> int:
        """Rows of the decoder W+ (one per stored head; all equal to head 0's output)."""
        return len(self.decoder_spatials)

    @classmethod
    def official(cls) -> StyleSDFEncoderConfig:
        """The released HybridGradualStyleEncoder_V2(50, 'ir_se') sizes (709 keys, 258.6 M values)."""
        return cls()

    @classmethod
    def tiny(cls) -> StyleSDFEncoderConfig:
        """32 px input, 4-16 channels, one unit per stage, 9 + 10 heads: about 25 k values, for tests."""
        return cls(
            input_size=32,
            stem_width=4,
            widths=(4, 8, 8, 16),
            units=(1, 1, 1, 1),
            renderer_dim=4,
            renderer_spatial=16,
            decoder_dim=4,
            decoder_spatials=(16, 16, 16, 32, 32, 32, 32, 32, 32, 32),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly constructor kwargs of :class:`StyleSDFGlobalEncoder`."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def build(self) -> StyleSDFGlobalEncoder:
        """A randomly initialised E0 of these sizes."""
        return StyleSDFGlobalEncoder(**self.to_dict())


@dataclass
class StyleSDFEncoderOutput:
    """What E0 predicts for a batch of B images (offsets only: the caller adds the mean latents)."""

    renderer_offsets: torch.Tensor  # [B, renderer_ws, renderer_dim]: renderer W+ offsets (9 x 256)
    decoder_offsets: torch.Tensor | None  # [B, decoder_ws, decoder_dim]: head 0 repeated (10 x 512); None if not asked
    features: dict[str, torch.Tensor] = field(default_factory=dict)  # c128, c64, c32, c16, p32, p64 (, p128)


class _StyleHead(GradualStyleBlock):
    """GradualStyleBlock that also accepts maps smaller than its nominal ``spatial`` (extra convs then run on 1x1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        if x.shape[-2:] != (1, 1):
            raise ValueError(
                f"style head for {self.spatial}px maps left a {list(x.shape[-2:])} map; its input is too large"
            )
        return self.linear(x.reshape(x.shape[0], self.out_channels))


class StyleSDFGlobalEncoder(PretrainedMixin, nn.Module):
    """E0 (official ``HybridGradualStyleEncoder_V2``): image in [-1, 1] -> :class:`StyleSDFEncoderOutput`."""

    CONFIG_SPEC = {
        "input_size": IntField(16, 1024, power_of_two=True),
        "in_channels": IntField(1, 16),
        "stem_width": IntField(1, 1024),
        "widths": ListField(IntField(1, 2048), 4, 4),
        "units": ListField(IntField(1, 64), 4, 4),
        "renderer_ws": IntField(1, 64),
        "renderer_dim": IntField(1, 2048),
        "renderer_spatial": IntField(2, 2048, power_of_two=True),
        "decoder_dim": IntField(1, 2048),
        "decoder_spatials": ListField(IntField(2, 2048, power_of_two=True), 1, 64),
    }
    """Accepted config values; :meth:`validate_config` also checks the combination and the size (:data:`MAX_PARAMETERS`)."""

    def __init__(
        self,
        input_size: int = 256,
        in_channels: int = 3,
        stem_width: int = 64,
        widths: tuple[int, ...] | list[int] = (64, 128, 256, 512),
        units: tuple[int, ...] | list[int] = IRSE_DEPTHS[50],
        renderer_ws: int = 9,
        renderer_dim: int = 256,
        renderer_spatial: int = 128,
        decoder_dim: int = 512,
        decoder_spatials: tuple[int, ...] | list[int] = _OFFICIAL_DECODER_SPATIALS,
    ) -> None:
        super().__init__()
        sizes = StyleSDFEncoderConfig(
            input_size,
            in_channels,
            stem_width,
            tuple(widths),
            tuple(units),
            renderer_ws,
            renderer_dim,
            renderer_spatial,
            decoder_dim,
            tuple(decoder_spatials),
        )  # the config checks them
        self.sizes = sizes
        self.config: dict[str, Any] = sizes.to_dict()
        w = sizes.widths
        self.input_layer = make_input_layer(in_channels, stem_width)
        self.body = make_body(stage_units(stem_width, w, sizes.units), use_se=True)
        ends = [sum(sizes.units[: i + 1]) - 1 for i in range(4)]  # IR-SE50: 2, 6, 20, 23
        self.taps = {ends[0]: "c128", ends[1]: "c64", ends[2]: "c32", ends[3]: "c16"}
        fpn = w[3]
        self.styles_pigan = nn.ModuleList(_StyleHead(fpn, renderer_dim, renderer_spatial) for _ in range(renderer_ws))
        self.styles_stylegan = nn.ModuleList(_StyleHead(fpn, decoder_dim, s) for s in sizes.decoder_spatials)
        self.latlayer64 = nn.Conv2d(w[0], fpn, kernel_size=1)  # c128 -> p128
        self.latlayer128 = nn.Conv2d(w[1], fpn, kernel_size=1)  # c64 -> p64
        self.latlayer256 = nn.Conv2d(w[2], fpn, kernel_size=1)  # c32 -> p32

    @classmethod
    def validate_config(cls, config: Any, where: str = "") -> dict[str, Any]:
        """Check keys, types, ranges, their combination and the total size (on the meta device: nothing is allocated)."""
        config = super().validate_config(config, where)
        prefix = f"{where}: " if where else ""
        try:
            with torch.device("meta"):
                n = sum(p.numel() for p in cls(**config).parameters())
        except ValueError as err:
            raise OptionError(f"{prefix}{err}") from None
        if n > MAX_PARAMETERS:
            raise OptionError(
                f"{prefix}this encoder would have {n / 1e6:.0f} M parameters, more than the {MAX_PARAMETERS / 1e6:.0f} M e3dge accepts"
            )
        return config

    def _check(self, x: Any) -> None:
        c = self.sizes.in_channels
        if (
            not isinstance(x, torch.Tensor)
            or x.ndim != 4
            or x.shape[1] != c
            or x.shape[0] == 0
            or min(x.shape[-2:]) == 0
        ):
            shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(
                f"StyleSDFGlobalEncoder expects images [B, {c}, H, W] in [-1, 1] with B, H, W >= 1, got {shape}"
            )

    def forward(self, x: torch.Tensor, decoder: bool = True) -> StyleSDFEncoderOutput:
        """Offsets for images ``[B, C, H, W]`` (average-pooled to ``input_size``); ``decoder=False`` skips p128 and head 0."""
        self._check(x)
        s = self.sizes.input_size
        if tuple(x.shape[-2:]) != (s, s):
            x = F.adaptive_avg_pool2d(x, (s, s))
        h = self.input_layer(x)
        feats: dict[str, torch.Tensor] = {}
        for i, unit in enumerate(self.body):
            h = unit(h)
            if i in self.taps:
                feats[self.taps[i]] = h
        p32 = upsample_add(feats["c16"], self.latlayer256(feats["c32"]))
        p64 = upsample_add(p32, self.latlayer128(feats["c64"]))
        feats.update(p32=p32, p64=p64)
        renderer = torch.stack([head(p32) for head in self.styles_pigan], dim=1)
        decoder_offsets = None
        if decoder:
            p128 = upsample_add(p64, self.latlayer64(feats["c128"]))
            feats["p128"] = p128
            decoder_offsets = self.styles_stylegan[0](p128).unsqueeze(1).repeat(1, self.sizes.decoder_ws, 1)
        return StyleSDFEncoderOutput(renderer_offsets=renderer, decoder_offsets=decoder_offsets, features=feats)

    def extra_repr(self) -> str:
        c = self.sizes
        return f"input_size={c.input_size}, units={list(c.units)}, renderer={c.renderer_ws}x{c.renderer_dim}, decoder={c.decoder_ws}x{c.decoder_dim}"
