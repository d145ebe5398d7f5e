"""Volume rendering in parts: rays -> depth samplers -> field query -> compositing (nerfstudio's split).

One module serves both backbones. EG3D: OpenCV rays with normalised intrinsics, stratified + importance
samples, a tri-plane field, MipNeRF compositing at interval midpoints with density ``softplus(sigma - 1)``.
StyleSDF: OpenGL pinhole rays (:func:`pinhole_rays`), fixed-depth samples (:func:`sample_fixed_depths`),
an SDF field, per-sample compositing with density ``sigmoid(-sdf / beta) / beta`` and a forced background
(:func:`composite_samples`). :class:`RaySamples` carries the sampled points of either.

Follows the conventions of EG3D's ``volumetric_rendering`` package (OpenCV cameras with normalised
intrinsics, pixel centres at (i + 0.5) / res, tri-plane sampling with ``grid_sample`` bilinear /
zeros / ``align_corners=False``, MipNeRF-style compositing at interval midpoints). Rays: ``R``;
samples per ray: ``D``; features: ``C``. Adds a deterministic mode (no jitter, inverse-CDF
importance samples at evenly spaced u) for tests and evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "PLANE_PROJECTIONS",
    "plane_axes",
    "project_onto_planes",
    "sample_from_planes",
    "sample_rays",
    "sample_stratified",
    "sample_pdf",
    "sample_importance",
    "composite",
    "RaySamples",
    "DensityFn",
    "eg3d_density",
    "sdf_density",
    "pinhole_rays",
    "sample_fixed_depths",
    "composite_samples",
    "SampleComposite",
    "RenderOutput",
    "render_rays",
]

PLANE_PROJECTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    # The released EG3D weights were trained with these projections (NVlabs/eg3d issue #67).
    "eg3d_released": (("x", "y"), ("x", "z"), ("z", "x")),
    # The three orthogonal planes most readers expect; for models trained from scratch.
    "orthogonal": (("x", "y"), ("x", "z"), ("z", "y")),
}

_AXIS = {"x": 0, "y": 1, "z": 2}


def plane_axes(projection: str = "eg3d_released") -> torch.Tensor:
    """Index pairs ``[3, 2]`` of the world axes each plane reads (u, v) from."""
    if projection not in PLANE_PROJECTIONS:
        raise ValueError(f"unknown plane projection {projection!r}; choose one of {sorted(PLANE_PROJECTIONS)}")
    return torch.tensor([[_AXIS[u], _AXIS[v]] for u, v in PLANE_PROJECTIONS[projection]], dtype=torch.long)


def project_onto_planes(axes: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Project ``points [N, M, 3]`` to plane coordinates ``[N, 3, M, 2]`` (u, v per plane)."""
    return points[..., axes.to(points.device)].permute(0, 2, 1, 3)


