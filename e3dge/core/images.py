"""The one conversion between pixels (``uint8 [H, W, 3]``) and model images (``[N, 3, H, W]`` in [-1, 1])."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["to_uint8", "to_uint8_batch", "to_model_input", "resize_square"]


def to_uint8_batch(images: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` in [-1, 1] -> ``uint8 [N, H, W, 3]`` (clamped, rounded)."""
    return ((images.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[1, 3, H, W]`` (or ``[3, H, W]``) in [-1, 1] -> ``uint8 [H, W, 3]``."""
    return to_uint8_batch(image if image.ndim == 4 else image[None])[0]


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square images ``[N, C, S, S]`` resized to ``size`` (bilinear, antialiased when shrinking); unchanged at that size."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)


def to_model_input(pixels: np.ndarray, size: int | None, device: torch.device | str) -> torch.Tensor:
    """``uint8 [H, W, 3]`` -> ``[1, 3, size, size]`` in [-1, 1] (``size=None``: its own size)."""
    x = torch.from_numpy(np.array(pixels, copy=True)).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
    return x if size is None else resize_square(x, size)
