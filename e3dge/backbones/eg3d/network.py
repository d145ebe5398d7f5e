"""EG3D tri-plane generator (Chan et al., CVPR 2022) in plain PyTorch, weight-compatible with NVlabs/eg3d.

``TriPlaneGenerator`` = StyleGAN2 backbone (tri-planes) + OSG decoder + importance volume renderer
+ super-resolution. Official ``.pkl`` checkpoints load through :func:`load_official_pkl`, which never
executes code from the file; e3dge's own format is ``config.json`` + ``model.safetensors``
(:meth:`TriPlaneGenerator.from_pretrained` / :meth:`save_pretrained`, local folders or the Hub).

>>> G = TriPlaneGenerator(**eg3d_config("tiny"))
>>> from e3dge.core.cameras import frontal_label
>>> c = frontal_label()
>>> ws = G.mapping(torch.randn(1, G.z_dim), c)
>>> out = G.synthesis(ws, c, deterministic=True)
>>> tuple(out.image.shape), tuple(out.image_raw.shape), tuple(out.depth.shape)
((1, 3, 128, 128), (1, 3, 32, 32), (1, 1, 32, 32))
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from e3dge.backbones.eg3d.superresolution import (
    OFFICIAL_SUPERRESOLUTION_NAMES,
    SUPERRESOLUTION_MODULES,
    superresolution_name,
)
from e3dge.backbones.official_pickle import OfficialCheckpoint, UnreadablePickleError, read_official_pickle
from e3dge.backbones.output import GeneratorOutput, PointQuery
from e3dge.backbones.stylegan2 import FullyConnectedLayer, StyleGAN2Backbone
from e3dge.core.cameras import check_label, frontal_label
from e3dge.core.hub import (
    BoolField,
    ChoiceField,
    DictField,
    IntField,
    ListField,
    NumberField,
    PretrainedMixin,
    PretrainedSource,
    StrField,
    check_tensors,
    one_line,
    resolve_file,
    tensor_specs,
)
from e3dge.core.options import OptionError
from e3dge.rendering.volume import PLANE_PROJECTIONS, plane_axes, render_rays, sample_from_planes, sample_rays

__all__ = [
    "FFHQ_RENDERING_KWARGS",
    "eg3d_config",
    "CONFIG_NAMES",
    "OSGDecoder",
    "TriPlaneGenerator",
    "load_official_pkl",
    "official_config",
    "PRETRAINED_EG3D",
    "estimate_w_avg",
]

FeatureHook = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``hook(features [N, M, C], points [N, M, 3]) -> features``: modulates per-point features.

As ``feature_hook`` it acts on the aggregated tri-plane features before the decoder (geometry and
colour change); as ``colour_hook`` on the decoder's colour features only (density untouched: the
texture-path modulation of the official E3DGE local branch)."""

FFHQ_RENDERING_KWARGS: dict = {
    "image_resolution": 512,
    "disparity_space_sampling": False,
    "clamp_mode": "softplus",
    "superresolution_module": "SuperresolutionHybrid8XDC",
    "c_gen_conditioning_zero": False,
    "gpc_reg_prob": 0.5,
    "c_scale": 1.0,
    "superresolution_noise_mode": "none",
    "density_reg": 0.25,
    "density_reg_p_dist": 0.004,
    "reg_type": "l1",
    "decoder_lr_mul": 1.0,
    "sr_antialias": True,
    "depth_resolution": 48,
    "depth_resolution_importance": 48,
    "ray_start": 2.25,
    "ray_end": 3.3,
    "box_warp": 1,
    "avg_camera_radius": 2.7,
    "avg_camera_pivot": [0, 0, 0.2],
}
"""``rendering_kwargs`` of the official FFHQ 512 models (train.py, ``--cfg=ffhq``), with e3dge's module name."""


