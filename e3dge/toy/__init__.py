"""Toy lab: procedural 3D heads with exact ground truth, and a tiny EG3D distilled from them."""

from __future__ import annotations

from e3dge.toy.heads import FACTOR_NAMES, HeadFactorMap, HeadLabels, sdf_at
from e3dge.toy.render import HeadRender, render_heads
from e3dge.toy.weights import TOY_ENCODER_DIR, TOY_WEIGHTS_DIR, load_toy_encoder, load_toy_generator

__all__ = [
    "FACTOR_NAMES",
    "HeadFactorMap",
    "HeadLabels",
    "sdf_at",
    "HeadRender",
    "render_heads",
    "TOY_WEIGHTS_DIR",
    "TOY_ENCODER_DIR",
    "load_toy_generator",
    "load_toy_encoder",
]
