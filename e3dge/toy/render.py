"""Sphere-traced renders of procedural heads at EG3D cameras: image, depth, normals, mask.

Rays come from :func:`e3dge.rendering.volume.sample_rays`, so the toy world and a generator
share exactly the same cameras. Depth is the distance along the unit ray (EG3D's convention);
background pixels get depth ``ray_end`` (as EG3D's clamp) and colour -1 (black).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from e3dge.core.cameras import split_label
from e3dge.rendering.volume import sample_rays
from e3dge.toy.heads import head_albedo, head_sdf, head_sdf_parts

__all__ = ["LIGHT_DIRECTION", "HeadRender", "render_heads", "trace"]

LIGHT_DIRECTION = (0.35, 0.55, 0.76)
"""Fixed world-space direction towards the light (upper right front); shading is view-independent."""


@dataclass
class HeadRender:
    """Per-pixel renders, all ``[N, C, R, R]``."""

    image: torch.Tensor  # [N, 3] in [-1, 1], black background
    depth: torch.Tensor  # [N, 1] distance along the ray; ray_end on the background
    normal: torch.Tensor  # [N, 3] world-space unit normals (0 on the background)
    mask: torch.Tensor  # [N, 1] 1 on the head, 0 elsewhere
    albedo: torch.Tensor  # [N, 3] in [0, 1]


def trace(
    origins: torch.Tensor,  # [P, 3]
    directions: torch.Tensor,  # [P, 3] unit
    u: torch.Tensor,  # [P, F] factors per ray
    ray_start: float = 2.25,
    ray_end: float = 3.3,
    steps: int = 64,
    photo: bool = False,
    eps: float = 1e-3,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sphere tracing with active-ray compaction; returns ``(t [P], hit [P] bool)``."""
    # Start where the ray enters the bounding sphere of radius 0.6 (heads fit inside); skip misses.
    b = (origins * directions).sum(-1)
    disc = b * b - ((origins * origins).sum(-1) - 0.36)
    t = (-b - disc.clamp_min(0).sqrt()).clamp_min(ray_start)
    t = torch.where(disc > 0, t, torch.full_like(t, ray_end))
    active = (disc > 0).nonzero().squeeze(-1)
    for _ in range(steps):
        if active.numel() == 0:
            break
        ta = t[active]
        d = head_sdf(origins[active] + ta[:, None] * directions[active], u[active], photo)
        ta = ta + 0.9 * d
        t[active] = ta
        keep = (d.abs() > eps * 0.25) & (ta < ray_end)
        active = active[keep]
    # Two Newton refinements on every ray that ends near the surface.
    near = (t < ray_end).nonzero().squeeze(-1)
    tn = t[near]
    for _ in range(2):
        d = head_sdf(origins[near] + tn[:, None] * directions[near], u[near], photo)
        tn = tn + d
    t[near] = tn
    hit = torch.zeros_like(t, dtype=torch.bool)
    hit[near] = (d.abs() < eps) & (tn < ray_end) & (tn > ray_start)
    return t, hit


def _normals(points: torch.Tensor, u: torch.Tensor, photo: bool, h: float = 1e-3) -> torch.Tensor:
    offsets = torch.eye(3, dtype=points.dtype, device=points.device) * h
    grads = [head_sdf(points + o, u, photo) - head_sdf(points - o, u, photo) for o in offsets]
    return F.normalize(torch.stack(grads, -1), dim=-1)


def _hash_noise(p: torch.Tensor, freq: float) -> torch.Tensor:
    """Smooth pseudo-random value noise ``[P]`` in [0, 1] (trilinear lattice of hashed values)."""
    x = p * freq
    i = torch.floor(x)
    f = x - i
    f = f * f * (3 - 2 * f)
    out = 0
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                c = i + torch.tensor([dx, dy, dz], dtype=p.dtype, device=p.device)
                h = torch.frac(torch.sin(c[:, 0] * 127.1 + c[:, 1] * 311.7 + c[:, 2] * 74.7) * 43758.5453)
                w = (
                    (f[:, 0] if dx else 1 - f[:, 0])
                    * (f[:, 1] if dy else 1 - f[:, 1])
                    * (f[:, 2] if dz else 1 - f[:, 2])
                )
                out = out + w * h
    return out


def _photo_detail(p, n, view, u, albedo, parts) -> torch.Tensor:
    """Detail a small generator cannot hold: skin texture, freckles, specular highlights."""
    skin = (torch.minimum(parts["face"], parts["nose"]) < 0.003).float()
    tex = 0.9 + 0.2 * _hash_noise(p, 180.0)
    freckle = (
        (_hash_noise(p, 90.0) > 0.78).float()
        * (p[:, 1] < 0.08).float()
        * (p[:, 1] > -0.05).float()
        * (p[:, 2] > 0.12).float()
    )
    freckle = freckle * (u[:, 14:15].squeeze(-1) < 0.6).float()
    albedo = albedo * (1 + (tex[:, None] - 1) * skin[:, None])
    albedo = albedo * (1 - 0.35 * freckle * skin)[:, None]
    light = torch.tensor(LIGHT_DIRECTION, dtype=p.dtype, device=p.device)
    half = F.normalize(light / torch.linalg.norm(light) - view, dim=-1)
    spec = (n * half).sum(-1).clamp_min(0) ** 40
    return albedo, 0.35 * spec


def render_heads(
    factors: torch.Tensor,  # [N, F] from HeadFactorMap.factors
    c: torch.Tensor,  # [N, 25] EG3D camera labels
    resolution: int = 64,
    photo: bool = False,  # the toy world's "real photos": extra detail, earrings, specular
    ray_start: float = 2.25,
    ray_end: float = 3.3,
    steps: int = 64,
) -> HeadRender:
    """Render heads from EG3D cameras with Lambert shading under a fixed light (+ ambient)."""
    n = factors.shape[0]
    cam2world, intrinsics = split_label(c)
    origins, dirs = sample_rays(cam2world.float(), intrinsics.float(), resolution)
    m = origins.shape[1]
    o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    u = factors.float()[:, None, :].expand(n, m, -1).reshape(n * m, -1)
    with torch.no_grad():
        t, hit = trace(o, d, u, ray_start, ray_end, steps, photo)
        idx = hit.nonzero().squeeze(-1)
        p, uh = o[idx] + t[idx, None] * d[idx], u[idx]
        normal = _normals(p, uh, photo)
        parts = head_sdf_parts(p, uh, photo)
        albedo = head_albedo(p, uh, parts)
        light = torch.tensor(LIGHT_DIRECTION, dtype=p.dtype, device=p.device)
        lambert = (normal @ (light / torch.linalg.norm(light))).clamp_min(0)
        spec = 0.0
        if photo:
            albedo, spec = _photo_detail(p, normal, d[idx], uh, albedo, parts)
            spec = spec[:, None]
        shaded = (albedo * (0.4 + 0.65 * lambert[:, None]) + spec).clamp(0, 1)

    def scatter(values: torch.Tensor, fill: float) -> torch.Tensor:
        out = torch.full((n * m, values.shape[-1]), fill, dtype=values.dtype, device=values.device)
        out[idx] = values
        return out.reshape(n, resolution, resolution, -1).permute(0, 3, 1, 2).contiguous()

    return HeadRender(
        image=scatter(shaded * 2 - 1, -1.0),
        depth=scatter(t[idx, None], ray_end),
        normal=scatter(normal, 0.0),
        mask=scatter(torch.ones_like(t[idx, None]), 0.0),
        albedo=scatter(albedo, 0.0),
    )
