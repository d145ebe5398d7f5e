"""Where the shipped toy models live, and their loaders (read from the package; no network)."""

from __future__ import annotations

from pathlib import Path

from e3dge.backbones.eg3d.network import TriPlaneGenerator
from e3dge.encoders import GlobalEncoder

__all__ = ["TOY_WEIGHTS_DIR", "TOY_ENCODER_DIR", "load_toy_generator", "load_toy_encoder"]

TOY_WEIGHTS_DIR = Path(__file__).resolve().parent / "assets" / "toy-eg3d"
"""The shipped toy EG3D: config.json + model.safetensors + README.md (its card)."""

TOY_ENCODER_DIR = Path(__file__).resolve().parent / "assets" / "toy-e0"
"""The shipped Stage I encoder E0 for the toy EG3D (``e3dge train stage1 --config toy``) + its card."""


def load_toy_generator(device: str = "cpu"):
    """The shipped toy EG3D (``TriPlaneGenerator``, eval mode, no grads), read from the package; no network.

    Its latent z is the procedural heads' latent: ``G(z)`` renders ``HeadFactorMap().factors(z)``'s head.
    """
    G = TriPlaneGenerator.from_pretrained(TOY_WEIGHTS_DIR, local_files_only=True, device=device)
    return G.eval().requires_grad_(False)


def load_toy_encoder(device: str = "cpu"):
    """The shipped toy E0 (``GlobalEncoder``, eval mode, no grads): toy-world images -> ``w`` + pose; no network."""
    E = GlobalEncoder.from_pretrained(TOY_ENCODER_DIR, local_files_only=True, device=device)
    return E.eval().requires_grad_(False)