def sample_from_planes(
    axes: torch.Tensor,  # [3, 2] from plane_axes()
    planes: torch.Tensor,  # [N, 3, C, H, W]
    points: torch.Tensor,  # [N, M, 3] world coordinates
    box_warp: float,  # side length of the cube the planes span
) -> torch.Tensor:
    """Bilinear tri-plane features at ``points``: ``[N, 3, M, C]``."""
    n, n_planes, c, h, w = planes.shape
    m = points.shape[1]
    coords = project_onto_planes(axes, (2.0 / box_warp) * points)  # [N, 3, M, 2]
    grid = coords.reshape(n * n_planes, 1, m, 2).to(planes.dtype)
    feats = F.grid_sample(
        planes.reshape(n * n_planes, c, h, w), grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return feats.permute(0, 3, 2, 1).reshape(n, n_planes, m, c)


def sample_rays(
    cam2world: torch.Tensor, intrinsics: torch.Tensor, resolution: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ray origins and unit directions ``[N, res*res, 3]`` through pixel centres, row-major.

    ``cam2world [N, 4, 4]`` is OpenCV (+z forward); ``intrinsics [N, 3, 3]`` are normalised by image size.
    """
    dev, dt = cam2world.device, cam2world.dtype
    ij = torch.arange(resolution, dtype=dt, device=dev) * (1.0 / resolution) + (0.5 / resolution)
    y_cam, x_cam = torch.meshgrid(ij, ij, indexing="ij")
    x_cam = x_cam.reshape(1, -1)
    y_cam = y_cam.reshape(1, -1)
    fx, fy = intrinsics[:, 0, 0, None], intrinsics[:, 1, 1, None]
    cx, cy, sk = intrinsics[:, 0, 2, None], intrinsics[:, 1, 2, None], intrinsics[:, 0, 1, None]
    x_lift = (x_cam - cx + cy * sk / fy - sk * y_cam / fy) / fx
    y_lift = (y_cam - cy) / fy
    ones = torch.ones_like(x_lift)
    cam_points = torch.stack((x_lift, y_lift, ones, ones), dim=-1)  # [N, M, 4]
    world_points = torch.bmm(cam2world, cam_points.permute(0, 2, 1)).permute(0, 2, 1)[:, :, :3]
    origins = cam2world[:, None, :3, 3]
    directions = F.normalize(world_points - origins, dim=2)
    return origins.expand_as(directions).contiguous(), directions


def sample_stratified(
    num_rays_shape: tuple[int, int],
    ray_start: float,
    ray_end: float,
    num_samples: int,
    deterministic: bool,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Depths ``[N, R, D, 1]``: evenly spaced in ``[ray_start, ray_end]``, jittered by up to one step unless deterministic."""
    n, r = num_rays_shape
    depths = (
        torch.linspace(ray_start, ray_end, num_samples, device=device).reshape(1, 1, num_samples, 1).repeat(n, r, 1, 1)
    )
    if not deterministic:
        delta = (ray_end - ray_start) / (num_samples - 1)
        depths = depths + torch.rand(depths.shape, device=device, generator=generator) * delta
    return depths


def sample_pdf(
    bins: torch.Tensor,  # [R, B] bin edges
    weights: torch.Tensor,  # [R, B - 2] or fewer; only bins[0 .. len(weights)] are reachable
    num_samples: int,
    deterministic: bool,
    generator: torch.Generator | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Inverse-CDF samples ``[R, K]`` from a piecewise-constant pdf (NeRF's ``sample_pdf``)."""
    r, nb = weights.shape
    weights = weights + eps
    pdf = weights / weights.sum(-1, keepdim=True)
    cdf = torch.cat([torch.zeros_like(pdf[:, :1]), torch.cumsum(pdf, -1)], -1)  # [R, nb + 1]
    if deterministic:
        u = torch.linspace(0, 1, num_samples, device=bins.device, dtype=cdf.dtype).expand(r, num_samples)
    else:
        u = torch.rand(r, num_samples, device=bins.device, generator=generator, dtype=cdf.dtype)
    u = u.contiguous()
    inds = torch.searchsorted(cdf, u, right=True)
    below = torch.clamp_min(inds - 1, 0)
    above = torch.clamp_max(inds, nb)
    idx = torch.stack([below, above], -1).view(r, 2 * num_samples)
    cdf_g = torch.gather(cdf, 1, idx).view(r, num_samples, 2)
    bins_g = torch.gather(bins, 1, idx).view(r, num_samples, 2)
    denom = cdf_g[..., 1] - cdf_g[..., 0]
    denom = torch.where(denom < eps, torch.ones_like(denom), denom)
    return bins_g[..., 0] + (u - cdf_g[..., 0]) / denom * (bins_g[..., 1] - bins_g[..., 0])


def sample_importance(
    depths: torch.Tensor,  # [N, R, D, 1] coarse depths
    weights: torch.Tensor,  # [N, R, D - 1, 1] compositing weights of the coarse pass
    num_samples: int,
    deterministic: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Fine depths ``[N, R, K, 1]`` drawn where the coarse weights (max-then-mean smoothed, +0.01) are high."""
    with torch.no_grad():
        n, r, d, _ = depths.shape
        z = depths.reshape(n * r, d)
        w = weights.reshape(n * r, 1, -1).float()
        w = F.max_pool1d(w, 2, 1, padding=1)
        w = F.avg_pool1d(w, 2, 1).squeeze(1) + 0.01
        mids = 0.5 * (z[:, :-1] + z[:, 1:])
        fine = sample_pdf(mids, w[:, 1:-1], num_samples, deterministic, generator)
    return fine.detach().reshape(n, r, num_samples, 1)


DensityFn = Callable[[torch.Tensor], torch.Tensor]
"""Raw field output -> volume density (the one place the two backbones differ in compositing)."""


def eg3d_density(sigma: torch.Tensor) -> torch.Tensor:
    """EG3D's density: ``softplus(sigma - 1)``."""
    return F.softplus(sigma - 1)


def sdf_density(sdf: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """StyleSDF's density from a signed distance: ``sigmoid(-sdf / beta) / beta`` (VolSDF-style, learnt ``beta``)."""
    return torch.sigmoid(-sdf / beta) / beta


def composite(
    colors: torch.Tensor,  # [N, R, D, C]
    densities: torch.Tensor,  # [N, R, D, 1] raw sigma
    depths: torch.Tensor,  # [N, R, D, 1] sorted
    white_back: bool = False,
    density_fn: DensityFn = eg3d_density,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MipNeRF compositing at interval midpoints (``MipRayMarcher2``).

    Returns colour ``[N, R, C]`` scaled to [-1, 1], *unclamped* depth ``[N, R, 1]`` (NaN where no
    weight) and weights ``[N, R, D - 1, 1]``. Density is ``density_fn`` of the midpoint sigma (EG3D: ``softplus(sigma - 1)``).
    """
    deltas = depths[:, :, 1:] - depths[:, :, :-1]
    colors_mid = (colors[:, :, :-1] + colors[:, :, 1:]) / 2
    densities_mid = density_fn((densities[:, :, :-1] + densities[:, :, 1:]) / 2)
    depths_mid = (depths[:, :, :-1] + depths[:, :, 1:]) / 2
    alpha = 1 - torch.exp(-densities_mid * deltas)
    shifted = torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], -2)
    weights = alpha * torch.cumprod(shifted, -2)[:, :, :-1]
    rgb = torch.sum(weights * colors_mid, -2)
    weight_total = weights.sum(2)
    # A ray with zero total weight has no depth (NaN, later clamped); the guarded division keeps its
    # gradient finite instead of NaN.
    depth = torch.where(
        weight_total > 0,
        torch.sum(weights * depths_mid, -2) / weight_total.clamp_min(1e-10),
        torch.full_like(weight_total, float("nan")),
    )
    if white_back:
        rgb = rgb + 1 - weight_total
    return rgb * 2 - 1, depth, weights


@dataclass
class RaySamples:
    """Points sampled along a batch of rays: the carrier between samplers, fields and compositing."""

    origins: torch.Tensor  # [N, R, 3]
    directions: torch.Tensor  # [N, R, 3] (unit for EG3D; camera-z-normalised for StyleSDF)
    depths: torch.Tensor  # [N, R, D, 1] along ``directions``

    @property
    def points(self) -> torch.Tensor:
        """World points ``[N, R, D, 3]``."""
        return self.origins.unsqueeze(-2) + self.depths * self.directions.unsqueeze(-2)


def pinhole_rays(
    cam2world: torch.Tensor, focal: torch.Tensor, resolution: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """OpenGL pinhole rays through pixel centres, row-major: origins, world directions, camera directions ``[N, res*res, 3]``.

    Directions are not normalised: their camera-space z is -1, so a depth along them is the camera-space depth
    (StyleSDF's convention). ``cam2world [N, 4, 4]`` has columns x, y, z (looking down -z); ``focal [N]`` is in pixels.
    """
    n = cam2world.shape[0]
    centres = torch.arange(resolution, dtype=cam2world.dtype, device=cam2world.device) + 0.5 - 0.5 * resolution
    rows, cols = torch.meshgrid(centres, centres, indexing="ij")
    f = focal.reshape(n, 1, 1).to(cam2world.dtype)
    cam_dirs = torch.stack(
        (cols.expand(n, -1, -1) / f, -rows.expand(n, -1, -1) / f, -torch.ones_like(rows).expand(n, -1, -1)), dim=-1
    )
    cam_dirs = cam_dirs.reshape(n, -1, 3)
    world_dirs = (cam_dirs[:, :, None, :] * cam2world[:, None, :3, :3]).sum(-1)  # R @ d per ray
    origins = cam2world[:, None, :3, 3].expand_as(world_dirs)
    return origins, world_dirs, cam_dirs


def sample_fixed_depths(near: torch.Tensor, far: torch.Tensor, num_rays: int, num_samples: int) -> torch.Tensor:
    """``num_samples`` depths per ray at ``near + (far - near) k / D``, k = 0..D-1 (StyleSDF's offset sampling, no jitter): ``[N, R, D, 1]``."""
    t = torch.linspace(0.0, 1.0 - 1.0 / num_samples, num_samples, device=near.device, dtype=near.dtype)
    depths = near.reshape(-1, 1) * (1.0 - t) + far.reshape(-1, 1) * t  # [N, D]
    return depths[:, None, :, None].expand(-1, num_rays, -1, -1)


@dataclass
class SampleComposite:
    """Per-ray results of :func:`composite_samples` (weights include the forced background)."""

    values: torch.Tensor  # [N, R, C] weighted sums of the per-sample values
    weights: torch.Tensor  # [N, R, D, 1]
    depth: torch.Tensor  # [N, R, 1] sum of weights x sample depth


def composite_samples(
    values: torch.Tensor,  # [N, R, D, C] per-sample values to integrate
    raw_density: torch.Tensor,  # [N, R, D, 1] field output (an SDF for StyleSDF)
    samples: RaySamples,
    density_fn: DensityFn,
    force_background: bool = True,
) -> SampleComposite:
    """Per-sample (NeRF) compositing: ``delta = dz |d|`` with an infinite last interval, exclusive transmittance.

    ``force_background`` gives the last sample whatever weight the others leave, so weights sum to 1 (StyleSDF inference).
    """
    depths = samples.depths
    norm = samples.directions.norm(dim=-1)[..., None, None]  # [N, R, 1, 1]
    dz = depths[:, :, 1:] - depths[:, :, :-1]
    deltas = torch.cat([dz, torch.full_like(depths[:, :, :1], 1e10)], dim=2) * norm
    alpha = 1 - torch.exp(-density_fn(raw_density) * deltas)
    transmittance = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :, :1]), 1 - alpha + 1e-10], dim=2), dim=2)[
        :, :, :-1
    ]
    weights = alpha * transmittance
    if force_background:
        weights = torch.cat([weights[:, :, :-1], 1 - weights[:, :, :-1].sum(2, keepdim=True)], dim=2)
    return SampleComposite(values=(weights * values).sum(2), weights=weights, depth=(weights * depths).sum(2))


FieldFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``field(points [N, M, 3], directions [N, M, 3]) -> (features [N, M, C], sigma [N, M, 1])``."""


@dataclass
class RenderOutput:
    """Per-ray results of :func:`render_rays`."""

    features: torch.Tensor  # [N, R, C] composited features in [-1, 1]
    depth: torch.Tensor  # [N, R, 1] expected depth, clamped to the sampled range
    weight_total: torch.Tensor  # [N, R, 1] accumulated opacity


def _render_chunk(
    field: FieldFn,
    origins: torch.Tensor,
    directions: torch.Tensor,
    opts: dict,
    deterministic: bool,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    n, r, _ = origins.shape
    depths = sample_stratified(
        (n, r), opts["ray_start"], opts["ray_end"], opts["depth_resolution"], deterministic, origins.device, generator
    )

    def query(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k = d.shape[2]
        pts = RaySamples(origins, directions, d).points.reshape(n, -1, 3)
        dirs = directions.unsqueeze(-2).expand(-1, -1, k, -1).reshape(n, -1, 3)
        feats, sigma = field(pts, dirs)
        return feats.reshape(n, r, k, feats.shape[-1]), sigma.reshape(n, r, k, 1)

    colors, sigma = query(depths)
    white_back = opts.get("white_back", False)
    n_fine = opts.get("depth_resolution_importance", 0)
    if n_fine > 0:
        _, _, weights = composite(colors, sigma, depths, white_back)
        depths_fine = sample_importance(depths, weights, n_fine, deterministic, generator)
        colors_fine, sigma_fine = query(depths_fine)
        depths = torch.cat([depths, depths_fine], dim=-2)
        order = torch.sort(depths, dim=-2).indices
        depths = torch.gather(depths, -2, order)
        colors = torch.gather(torch.cat([colors, colors_fine], dim=-2), -2, order.expand(-1, -1, -1, colors.shape[-1]))
        sigma = torch.gather(torch.cat([sigma, sigma_fine], dim=-2), -2, order)
    rgb, depth, weights = composite(colors, sigma, depths, white_back)
    return rgb, depth, weights.sum(2), depths


def render_rays(
    field: FieldFn,
    origins: torch.Tensor,  # [N, R, 3]
    directions: torch.Tensor,  # [N, R, 3]
    rendering_kwargs: dict,
    deterministic: bool = False,
    generator: torch.Generator | None = None,
    chunk_size: int | None = None,  # rays per chunk (None = all at once); bounds peak memory
) -> RenderOutput:
    """Two-pass (stratified then importance) volume rendering of ``field`` along the rays.

    Chunking is exact: the depth clamp uses the range of depths over all chunks, as the
    official renderer does over the whole batch.
    """
    if rendering_kwargs.get("ray_start") == "auto" or rendering_kwargs.get("ray_end") == "auto":
        raise NotImplementedError("ray_start/ray_end='auto' (ray-box limits) is not supported; give numbers")
    if rendering_kwargs.get("clamp_mode", "softplus") != "softplus":
        raise ValueError("only clamp_mode='softplus' is supported (as EG3D's MipRayMarcher2)")
    r = origins.shape[1]
    step = r if chunk_size is None else max(1, int(chunk_size))
    rgbs, depths, totals = [], [], []
    lo = hi = None  # the depth range over all chunks, kept on the device (no host sync per chunk)
    for s in range(0, r, step):
        rgb, depth, total, all_depths = _render_chunk(
            field, origins[:, s : s + step], directions[:, s : s + step], rendering_kwargs, deterministic, generator
        )
        low, high = all_depths.amin(), all_depths.amax()
        lo, hi = (low, high) if lo is None else (torch.minimum(lo, low), torch.maximum(hi, high))
        rgbs.append(rgb)
        depths.append(depth)
        totals.append(total)
    depth = torch.nan_to_num(torch.cat(depths, 1), float("inf")).clamp(lo, hi)
    return RenderOutput(features=torch.cat(rgbs, 1), depth=depth, weight_total=torch.cat(totals, 1))
