"""EG3D's super-resolution modules: neural-rendered features (32 ch) + RGB -> final image.

Two style-modulated blocks driven by the last w repeated; ``width`` (block0 channels, block1 gets
half) defaults to the official sizes and only shrinks for tiny test/toy models. The entry block keeps the size ("NoUp")
for 2X/4X and up-samples for 8XDC; names follow the official modules so weights load strictly.
With ``sr_num_fp16_res > 0`` the official blocks clamp conv outputs at +-256, also in fp32.

``rendering_kwargs['superresolution_module']`` names an e3dge class (``"SuperresolutionHybrid8XDC"``);
the official dotted names (``"training.superresolution.SuperresolutionHybrid8XDC"``) are translated by
:func:`superresolution_name`, the one place that knows them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.backbones.ops import setup_filter
from e3dge.backbones.stylegan2 import SynthesisBlock

__all__ = [
    "SuperResolution",
    "SuperresolutionHybrid2X",
    "SuperresolutionHybrid4X",
    "SuperresolutionHybrid8XDC",
    "SUPERRESOLUTION_MODULES",
    "OFFICIAL_SUPERRESOLUTION_NAMES",
    "superresolution_name",
]


class SuperResolution(nn.Module):
    """Resize the inputs to ``input_resolution`` if needed, then run ``block0`` and ``block1``.

    Subclasses only set the class attributes that distinguish the official variants.
    """

    input_resolution: int  # raw features are resized to this first
    output_resolution: int  # the module's image size (the generator's img_resolution)
    default_width: int  # block0 channels in the official module; block1 has half
    entry_up: int  # 1 = block0 keeps the size ("NoUp"), 2 = block0 up-samples
    has_filter_buffer: bool  # the official NoUp variants register a spare resample_filter

    def __init__(
        self,
        channels: int,  # feature channels from the renderer (32)
        img_resolution: int,
        sr_num_fp16_res: int,
        sr_antialias: bool,
        width: int | None = None,
        w_dim: int = 512,
        **block_kwargs,
    ):
        super().__init__()
        if img_resolution != self.output_resolution:
            raise ValueError(
                f"{type(self).__name__} makes {self.output_resolution}x{self.output_resolution} images, "
                f"got img_resolution={img_resolution}"
            )
        clamp = 256 if sr_num_fp16_res > 0 else None
        self.sr_antialias = sr_antialias
        self.img_resolution = img_resolution
        width = width or self.default_width
        res0 = self.input_resolution * self.entry_up
        block_kwargs = {
            k: v
            for k, v in block_kwargs.items()
            if k not in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp")
        }
        self.block0 = SynthesisBlock(
            channels, width, w_dim, res0, 3, is_last=False, up=self.entry_up, conv_clamp=clamp, **block_kwargs
        )
        self.block1 = SynthesisBlock(
            width, width // 2, w_dim, res0 * 2, 3, is_last=True, conv_clamp=clamp, **block_kwargs
        )
        if self.has_filter_buffer:
            self.register_buffer("resample_filter", setup_filter())

    def forward(
        self,
        rgb: torch.Tensor,  # [N, 3, r, r] raw image
        x: torch.Tensor,  # [N, 32, r, r] raw features
        ws: torch.Tensor,  # [N, num_ws, w_dim]; only the last row is used
        noise_mode: str = "none",
        generator: torch.Generator | None = None,
        **_unused,
    ) -> torch.Tensor:
        ws = ws[:, -1:, :].repeat(1, 3, 1)
        if x.shape[-1] != self.input_resolution:
            size = (self.input_resolution, self.input_resolution)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=self.sr_antialias)
        x, rgb = self.block0(x, rgb, ws, noise_mode=noise_mode, generator=generator)
        x, rgb = self.block1(x, rgb, ws, noise_mode=noise_mode, generator=generator)
        return rgb


class SuperresolutionHybrid2X(SuperResolution):
    """64 -> 128 (ShapeNet cars, tiny test configs)."""

    input_resolution, output_resolution, default_width, entry_up, has_filter_buffer = 64, 128, 128, 1, True


class SuperresolutionHybrid4X(SuperResolution):
    """128 -> 256."""

    input_resolution, output_resolution, default_width, entry_up, has_filter_buffer = 128, 256, 128, 1, True


class SuperresolutionHybrid8XDC(SuperResolution):
    """128 -> 512 with wider channels (FFHQ and AFHQ 512 models)."""

    input_resolution, output_resolution, default_width, entry_up, has_filter_buffer = 128, 512, 256, 2, False


SUPERRESOLUTION_MODULES: dict[str, type[SuperResolution]] = {
    cls.__name__: cls for cls in (SuperresolutionHybrid2X, SuperresolutionHybrid4X, SuperresolutionHybrid8XDC)
}
"""e3dge's ``rendering_kwargs['superresolution_module']`` names -> classes."""

OFFICIAL_SUPERRESOLUTION_NAMES: dict[str, str] = {
    f"training.superresolution.{name}": name for name in SUPERRESOLUTION_MODULES
}
"""Official EG3D dotted names (pickles; e3dge folders saved before the rename) -> e3dge names."""


def superresolution_name(name: str) -> str:
    """e3dge's name for a super-resolution module name, translating an official dotted name; others pass unchanged."""
    return OFFICIAL_SUPERRESOLUTION_NAMES.get(name, name) if isinstance(name, str) else name
