"""The one typed output every 3D GAN backbone returns from ``synthesis``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["GeneratorOutput", "PointQuery"]


@dataclass
class GeneratorOutput:
    """A rendered batch: super-resolved image, raw neural render, depth, opacity, features, tri-planes."""

    image: torch.Tensor  # [N, 3, R, R] super-resolved, about [-1, 1]
    image_raw: torch.Tensor  # [N, 3, r, r] volume-rendered colour
    depth: torch.Tensor  # [N, 1, r, r] expected distance along the ray
    mask: torch.Tensor  # [N, 1, r, r] accumulated opacity
    features: torch.Tensor  # [N, C, r, r] volume-rendered features (the SR input)
    planes: torch.Tensor  # [N, 3, C, H, W] tri-planes (pass back as ``planes=`` to skip the backbone)


@dataclass
class PointQuery:
    """Raw density and decoder features at arbitrary points."""

    sigma: torch.Tensor  # [N, M, 1] raw density (volume density is softplus(sigma - 1) for EG3D)
    features: torch.Tensor  # [N, M, C]
