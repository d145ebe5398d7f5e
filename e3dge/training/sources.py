"""Where training gets its pieces: the frozen backbone (any generator e3dge serves), encoders, real images.

Named sources beyond the built-in ones (the toy lab's generator, E0 and photo-like heads) are registered by
their own packages: an ``e3dge.sources`` entry point names a function that calls :func:`register_source`, so
training never imports them (the toy lab sits above training).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from PIL import Image

from e3dge.backbones.base import Backbone
from e3dge.backbones.eg3d.network import TriPlaneGenerator, eg3d_config
from e3dge.backbones.registry import backbone_for
from e3dge.backbones.stylesdf.network import StyleSDFGenerator, StyleSDFMeanLatents, stylesdf_config
from e3dge.core.errors import UserError
from e3dge.core.hub import read_config, resolve_file
from e3dge.encoders import GlobalEncoder
from e3dge.encoders.flows import batch_encoder, trainable_encoder
from e3dge.encoders.stylesdf_encoder import StyleSDFGlobalEncoder
from e3dge.training.pseudo_pairs import ensure_w_avg

__all__ = [
    "load_generator",
    "load_backbone",
    "load_encoder",
    "RealImages",
    "make_real_source",
    "photo_pairs",
    "register_source",
    "GENERATOR_CLASSES",
    "ENCODER_CLASSES",
    "SourceKind",
]

SourceKind = Literal["generator", "encoder", "real_images", "photo_pairs"]
_SOURCES: dict[SourceKind, dict[str, Callable]] = {"generator": {}, "encoder": {}, "real_images": {}, "photo_pairs": {}}
_PLUGINS_LOADED = False

GENERATOR_CLASSES = {"TriPlaneGenerator": TriPlaneGenerator, "StyleSDFGenerator": StyleSDFGenerator}
"""The generator classes a saved folder may hold (its ``config.json`` names one)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def register_source(kind: SourceKind, name: str, factory: Callable) -> None:
    """Make ``name`` a valid ``kind`` source: ``generator``/``encoder``: ``factory() -> module``; ``real_images``:
    ``factory(resolution, cfg) -> object with sample(n, generator)``; ``photo_pairs``: ``factory(z, label, query_label,
    photo_resolution, target_resolution) -> (photo, target)``."""
    _SOURCES[kind][name] = factory


def _registered(kind: SourceKind) -> dict[str, Callable]:
    """The named sources of ``kind``, after every installed ``e3dge.sources`` entry point has registered its own."""
    global _PLUGINS_LOADED
    if not _PLUGINS_LOADED:
        _PLUGINS_LOADED = True
        for entry in importlib.metadata.entry_points(group="e3dge.sources"):
            entry.load()()
    return _SOURCES[kind]


def load_generator(spec: str, device: torch.device | str = "cpu") -> torch.nn.Module:
    """``toy`` (shipped toy EG3D), ``tiny-random`` / ``tiny-random-stylesdf`` (seeded random tiny models), or a saved
    generator folder / Hub id (EG3D or StyleSDF, as its ``config.json`` says; e.g. a converted bundle's ``generator/``)."""
    if spec in _registered("generator"):
        G = _registered("generator")[spec]()
    elif spec in ("tiny-random", "tiny-random-stylesdf"):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            G = (
                TriPlaneGenerator(**eg3d_config("tiny"))
                if spec == "tiny-random"
                else StyleSDFGenerator(**stylesdf_config("tiny"))
            )
    else:
        name = read_config(resolve_file(spec, "config.json")).get("_class_name", "TriPlaneGenerator")
        if name not in GENERATOR_CLASSES:
            raise UserError(
                f"{spec}: holds a {str(name)[:60]}, not a generator ({', '.join(GENERATOR_CLASSES)}); pass a bundle's generator folder"
            )
        G = GENERATOR_CLASSES[name].from_pretrained(spec)
    return G.to(device).eval().requires_grad_(False)


def load_backbone(spec: str, device: torch.device | str = "cpu") -> Backbone:
    """:func:`load_generator` behind its backbone adapter, with the mean latent truncation needs.

    EG3D: ``w_avg`` estimated on a copy when the generator never tracked it. StyleSDF: the mean latents drawn as
    ``e3dge convert stylesdf`` draws them (10k z, seed 2), so a converted bundle's own ``latent_mean`` comes out again.
    """
    G = load_generator(spec, device)
    if isinstance(G, StyleSDFGenerator):
        return backbone_for(G, StyleSDFMeanLatents.estimate(G).to(G.renderer.sigmoid_beta.device))
    return backbone_for(ensure_w_avg(G))


class RealImages:
    """Unlabelled aligned face crops from a folder (e.g. ``e3dge align`` output), cycled in a seeded order."""

    def __init__(self, folder: str | Path, resolution: int) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(
                f"real_data folder {str(folder)!r} does not exist; align photos first: e3dge align IN_DIR {folder}"
            )
        self.files = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise FileNotFoundError(f"real_data folder {str(folder)!r} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        self.resolution = resolution

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``[n, 3, R, R]`` in [-1, 1]."""
        idx = torch.randint(len(self.files), (n,), generator=generator).tolist()
        imgs = []
        for i in idx:
            with Image.open(self.files[i]) as im:
                im = im.convert("RGB").resize((self.resolution, self.resolution), Image.LANCZOS)
                imgs.append(torch.from_numpy(np.asarray(im, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1)
        return torch.stack(imgs)


def make_real_source(spec: str | None, resolution: int, cfg=None):
    """None, a registered source (the toy lab's ``'toy-photos'``) or :class:`RealImages` (a folder)."""
    if spec is None:
        return None
    if spec in _registered("real_images"):
        return _registered("real_images")[spec](resolution, cfg)
    return RealImages(spec, resolution)


ENCODER_CLASSES = {"GlobalEncoder": GlobalEncoder, "StyleSDFGlobalEncoder": StyleSDFGlobalEncoder}
"""The E0 classes a saved folder may hold (its ``config.json`` names one)."""


def load_encoder(spec: str, backbone: Backbone) -> torch.nn.Module:
    """A frozen E0 for ``backbone`` that maps photos to an ``EncoderOutput`` in its latent layout.

    ``spec``: a registered E0 (the toy lab's ``'toy'``), ``tiny-random`` (a seeded fresh tiny E0, for tests) or a
    folder / Hub id holding a ``GlobalEncoder`` or a StyleSDF E0 (a Stage I run's ``final/``, a bundle's ``encoder/``).
    """
    if spec in _registered("encoder"):
        E = _registered("encoder")[spec]()
    elif spec == "tiny-random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            E = trainable_encoder(backbone, "tiny")
    else:
        name = read_config(resolve_file(spec, "config.json")).get("_class_name", "GlobalEncoder")
        if name not in ENCODER_CLASSES:
            raise UserError(
                f"{spec}: holds a {str(name)[:60]}, not an E0 ({', '.join(ENCODER_CLASSES)}); pass a Stage I run's final/ folder"
            )
        E = ENCODER_CLASSES[name].from_pretrained(spec)
    return batch_encoder(backbone, E).to(backbone.device).eval().requires_grad_(False)


def photo_pairs(spec: str) -> Callable:
    """The registered photo-pair source ``spec`` (Stage II's ``data``): ``(z, label, query_label, photo_res, target_res) -> (photo, target)``."""
    sources = _registered("photo_pairs")
    if spec not in sources:
        raise UserError(f"no photo-pair source {spec!r}; registered: {', '.join(sorted(sources)) or 'none'}")
    return sources[spec]
