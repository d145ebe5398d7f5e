"""Quality gates of a distilled toy generator, measured against the exact procedural heads.

Held-out latents (a seed the trainer never uses) at random cameras: PSNR of the raw render,
depth error on the head mask, and linear separability of attributes in W.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from e3dge.backbones.eg3d.network import TriPlaneGenerator
from e3dge.metrics.image import psnr as image_psnr
from e3dge.toy.distill import random_cameras
from e3dge.toy.heads import HeadFactorMap
from e3dge.toy.render import render_heads

__all__ = ["RenderGates", "SeparabilityGate", "psnr", "measure_render_gates", "fit_logistic", "measure_separability"]

HELD_OUT_SEED = 10_000
"""Seed of held-out latents/cameras (the trainer draws from ``seed + 1`` streams of small seeds)."""


@dataclass
class RenderGates:
    """Generator vs procedural render at the same cameras (means over heads)."""

    psnr_db: float  # image_raw vs procedural image, both at `resolution`, pixel values in [0, 1]
    depth_mae: float  # world units, on the procedural head mask
    depth_mae_fraction: float  # depth_mae / (ray_end - ray_start)
    mask_iou: float  # IoU of (generator opacity > 0.5) and the procedural mask
    num_heads: int
    resolution: int
    psnr_sr_db: float = float("nan")  # the super-resolved output average-pooled to `resolution` (info)


@dataclass
class SeparabilityGate:
    """Held-out accuracy of a linear (logistic) classifier on w for one binary attribute."""

    attribute: str
    accuracy: float
    train_size: int
    test_size: int


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images ``[N, 3, H, W]`` in [-1, 1], measured on the [0, 1] scale."""
    return image_psnr(a.clamp(-1, 1), b.clamp(-1, 1))


@torch.no_grad()
def measure_render_gates(
    G: TriPlaneGenerator, num_heads: int = 64, resolution: int = 64, batch: int = 8, seed: int = HELD_OUT_SEED
) -> RenderGates:
    """PSNR, depth MAE and mask IoU at random cameras for held-out z (deterministic rendering)."""
    fm = HeadFactorMap(G.z_dim)
    gen = torch.Generator().manual_seed(seed)
    z_all = torch.randn(num_heads, G.z_dim, generator=gen)
    c_all = random_cameras(num_heads, gen)
    rk = G.rendering_kwargs
    psnrs, errs, ious, psnrs_sr = [], [], [], []
    for s in range(0, num_heads, batch):
        z, c = z_all[s : s + batch], c_all[s : s + batch]
        out = G.synthesis(G.mapping(z, c), c, neural_rendering_resolution=resolution, deterministic=True)
        ref = render_heads(fm.factors(z), c, resolution, ray_start=rk["ray_start"], ray_end=rk["ray_end"])
        psnrs.append(psnr(out.image_raw, ref.image))
        psnrs_sr.append(psnr(torch.nn.functional.adaptive_avg_pool2d(out.image, resolution), ref.image))
        m = ref.mask
        errs.append(((out.depth - ref.depth).abs() * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1))
        pred = out.mask > 0.5
        inter = (pred & (m > 0.5)).flatten(1).sum(1).float()
        union = (pred | (m > 0.5)).flatten(1).sum(1).float()
        ious.append(inter / union.clamp_min(1))
    mae = float(torch.cat(errs).mean())
    return RenderGates(
        psnr_db=float(torch.cat(psnrs).mean()),
        depth_mae=mae,
        depth_mae_fraction=mae / (rk["ray_end"] - rk["ray_start"]),
        mask_iou=float(torch.cat(ious).mean()),
        num_heads=num_heads,
        resolution=resolution,
        psnr_sr_db=float(torch.cat(psnrs_sr).mean()),
    )


def fit_logistic(
    x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3, iters: int = 200
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logistic regression (L-BFGS) on standardised features; returns ``(weight [D], bias)`` in raw feature units."""
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    xs = (x - mean) / std
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xs @ w + b, y.float()) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    w_raw = (w / std).detach()
    return w_raw, (b - (mean * w_raw).sum()).detach()


@torch.no_grad()
def measure_separability(
    G: TriPlaneGenerator, train_size: int = 2000, test_size: int = 1000, seed: int = HELD_OUT_SEED
) -> list[SeparabilityGate]:
    """Accuracy of linear classifiers on w (first w row) for smile and glasses, on held-out latents."""
    fm = HeadFactorMap(G.z_dim)
    z = torch.randn(train_size + test_size, G.z_dim, generator=torch.Generator().manual_seed(seed + 1))
    c = random_cameras(len(z), torch.Generator().manual_seed(seed + 2))
    w = G.mapping(z, c)[:, 0]
    labels = fm.labels(fm.factors(z))
    gates = []
    for name, y in (("smile", labels.is_smiling), ("glasses", labels.glasses)):
        with torch.enable_grad():
            weight, bias = fit_logistic(w[:train_size], y[:train_size])
        pred = (w[train_size:] @ weight + bias) > 0
        acc = float((pred == y[train_size:]).float().mean())
        gates.append(SeparabilityGate(name, acc, train_size, test_size))
    return gates
