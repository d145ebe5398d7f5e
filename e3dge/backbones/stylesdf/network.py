"""StyleSDF generator (Or-El et al., CVPR 2022) in plain PyTorch, with the official ``g_ema`` parameter names.

``z [N, 256]`` -> ``style`` (3 plain linears + leaky ReLU) -> renderer latent -> a FiLM-SIREN SDF network
queried at 24 fixed depths per ray of a 64^2 OpenGL camera on the unit sphere -> thumbnail, 256-channel
feature map, depth, surface points -> a StyleGAN2 decoder (its own mapping ``decoder.style``) to 1024^2.

Latents: the renderer takes ``[N, 256]`` (one w for every layer, StyleSDF) or ``W+ [N, depth + 1, 256]``
(row ``i`` for SIREN layer ``i``, the last row for the view layer: E3DGE's encoder output). The decoder takes
``W+ [N, num_decoder_ws, 512]``. Noise ``const`` uses the stored ``decoder.noises`` buffers (reproducible);
StyleSDF and E3DGE draw it at random per call (``noise_mode="random"``).
Names and shapes: ../shared notes ``e3dge-official-state-dicts.txt`` (``stylesdf_g_ema``, ``stylesdf_vol``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.backbones.ops import setup_filter, upfirdn2d
from e3dge.backbones.output import GeneratorOutput
from e3dge.core.cameras import STYLESDF_DIST_RADIUS, STYLESDF_HALF_FOV, SphereCamera, sphere_camera
from e3dge.core.hub import BoolField, IntField, NumberField, PretrainedMixin
from e3dge.core.precision import full_precision
from e3dge.rendering.volume import RaySamples, composite_samples, pinhole_rays, sample_fixed_depths, sdf_density

__all__ = [
    "StyleSDFGenerator",
    "StyleSDFMeanLatents",
    "StyleSDFLatents",
    "SirenTrunk",
    "VolumeRender",
    "SDFQuery",
    "TextureHook",
    "stylesdf_config",
]

NOISE_MODES = ("const", "random", "none")

TextureHook = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``hook(h [N, M, width], world points [N, M, 3]) -> h'``: modulates the SIREN output on the texture path only."""


def stylesdf_config(name: str) -> dict:
    """Constructor kwargs of a named size: ``ffhq1024`` (the released model), ``ffhq-vol`` (its volume renderer) or ``tiny``."""
    if name == "ffhq1024":
        return dict(size=1024)
    if name == "ffhq-vol":
        return dict(size=1024, full_pipeline=False)
    if name == "tiny":
        return dict(size=32, style_dim=16, depth=3, width=16, n_samples=6, renderer_resolution=8, channel_max=16)
    raise ValueError(f"unknown StyleSDF config {name!r}; choose 'ffhq1024', 'ffhq-vol' or 'tiny'")


@dataclass
class StyleSDFLatents:
    """Mapped latents: the renderer's ``w`` and the decoder's ``w`` (``decoder.style`` of the renderer's)."""

    renderer: torch.Tensor  # [N, style_dim] or [N, depth + 1, style_dim]
    decoder: torch.Tensor  # [N, 2 * style_dim] or [N, num_decoder_ws, 2 * style_dim]


@dataclass(frozen=True)
class SirenTrunk:
    """The SIREN's geometry at a view's samples: last hidden layer and SDF (they do not depend on the texture path)."""

    h: torch.Tensor  # [N, M, width]
    sdf: torch.Tensor  # [N, M, 1]


@dataclass
class VolumeRender:
    """What the volume renderer produces at ``renderer_resolution`` (images channel-first)."""

    rgb: torch.Tensor  # [N, 3, r, r] thumbnail in [-1, 1]
    features: torch.Tensor  # [N, width, r, r] the decoder's input
    depth: torch.Tensor  # [N, 1, r, r] sum of weights x camera-space depth (E3DGE's depth)
    xyz: torch.Tensor  # [N, 3, r, r] sum of weights x world points (the surface)
    opacity: torch.Tensor  # [N, 1, r, r] 1 - background weight
    sdf: torch.Tensor  # [N, r, r, D, 1] at every sample
    points: torch.Tensor  # [N, r, r, D, 3] world sample points
    trunk: SirenTrunk | None = (
        None  # the geometry layers' output at the samples (keep_trunk=True), to re-texture the view
    )


