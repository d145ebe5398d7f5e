"""The :class:`~e3dge.backbones.base.Backbone` adapter of EG3D (and of the toy lab, which is an EG3D).

Latent: the generator's W+ ``[N, num_ws, w_dim]`` as it is. Scene: the tri-planes. Cameras: e3dge's (yaw, pitch)
on the FFHQ rig (radius 2.7 around the pivot, normalised focal 4.2647). ``preview`` renders half the ray samples
without super-resolution; ``full`` the model's own samples with it. The local branch modulates the decoded colour
features (the official placement), so depth and meshes stay E0's.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch

from e3dge.backbones.base import CameraRig, FieldSample, LatentLayout, LatentPart, Quality, View, module_hash
from e3dge.backbones.eg3d.network import TriPlaneGenerator
from e3dge.core.cameras import FFHQ_FOCAL, FFHQ_RADIUS, Camera, angle_tensors, label_from_yaw_pitch, split_label
from e3dge.core.errors import UserError
from e3dge.core.images import to_model_input
from e3dge.rendering.volume import sample_rays

__all__ = ["EG3DBackbone"]


class EG3DBackbone:
    """EG3D tri-plane generator behind the backbone protocol (the generator is only read)."""

    name = "eg3d"
    field_kind = "density"
    bundle_slots = ("generator", "encoder", "local_encoder", "aligner_2d", "fusion")

    def __init__(self, generator: TriPlaneGenerator, identity: str | None = None) -> None:
        self.generator = generator
        G = generator
        self.layout = LatentLayout(
            num_ws=G.num_ws, w_dim=G.w_dim, parts=(LatentPart(name="ws", rows=G.num_ws, start=0, stop=G.w_dim),)
        )
        rk = G.rendering_kwargs
        self.rig = CameraRig(
            radius=FFHQ_RADIUS,
            fov_degrees=2 * math.degrees(math.atan(0.5 / FFHQ_FOCAL)),
            ray_start=float(rk["ray_start"]),
            ray_end=float(rk["ray_end"]),
            field_half_size=float(rk["box_warp"]) / 2,
            depth_range=(2.25, 3.3),
        )
        self.identity = identity or module_hash(G)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def image_resolution(self) -> int:
        return int(self.generator.img_resolution)

    @property
    def neural_resolution(self) -> int:
        return int(self.generator.neural_rendering_resolution)

    @property
    def refine_resolution(self) -> int:
        """Raw render size of refinement / optimisation steps: half the neural resolution, at least 32."""
        return max(32, self.neural_resolution // 2)

    @property
    def z_dim(self) -> int:
        return int(self.generator.z_dim)

    @property
    def film_channels(self) -> int:
        """Width of the decoded colour features ``colour_hook`` modulates (the decoder's output less density)."""
        return int(self.generator.decoder.net[-1].weight.shape[0]) - 1

    @property
    def feature_channels(self) -> int:
        """Width of the aggregated tri-plane features ``feature_hook`` modulates (the decoder's input)."""
        return int(self.generator.decoder.net[0].weight.shape[1])

    def sample_latent(self, z: torch.Tensor, camera: Camera, truncation: float = 1.0) -> torch.Tensor:
        """The W+ of codes ``z [N, z_dim]`` (the mapping is conditioned on ``camera``), truncated towards ``w_avg``."""
        return self.generator.mapping(z.to(self.device), camera.label, truncation_psi=truncation)

    def mean_latent(self) -> torch.Tensor:
        """``w_avg`` on every W+ row, ``[1, num_ws, w_dim]``."""
        return self.generator.backbone.mapping.w_avg.detach()[None, None].expand(1, self.layout.num_ws, -1).clone()

    def camera(self, yaw: torch.Tensor | float, pitch: torch.Tensor | float) -> Camera:
        """The FFHQ rig's camera at (yaw, pitch) radians (differentiable in both)."""
        yaw_t, pitch_t = angle_tensors(yaw, pitch, self.device)
        return Camera(yaw_t, pitch_t, label_from_yaw_pitch(yaw_t, pitch_t, device=self.device))

    def photo(self, pixels: np.ndarray) -> torch.Tensor:
        """An aligned crop as E0 and the losses read it: ``[1, 3, R, R]`` at the generator's image size."""
        return to_model_input(pixels, self.image_resolution, self.device)

    def scene(self, ws: torch.Tensor) -> torch.Tensor:
        """The tri-planes of ``ws`` (what the pipeline caches)."""
        return self.generator.planes(ws.to(self.device))

    def _overrides(self, quality: Quality, ray_samples: int | None) -> dict[str, int] | None:
        if ray_samples is not None:
            return {"depth_resolution": ray_samples, "depth_resolution_importance": ray_samples}
        if quality == "full":
            return None
        rk = self.generator.rendering_kwargs
        return {
            "depth_resolution": max(8, rk["depth_resolution"] // 2),
            "depth_resolution_importance": max(0, rk["depth_resolution_importance"] // 2),
        }

    def render(
        self,
        ws: torch.Tensor,
        scene: torch.Tensor | None,
        camera: Camera,
        quality: Quality = "full",
        *,
        decode: bool = True,
        neural_resolution: int | None = None,
        colour_hook: Callable | None = None,
        jitter: torch.Generator | None = None,
        ray_samples: int | None = None,
        feature_hook: Callable | None = None,
    ) -> View:
        """A render (deterministic unless ``jitter`` draws the ray samples' stratified jitter, as EG3D trains);
        ``decode=False`` (and every preview) skips super-resolution: ``image`` is the raw render upsampled.
        ``ray_samples``: coarse and importance samples per ray (default: the quality's); ``feature_hook`` modulates the
        tri-plane features before the decoder (a training ablation: it moves the density too)."""
        out = self.generator.synthesis(
            ws.to(self.device),
            camera.label,
            planes=scene,
            deterministic=jitter is None,
            generator=jitter,
            neural_rendering_resolution=neural_resolution,
            rendering_overrides=self._overrides(quality, ray_samples),
            superresolution=decode and quality == "full",
            colour_hook=colour_hook,
            feature_hook=feature_hook,
        )
        return View(image=out.image, image_raw=out.image_raw, depth=out.depth, mask=out.mask, trace=out.planes)

    # ------------------------------------------------------------------ fields, meshes, PTI
    def field(self, ws: torch.Tensor, scene: torch.Tensor, points: torch.Tensor, colour: bool = True) -> FieldSample:
        """Raw density ``sigma`` (the renderer's density is softplus(sigma - 1)) and the decoder's colour at ``points [N, M, 3]``
        (one decoder gives both, so ``colour=False`` costs the same)."""
        q = self.generator.query_points(None, points.to(scene.device), planes=scene)
        return FieldSample(occupancy=q.sigma[..., 0], rgb=q.features[..., :3].clamp(0, 1))

    @torch.no_grad()
    def surface_level(self, ws: torch.Tensor, scene: torch.Tensor, camera: Camera) -> float:
        """The median raw density at the rendered surface (expected depth where opacity > 0.5) seen from ``camera``."""
        view = self.render(ws, scene, camera, "full", decode=False)
        on = view.mask.reshape(-1) > 0.5
        if int(on.sum()) < 16:
            raise UserError(
                "the render is almost empty (fewer than 16 opaque pixels), so there is no surface to mesh; pass a numeric level"
            )
        cam2world, intrinsics = split_label(camera.label)
        origins, directions = sample_rays(cam2world, intrinsics, view.depth.shape[-1])
        points = (origins[0] + directions[0] * view.depth.reshape(-1, 1))[on]
        return float(self.field(ws, scene, points[None]).occupancy[0].float().median())

    def tunable_copy(self) -> tuple[EG3DBackbone, list[torch.nn.Parameter]]:
        """A private copy for PTI and the parameters it tunes: everything but the mapping network (the pivot stays put)."""
        G = copy.deepcopy(self.generator).requires_grad_(True)
        G.backbone.mapping.requires_grad_(False)
        return EG3DBackbone(G, identity="tuning"), [p for p in G.parameters() if p.requires_grad]

    def frozen(self) -> EG3DBackbone:
        """This backbone read-only again (after PTI), with an identity of its new weights."""
        self.generator.eval().requires_grad_(False)
        return EG3DBackbone(self.generator)
