"""The :class:`~e3dge.backbones.base.Backbone` adapter of StyleSDF.

Latent: the renderer W+ ``[N, depth + 1, style_dim]`` and the decoder W+ ``[N, num_decoder_ws, 2 style_dim]`` packed
side by side in one ``ws [N, max(rows), 3 style_dim]`` (renderer in columns ``:style_dim``, decoder after it), so an
official boundary (``style_dim + 2 style_dim`` values added to every row of both) is an ordinary ``[w_dim]`` direction.
Scene: the two latents (the SIREN trunk depends on the view, so each render computes it once and re-textures it).
Cameras: StyleSDF's unit sphere at ``azimuth = yaw``, ``elevation = -pitch``. Depth maps are distances along the ray.
``preview`` is the 64^2 volume render upsampled; ``full`` the StyleGAN2 decode. ``colour_hook`` acts on the SIREN's last
hidden layer on the texture path only (E3DGE's FiLM), so the SDF, depth and meshes stay the code's own.
"""

from __future__ import annotations

import copy
from typing import Callable

import numpy as np
import torch

from e3dge.backbones.base import CameraRig, FieldSample, LatentLayout, LatentPart, Quality, View, module_hash
from e3dge.backbones.stylesdf.network import SirenTrunk, StyleSDFGenerator, StyleSDFLatents, StyleSDFMeanLatents
from e3dge.core.cameras import Camera, SphereCamera, angle_tensors, sphere_to_label
from e3dge.core.errors import UserError
from e3dge.core.images import to_model_input

__all__ = ["StyleSDFBackbone", "ray_lengths"]


def ray_lengths(camera: SphereCamera, resolution: int) -> torch.Tensor:
    """``|d| [1, 1, r, r]`` of each pixel's ray direction (camera z = -1): camera depth x this = distance along the ray."""
    scale = resolution / camera.resolution
    focal = camera.focal[0] if scale == 1 else camera.focal[0] * scale  # a tensor: no host round trip on a GPU
    c = (torch.arange(resolution, dtype=torch.float32, device=camera.focal.device) + 0.5 - resolution / 2) / focal
    return torch.sqrt(1 + c[None, :] ** 2 + c[:, None] ** 2)[None, None]


