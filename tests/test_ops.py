import numpy as np
import pytest
import torch
import torch.nn.functional as F

from e3dge.backbones.ops import bias_act, modulated_conv2d, normalize_2nd_moment, setup_filter, upfirdn2d, upsample2d


def _naive_upfirdn(x: np.ndarray, f: np.ndarray, up: int, pad: tuple[int, int, int, int], gain: float) -> np.ndarray:
    n, c, h, w = x.shape
    z = np.zeros((n, c, h * up, w * up), x.dtype)
    z[:, :, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    z = np.pad(z, ((0, 0), (0, 0), (py0, py1), (px0, px1)))
    k = f * gain
    kh, kw = k.shape
    out = np.zeros((n, c, z.shape[2] - kh + 1, z.shape[3] - kw + 1), x.dtype)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            out[:, :, i, j] = (z[:, :, i : i + kh, j : j + kw] * k[::-1, ::-1]).sum(axis=(2, 3))
    return out


def test_setup_filter_is_normalised_outer_product():
    f = setup_filter()
    assert f.shape == (4, 4)
    torch.testing.assert_close(f.sum(), torch.tensor(1.0))
    torch.testing.assert_close(f[0, 0] * 64, torch.tensor(1.0))


@pytest.mark.parametrize("up,pad,gain", [(1, (1, 1, 1, 1), 4.0), (2, (2, 1, 2, 1), 4.0), (1, (0, 0, 0, 0), 1.0)])
def test_upfirdn2d_matches_definition(up, pad, gain):
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    f = torch.tensor(
        [[1.0, 2.0, 0.5, 0.1], [0.3, 1.0, 2.0, 0.2], [0.0, 0.4, 1.0, 0.7], [1.0, 0.0, 0.2, 0.1]], dtype=torch.float64
    )
    ref = _naive_upfirdn(x.numpy(), f.numpy(), up, pad, gain)
    np.testing.assert_allclose(upfirdn2d(x, f, up=up, padding=pad, gain=gain).numpy(), ref, atol=1e-12)


def test_upsample2d_preserves_constant_images():
    x = torch.full((1, 2, 4, 4), 3.0)
    y = upsample2d(x, setup_filter())
    assert y.shape == (1, 2, 8, 8)
    torch.testing.assert_close(y[:, :, 2:-2, 2:-2], torch.full((1, 2, 4, 4), 3.0))


def test_modulated_conv_equals_per_sample_convolution():
    torch.manual_seed(0)
    x, weight, styles = torch.randn(3, 4, 8, 8), torch.randn(5, 4, 3, 3), torch.randn(3, 4)
    noise = torch.randn(1, 1, 8, 8)
    out = modulated_conv2d(x, weight, styles, noise=noise, padding=1)
    for i in range(3):
        w = weight * styles[i].reshape(1, 4, 1, 1)
        w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        ref = F.conv2d(x[i : i + 1], w, padding=1) + noise
        torch.testing.assert_close(out[i : i + 1], ref, atol=1e-5, rtol=1e-5)
    # demodulation makes every output channel unit-norm per sample, so style scale is irrelevant
    torch.testing.assert_close(
        modulated_conv2d(x, weight, styles * 7.0, padding=1),
        modulated_conv2d(x, weight, styles, padding=1),
        atol=1e-5,
        rtol=1e-5,
    )


def test_modulated_conv_upsampling_shape_and_linearity():
    torch.manual_seed(0)
    x1, x2 = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8)
    weight, styles, f = torch.randn(5, 4, 3, 3), torch.randn(2, 4), setup_filter()
    y1 = modulated_conv2d(x1, weight, styles, up=2, padding=1, resample_filter=f)
    y12 = modulated_conv2d(x1 + 2 * x2, weight, styles, up=2, padding=1, resample_filter=f)
    y2 = modulated_conv2d(x2, weight, styles, up=2, padding=1, resample_filter=f)
    assert y1.shape == (2, 5, 16, 16)
    torch.testing.assert_close(y12, y1 + 2 * y2, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="resample_filter"):
        modulated_conv2d(x1, weight, styles, up=2, padding=1)


def test_bias_act_gain_and_clamp():
    x = torch.tensor([[-2.0, 1.0, 300.0]]).reshape(1, 3, 1, 1)
    y = bias_act(x, torch.tensor([0.0, 1.0, 0.0]), act="lrelu", clamp=256)
    expected = torch.tensor([-0.4 * 2**0.5, 2 * 2**0.5, 256.0]).reshape(1, 3, 1, 1)
    torch.testing.assert_close(y, expected)
    with pytest.raises(ValueError, match="lrelu"):
        bias_act(x, act="gelu")


def test_normalize_2nd_moment_gives_unit_rms():
    y = normalize_2nd_moment(torch.randn(4, 32) * 5)
    torch.testing.assert_close(y.square().mean(dim=1), torch.ones(4), atol=1e-5, rtol=0)
