"""Pixel metrics for reconstructions: MAE, PSNR and SSIM on images in [-1, 1] (measured on the [0, 1] scale)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["mae", "psnr", "ssim"]


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(
            f"expected two image batches [N, C, H, W] of one shape, got {list(x.shape)} and {list(y.shape)}"
        )


def mae(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean absolute error ``[N]`` on the [0, 1] scale."""
    _check(x, y)
    return ((x - y).abs() / 2).flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) ``[N]`` on the [0, 1] scale."""
    _check(x, y)
    mse = (((x - y) / 2) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-12))


def ssim(x: torch.Tensor, y: torch.Tensor, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Per-image SSIM ``[N]``: Gaussian window (11 taps at sigma 1.5), population statistics, [0, 1] scale.

    The same numbers as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1)``: borders within
    the window radius are left out of the mean.
    """
    _check(x, y)
    radius = int(3.5 * sigma + 0.5)
    if min(x.shape[-2:]) <= 2 * radius:
        raise ValueError(f"SSIM needs images larger than {2 * radius + 1} pixels, got {list(x.shape[-2:])}")
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = (g / g.sum()).to(x.dtype).to(x.device)
    c = x.shape[1]
    kx, ky = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(v: torch.Tensor) -> torch.Tensor:  # valid convolution: only the cropped interior is kept
        return F.conv2d(F.conv2d(v, kx, groups=c), ky, groups=c)

    a, b = (x + 1) / 2, (y + 1) / 2
    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = k1**2, k2**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.flatten(1).mean(1)
