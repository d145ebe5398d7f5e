"""MAE / PSNR / SSIM: numbers equal scikit-image's for the same images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from e3dge.metrics.image import mae, psnr, ssim


def test_ssim_and_psnr_match_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 3, 40, 48, generator=g) * 2 - 1).double()
    y = (x + 0.3 * torch.randn(2, 3, 40, 48, generator=g, dtype=torch.float64)).clamp(-1, 1)
    for i in range(2):
        a = ((x[i] + 1) / 2).permute(1, 2, 0).numpy()
        b = ((y[i] + 1) / 2).permute(1, 2, 0).numpy()
        ref = metrics.structural_similarity(
            a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=-1
        )
        assert float(ssim(x, y)[i]) == pytest.approx(ref, abs=1e-10)
        assert float(psnr(x, y)[i]) == pytest.approx(metrics.peak_signal_noise_ratio(a, b, data_range=1), abs=1e-8)
        assert float(mae(x, y)[i]) == pytest.approx(np.abs(a - b).mean(), abs=1e-12)


def test_identical_images_and_errors():
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-6) and float(mae(x, x)) == 0
    assert float(ssim(x, -x)) < 0.5
    with pytest.raises(ValueError, match="one shape"):
        mae(x, x[..., :8])
    with pytest.raises(ValueError, match="larger than 11"):
        ssim(x[..., :8, :8], x[..., :8, :8])
