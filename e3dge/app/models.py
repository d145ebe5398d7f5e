"""Which bundles the app offers, and one cached pipeline per (bundle, device) shared by every visitor."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import torch
from huggingface_hub import try_to_load_from_cache

from e3dge.backbones.eg3d.network import PRETRAINED_EG3D
from e3dge.inversion import InversionPipeline
from e3dge.inversion.bundle import BUNDLES

__all__ = ["BundleChoice", "available_bundles", "get_pipeline", "default_device"]

_LOCK = threading.Lock()
_PIPELINES: dict[tuple[str, str], object] = {}


@dataclass(frozen=True)
class BundleChoice:
    """A model in the selector: its label and what ``InversionPipeline.from_pretrained`` takes."""

    label: str
    source: str


def default_device() -> str:
    """``cuda`` when a GPU is visible (a Space with a GPU / ZeroGPU), else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _weights_cached(bundle) -> bool:
    """Whether every known checkpoint ``bundle`` names is already in the local Hub cache (so it loads offline)."""

    if bundle.spec is None:
        return bundle.offline
    for comp in bundle.spec.components.values():
        src = PRETRAINED_EG3D.get(comp.source or "")
        if src is None or not isinstance(try_to_load_from_cache(src.repo_id, src.filename, revision=src.revision), str):
            return False
    return True


def available_bundles(environ: dict[str, str] | None = None) -> list[BundleChoice]:
    """The toy bundle (always, offline), ``E3DGE_MODEL`` when set, and registry bundles that can load here.

    A registry bundle is listed when the Hub is reachable (it downloads once) or its weights are cached.
    """

    env = os.environ if environ is None else environ
    choices = [BundleChoice("toy (offline toy lab; cannot look like a real person)", "toy")]
    extra = env.get("E3DGE_MODEL", "").strip()
    if extra:
        choices.insert(0, BundleChoice(f"{extra} (E3DGE_MODEL)", extra))
    offline = env.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")
    for name, bundle in BUNDLES.items():
        if name in ("toy", extra):
            continue
        if _weights_cached(bundle):
            choices.append(BundleChoice(name, name))
        elif not offline:
            choices.append(BundleChoice(f"{name} (downloads its weights once)", name))
    return choices


def get_pipeline(source: str, device: str | None = None):
    """The shared ``InversionPipeline`` for ``source`` on ``device``, built once (models are only read afterwards)."""

    key = (source, device or default_device())
    with _LOCK:
        pipe = _PIPELINES.get(key)
        if pipe is None:
            pipe = InversionPipeline.from_pretrained(source, device=key[1])
            _PIPELINES[key] = pipe
    return pipe
