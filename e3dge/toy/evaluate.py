"""Toy-lab evaluation of a Stage I encoder: image and depth error at the source and novel views.

Two input kinds, both from held-out seeds:
- ``synthetic``: the generator's own renders of held-out ``w`` (targets: the generator's images
  and depth for that ``w`` at each view — the paper's pseudo-pair setting);
- ``photo``: the toy world's photo-like procedural heads (targets: the procedural images and the
  exact depth of the SDF — ground truth no real dataset has).
Reconstructions are rendered at the true camera, so pose-head error is reported on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from e3dge.backbones.eg3d.network import TriPlaneGenerator
from e3dge.core.cameras import label_from_yaw_pitch
from e3dge.encoders import GlobalEncoder
from e3dge.metrics.image import mae, ssim
from e3dge.toy.heads import HeadFactorMap
from e3dge.toy.render import render_heads

__all__ = ["InversionScores", "evaluate_toy_inversion", "depth_error_pct", "DEPTH_RANGE"]

DEPTH_RANGE = 3.3 - 2.25  # FFHQ ray_end - ray_start: depth errors are reported as a fraction of it


@dataclass
class InversionScores:
    """Means over held-out inputs (images on the [0, 1] scale; depth as % of the ray range)."""

    kind: str
    source_mae: float
    source_ssim: float
    source_depth_pct: float
    novel_mae: float
    novel_ssim: float
    novel_depth_pct: float
    pose_error_deg: float
    lpips: float | None = None  # only with calibrated LPIPS weights


@torch.no_grad()
def evaluate_toy_inversion(
    E: GlobalEncoder,
    G: TriPlaneGenerator,
    kind: str = "synthetic",
    num: int = 48,
    seed: int = 4242,
    resolution: int = 64,
    novel_yaw: float = 0.5,
    batch: int = 8,
    truncation_psi: float = 0.7,
    lpips=None,
) -> InversionScores:
    """Score ``E`` on ``num`` held-out inputs of ``kind`` (``synthetic`` or ``photo``) at ``resolution``."""
    if kind not in ("synthetic", "photo"):
        raise ValueError(f"kind must be 'synthetic' or 'photo', got {kind!r}")
    E.eval()
    gen = torch.Generator().manual_seed(seed)
    fm = HeadFactorMap(G.z_dim)
    sums: dict[str, float] = {}
    count = 0
    for start in range(0, num, batch):
        n = min(batch, num - start)
        z = torch.randn(n, G.z_dim, generator=gen)
        yaw = (torch.rand(n, generator=gen) * 2 - 1) * 0.4
        pitch = (torch.rand(n, generator=gen) * 2 - 1) * 0.2
        yaw2 = yaw - novel_yaw * torch.sign(yaw + 1e-6)  # turn across the front: occluded parts become visible
        c1, c2 = label_from_yaw_pitch(yaw, pitch), label_from_yaw_pitch(yaw2, pitch)
        if kind == "synthetic":
            ws = G.mapping(z, c1, truncation_psi=truncation_psi)
            t1 = G.synthesis(ws, c1, neural_rendering_resolution=resolution, deterministic=True)
            t2 = G.synthesis(ws, c2, neural_rendering_resolution=resolution, deterministic=True)
            inp = t1.image.clamp(-1, 1)
            ref1, ref2 = (t1.image_raw.clamp(-1, 1), t1.depth, t1.mask), (t2.image_raw.clamp(-1, 1), t2.depth, t2.mask)
        else:
            f = fm.factors(z)
            inp = render_heads(f, c1, G.img_resolution, photo=True).image
            r1, r2 = render_heads(f, c1, resolution, photo=True), render_heads(f, c2, resolution, photo=True)
            ref1, ref2 = (r1.image, r1.depth, r1.mask), (r2.image, r2.depth, r2.mask)
        enc = E(inp)
        o1 = G.synthesis(enc.ws, c1, neural_rendering_resolution=resolution, deterministic=True)
        o2 = G.synthesis(enc.ws, c2, neural_rendering_resolution=resolution, deterministic=True)
        vals = {
            "source_mae": mae(o1.image_raw.clamp(-1, 1), ref1[0]),
            "source_ssim": ssim(o1.image_raw.clamp(-1, 1), ref1[0]),
            "source_depth_pct": depth_error_pct(o1.depth, ref1[1], ref1[2]),
            "novel_mae": mae(o2.image_raw.clamp(-1, 1), ref2[0]),
            "novel_ssim": ssim(o2.image_raw.clamp(-1, 1), ref2[0]),
            "novel_depth_pct": depth_error_pct(o2.depth, ref2[1], ref2[2]),
            "pose_error_deg": torch.rad2deg(torch.linalg.norm(enc.pose - torch.stack([yaw, pitch], 1), dim=1)),
        }
        if lpips is not None:
            vals["lpips"] = lpips(
                F.interpolate(o1.image_raw.clamp(-1, 1), size=256, mode="bilinear"),
                F.interpolate(ref1[0], size=256, mode="bilinear"),
            )
        for k, v in vals.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
        count += n
    means = {k: v / count for k, v in sums.items()}
    return InversionScores(kind=kind, **means)


def depth_error_pct(pred: torch.Tensor, ref: torch.Tensor, ref_mask: torch.Tensor) -> torch.Tensor:
    """Per-image mean |depth error| on the reference's opaque pixels, in % of the ray range ``[N]``."""
    on = (ref_mask > 0.5).to(pred.dtype)
    err = ((pred - ref).abs().clamp(max=DEPTH_RANGE) * on).flatten(1).sum(1) / on.flatten(1).sum(1).clamp_min(1)
    return 100 * err / DEPTH_RANGE
