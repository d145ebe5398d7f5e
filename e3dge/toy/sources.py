"""The toy lab's named training sources: its generator and E0 (``toy``), its photo-like heads (``toy-photos``).

:func:`register` is the ``e3dge.sources`` entry point (``pyproject.toml``): training looks these names up in
:mod:`e3dge.training.sources` without importing the toy lab.
"""

from __future__ import annotations

import torch

from e3dge.core.cameras import label_from_yaw_pitch
from e3dge.toy.heads import HeadFactorMap
from e3dge.toy.render import render_heads
from e3dge.toy.weights import load_toy_encoder, load_toy_generator
from e3dge.training.sources import register_source

__all__ = ["ToyPhotos", "toy_photo_pairs", "register"]


class ToyPhotos:
    """The toy world's "real photos": photo-like procedural heads (texture, freckles, speculars) at prior poses."""

    def __init__(
        self,
        resolution: int,
        z_dim: int = 32,
        yaw_std: float = 0.3,
        pitch_std: float = 0.15,
        yaw_max: float = 0.7,
        pitch_max: float = 0.3,
    ) -> None:
        self.resolution, self.factor_map = resolution, HeadFactorMap(z_dim)
        self.prior = (yaw_std, pitch_std, yaw_max, pitch_max)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, 3, R, R]`` in [-1, 1]."""
        ys, ps, ym, pm = self.prior
        z = torch.randn(n, self.factor_map.z_dim, generator=generator)
        yaw = (torch.randn(n, generator=generator) * ys).clamp(-ym, ym)
        pitch = (torch.randn(n, generator=generator) * ps).clamp(-pm, pm)
        return render_heads(
            self.factor_map.factors(z), label_from_yaw_pitch(yaw, pitch), self.resolution, photo=True
        ).image


def _toy_photos(resolution: int, cfg=None) -> ToyPhotos:
    """:class:`ToyPhotos` at a Stage I config's pose prior (Stage II passes none: the defaults)."""
    kw = (
        {}
        if cfg is None
        else dict(yaw_std=cfg.yaw_std, pitch_std=cfg.pitch_std, yaw_max=cfg.yaw_max, pitch_max=cfg.pitch_max)
    )
    return ToyPhotos(resolution, **kw)


def toy_photo_pairs(
    z: torch.Tensor, label: torch.Tensor, query_label: torch.Tensor, photo_resolution: int, target_resolution: int
):
    """The photo-like head of each ``z`` at ``label`` (the input) and at ``query_label`` (the exact target), both in [-1, 1]."""
    factors = HeadFactorMap(z.shape[1]).factors(z)
    photo = render_heads(factors, label, photo_resolution, photo=True).image
    target = render_heads(factors, query_label, target_resolution, photo=True).image
    return photo, target


def register() -> None:
    """Register ``toy`` (generator, E0) and ``toy-photos`` (real images, Stage II photo pairs) with training."""
    register_source("generator", "toy", load_toy_generator)
    register_source("encoder", "toy", load_toy_encoder)
    register_source("real_images", "toy-photos", _toy_photos)
    register_source("photo_pairs", "toy-photos", toy_photo_pairs)
