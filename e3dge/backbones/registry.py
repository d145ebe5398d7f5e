"""Which adapter serves which generator class (a bundle's ``pipeline.json`` names the class; nothing else is looked up)."""

from __future__ import annotations

import torch

from e3dge.backbones.base import Backbone
from e3dge.backbones.eg3d.adapter import EG3DBackbone
from e3dge.backbones.eg3d.network import TriPlaneGenerator
from e3dge.backbones.stylesdf.adapter import StyleSDFBackbone
from e3dge.backbones.stylesdf.network import StyleSDFGenerator, StyleSDFMeanLatents
from e3dge.core.errors import UserError

__all__ = ["ADAPTERS", "backbone_for", "bundle_slots"]

ADAPTERS: dict[str, type] = {"TriPlaneGenerator": EG3DBackbone, "StyleSDFGenerator": StyleSDFBackbone}
"""Generator class name -> its backbone adapter."""


def bundle_slots(generator_class: str) -> tuple[str, ...]:
    """The bundle components a pipeline over ``generator_class`` can use."""
    if generator_class not in ADAPTERS:
        raise UserError(f"no backbone adapter for a {generator_class}; e3dge serves {', '.join(sorted(ADAPTERS))}")
    return ADAPTERS[generator_class].bundle_slots


def backbone_for(generator: torch.nn.Module, latent_mean: StyleSDFMeanLatents | None = None) -> Backbone:
    """The adapter of ``generator`` (StyleSDF takes the bundle's fixed mean latents)."""
    if isinstance(generator, StyleSDFGenerator):
        return StyleSDFBackbone(generator, latent_mean)
    if isinstance(generator, TriPlaneGenerator):
        if latent_mean is not None:
            raise UserError(
                "a latent_mean component belongs to StyleSDF bundles; EG3D keeps w_avg in its mapping network"
            )
        return EG3DBackbone(generator)
    raise UserError(f"no backbone adapter for a {type(generator).__name__}; e3dge serves {', '.join(sorted(ADAPTERS))}")
