"""EG3D's super-resolution modules: neural-rendered features (32 ch) + RGB -> final image.

Two style-modulated blocks driven by the last w repeated; ``width`` (block0 channels, block1 gets
half) defaults to the official sizes and only shrinks for tiny test/toy models. The entry block keeps the size ("NoUp")
for 2X/4X and up-samples for 8XDC; names follow the official modules so weights load strictly.
With ``sr_num_fp16_res > 0`` the official blocks clamp conv outputs at +-256, also in fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.backbones.ops import setup_filter
from e3dge.backbones.stylegan2 import SynthesisBlock

__all__ = ["SuperResolution", "SuperresolutionHybrid2X", "SuperresolutionHybrid4X", "SuperresolutionHybrid8XDC", "SUPERRESOLUTION_MODULES"]


class SuperResolution(nn.Module):
    """Shared forward: resize the inputs to ``input_resolution`` if needed, then run ``block0``, ``block1``."""

    input_resolution: int

    def __init__(
        self,
        channels: int,  # feature channels from the renderer (32)
        img_resolution: int,
        sr_num_fp16_res: int,
        sr_antialias: bool,
        block0: tuple[int, int, int],  # (out_channels, resolution, up)
        block1: tuple[int, int],  # (out_channels, resolution)
        register_filter: bool,
        **block_kwargs,
    ):
        super().__init__()
        clamp = 256 if sr_num_fp16_res > 0 else None
        w_dim = block_kwargs.pop("w_dim", 512)
        self.sr_antialias = sr_antialias
        self.img_resolution = img_resolution
        block_kwargs = {k: v for k, v in block_kwargs.items() if k not in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp")}
        out0, res0, up0 = block0
        self.block0 = SynthesisBlock(channels, out0, w_dim, res0, 3, is_last=False, up=up0, conv_clamp=clamp, **block_kwargs)
        self.block1 = SynthesisBlock(out0, block1[0], w_dim, block1[1], 3, is_last=True, conv_clamp=clamp, **block_kwargs)
        if register_filter:
            self.register_buffer("resample_filter", setup_filter())

    def forward(
        self,
        rgb: torch.Tensor,  # [N, 3, r, r] raw image
        x: torch.Tensor,  # [N, 32, r, r] raw features
        ws: torch.Tensor,  # [N, num_ws, 512]; only the last row is used
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

    input_resolution = 64

    def __init__(
        self, channels: int, img_resolution: int, sr_num_fp16_res: int, sr_antialias: bool, width: int | None = None, **block_kwargs
    ):
        if img_resolution != 128:
            raise ValueError(f"SuperresolutionHybrid2X makes 128x128 images, got img_resolution={img_resolution}")
        width = width or 128
        super().__init__(channels, img_resolution, sr_num_fp16_res, sr_antialias, (width, 64, 1), (width // 2, 128), True, **block_kwargs)


class SuperresolutionHybrid4X(SuperResolution):
    """128 -> 256."""

    input_resolution = 128

    def __init__(
        self, channels: int, img_resolution: int, sr_num_fp16_res: int, sr_antialias: bool, width: int | None = None, **block_kwargs
    ):
        if img_resolution != 256:
            raise ValueError(f"SuperresolutionHybrid4X makes 256x256 images, got img_resolution={img_resolution}")
        width = width or 128
        super().__init__(channels, img_resolution, sr_num_fp16_res, sr_antialias, (width, 128, 1), (width // 2, 256), True, **block_kwargs)


class SuperresolutionHybrid8XDC(SuperResolution):
    """128 -> 512 with wider channels (FFHQ and AFHQ 512 models)."""

    input_resolution = 128

    def __init__(
        self, channels: int, img_resolution: int, sr_num_fp16_res: int, sr_antialias: bool, width: int | None = None, **block_kwargs
    ):
        if img_resolution != 512:
            raise ValueError(f"SuperresolutionHybrid8XDC makes 512x512 images, got img_resolution={img_resolution}")
        width = width or 256
        super().__init__(channels, img_resolution, sr_num_fp16_res, sr_antialias, (width, 256, 2), (width // 2, 512), False, **block_kwargs)


SUPERRESOLUTION_MODULES: dict[str, type[SuperResolution]] = {
    "training.superresolution.SuperresolutionHybrid2X": SuperresolutionHybrid2X,
    "training.superresolution.SuperresolutionHybrid4X": SuperresolutionHybrid4X,
    "training.superresolution.SuperresolutionHybrid8XDC": SuperresolutionHybrid8XDC,
}
"""Official ``rendering_kwargs['superresolution_module']`` names -> e3dge classes."""
