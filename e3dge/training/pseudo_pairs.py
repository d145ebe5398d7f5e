"""Pseudo 2D-3D pairs from a 3D GAN (E3DGE Eq. 2): images, cameras, latents and shape samples.

For each sample: ``z -> w`` (truncated), a camera from an FFHQ-like yaw/pitch prior, the rendered
raw + super-resolved image and depth, surface points (the depth map back-projected where the
render is opaque) and near-surface points (surface points plus Gaussian jitter), each with the
generator's density at it. Optionally a second view of the same ``w`` for novel-view training.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, fields

import torch

from e3dge.backbones.eg3d import TriPlaneGenerator, estimate_w_avg
from e3dge.backbones.ops import device_generator
from e3dge.backbones.output import GeneratorOutput
from e3dge.backbones.rendering import sample_rays
from e3dge.cameras import label_from_yaw_pitch, split_label

__all__ = ["PosePrior", "PseudoPairBatch", "PseudoPairSampler", "estimate_w_avg", "ensure_w_avg"]


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
        pitch = (torch.randn(n, generator=generator) * self.pitch_std + self.pitch_mean).clamp(-self.pitch_max, self.pitch_max)
        return torch.stack([yaw, pitch], dim=1)


@dataclass
class PseudoPairBatch:
    """One batch of pseudo pairs; all tensors on the sampler's device, no gradients."""

    z: torch.Tensor  # [N, z_dim]
    ws: torch.Tensor  # [N, num_ws, w_dim] (truncated; the code target)
    pose: torch.Tensor  # [N, 2] yaw, pitch (radians from frontal)
    c: torch.Tensor  # [N, 25] camera label of the view
    image: torch.Tensor  # [N, 3, S, S] super-resolved render in [-1, 1]
    image_raw: torch.Tensor  # [N, 3, r, r] neural render
    depth: torch.Tensor  # [N, 1, r, r] expected ray distance
    mask: torch.Tensor  # [N, 1, r, r] accumulated opacity
    surface_points: torch.Tensor  # [N, P, 3] depth back-projected at opaque pixels
    surface_sigma: torch.Tensor  # [N, P] generator's raw density output there (EG3D's decoder sigma)
    near_points: torch.Tensor  # [N, Q, 3] surface points + N(0, near_std^2) jitter, inside the box
    near_sigma: torch.Tensor  # [N, Q]
    novel: "PseudoPairBatch | None" = None  # same ws, another camera (image/depth/mask only filled in)

    def to(self, device: torch.device | str) -> "PseudoPairBatch":
        """Copy to a device."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return PseudoPairBatch(**{k: (v.to(device) if isinstance(v, (torch.Tensor, PseudoPairBatch)) else v) for k, v in kw.items()})


def ensure_w_avg(G: TriPlaneGenerator, num_samples: int = 10000) -> TriPlaneGenerator:
    """``G`` itself when it tracks its mean latent; else a copy with ``w_avg`` estimated (the caller's ``G`` is never changed)."""
    if torch.count_nonzero(G.backbone.mapping.w_avg) != 0:
        return G
    G = copy.deepcopy(G)
    G.backbone.mapping.w_avg.copy_(estimate_w_avg(G, num_samples))
    return G


class PseudoPairSampler:
    """Draws :class:`PseudoPairBatch` from a frozen generator (E3DGE Sec. 4.1, Eq. 2)."""

    def __init__(
        self,
        G: TriPlaneGenerator,
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
        self.G = ensure_w_avg(G)  # used as given (sampling runs under no_grad); never modified
        self.pose_prior, self.truncation_psi = pose_prior, truncation_psi
        self.resolution = neural_rendering_resolution or G.neural_rendering_resolution
        self.num_surface_points, self.num_near_points, self.near_std = num_surface_points, num_near_points, near_std
        self.opacity_threshold, self.view_pairs, self.deterministic = opacity_threshold, view_pairs, deterministic

    @property
    def device(self) -> torch.device:
        return next(self.G.parameters()).device

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> PseudoPairBatch:
        """``n`` pseudo pairs; ``generator`` (a CPU ``torch.Generator``) makes the draw reproducible."""
        G, dev = self.G, self.device
        z = torch.randn(n, G.z_dim, generator=generator).to(dev)
        pose = self.pose_prior.sample(n, generator).to(dev)
        c = label_from_yaw_pitch(pose[:, 0], pose[:, 1], device=dev)
        ws = G.mapping(z, c, truncation_psi=self.truncation_psi)
        view = self._render(ws, c, generator)
        surface = self._surface_points(view.depth, view.mask, c, generator)
        near = (surface + self.near_std * torch.randn(surface.shape, generator=generator).to(dev)).clamp(-0.5, 0.5)
        near = near[:, : self.num_near_points]  # _surface_points drew max(P, Q) points
        surface = surface[:, : self.num_surface_points]
        sig_s = G.query_points(None, surface, planes=view.planes).sigma[..., 0]
        sig_n = G.query_points(None, near, planes=view.planes).sigma[..., 0]
        novel = None
        if self.view_pairs:
            pose2 = self.pose_prior.sample(n, generator).to(dev)
            c2 = label_from_yaw_pitch(pose2[:, 0], pose2[:, 1], device=dev)
            v2 = self._render(ws, c2, generator, planes=view.planes)
            empty = torch.zeros(n, 0, 3, device=dev)
            novel = PseudoPairBatch(z, ws, pose2, c2, v2.image, v2.image_raw, v2.depth, v2.mask, empty, empty[..., 0], empty, empty[..., 0])
        return PseudoPairBatch(z, ws, pose, c, view.image, view.image_raw, view.depth, view.mask, surface, sig_s, near, sig_n, novel)

    def _render(self, ws: torch.Tensor, c: torch.Tensor, generator: torch.Generator, planes: torch.Tensor | None = None) -> GeneratorOutput:
        gen = None if self.deterministic else device_generator(generator, self.device)
        out = self.G.synthesis(ws, c, neural_rendering_resolution=self.resolution, deterministic=self.deterministic, generator=gen, planes=planes)
        return dataclasses.replace(out, image=out.image.clamp(-1, 1), image_raw=out.image_raw.clamp(-1, 1))

    def _surface_points(self, depth: torch.Tensor, mask: torch.Tensor, c: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``[N, max(P, Q), 3]`` back-projected opaque pixels (drawn with replacement, weighted by opacity)."""
        n, res = depth.shape[0], depth.shape[-1]
        cam2world, intrinsics = split_label(c)
        origins, directions = sample_rays(cam2world, intrinsics, res)
        pts = origins + depth.reshape(n, -1, 1) * directions  # [N, res*res, 3]
        weight = mask.reshape(n, -1).cpu() * (mask.reshape(n, -1).cpu() > self.opacity_threshold)
        weight = torch.where(weight.sum(1, keepdim=True) > 0, weight, torch.ones_like(weight))  # empty render: any pixel
        k = max(self.num_surface_points, self.num_near_points)
        idx = torch.multinomial(weight, k, replacement=True, generator=generator).to(depth.device)
        return torch.gather(pts, 1, idx[..., None].expand(-1, -1, 3))

