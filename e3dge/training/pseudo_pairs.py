"""Pseudo 2D-3D pairs from a 3D GAN (E3DGE Eq. 2): images, cameras, latents and shape samples, on any backbone.

For each sample: ``z -> w`` (truncated towards the backbone's mean latent), a camera from an FFHQ-like yaw/pitch
prior, the rendered raw + final image and depth, surface points (the depth map back-projected along each pixel's
ray where the render is opaque) and near-surface points (surface points plus Gaussian jitter), each with the
generator's field there: EG3D's raw density, StyleSDF's ``-sdf`` (:class:`~e3dge.backbones.base.FieldSample`).
Optionally a second view of the same ``w`` for novel-view training.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields

import torch

from e3dge.backbones.base import Backbone, View
from e3dge.backbones.eg3d.network import TriPlaneGenerator, estimate_w_avg
from e3dge.backbones.ops import device_generator
from e3dge.core.cameras import Camera, split_label
from e3dge.rendering.volume import sample_rays

__all__ = ["PosePrior", "PseudoPairBatch", "PseudoPairSampler", "ensure_w_avg", "back_project"]


@dataclass(frozen=True)
class PosePrior:
    """Yaw/pitch offsets from frontal (radians): normal, clipped. Defaults: StyleSDF's FFHQ prior (0.3 / 0.15)."""

    yaw_std: float = 0.3
    pitch_std: float = 0.15
    yaw_max: float = 0.8
    pitch_max: float = 0.4
    pitch_mean: float = 0.0

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``[n, 2]`` (yaw, pitch)."""
        yaw = (torch.randn(n, generator=generator) * self.yaw_std).clamp(-self.yaw_max, self.yaw_max)
        pitch = (torch.randn(n, generator=generator) * self.pitch_std + self.pitch_mean).clamp(
            -self.pitch_max, self.pitch_max
        )
        return torch.stack([yaw, pitch], dim=1)


@dataclass(kw_only=True)
class PseudoPairBatch:
    """One batch of pseudo pairs; all tensors on the sampler's device, no gradients."""

    z: torch.Tensor  # [N, z_dim]
    ws: torch.Tensor  # [N, num_ws, w_dim] (truncated; the code target)
    pose: torch.Tensor  # [N, 2] yaw, pitch (radians from frontal)
    camera: Camera  # the view's camera on the backbone's rig
    image: torch.Tensor  # [N, 3, S, S] the model's final image in [-1, 1]
    image_raw: torch.Tensor  # [N, 3, r, r] the volume render
    depth: torch.Tensor  # [N, 1, r, r] distance along each pixel's ray
    mask: torch.Tensor  # [N, 1, r, r] accumulated opacity
    surface_points: torch.Tensor  # [N, P, 3] depth back-projected at opaque pixels
    surface_occupancy: torch.Tensor  # [N, P] the generator's field there (EG3D raw density, StyleSDF -sdf)
    near_points: torch.Tensor  # [N, Q, 3] surface points + N(0, near_std^2) jitter, inside the field's cube
    near_occupancy: torch.Tensor  # [N, Q]
    novel: PseudoPairBatch | None = None  # same ws, another camera (image/depth/mask only filled in)

    @property
    def c(self) -> torch.Tensor:
        """The view's EG3D-style camera label ``[N, 25]``."""
        return self.camera.label

    def to(self, device: torch.device | str) -> PseudoPairBatch:
        """Copy to a device."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Camera):
                v = Camera(v.yaw.to(device), v.pitch.to(device), v.label.to(device))
            elif isinstance(v, (torch.Tensor, PseudoPairBatch)):
                v = v.to(device)
            kw[f.name] = v
        return PseudoPairBatch(**kw)


def ensure_w_avg(G: TriPlaneGenerator, num_samples: int = 10000) -> TriPlaneGenerator:
    """``G`` itself when it tracks its mean latent; else a copy with ``w_avg`` estimated (the caller's ``G`` is never changed)."""
    if torch.count_nonzero(G.backbone.mapping.w_avg) != 0:
        return G
    G = copy.deepcopy(G)
    G.backbone.mapping.w_avg.copy_(estimate_w_avg(G, num_samples))
    return G


def back_project(depth: torch.Tensor, camera: Camera) -> torch.Tensor:
    """World points ``[N, r*r, 3]`` at distance ``depth [N, 1, r, r]`` along each pixel's ray of ``camera``."""
    cam2world, intrinsics = split_label(camera.label)
    origins, directions = sample_rays(cam2world, intrinsics, depth.shape[-1])
    return origins + depth.reshape(depth.shape[0], -1, 1) * directions


class PseudoPairSampler:
    """Draws :class:`PseudoPairBatch` from a frozen backbone (E3DGE Sec. 4.1, Eq. 2); the backbone is only read."""

    def __init__(
        self,
        backbone: Backbone,
        pose_prior: PosePrior = PosePrior(),
        truncation_psi: float = 0.7,
        neural_rendering_resolution: int | None = None,
        num_surface_points: int = 1024,
        num_near_points: int = 1024,
        near_std: float = 0.02,
        opacity_threshold: float = 0.5,
        view_pairs: bool = False,
        deterministic: bool = False,
    ) -> None:
        if not 0 < truncation_psi <= 1:
            raise ValueError(f"truncation_psi must be in (0, 1], got {truncation_psi}")
        if not isinstance(backbone, Backbone):
            raise TypeError(
                f"PseudoPairSampler needs a Backbone (e3dge.backbones.registry.backbone_for), got {type(backbone).__name__}"
            )
        self.backbone = backbone
        self.pose_prior, self.truncation_psi = pose_prior, truncation_psi
        self.resolution = neural_rendering_resolution or backbone.neural_resolution
        self.num_surface_points, self.num_near_points, self.near_std = num_surface_points, num_near_points, near_std
        self.opacity_threshold, self.view_pairs, self.deterministic = opacity_threshold, view_pairs, deterministic

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> PseudoPairBatch:
        """``n`` pseudo pairs; ``generator`` (a CPU ``torch.Generator``) makes the draw reproducible."""
        bb, dev = self.backbone, self.device
        z = torch.randn(n, bb.z_dim, generator=generator).to(dev)
        pose = self.pose_prior.sample(n, generator).to(dev)
        camera = bb.camera(pose[:, 0], pose[:, 1])
        ws = bb.sample_latent(z, camera, self.truncation_psi)
        scene = bb.scene(ws)
        view = self._render(ws, scene, camera, generator)
        surface = self._surface_points(view.depth, view.mask, camera, generator)
        h = bb.rig.field_half_size
        near = (surface + self.near_std * torch.randn(surface.shape, generator=generator).to(dev)).clamp(-h, h)
        near = near[:, : self.num_near_points]  # _surface_points drew max(P, Q) points
        surface = surface[:, : self.num_surface_points]
        occ_s = bb.field(ws, scene, surface, colour=False).occupancy
        occ_n = bb.field(ws, scene, near, colour=False).occupancy
        novel = None
        if self.view_pairs:
            pose2 = self.pose_prior.sample(n, generator).to(dev)
            camera2 = bb.camera(pose2[:, 0], pose2[:, 1])
            v2 = self._render(ws, scene, camera2, generator)
            empty = torch.zeros(n, 0, 3, device=dev)
            novel = PseudoPairBatch(
                z=z,
                ws=ws,
                pose=pose2,
                camera=camera2,
                image=v2.image,
                image_raw=v2.image_raw,
                depth=v2.depth,
                mask=v2.mask,
                surface_points=empty,
                surface_occupancy=empty[..., 0],
                near_points=empty,
                near_occupancy=empty[..., 0],
            )
        return PseudoPairBatch(
            z=z,
            ws=ws,
            pose=pose,
            camera=camera,
            image=view.image,
            image_raw=view.image_raw,
            depth=view.depth,
            mask=view.mask,
            surface_points=surface,
            surface_occupancy=occ_s,
            near_points=near,
            near_occupancy=occ_n,
            novel=novel,
        )

    def _render(self, ws: torch.Tensor, scene, camera: Camera, generator: torch.Generator) -> View:
        jitter = None if self.deterministic else device_generator(generator, self.device)
        view = self.backbone.render(ws, scene, camera, "full", neural_resolution=self.resolution, jitter=jitter)
        return View(
            image=view.image.clamp(-1, 1), image_raw=view.image_raw.clamp(-1, 1), depth=view.depth, mask=view.mask
        )

    def _surface_points(
        self, depth: torch.Tensor, mask: torch.Tensor, camera: Camera, generator: torch.Generator
    ) -> torch.Tensor:
        """``[N, max(P, Q), 3]`` back-projected opaque pixels (drawn with replacement, weighted by opacity)."""
        n = depth.shape[0]
        pts = back_project(depth, camera)
        weight = mask.reshape(n, -1).cpu() * (mask.reshape(n, -1).cpu() > self.opacity_threshold)
        weight = torch.where(
            weight.sum(1, keepdim=True) > 0, weight, torch.ones_like(weight)
        )  # empty render: any pixel
        k = max(self.num_surface_points, self.num_near_points)
        idx = torch.multinomial(weight, k, replacement=True, generator=generator).to(depth.device)
        return torch.gather(pts, 1, idx[..., None].expand(-1, -1, 3))