class StyleSDFBackbone:
    """StyleSDF behind the backbone protocol; ``mean`` is the bundle's fixed mean latents (drawn once when absent)."""

    name = "stylesdf"
    field_kind = "sdf"
    bundle_slots = (
        "generator",
        "encoder",
        "pose_estimator",
        "latent_mean",
        "local_encoder",
        "aligner_2d",
        "fusion",
        "toonify_generator",
        "toonify_encoder",
        "toonify_latent_mean",
    )

    def __init__(
        self, generator: StyleSDFGenerator, mean: StyleSDFMeanLatents | None = None, identity: str | None = None
    ) -> None:
        self.generator, self.mean = generator, mean
        G = generator
        s, rows_r, rows_d = G.style_dim, G.num_renderer_ws, G.num_decoder_ws
        parts = (LatentPart(name="renderer", rows=rows_r, start=0, stop=s),)
        if G.full_pipeline:
            parts += (LatentPart(name="decoder", rows=rows_d, start=s, stop=3 * s),)
        self.layout = LatentLayout(num_ws=max(rows_r, rows_d), w_dim=parts[-1].stop, parts=parts)
        r = G.dist_radius
        self.rig = CameraRig(
            radius=1.0,
            fov_degrees=2 * G.half_fov_degrees,
            ray_start=1 - r,
            ray_end=1 + r,
            field_half_size=r,
            depth_range=(0.9, 1.1),
        )
        self.identity = identity or module_hash(G) + (module_hash(mean) if mean is not None else "")

    @property
    def device(self) -> torch.device:
        return self.generator.renderer.sigmoid_beta.device

    @property
    def image_resolution(self) -> int:
        return int(self.generator.img_resolution)

    @property
    def neural_resolution(self) -> int:
        return int(self.generator.renderer_resolution)

    refine_resolution = None
    """Refinement renders at the volume renderer's own size (the decoder reads its features at that size)."""

    # ------------------------------------------------------------------ latents
    def latents(self, ws: torch.Tensor) -> StyleSDFLatents:
        """The renderer and decoder W+ of a packed ``ws``."""
        parts = self.layout.split(ws.to(self.device))
        decoder = parts.get("decoder", ws.new_zeros(ws.shape[0], 0))
        return StyleSDFLatents(parts["renderer"], decoder)

    def pack(self, latents: StyleSDFLatents) -> torch.Tensor:
        """The packed ``ws`` of renderer / decoder latents (each ``[N, dim]`` or its W+)."""
        parts = {"renderer": latents.renderer}
        if self.generator.full_pipeline:
            parts["decoder"] = latents.decoder
        return self.layout.pack(parts)

    def mean_latents(self) -> StyleSDFLatents:
        """The fixed mean latents ``[1, dim]`` each (the bundle's draw; else 10k z with seed 2, the converter's default)."""
        if self.mean is not None:
            return self.mean.latents
        return self.generator.mean_latents(10000, seed=2)

    def mean_latent(self) -> torch.Tensor:
        return self.pack(self.mean_latents())

    @property
    def z_dim(self) -> int:
        return int(self.generator.style_dim)

    @property
    def film_channels(self) -> int:
        """Width of the SIREN's last hidden layer, which ``colour_hook`` modulates on the texture path."""
        return int(self.generator.renderer.network.sigma_linear.weight.shape[1])

    def sample_latent(self, z: torch.Tensor, camera: Camera, truncation: float = 1.0) -> torch.Tensor:
        """The packed latents of codes ``z [N, style_dim]``, each truncated towards the fixed means (StyleSDF is not pose-conditioned)."""
        return self.pack(self.generator.mapping(z.to(self.device), truncation, self.mean_latents()))

    # ------------------------------------------------------------------ cameras and photos
    def camera(self, yaw: torch.Tensor | float, pitch: torch.Tensor | float) -> Camera:
        """StyleSDF's sphere camera at (yaw, pitch) radians (differentiable in both), with its EG3D-style label."""
        yaw_t, pitch_t = angle_tensors(yaw, pitch, self.device)
        return Camera(yaw_t, pitch_t, sphere_to_label(self.sphere(yaw_t, pitch_t)))

    def sphere(self, yaw: torch.Tensor, pitch: torch.Tensor, resolution: int | None = None) -> SphereCamera:
        """The model's own camera type at (yaw, pitch)."""
        return self.generator.camera(yaw, -pitch, resolution)

    def photo(self, pixels: np.ndarray) -> torch.Tensor:
        """An aligned crop ``[1, 3, S, S]`` at its own size (the encoders pool it, as the official code)."""
        return to_model_input(pixels, None, self.device)

    # ------------------------------------------------------------------ rendering
    def scene(self, ws: torch.Tensor) -> StyleSDFLatents:
        return self.latents(ws)

    def render(
        self,
        ws: torch.Tensor,
        scene: StyleSDFLatents | None,
        camera: Camera,
        quality: Quality = "full",
        *,
        decode: bool = True,
        neural_resolution: int | None = None,
        colour_hook: Callable | None = None,
        jitter: torch.Generator | None = None,
        ray_samples: int | None = None,
        trunk: SirenTrunk | None = None,
    ) -> View:
        """A render at ``camera``; ``trunk`` (from the same latent and view) skips the SIREN's geometry layers.

        Rays are always sampled at the model's fixed depths, also in training (``jitter`` is accepted and unused: the
        official E3DGE trains with StyleSDF's perturbation off); ``ray_samples`` may only name that number."""
        self.check_ray_samples(ray_samples)
        if decode and quality == "full":
            self.check_decoded_resolution(neural_resolution)
        latents = scene if scene is not None else self.latents(ws)
        sphere = self.sphere(camera.yaw, camera.pitch, neural_resolution)
        out = self.generator.synthesis(
            latents, sphere, texture_hook=colour_hook, decode=decode and quality == "full", trunk=trunk
        )
        return self.view(out, sphere)

    def check_ray_samples(self, ray_samples: int | None) -> None:
        """A one-line error unless ``ray_samples`` is None or the model's own samples per ray."""
        if ray_samples is not None and ray_samples != self.generator.n_samples:
            raise UserError(
                f"StyleSDF renders its own {self.generator.n_samples} samples per ray; got ray_samples={ray_samples} (leave it unset)"
            )

    def check_decoded_resolution(self, resolution: int | None) -> None:
        """A one-line error unless a decoded render's volume render is at the model's own size (what the decoder reads)."""
        own = self.generator.renderer_resolution
        if resolution is not None and resolution != own:
            raise UserError(
                f"StyleSDF's decoder reads the volume render at its own {own}^2; "
                f"set render_resolution={own} to supervise the decoded image (got {resolution})"
            )

    def view(self, out, sphere: SphereCamera) -> View:
        """A :class:`View` of a StyleSDF output (camera-space depth turned into the distance along each ray)."""
        return View(
            image=out.image,
            image_raw=out.image_raw,
            depth=out.depth * ray_lengths(sphere, out.depth.shape[-1]),
            mask=out.mask,
            trace=out,
        )

    # ------------------------------------------------------------------ fields, meshes, PTI
    def field(
        self, ws: torch.Tensor, scene: StyleSDFLatents | None, points: torch.Tensor, colour: bool = True
    ) -> FieldSample:
        """``-sdf`` (grows inwards, the surface at 0) and the SIREN's colour at ``points [N, M, 3]``; ``colour=False``
        runs the geometry layers only (mesh grids, geometry losses)."""
        latents = scene if scene is not None else self.latents(ws)
        if not colour:
            return FieldSample(
                occupancy=-self.generator.sdf_at(latents.renderer, points.to(self.device))[..., 0], rgb=None
            )
        q = self.generator.query_sdf(latents.renderer, points.to(self.device))
        return FieldSample(occupancy=-q.sdf[..., 0], rgb=torch.sigmoid(q.rgb))

    def surface_level(self, ws: torch.Tensor, scene: StyleSDFLatents | None, camera: Camera) -> float:
        """The zero level set of the SDF."""
        return 0.0

    def tunable_copy(self) -> tuple[StyleSDFBackbone, list[torch.nn.Parameter]]:
        """A private copy for PTI and what it tunes: the SIREN and the decoder's synthesis layers (both mapping networks stay)."""
        G = copy.deepcopy(self.generator).requires_grad_(True)
        G.style.requires_grad_(False)
        if G.full_pipeline:
            G.decoder.style.requires_grad_(False)
        return StyleSDFBackbone(G, self.mean, identity="tuning"), [p for p in G.parameters() if p.requires_grad]

    def frozen(self) -> StyleSDFBackbone:
        """This backbone read-only again (after PTI), with an identity of its new weights."""
        self.generator.eval().requires_grad_(False)
        return StyleSDFBackbone(self.generator, self.mean)