def _official_kwargs(
    img_resolution: int, rendering_kwargs: dict, neural_rendering_resolution: int, **overrides
) -> dict:
    kwargs = {
        "z_dim": 512,
        "w_dim": 512,
        "c_dim": 25,
        "img_resolution": img_resolution,
        "img_channels": 3,
        "sr_num_fp16_res": 4,
        "mapping_kwargs": {"num_layers": 2},
        "rendering_kwargs": rendering_kwargs,
        "sr_kwargs": {"channel_base": 32768, "channel_max": 512, "fused_modconv_default": "inference_only"},
        "channel_base": 32768,
        "channel_max": 512,
        "fused_modconv_default": "inference_only",
        "num_fp16_res": 0,
        "conv_clamp": None,
        "neural_rendering_resolution": neural_rendering_resolution,
    }
    kwargs.update(overrides)
    return kwargs


def eg3d_config(name: str) -> dict:
    """Constructor kwargs of a named configuration (official models, or ``tiny`` for tests).

    Names: ``ffhq512-128``, ``ffhq512-64``, ``afhq512-128``, ``shapenet128-64``, ``tiny``.
    """
    ffhq = dict(FFHQ_RENDERING_KWARGS)
    if name == "ffhq512-128":
        return _official_kwargs(512, ffhq, 128)
    if name == "ffhq512-64":
        return _official_kwargs(512, ffhq, 64)
    if name == "afhq512-128":
        return _official_kwargs(512, dict(ffhq, avg_camera_pivot=[0, 0, -0.06]), 128)
    if name == "shapenet128-64":
        shapenet = dict(
            ffhq,
            image_resolution=128,
            superresolution_module="SuperresolutionHybrid2X",
            depth_resolution=64,
            depth_resolution_importance=64,
            ray_start=0.1,
            ray_end=2.6,
            box_warp=1.6,
            white_back=True,
            avg_camera_radius=1.7,
            avg_camera_pivot=[0, 0, 0],
        )
        return _official_kwargs(128, shapenet, 64)
    if name == "tiny":
        tiny = dict(
            ffhq,
            image_resolution=128,
            superresolution_module="SuperresolutionHybrid2X",
            depth_resolution=6,
            depth_resolution_importance=6,
        )
        return _official_kwargs(
            128,
            tiny,
            32,
            z_dim=16,
            w_dim=16,
            channel_base=256,
            channel_max=16,
            plane_resolution=16,
            plane_channels=4,
            decoder_hidden=8,
            sr_kwargs={"width": 8},
        )
    raise ValueError(f"unknown EG3D config {name!r}; choose one of {CONFIG_NAMES}")


CONFIG_NAMES = ("ffhq512-128", "ffhq512-64", "afhq512-128", "shapenet128-64", "tiny")


