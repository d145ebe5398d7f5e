"""Plain-PyTorch versions of the StyleGAN2 kernels EG3D relies on (no custom CUDA ops).

Each function reproduces the *reference* path of NVIDIA's ``torch_utils.ops`` numerically:
FIR filtering (``upfirdn2d``), bias + activation with gain and clamp (``bias_act``), and the
modulated / demodulated convolution with optional 2x transposed-conv up-sampling.
Layouts: ``N`` batch, ``C``/``I``/``O`` channels, ``H``/``W`` pixels, ``k`` kernel taps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "apply_film",
    "device_generator",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
    "bias_act",
    "modulated_conv2d",
    "normalize_2nd_moment",
]

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


def setup_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """Separable FIR filter ``[k, k]`` (outer product of ``taps``), normalised to sum 1."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up: int = 1, padding: Sequence[int] = (0, 0, 0, 0), gain: float = 1.0):
    """Zero-insert up-sample by ``up``, pad ``(x0, x1, y0, y1)``, then filter ``x [N, C, H, W]`` with ``f [k, k]``.

    The filter is scaled by ``gain`` (``gain ** (ndim / 2)`` per axis, as upfirdn2d does) and applied as a
    true convolution (flipped), matching ``flip_filter=False`` in the reference implementation.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = padding
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype).flip([0, 1])
    weight = f[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, weight, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """2x FIR up-sampling of an image (StyleGAN2's skip connection between blocks)."""
    k = f.shape[-1]
    p0, p1 = (k + up - 1) // 2, (k - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up**2)


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """``clamp(act(x + b) * gain)`` on channel dim 1; ``act`` is ``'linear'`` or ``'lrelu'`` (slope 0.2).

    ``gain`` defaults to the activation's own gain (1 for linear, sqrt(2) for lrelu).
    """
    if b is not None:
        x = x + b.reshape([1, -1] + [1] * (x.ndim - 2))
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
        default_gain = LRELU_GAIN
    elif act == "linear":
        default_gain = 1.0
    else:
        raise ValueError(f"unsupported activation {act!r}: use 'linear' or 'lrelu'")
    gain = default_gain if gain is None else gain
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def modulated_conv2d(
    x: torch.Tensor,  # [N, I, H, W] input activations
    weight: torch.Tensor,  # [O, I, k, k] convolution weight
    styles: torch.Tensor,  # [N, I] per-sample modulation
    noise: torch.Tensor | None = None,  # broadcastable to the output, added after demodulation
    up: int = 1,  # 1 or 2 (transposed conv + FIR filter)
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
) -> torch.Tensor:
    """StyleGAN2 modulated convolution as one grouped conv (the official ``fused_modconv`` path)."""
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = weight[None] * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, k, k]
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
        w = w * dcoefs.reshape(n, out_ch, 1, 1, 1)
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    if up == 1:
        x = F.conv2d(x, w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype), padding=padding, groups=n)
    elif up == 2:
        if resample_filter is None:
            raise ValueError("up=2 needs a resample_filter")
        fk = resample_filter.shape[-1]
        # Transposed conv with stride 2, then the FIR filter removes the aliasing (conv2d_resample).
        p0 = padding + (fk + up - 1) // 2 - (kw - 1)
        p1 = padding + (fk - up) // 2 - (kw - up)
        w_t = w.reshape(n, out_ch, in_ch, kh, kw).transpose(1, 2).reshape(n * in_ch, out_ch, kh, kw)
        pt = max(min(-p0, -p1), 0)
        x = F.conv_transpose2d(x, w_t.to(x.dtype), stride=2, padding=pt, groups=n)
        x = upfirdn2d(x, resample_filter, padding=(p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=up**2)
    else:
        raise ValueError(f"up must be 1 or 2, got {up}")
    x = x.reshape(n, out_ch, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` to unit root-mean-square along ``dim`` (StyleGAN's pixel norm for z and embeddings)."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def device_generator(generator: torch.Generator, device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded from one draw of the CPU ``generator`` (so CPU and CUDA runs draw reproducibly)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def apply_film(features: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """``(alpha + 1) * features + beta``: zero modulations leave the features unchanged (the official FiLM form)."""
    return torch.addcmul(features + beta, alpha, features)  # the same sum in two passes over the features, not three