@dataclass
class SDFQuery:
    """Signed distance (and optionally unit normals) at arbitrary world points."""

    sdf: torch.Tensor  # [N, M, 1]
    rgb: torch.Tensor  # [N, M, 3] colour logits for a frontal view direction
    features: torch.Tensor  # [N, M, width] view-layer features
    normals: torch.Tensor | None = None  # [N, M, 3] = normalised grad sdf


# ------------------------------------------------------------------------------------------------ renderer
class MappingLinear(nn.Module):
    """A plain linear layer followed by ``leaky_relu(x + b, 0.2)`` (gain 1): StyleSDF's renderer mapping."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(nn.init.kaiming_normal_(torch.empty(dim, dim), a=0.2, nonlinearity="leaky_relu"))
        self.bias = nn.Parameter(torch.empty(dim).uniform_(-(dim**-0.5), dim**-0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(F.linear(x, self.weight) + self.bias, 0.2)


class SirenLinear(nn.Module):
    """``scale * (W x + b) + offset``: the FiLM generators (gamma: 15, 30; beta: 0.25, 0) and the output heads."""

    def __init__(self, in_dim: int, out_dim: int, scale: float = 1.0, offset: float = 0.0, small_init: bool = False):
        super().__init__()
        bound = math.sqrt(6 / in_dim) / 25 if small_init else math.sqrt(2 / in_dim)
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_dim).uniform_(-(in_dim**-0.5), in_dim**-0.5))
        self.scale, self.offset = scale, offset

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight, self.bias)
        return out * self.scale + self.offset if (self.scale != 1 or self.offset != 0) else out


class FiLMSiren(nn.Module):
    """``sin(gamma(w) * (W x + b) + beta(w))`` with ``gamma = 15 (.) + 30``, ``beta = 0.25 (.)`` per sample."""

    def __init__(self, in_dim: int, out_dim: int, style_dim: int, first: bool = False):
        super().__init__()
        bound = 1 / 3 if first else math.sqrt(6 / in_dim) / 25
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_dim).uniform_(-(in_dim**-0.5), in_dim**-0.5))
        self.gamma = SirenLinear(style_dim, out_dim, scale=15.0, offset=30.0)
        self.beta = SirenLinear(style_dim, out_dim, scale=0.25)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``x [N, M, in]``, ``w [N, style_dim]`` -> ``[N, M, out]``.

        gamma and beta are folded into each sample's weight and bias, so the ``[N, M, out]`` activations are
        written once by one batched matmul (not three passes), and the sine runs in place when no gradient is taken.
        Always float32, also under autocast: gamma is about 30, so a bfloat16 phase would be off by a tenth of a radian.
        """
        dtype = torch.promote_types(self.weight.dtype, torch.float32)  # float32, or float64 for a double model
        with full_precision(x.device):
            gamma, beta = self.gamma(w.to(dtype)), self.beta(w.to(dtype))  # [N, out]
            weight = gamma[:, None, :] * self.weight.t().to(dtype)  # [N, in, out]
            bias = (gamma * self.bias.to(dtype) + beta)[:, None]  # [N, 1, out]
            out = torch.baddbmm(bias, x.to(dtype), weight)
        return torch.sin(out) if out.requires_grad else out.sin_()