class OSGDecoder(nn.Module):
    """Small MLP from aggregated tri-plane features to density + colour features (``decoder.net``)."""

    def __init__(self, n_features: int = 32, hidden_dim: int = 64, output_dim: int = 32, lr_multiplier: float = 1.0):
        super().__init__()
        self.net = nn.Sequential(
            FullyConnectedLayer(n_features, hidden_dim, lr_multiplier=lr_multiplier),
            nn.Softplus(),
            FullyConnectedLayer(hidden_dim, 1 + output_dim, lr_multiplier=lr_multiplier),
        )

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``features [N, M, C]`` -> ``(rgb [N, M, output_dim] in (-0.001, 1.001), sigma [N, M, 1])``."""
        n, m, c = features.shape
        x = self.net(features.reshape(n * m, c)).reshape(n, m, -1)
        rgb = torch.sigmoid(x[..., 1:]) * (1 + 2 * 0.001) - 0.001  # MipNeRF's widened sigmoid
        return rgb, x[..., 0:1]


_FUSED_MODCONV = ChoiceField((True, False, "inference_only"))

RENDERING_SPEC = {
    "image_resolution": IntField(16, 2048, power_of_two=True),
    "disparity_space_sampling": ChoiceField((False,)),  # e3dge samples linearly in depth, as all official models
    "clamp_mode": ChoiceField(("softplus",)),
    "superresolution_module": ChoiceField(tuple(SUPERRESOLUTION_MODULES) + tuple(OFFICIAL_SUPERRESOLUTION_NAMES)),
    "c_gen_conditioning_zero": BoolField(),
    "gpc_reg_prob": NumberField(0, 1, optional=True),
    "c_scale": NumberField(-1e3, 1e3),
    "superresolution_noise_mode": ChoiceField(("none", "const", "random")),
    "density_reg": NumberField(0, 1e6),
    "density_reg_p_dist": NumberField(0, 1e3),
    "reg_type": StrField(),
    "decoder_lr_mul": NumberField(1e-6, 1e3),
    "sr_antialias": BoolField(),
    "depth_resolution": IntField(1, 512),
    "depth_resolution_importance": IntField(0, 512),
    "ray_start": NumberField(0, 1e4),
    "ray_end": NumberField(0, 1e4),
    "box_warp": NumberField(1e-6, 1e4),
    "white_back": BoolField(),
    "avg_camera_radius": NumberField(1e-6, 1e4),
    "avg_camera_pivot": ListField(NumberField(-1e4, 1e4), 3, 3),
}
"""``rendering_kwargs`` keys e3dge reads or official snapshots carry, with the values it accepts."""

RENDERING_REQUIRED = (
    "superresolution_module",
    "sr_antialias",
    "superresolution_noise_mode",
    "box_warp",
    "ray_start",
    "ray_end",
    "depth_resolution",
)
"""``rendering_kwargs`` keys the renderer reads without a default."""

MAPPING_SPEC = {
    "num_layers": IntField(1, 16),
    "embed_features": IntField(1, 2048, optional=True),
    "layer_features": IntField(1, 2048, optional=True),
    "activation": ChoiceField(("lrelu", "linear")),
    "lr_multiplier": NumberField(1e-6, 1e3),
    "w_avg_beta": NumberField(0, 1, optional=True),
}
"""``mapping_kwargs`` of the StyleGAN2 mapping network."""

SR_SPEC = {
    "width": IntField(2, 1024, optional=True),  # block1 gets width // 2 channels
    "channel_base": IntField(1, 1 << 20),  # official kwargs the SR modules accept and ignore
    "channel_max": IntField(1, 4096),
    "num_fp16_res": IntField(0, 16),
    "conv_clamp": NumberField(0, 1e5, optional=True),
    "fused_modconv_default": _FUSED_MODCONV,
}
"""``sr_kwargs`` of the super-resolution module."""


class TriPlaneGenerator(PretrainedMixin, nn.Module):
    """EG3D generator: ``mapping(z, c) -> ws``; ``synthesis(ws, c) -> {image, image_raw, image_depth, ...}``."""

    CONFIG_SPEC = {
        "z_dim": IntField(1, 2048),
        "c_dim": ChoiceField((0, 25)),  # the 25-value camera label, or unconditional
        "w_dim": IntField(1, 2048),
        "img_resolution": IntField(16, 2048, power_of_two=True),
        "img_channels": ChoiceField((3,)),
        "sr_num_fp16_res": IntField(0, 16),
        "mapping_kwargs": DictField(MAPPING_SPEC),
        "rendering_kwargs": DictField(RENDERING_SPEC, required=RENDERING_REQUIRED),
        "sr_kwargs": DictField(SR_SPEC),
        "neural_rendering_resolution": IntField(4, 512),
        "plane_projection": ChoiceField(tuple(PLANE_PROJECTIONS)),
        "plane_resolution": IntField(4, 512, power_of_two=True),
        "plane_channels": IntField(1, 128),
        "decoder_hidden": IntField(1, 1024),
        "channel_base": IntField(1, 1 << 20),
        "channel_max": IntField(1, 1024),
        "conv_clamp": NumberField(0, 1e5, optional=True),
        "num_fp16_res": IntField(0, 16),
        "fused_modconv_default": _FUSED_MODCONV,
    }
    """Accepted config values; the bounds cap a model at about 300 M parameters (official FFHQ: 31 M)."""
    EXTRA_CONFIG_KEYS = ("channel_base", "channel_max", "conv_clamp", "num_fp16_res", "fused_modconv_default")

    def __init__(
        self,
        z_dim: int,  # latent z size (512)
        c_dim: int,  # camera label size (25); 0 = unconditional mapping
        w_dim: int,  # w size (512)
        img_resolution: int,  # final image size after super-resolution
        img_channels: int,  # 3
        sr_num_fp16_res: int = 0,  # > 0: SR blocks clamp at +-256 like the official fp16 blocks
        mapping_kwargs: dict | None = None,  # e.g. {'num_layers': 2}
        rendering_kwargs: dict | None = None,  # EG3D rendering options (see FFHQ_RENDERING_KWARGS)
        sr_kwargs: dict | None = None,  # kwargs of the super-resolution module
        neural_rendering_resolution: int = 64,  # default raw render size (128 for *-128 checkpoints)
        plane_projection: str = "eg3d_released",  # tri-plane axes, see rendering.PLANE_PROJECTIONS
        plane_resolution: int = 256,  # tri-plane size (256 in all official models)
        plane_channels: int = 32,  # channels per plane (32 in all official models)
        decoder_hidden: int = 64,  # OSG decoder hidden size
        **synthesis_kwargs,  # channel_base, channel_max, conv_clamp, ... of the StyleGAN2 backbone
    ):
        super().__init__()
        rendering_kwargs = dict(FFHQ_RENDERING_KWARGS if rendering_kwargs is None else rendering_kwargs)
        sr_name = superresolution_name(rendering_kwargs["superresolution_module"])  # old folders: official names
        if sr_name not in SUPERRESOLUTION_MODULES:
            raise ValueError(f"unknown superresolution_module {sr_name!r}; known: {sorted(SUPERRESOLUTION_MODULES)}")
        rendering_kwargs["superresolution_module"] = sr_name
        sr_kwargs = dict(sr_kwargs or {})
        self.config = {
            "z_dim": z_dim,
            "c_dim": c_dim,
            "w_dim": w_dim,
            "img_resolution": img_resolution,
            "img_channels": img_channels,
            "sr_num_fp16_res": sr_num_fp16_res,
            "mapping_kwargs": dict(mapping_kwargs or {}),
            "rendering_kwargs": copy.deepcopy(rendering_kwargs),
            "sr_kwargs": copy.deepcopy(sr_kwargs),
            "neural_rendering_resolution": neural_rendering_resolution,
            "plane_projection": plane_projection,
            "plane_resolution": plane_resolution,
            "plane_channels": plane_channels,
            "decoder_hidden": decoder_hidden,
            **copy.deepcopy(synthesis_kwargs),
        }
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.rendering_kwargs = rendering_kwargs
        self.neural_rendering_resolution = neural_rendering_resolution
        self.plane_projection = plane_projection
        self.plane_channels = plane_channels
        self.backbone = StyleGAN2Backbone(
            z_dim, c_dim, w_dim, plane_resolution, plane_channels * 3, mapping_kwargs=mapping_kwargs, **synthesis_kwargs
        )
        self.superresolution = SUPERRESOLUTION_MODULES[sr_name](
            channels=plane_channels,
            img_resolution=img_resolution,
            sr_num_fp16_res=sr_num_fp16_res,
            sr_antialias=rendering_kwargs["sr_antialias"],
            w_dim=w_dim,
            **sr_kwargs,
        )
        self.decoder = OSGDecoder(
            plane_channels, decoder_hidden, plane_channels, lr_multiplier=rendering_kwargs.get("decoder_lr_mul", 1)
        )
        self.register_buffer("dataset_label_std", torch.ones([c_dim]) if c_dim > 0 else torch.ones([1]))
        self.register_buffer("_plane_axes", plane_axes(plane_projection), persistent=False)

    @classmethod
    def validate_config(cls, config: dict, where: str = "") -> dict:
        """Check a config's keys, types and ranges, then the values that must agree; nothing is allocated."""
        config = super().validate_config(config, where)
        rk = FFHQ_RENDERING_KWARGS if config.get("rendering_kwargs") is None else config["rendering_kwargs"]
        res = config["img_resolution"]
        sr = SUPERRESOLUTION_MODULES[superresolution_name(rk["superresolution_module"])]
        prefix = f"{where}: " if where else ""
        if sr.output_resolution != res:
            raise OptionError(
                f"{prefix}{sr.__name__} makes {sr.output_resolution}x{sr.output_resolution} images, but img_resolution is {res}"
            )
        if rk.get("image_resolution", res) != res:
            raise OptionError(
                f"{prefix}rendering_kwargs.image_resolution ({rk['image_resolution']}) must equal img_resolution ({res})"
            )
        if rk["ray_start"] >= rk["ray_end"]:
            raise OptionError(
                f"{prefix}rendering_kwargs.ray_start ({rk['ray_start']}) must be less than ray_end ({rk['ray_end']})"
            )
        base, planes = config.get("channel_base", 32768), config.get("plane_resolution", 256)
        if base < planes:
            raise OptionError(
                f"{prefix}channel_base ({base}) must be >= plane_resolution ({planes}), or the {planes}x{planes} block has no channels"
            )
        return config

    @property
    def num_ws(self) -> int:
        return self.backbone.num_ws

    # ---------------------------------------------------------------- mapping
    def mapping(
        self,
        z: torch.Tensor,  # [N, z_dim]
        c: torch.Tensor,  # [N, 25] camera label used for pose conditioning
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_emas: bool = False,
    ) -> torch.Tensor:
        """Map ``z`` (conditioned on the camera, scaled by ``c_scale``) to ``ws [N, num_ws, w_dim]``."""
        if self.rendering_kwargs.get("c_gen_conditioning_zero", False):
            c = torch.zeros_like(c)
        c = c * self.rendering_kwargs.get("c_scale", 0)
        return self.backbone.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )

    # ---------------------------------------------------------------- tri-planes and point queries
    def planes(
        self, ws: torch.Tensor, noise_mode: str = "const", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Tri-plane features ``[N, 3, C, H, W]`` from ``ws``."""
        planes = self.backbone.synthesis(ws, noise_mode=noise_mode, generator=generator)
        return planes.view(len(planes), 3, self.plane_channels, planes.shape[-2], planes.shape[-1])

    def _field(self, planes: torch.Tensor, feature_hook: FeatureHook | None, colour_hook: FeatureHook | None = None):
        box_warp = self.rendering_kwargs["box_warp"]

        def field(points: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            feats = sample_from_planes(self._plane_axes, planes, points, box_warp).mean(1)  # [N, M, C]
            if feature_hook is not None:
                feats = feature_hook(feats, points)
            rgb, sigma = self.decoder(feats)
            if colour_hook is not None:
                rgb = colour_hook(rgb, points)
            return rgb, sigma

        return field

    def query_points(
        self,
        ws: torch.Tensor | None,  # [N, num_ws, w_dim]; or None when planes are given
        points: torch.Tensor,  # [N, M, 3] world coordinates
        planes: torch.Tensor | None = None,
        feature_hook: FeatureHook | None = None,
        noise_mode: str = "const",
        colour_hook: FeatureHook | None = None,
    ) -> PointQuery:
        """Raw density ``sigma [N, M, 1]`` and decoder ``features [N, M, C]`` at arbitrary points.

        The volume density used for compositing is ``softplus(sigma - 1)``.
        """
        if planes is None:
            planes = self.planes(ws, noise_mode=noise_mode)
        feats, sigma = self._field(planes, feature_hook, colour_hook)(points, torch.zeros_like(points))
        return PointQuery(sigma=sigma, features=feats)

    # ---------------------------------------------------------------- rendering
    def synthesis(
        self,
        ws: torch.Tensor,  # [N, num_ws, w_dim]
        c: torch.Tensor,  # [N, 25] camera to render from
        neural_rendering_resolution: int | None = None,  # raw render size (None = the model's default)
        noise_mode: str = "const",  # backbone noise: 'const', 'random' or 'none'
        deterministic: bool = False,  # no sampling jitter, det importance sampling (reproducible)
        generator: torch.Generator | None = None,  # seeds the random mode
        planes: torch.Tensor | None = None,  # precomputed tri-planes (skips the backbone)
        feature_hook: FeatureHook | None = None,  # modulates per-point tri-plane features before decoding
        colour_hook: FeatureHook | None = None,  # modulates the decoded colour features only (density untouched)
        ray_chunk_size: int | None = None,  # rays per rendering chunk (None = all)
        rendering_overrides: dict | None = None,  # e.g. fewer ray samples for previews; the model is not changed
        superresolution: bool = True,  # False: image is the raw render upsampled bilinearly (fast previews)
    ) -> GeneratorOutput:
        """Render ``ws`` from camera ``c`` into a :class:`GeneratorOutput`.

        ``image [N, 3, R, R]`` (super-resolved, about [-1, 1]), ``image_raw [N, 3, r, r]``, ``depth
        [N, 1, r, r]`` (distance along the ray), ``features [N, C, r, r]``, ``mask [N, 1, r, r]``
        (accumulated opacity) and ``planes``.
        """
        check_label(c)
        res = neural_rendering_resolution or self.neural_rendering_resolution
        cam2world = c[:, :16].view(-1, 4, 4)
        intrinsics = c[:, 16:25].view(-1, 3, 3)
        origins, directions = sample_rays(cam2world, intrinsics, res)
        if planes is None:
            planes = self.planes(ws, noise_mode=noise_mode, generator=generator)
        rendering_kwargs = self.rendering_kwargs
        if rendering_overrides:
            unknown = sorted(
                set(rendering_overrides) - {"depth_resolution", "depth_resolution_importance", "ray_start", "ray_end"}
            )
            if unknown:
                raise ValueError(
                    f"rendering_overrides may set depth_resolution, depth_resolution_importance, ray_start, ray_end; got {unknown}"
                )
            rendering_kwargs = {**rendering_kwargs, **rendering_overrides}
        out = render_rays(
            self._field(planes, feature_hook, colour_hook),
            origins,
            directions,
            rendering_kwargs,
            deterministic=deterministic,
            generator=generator,
            chunk_size=ray_chunk_size,
        )
        n = origins.shape[0]
        feature_image = out.features.permute(0, 2, 1).reshape(n, -1, res, res).contiguous()
        depth_image = out.depth.permute(0, 2, 1).reshape(n, 1, res, res)
        mask_image = out.weight_total.permute(0, 2, 1).reshape(n, 1, res, res)
        rgb_image = feature_image[:, :3]
        if superresolution:
            image = self.superresolution(
                rgb_image,
                feature_image,
                ws,
                noise_mode=self.rendering_kwargs["superresolution_noise_mode"],
                generator=generator,
            )
        else:
            image = torch.nn.functional.interpolate(
                rgb_image, size=(self.img_resolution, self.img_resolution), mode="bilinear", align_corners=False
            )
        return GeneratorOutput(
            image=image, image_raw=rgb_image, depth=depth_image, mask=mask_image, features=feature_image, planes=planes
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        **synthesis_kwargs,
    ) -> GeneratorOutput:
        """``synthesis(mapping(z, c), c)``."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, c, **synthesis_kwargs)

    def extra_repr(self) -> str:
        return (
            f"z_dim={self.z_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}, img_resolution={self.img_resolution}, "
            f"neural_rendering_resolution={self.neural_rendering_resolution}, plane_projection={self.plane_projection!r}"
        )

    # ---------------------------------------------------------------- checkpoints
    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, revision: str | None = None, **hub_kwargs
    ) -> "TriPlaneGenerator":
        """Load from a known name (:data:`PRETRAINED_EG3D`), an official ``.pkl``, a local folder or a Hub repo.

        Folders and Hub repos hold ``config.json`` + ``model.safetensors``. Hub downloads are cached
        by huggingface_hub; set ``HF_HUB_OFFLINE=1`` to use the cache only.
        """
        key = str(name_or_path)
        if key in PRETRAINED_EG3D or (key.endswith(".pkl") and Path(key).expanduser().is_file()):
            device = hub_kwargs.pop("device", "cpu")  # official pickles load on the CPU, then move
            if key in PRETRAINED_EG3D:
                source = PRETRAINED_EG3D[key]
                path = resolve_file(source.repo_id, source.filename, revision=revision or source.revision, **hub_kwargs)
            else:
                path = Path(key).expanduser()
            return load_official_pkl(path).to(device)
        return super().from_pretrained(name_or_path, revision=revision, **hub_kwargs)


