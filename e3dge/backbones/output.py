"""The one typed output every 3D GAN backbone returns from ``synthesis``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["GeneratorOutput", "PointQuery"]


@dataclass
class GeneratorOutput:
    """A rendered batch: final image, raw neural render, depth, opacity, features, tri-planes (EG3D) or surface points (StyleSDF)."""

    image: torch.Tensor  # [N, 3, R, R] super-resolved (EG3D) / decoded (StyleSDF), about [-1, 1]
    image_raw: torch.Tensor  # [N, 3, r, r] volume-rendered colour
    depth: torch.Tensor  # [N, 1, r, r] EG3D: expected distance along the ray; StyleSDF: expected camera-space depth
    mask: torch.Tensor  # [N, 1, r, r] accumulated opacity
    features: torch.Tensor  # [N, C, r, r] volume-rendered features (the SR input)
    planes: (
        torch.Tensor | None
    )  # [N, 3, C, H, W] EG3D tri-planes (pass back as ``planes=`` to skip the backbone); None for StyleSDF
    xyz: torch.Tensor | None = None  # [N, 3, r, r] expected world surface point per pixel (StyleSDF)


@dataclass
class PointQuery:
    """Raw density and decoder features at arbitrary points."""

    sigma: torch.Tensor  # [N, M, 1] raw density (volume density is softplus(sigma - 1) for EG3D)
    features: torch.Tensor  # [N, M, C]
