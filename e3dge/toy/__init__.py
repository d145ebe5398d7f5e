"""Toy lab: procedural 3D heads with exact ground truth, and a tiny EG3D distilled from them."""

from e3dge.toy.heads import FACTOR_NAMES, HeadFactorMap, HeadLabels, sdf_at
from e3dge.toy.render import HeadRender, render_heads

__all__ = ["FACTOR_NAMES", "HeadFactorMap", "HeadLabels", "sdf_at", "HeadRender", "render_heads"]