PRETRAINED_EG3D: dict[str, PretrainedSource] = {
    "eg3d-ffhqrebalanced512-128": PretrainedSource(
        repo_id="gwang-kim/datid3d-finetuned-eg3d-models",
        filename="finetuned_models/nvidia_ffhqrebalanced512-128.pkl",
        description="NVIDIA EG3D FFHQ (rebalanced) 512x512, neural rendering 128; public Hub copy of the NGC file",
    ),
}
"""Known official checkpoints reachable on the Hugging Face Hub (loaded with the safe unpickler)."""


def official_config(ckpt: OfficialCheckpoint) -> dict:
    """e3dge constructor kwargs of an official generator record (not yet checked); official module names translated."""
    kwargs = dict(ckpt.init_kwargs)
    kwargs.pop("class_name", None)
    if "rendering_kwargs" in ckpt.attributes:  # the attribute is what the model ran with; prefer it
        kwargs["rendering_kwargs"] = ckpt.attributes["rendering_kwargs"]
    rk = kwargs.get("rendering_kwargs")
    if isinstance(rk, dict) and "superresolution_module" in rk:
        kwargs["rendering_kwargs"] = dict(rk, superresolution_module=superresolution_name(rk["superresolution_module"]))
    kwargs["neural_rendering_resolution"] = ckpt.attributes.get("neural_rendering_resolution", 64)
    return kwargs