class SirenNetwork(nn.Module):
    """SDF + colour field: ``depth`` FiLM-SIREN layers on points, one view layer, linear rgb and sdf heads."""

    def __init__(self, depth: int, width: int, style_dim: int):
        super().__init__()
        self.pts_linears = nn.ModuleList(
            [FiLMSiren(3, width, style_dim, first=True)]
            + [FiLMSiren(width, width, style_dim) for _ in range(depth - 1)]
        )
        self.views_linears = FiLMSiren(width + 3, width, style_dim)
        self.rgb_linear = SirenLinear(width, 3, small_init=True)
        self.sigma_linear = SirenLinear(width, 1, small_init=True)

    def trunk(self, x: torch.Tensor, ws: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(h, sdf)``: the last hidden layer and the SDF at normalised points ``x [N, M, 3]`` (geometry; the costly part)."""
        h = x
        for i, layer in enumerate(self.pts_linears):
            h = layer(h, ws[:, i])
        return h, self.sigma_linear(h)

    def texture(
        self,
        h: torch.Tensor,
        view_dirs: torch.Tensor,
        ws: torch.Tensor,
        texture_hook: TextureHook | None = None,
        world: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(rgb logits, features)`` from the trunk's ``h``; ``texture_hook`` may modulate ``h`` first (E3DGE's local branch)."""
        if texture_hook is not None:
            h = texture_hook(h, world)
        features = self.views_linears(torch.cat([h, view_dirs], dim=-1), ws[:, -1])
        return self.rgb_linear(features), features

    def forward(
        self,
        x: torch.Tensor,
        view_dirs: torch.Tensor,
        ws: torch.Tensor,
        texture_hook: TextureHook | None = None,
        world: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rgb logits, sdf, features)`` at normalised points ``x [N, M, 3]``; ``ws [N, depth + 1, style_dim]``."""
        h, sdf = self.trunk(x, ws)
        rgb, features = self.texture(h, view_dirs, ws, texture_hook, world if world is not None else x)
        return rgb, sdf, features


class VolumeRenderer(nn.Module):
    """``renderer.*``: the learnt SDF sharpness ``sigmoid_beta`` and the SIREN network."""

    def __init__(self, depth: int, width: int, style_dim: int):
        super().__init__()
        self.sigmoid_beta = nn.Parameter(torch.full((1,), 0.1))
        self.network = SirenNetwork(depth, width, style_dim)


# ------------------------------------------------------------------------------------------------ decoder
class EqualLinear(nn.Module):
    """StyleGAN2 equalised linear: weight stored ``/ lr_mul`` and used ``x lr_mul / sqrt(in)``; optional fused lrelu (gain sqrt 2)."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0, bias_init: float = 0.0, activate: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale, self.lr_mul, self.activate = lr_mul / math.sqrt(in_dim), lr_mul, activate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.activate:
            return F.leaky_relu(F.linear(x, self.weight * self.scale) + self.bias * self.lr_mul, 0.2) * math.sqrt(2)
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class PixelNorm(nn.Module):
    """Unit root-mean-square along channels (no parameters: ``decoder.style.0``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class FilterKernel(nn.Module):
    """Holds a stored FIR kernel buffer (``blur.kernel`` / ``upsample.kernel``) and its padding."""

    def __init__(self, pad: tuple[int, int], up: int = 1):
        super().__init__()
        self.register_buffer("kernel", setup_filter((1, 3, 3, 1)) * 4)
        self.pad, self.up = pad, up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p0, p1 = self.pad
        return upfirdn2d(x, self.kernel, up=self.up, padding=(p0, p1, p0, p1))


class ModulatedConv(nn.Module):
    """Modulated (and demodulated) conv; ``upsample``: stride-2 transposed conv then the stored blur (pad 1, 1)."""

    def __init__(
        self, in_ch: int, out_ch: int, kernel: int, style_dim: int, demodulate: bool = True, upsample: bool = False
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel, kernel))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        if upsample:
            self.blur = FilterKernel((1, 1))
        self.scale, self.demodulate, self.upsample, self.padding = (
            1 / math.sqrt(in_ch * kernel**2),
            demodulate,
            upsample,
            kernel // 2,
        )

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, in_ch, h, wd = x.shape
        _, out_ch, _, k, _ = self.weight.shape
        weight = self.scale * self.weight * self.modulation(w).view(n, 1, in_ch, 1, 1)
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum([2, 3, 4]) + 1e-8).view(n, out_ch, 1, 1, 1)
        if k == 1 and not self.upsample:  # a per-pixel matmul (ToRGB): far cheaper than oneDNN's 1x1 conv at 1024^2
            pixels = (
                x.permute(0, 2, 3, 1).reshape(n, h * wd, in_ch).transpose(1, 2)
            )  # [n, in, HW], a view when channels-last
            out = torch.bmm(weight.view(n, out_ch, in_ch).to(pixels.dtype), pixels)
            return out.view(n, out_ch, h, wd)
        x = x.reshape(1, n * in_ch, h, wd)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(n * in_ch, out_ch, k, k)
            out = F.conv_transpose2d(x, weight, stride=2, groups=n)
            return self.blur(out.view(n, out_ch, *out.shape[2:]))
        out = F.conv2d(x, weight.reshape(n * out_ch, in_ch, k, k), padding=self.padding, groups=n)
        return out.view(n, out_ch, *out.shape[2:])


class NoiseInjection(nn.Module):
    """``x + weight * noise`` (``weight`` learnt, initialised at 0)."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            return x
        return x + self.weight * noise if torch.is_grad_enabled() else x.addcmul_(self.weight.to(x.dtype), noise)


class FusedLeakyReLU(nn.Module):
    """``leaky_relu(x + bias, 0.2) * sqrt(2)`` with a per-channel bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias.view(1, -1, 1, 1).to(x.dtype)
        if torch.is_grad_enabled():
            return F.leaky_relu(x + bias, 0.2) * math.sqrt(2)
        return F.leaky_relu_(x.add_(bias), 0.2).mul_(math.sqrt(2))  # inference: one buffer, no copies


class StyledConv(nn.Module):
    """Modulated conv -> noise -> fused lrelu; ``bias [1, C, 1, 1]`` is stored by the official model but never used."""

    def __init__(self, in_ch: int, out_ch: int, style_dim: int, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv(in_ch, out_ch, 3, style_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.bias = nn.Parameter(torch.zeros(1, out_ch, 1, 1))
        self.activate = FusedLeakyReLU(out_ch)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """1x1 modulated conv (not demodulated) + bias, plus the 2x FIR-upsampled skip."""

    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = FilterKernel((2, 1), up=2)
        self.conv = ModulatedConv(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        if skip is not None:
            out = out + (self.upsample(skip) if hasattr(self, "upsample") else skip)
        return out


def decoder_channels(size: int, channel_multiplier: int, channel_max: int) -> dict[int, int]:
    """StyleGAN2 channel table (512 up to 32^2, then 256 m, 128 m, ... at 64^2, 128^2, ...), capped at ``channel_max``."""
    table = {4: 512, 8: 512, 16: 512, 32: 512} | {64 << i: (256 >> i) * channel_multiplier for i in range(6)}
    return {r: min(c, channel_max) for r, c in table.items() if r <= size}


class Decoder(nn.Module):
    """``decoder.*``: mapping (PixelNorm + 5 EqualLinear, lr 0.01) and the StyleGAN2 synthesis from the feature map."""

    def __init__(
        self,
        size: int,
        in_resolution: int,
        in_channels: int,
        style_dim: int,
        channel_multiplier: int,
        channel_max: int,
        lr_mapping: float,
    ):
        super().__init__()
        w_dim = 2 * style_dim
        self.style = nn.Sequential(
            PixelNorm(),
            EqualLinear(style_dim, w_dim, lr_mapping, activate=True),
            *[EqualLinear(w_dim, w_dim, lr_mapping, activate=True) for _ in range(4)],
        )
        channels = decoder_channels(size, channel_multiplier, channel_max)
        self.conv1 = StyledConv(in_channels, channels[in_resolution], w_dim)
        self.to_rgb1 = ToRGB(channels[in_resolution], w_dim, upsample=False)
        self.convs, self.to_rgbs, self.noises = nn.ModuleList(), nn.ModuleList(), nn.Module()
        steps = int(math.log2(size)) - int(math.log2(in_resolution))
        self.num_layers, self.num_ws = 2 * steps + 1, 2 * steps + 2
        for i in range(self.num_layers):
            res = in_resolution << ((i + 1) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        ch = channels[in_resolution]
        for j in range(steps):
            out_ch = channels[in_resolution << (j + 1)]
            self.convs.append(StyledConv(ch, out_ch, w_dim, upsample=True))
            self.convs.append(StyledConv(out_ch, out_ch, w_dim))
            self.to_rgbs.append(ToRGB(out_ch, w_dim))
            ch = out_ch

    def noise_maps(self, n: int, mode: str, generator: torch.Generator | None, device) -> list[torch.Tensor | None]:
        """Per-layer noise: the stored buffers (``const``), fresh normal maps (``random``) or none."""
        if mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {mode!r}")
        stored = [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]
        if mode == "const":
            return stored
        if mode == "none":
            return [None] * self.num_layers
        return [torch.randn(n, 1, *b.shape[2:], generator=generator).to(device) for b in stored]

    def forward(self, features: torch.Tensor, ws: torch.Tensor, noise: list[torch.Tensor | None]) -> torch.Tensor:
        """``features [N, C, r, r]``, ``ws [N, num_ws, 2 style_dim]`` -> image ``[N, 3, size, size]`` (the skip sum, no tanh)."""
        # channels-last: oneDNN's transposed convs and depthwise blurs run about twice as fast in that layout
        out = self.conv1(features.contiguous(memory_format=torch.channels_last), ws[:, 0], noise[0])
        skip = self.to_rgb1(out, ws[:, 1])
        i = 1
        for conv_up, conv, to_rgb, n1, n2 in zip(
            self.convs[::2], self.convs[1::2], self.to_rgbs, noise[1::2], noise[2::2]
        ):
            out = conv(conv_up(out, ws[:, i], n1), ws[:, i + 1], n2)
            skip = to_rgb(out, ws[:, i + 2], skip)
            i += 2
        return skip.contiguous()


# ------------------------------------------------------------------------------------------------ generator
class StyleSDFGenerator(PretrainedMixin, nn.Module):
    """StyleSDF: ``mapping(z)`` -> :class:`StyleSDFLatents`; ``synthesis(latents, camera)`` -> :class:`GeneratorOutput`."""

    CONFIG_SPEC = {
        "size": IntField(8, 2048, power_of_two=True),
        "style_dim": IntField(1, 1024),
        "channel_multiplier": IntField(1, 4),
        "channel_max": IntField(1, 512),
        "depth": IntField(1, 16),
        "width": IntField(1, 1024),
        "n_samples": IntField(2, 256),
        "renderer_resolution": IntField(4, 512, power_of_two=True),
        "half_fov_degrees": NumberField(0.1, 60.0),
        "dist_radius": NumberField(0.001, 0.9),
        "lr_mapping": NumberField(1e-6, 1.0),
        "full_pipeline": BoolField(),
    }
    """Accepted config values (caps a model at a few hundred M parameters; the released one has 10.8 M)."""

    def __init__(
        self,
        size: int = 1024,  # decoder output size
        style_dim: int = 256,  # z / renderer w size (the decoder's w is twice this)
        channel_multiplier: int = 2,
        channel_max: int = 512,  # caps decoder widths (tiny test models)
        depth: int = 8,  # FiLM-SIREN layers before the view layer
        width: int = 256,  # SIREN width = feature channels of the decoder input
        n_samples: int = 24,  # fixed-depth samples per ray
        renderer_resolution: int = 64,  # thumbnail / feature map size
        half_fov_degrees: float = STYLESDF_HALF_FOV,
        dist_radius: float = STYLESDF_DIST_RADIUS,  # near / far = 1 -+ dist_radius; points are scaled by 1 / dist_radius
        lr_mapping: float = 0.01,  # decoder mapping lr multiplier (its weights are stored / lr_mapping)
        full_pipeline: bool = True,  # False: the volume renderer only (ffhq_vol_renderer.pt)
    ):
        super().__init__()
        if full_pipeline and size < renderer_resolution:
            raise ValueError(f"size ({size}) must be >= renderer_resolution ({renderer_resolution})")
        self.config = dict(
            size=size,
            style_dim=style_dim,
            channel_multiplier=channel_multiplier,
            channel_max=channel_max,
            depth=depth,
            width=width,
            n_samples=n_samples,
            renderer_resolution=renderer_resolution,
            half_fov_degrees=half_fov_degrees,
            dist_radius=dist_radius,
            lr_mapping=lr_mapping,
            full_pipeline=full_pipeline,
        )
        self.size, self.style_dim, self.n_samples, self.renderer_resolution = (
            size,
            style_dim,
            n_samples,
            renderer_resolution,
        )
        self.half_fov_degrees, self.dist_radius, self.full_pipeline = half_fov_degrees, dist_radius, full_pipeline
        self.img_resolution = size if full_pipeline else renderer_resolution
        self.style = nn.Sequential(*[MappingLinear(style_dim) for _ in range(3)])
        self.renderer = VolumeRenderer(depth, width, style_dim)
        if full_pipeline:
            self.decoder = Decoder(
                size, renderer_resolution, width, style_dim, channel_multiplier, channel_max, lr_mapping
            )

    @property
    def num_renderer_ws(self) -> int:
        """Rows of the renderer W+: one per SIREN layer plus the view layer (9 for the released model)."""
        return len(self.renderer.network.pts_linears) + 1

    @property
    def num_decoder_ws(self) -> int:
        """Rows of the decoder W+ (10 for 64 -> 1024)."""
        return self.decoder.num_ws if self.full_pipeline else 0

    def camera(self, azimuth, elevation, resolution: int | None = None) -> SphereCamera:
        """This model's cameras at azimuth / elevation (radians) for the volume renderer's resolution."""
        return sphere_camera(
            azimuth,
            elevation,
            resolution or self.renderer_resolution,
            self.half_fov_degrees,
            self.dist_radius,
            device=self.renderer.sigmoid_beta.device,
        )

    # ---------------------------------------------------------------- latents
    def mapping(self, z: torch.Tensor, truncation: float = 1.0, mean: StyleSDFLatents | None = None) -> StyleSDFLatents:
        """``z [N, style_dim]`` -> renderer and decoder ``w``, each truncated towards ``mean`` (StyleSDF's order)."""
        w = self.style(z)
        if truncation < 1:
            if mean is None:
                raise ValueError("truncation < 1 needs the mean latents (mean_latents())")
            w = mean.renderer + truncation * (w - mean.renderer)
        wd = self.decoder.style(w) if self.full_pipeline else w.new_zeros(w.shape[0], 0)
        if truncation < 1 and self.full_pipeline:
            wd = mean.decoder + truncation * (wd - mean.decoder)
        return StyleSDFLatents(w, wd)

    @torch.no_grad()
    def mean_latents(self, num_samples: int = 10000, seed: int = 0, batch: int = 2000) -> StyleSDFLatents:
        """Means of ``style(z)`` and of ``decoder.style(style(z))`` over the same normal ``z`` (StyleSDF's ``mean_latent``)."""
        gen = torch.Generator().manual_seed(seed)
        dev = self.renderer.sigmoid_beta.device
        sums = [torch.zeros(self.style_dim, dtype=torch.float64), torch.zeros(2 * self.style_dim, dtype=torch.float64)]
        done = 0
        while done < num_samples:
            n = min(batch, num_samples - done)
            w = self.style(torch.randn(n, self.style_dim, generator=gen).to(dev))
            sums[0] += w.double().sum(0).cpu()
            if self.full_pipeline:
                sums[1] += self.decoder.style(w).double().sum(0).cpu()
            done += n
        return StyleSDFLatents(
            (sums[0] / num_samples).float()[None].to(dev), (sums[1] / num_samples).float()[None].to(dev)
        )

    def renderer_plus(self, w: torch.Tensor) -> torch.Tensor:
        """``[N, style_dim]`` or ``[N, rows, style_dim]`` -> the renderer W+ ``[N, depth + 1, style_dim]``."""
        rows = self.num_renderer_ws
        if w.ndim == 2:
            return w[:, None].expand(-1, rows, -1)
        if w.ndim != 3 or w.shape[1:] != (rows, self.style_dim):
            raise ValueError(
                f"renderer latent must be [N, {self.style_dim}] or [N, {rows}, {self.style_dim}], got {list(w.shape)}"
            )
        return w

    def decoder_plus(self, w: torch.Tensor) -> torch.Tensor:
        """``[N, 2 style_dim]`` or ``[N, rows, 2 style_dim]`` -> the decoder W+ ``[N, num_decoder_ws, 2 style_dim]``."""
        rows, dim = self.num_decoder_ws, 2 * self.style_dim
        if w.ndim == 2:
            return w[:, None].expand(-1, rows, -1)
        if w.ndim != 3 or w.shape[1:] != (rows, dim):
            raise ValueError(f"decoder latent must be [N, {dim}] or [N, {rows}, {dim}], got {list(w.shape)}")
        return w

    # ---------------------------------------------------------------- the field
    def _normalise(self, points: torch.Tensor) -> torch.Tensor:
        return points * (1.0 / self.dist_radius)  # StyleSDF: pts * 2 / (far - near)

    def sdf_at(self, w: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Signed distance ``[N, M, 1]`` at world ``points [N, M, 3]``: the geometry layers only, no colour."""
        return self.renderer.network.trunk(self._normalise(points), self.renderer_plus(w))[1]

    def query_sdf(
        self, w: torch.Tensor, points: torch.Tensor, normals: bool = False, texture_hook: TextureHook | None = None
    ) -> SDFQuery:
        """SDF, colour logits and features at world ``points [N, M, 3]`` (viewed from the front); optional normals."""
        ws = self.renderer_plus(w)
        view = torch.zeros_like(points)
        view[..., 2] = -1.0
        net = self.renderer.network
        if not normals:
            rgb, sdf, feats = net(self._normalise(points), view, ws, texture_hook, points)
            return SDFQuery(sdf, rgb, feats)
        with torch.enable_grad():
            pts = points.detach().requires_grad_(True)
            rgb, sdf, feats = net(self._normalise(pts), view, ws, texture_hook, pts)
            (grad,) = torch.autograd.grad(sdf.sum(), pts)
        return SDFQuery(sdf.detach(), rgb.detach(), feats.detach(), F.normalize(grad, dim=-1))

    def render_volume(
        self,
        w: torch.Tensor,
        camera: SphereCamera,
        texture_hook: TextureHook | None = None,
        chunk_rays: int | None = None,
        keep_trunk: bool = False,
        trunk: SirenTrunk | None = None,
    ) -> VolumeRender:
        """Volume-render the renderer latent from ``camera`` (inference mode: no jitter, static view dirs, forced background).

        ``keep_trunk`` returns the SIREN trunk's output; passing it back as ``trunk`` (same latent and camera) skips the
        geometry layers, so a second, re-textured render of the view costs only the texture layer (results are identical).
        """
        ws = self.renderer_plus(w)
        n, res = ws.shape[0], camera.resolution
        if (keep_trunk or trunk is not None) and chunk_rays is not None:
            raise ValueError("keep_trunk / trunk need the whole view in one chunk (chunk_rays=None)")
        if trunk is not None and tuple(trunk.h.shape[:2]) != (n, res * res * self.n_samples):
            raise ValueError(
                f"trunk must hold [N, {res * res * self.n_samples}, width] from the same view, got {list(trunk.h.shape)}"
            )
        if len(camera) != n:
            raise ValueError(f"{len(camera)} cameras for {n} latents; give one camera per latent")
        origins, directions, cam_dirs = pinhole_rays(camera.cam2world.to(ws), camera.focal.to(ws), res)
        views = F.normalize(cam_dirs, dim=-1)
        depths = sample_fixed_depths(camera.near.to(ws), camera.far.to(ws), res * res, self.n_samples)
        beta = self.renderer.sigmoid_beta
        step = res * res if chunk_rays is None else max(1, int(chunk_rays))
        parts = []
        for s in range(0, res * res, step):
            samples = RaySamples(origins[:, s : s + step], directions[:, s : s + step], depths[:, s : s + step])
            pts = samples.points  # [N, R, D, 3]
            r, d = pts.shape[1], pts.shape[2]
            flat = pts.reshape(n, r * d, 3)
            view = views[:, s : s + step, None].expand(-1, -1, d, -1).reshape(n, r * d, 3)
            net = self.renderer.network
            h, sdf = (trunk.h, trunk.sdf) if trunk is not None else net.trunk(self._normalise(flat), ws)
            kept = SirenTrunk(h, sdf) if keep_trunk else None
            rgb, feats = net.texture(h, view, ws, texture_hook, flat)
            sdf = sdf.reshape(n, r, d, 1)
            values = torch.cat([torch.sigmoid(rgb), feats, flat], dim=-1).reshape(n, r, d, -1)
            comp = composite_samples(values, sdf, samples, lambda x: sdf_density(x, beta), force_background=True)
            parts.append((comp.values, comp.depth, 1 - comp.weights[:, :, -1], sdf, pts))
        values, depth, opacity, sdf, pts = (torch.cat(p, dim=1) for p in zip(*parts))

        def image(x: torch.Tensor) -> torch.Tensor:
            return x.permute(0, 2, 1).reshape(n, -1, res, res)

        width = values.shape[-1] - 6
        return VolumeRender(
            rgb=image(values[..., :3]) * 2 - 1,
            features=image(values[..., 3 : 3 + width]),
            depth=image(depth),
            xyz=image(values[..., 3 + width :]),
            opacity=image(opacity),
            sdf=sdf.reshape(n, res, res, -1, 1),
            points=pts.reshape(n, res, res, -1, 3),
            trunk=kept,
        )

    def decode(
        self,
        features: torch.Tensor,
        decoder_w: torch.Tensor,
        noise_mode: str = "const",
        generator: torch.Generator | None = None,
        noise: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """The StyleGAN2 decoder: feature map + decoder W+ -> ``[N, 3, size, size]``; ``noise`` (one map per layer) overrides ``noise_mode``."""
        if not self.full_pipeline:
            raise ValueError(
                "this StyleSDF model is a volume renderer only (no decoder); convert ffhq1024x1024.pt for 1024 images"
            )
        ws = self.decoder_plus(decoder_w)
        if noise is not None and len(noise) != self.decoder.num_layers:
            raise ValueError(
                f"noise must hold {self.decoder.num_layers} maps (one per decoder layer), got {len(noise)}"
            )
        maps = (
            list(noise)
            if noise is not None
            else self.decoder.noise_maps(ws.shape[0], noise_mode, generator, features.device)
        )
        return self.decoder(features, ws, maps)

    def synthesis(
        self,
        latents: StyleSDFLatents,
        camera: SphereCamera,
        noise_mode: str = "const",
        generator: torch.Generator | None = None,
        texture_hook: TextureHook | None = None,
        decode: bool = True,  # False: ``image`` is the thumbnail upsampled (fast previews)
        chunk_rays: int | None = None,
        noise: list[torch.Tensor] | None = None,  # explicit decoder noise maps (overrides noise_mode)
        trunk: SirenTrunk | None = None,  # from render_volume(..., keep_trunk=True) of the same latent and camera
    ) -> GeneratorOutput:
        """Render ``latents`` from ``camera``: thumbnail, depth, opacity, features, world surface points and the decoded image."""
        vol = self.render_volume(latents.renderer, camera, texture_hook, chunk_rays, trunk=trunk)
        if decode and self.full_pipeline:
            image = self.decode(vol.features, latents.decoder, noise_mode, generator, noise)
        else:
            image = F.interpolate(
                vol.rgb, size=(self.img_resolution, self.img_resolution), mode="bilinear", align_corners=False
            )
        return GeneratorOutput(
            image=image,
            image_raw=vol.rgb,
            depth=vol.depth,
            mask=vol.opacity,
            features=vol.features,
            planes=None,
            xyz=vol.xyz,
        )

    def forward(
        self,
        z: torch.Tensor,
        camera: SphereCamera,
        truncation: float = 1.0,
        mean: StyleSDFLatents | None = None,
        **kwargs,
    ) -> GeneratorOutput:
        """``synthesis(mapping(z), camera)``."""
        return self.synthesis(self.mapping(z, truncation, mean), camera, **kwargs)

    def extra_repr(self) -> str:
        return (
            f"size={self.size}, style_dim={self.style_dim}, renderer_resolution={self.renderer_resolution}, n_samples={self.n_samples}, "
            f"full_pipeline={self.full_pipeline}"
        )


class StyleSDFMeanLatents(PretrainedMixin, nn.Module):
    """The fixed mean latents a bundle inverts around (E0 predicts offsets from them; truncation pulls towards them).

    The official code draws them afresh on each run (10k normal z on the GPU); a bundle stores one draw so
    every run, machine and user gets the same result.
    """

    CONFIG_SPEC = {
        "style_dim": IntField(1, 1024),
        "num_samples": IntField(1, 10_000_000),
        "seed": IntField(0, 2**63 - 1),
    }

    def __init__(self, style_dim: int = 256, num_samples: int = 10000, seed: int = 2):
        super().__init__()
        self.config = dict(style_dim=style_dim, num_samples=num_samples, seed=seed)
        self.register_buffer("renderer", torch.zeros(1, style_dim))
        self.register_buffer("decoder", torch.zeros(1, 2 * style_dim))

    @classmethod
    def estimate(cls, G: StyleSDFGenerator, num_samples: int = 10000, seed: int = 2) -> StyleSDFMeanLatents:
        """Means of ``num_samples`` mapped normal ``z`` drawn with ``seed``."""
        out = cls(G.style_dim, num_samples, seed)
        mean = G.mean_latents(num_samples, seed)
        out.renderer.copy_(mean.renderer.cpu())
        out.decoder.copy_(mean.decoder.cpu())
        return out

    @property
    def latents(self) -> StyleSDFLatents:
        return StyleSDFLatents(self.renderer, self.decoder)