def load_official_pkl(
    path: str | os.PathLike, key: str = "G_ema", device: str | torch.device = "cpu"
) -> TriPlaneGenerator:
    """Build an e3dge :class:`TriPlaneGenerator` from an official EG3D ``.pkl`` without executing it.

    Reads ``G_ema`` (the generator for inference) by default; the file's embedded source code is
    never run and any global outside a small allow-list is refused (:class:`UnsafePickleError`). The
    constructor kwargs are checked like a ``config.json`` and the tensors against the model before loading.
    """
    ckpt: OfficialCheckpoint = read_official_pickle(path, key=key)
    where = f"{path} ({key})"
    if ckpt.class_name != "TriPlaneGenerator":  # persistence records the bare class name
        raise UnreadablePickleError(f"{path}: {key} is a {ckpt.class_name}, not an EG3D TriPlaneGenerator")
    if ckpt.init_args:
        raise UnreadablePickleError(
            f"{path}: unexpected positional constructor arguments {one_line(ckpt.init_args)[:80]}"
        )
    G = TriPlaneGenerator.build_checked(official_config(ckpt), where)
    state = dict(ckpt.state_dict)
    if "dataset_label_std" not in state:  # only snapshots written by the training loop have it
        state["dataset_label_std"] = G.dataset_label_std
    check_tensors(tensor_specs(state), G.state_dict(), where)
    G.load_state_dict(state, strict=True)
    return G.eval().requires_grad_(False).to(device)


@torch.no_grad()
def estimate_w_avg(G: TriPlaneGenerator, num_samples: int = 10000, seed: int = 0, batch: int = 1000) -> torch.Tensor:
    """Mean of ``G.mapping(z)`` over ``num_samples`` normal z at the frontal camera: ``[w_dim]``."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    total = torch.zeros(G.w_dim, device=device, dtype=torch.float64)
    done = 0
    c = frontal_label(device=device)
    while done < num_samples:
        n = min(batch, num_samples - done)
        z = torch.randn(n, G.z_dim, generator=gen).to(device)
        total += G.mapping(z, c.expand(n, -1))[:, 0].double().sum(0)
        done += n
    return (total / num_samples).float()
