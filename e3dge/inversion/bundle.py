"""Pipeline bundles: ``pipeline.json`` naming each component's folder, on disk or on the Hugging Face Hub.

A bundle is a folder (or Hub repo) holding ``pipeline.json`` and one subfolder per component
(``config.json`` + ``model.safetensors`` each). A component may instead name a known checkpoint
(``"source": "eg3d-ffhqrebalanced512-128"``) or another Hub repo (``"repo"``, ``"revision"``).
Everything is validated before anything is built: unknown keys, unknown classes and subfolders
that leave the bundle are one-line errors naming the file. Known bundles live in :data:`BUNDLES`.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from e3dge.backbones.eg3d.network import PRETRAINED_EG3D
from e3dge.core.errors import UserError
from e3dge.core.hub import CheckpointNotFoundError, confined_file, hub_snapshot
from e3dge.core.options import OptionError, check_keys
from e3dge.toy import TOY_WEIGHTS_DIR

__all__ = [
    "PIPELINE_FILE",
    "COMPONENT_SLOTS",
    "ComponentSpec",
    "BundleSpec",
    "KnownBundle",
    "BUNDLES",
    "BundleError",
    "read_bundle_spec",
    "resolve_bundle",
    "component_class",
]

PIPELINE_FILE = "pipeline.json"
FORMAT_VERSION = 1
COMPONENT_SLOTS = (
    "generator",
    "encoder",
    "local_encoder",
    "aligner_2d",
    "fusion",
    "pose_estimator",
    "latent_mean",
    "toonify_generator",
    "toonify_encoder",
    "toonify_latent_mean",
)
"""Model slots of an inversion pipeline: the 3D GAN, E0 (+ pose head), Stage II's local branch; StyleSDF bundles add the
pose estimator (the official volume discriminator), their fixed mean latents and the optional Toonify pair."""
COMPONENT_CLASSES = {
    "TriPlaneGenerator": "e3dge.backbones.eg3d.network",
    "GlobalEncoder": "e3dge.encoders.global_encoder",
    "LocalEncoder": "e3dge.encoders.local",
    "ResidualAligner": "e3dge.encoders.aligner",
    "FeatureFusion": "e3dge.encoders.fusion",
    "StyleSDFGenerator": "e3dge.backbones.stylesdf.network",
    "StyleSDFMeanLatents": "e3dge.backbones.stylesdf.network",
    "StyleSDFGlobalEncoder": "e3dge.encoders.stylesdf_encoder",
    "VolumePoseEstimator": "e3dge.encoders.volume_pose",
}
"""e3dge class name -> module (the only classes a bundle may name)."""
_SPEC_KEYS = ("class", "subfolder", "source", "repo", "revision")
KNOWN_SOURCES: tuple[str, ...] = tuple(PRETRAINED_EG3D)
"""What a component's ``source`` may name: known official checkpoints (never a path)."""
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*/[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*")
"""A Hub repo id ``owner/name`` (no path: no leading dot, no ``..``, one slash)."""
_BUNDLE_KEYS = ("_class_name", "format", "components", "description", "aligner", "directions", "needs")


class BundleError(UserError, ValueError):
    """A pipeline bundle that cannot be used as it is."""


@dataclass(frozen=True)
class ComponentSpec:
    """Where one component comes from: a subfolder of the bundle, a known checkpoint, or another Hub repo."""

    cls: str
    subfolder: str | None = None
    source: str | None = None
    repo: str | None = None
    revision: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "class": self.cls,
            "subfolder": self.subfolder,
            "source": self.source,
            "repo": self.repo,
            "revision": self.revision,
        }
        return {k: v for k, v in out.items() if v is not None}


@dataclass
class BundleSpec:
    """The parsed ``pipeline.json``."""

    components: dict[str, ComponentSpec]
    description: str = ""
    aligner: dict[str, Any] = field(default_factory=lambda: {"convention": "eg3d", "detector": "hog"})
    directions: str | None = None  # subfolder with editing directions
    needs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "_class_name": "InversionPipeline",
            "format": FORMAT_VERSION,
            "description": self.description,
            "aligner": self.aligner,
            "components": {k: v.to_dict() for k, v in self.components.items()},
            "needs": self.needs,
        }
        if self.directions:
            out["directions"] = self.directions
        return out


@dataclass(frozen=True)
class KnownBundle:
    """A bundle e3dge knows by name: where it is and what it needs."""

    name: str
    spec: BundleSpec | None = None  # built in (no pipeline.json to fetch)
    path: Path | None = None  # a folder inside the package
    description: str = ""
    needs: tuple[str, ...] = ()
    offline: bool = False


def _toy_dir() -> Path:

    return TOY_WEIGHTS_DIR.parent


BUNDLES: dict[str, KnownBundle] = {
    "toy": KnownBundle(
        "toy",
        description="toy-lab EG3D + Stage I E0, shipped in the package (a procedural-heads world, not real faces)",
        offline=True,
    ),
    "eg3d-ffhq": KnownBundle(
        "eg3d-ffhq",
        spec=BundleSpec(
            {"generator": ComponentSpec("TriPlaneGenerator", source="eg3d-ffhqrebalanced512-128")},
            description="official EG3D FFHQ 512 (rebalanced) generator; no public E0 for it, so invert with optimize=True",
            needs=[
                "network once (Hub download of the official EG3D weights, cached afterwards)",
                "no encoder: invert(..., optimize=True)",
            ],
        ),
        description="official EG3D FFHQ generator from the Hub registry; optimisation-based inversion (no E0 published)",
        needs=("network once", "optimisation inversion (slow on CPU)"),
    ),
}
"""Known bundles: ``toy`` (offline, in the package) and the EG3D FFHQ registry entry (StyleSDF bundles come from ``e3dge convert``)."""


def component_class(name: str, where: str = ""):
    """The e3dge class a bundle names (only :data:`COMPONENT_CLASSES`; nothing else is imported)."""
    if name not in COMPONENT_CLASSES:
        check_keys([name], COMPONENT_CLASSES, what="component class", where=where)

    return getattr(importlib.import_module(COMPONENT_CLASSES[name]), name)


def _safe_subfolder(sub: Any, where: str) -> str:
    """A relative path inside the bundle (no absolute paths, no ``..``)."""
    if not isinstance(sub, str) or not sub:
        raise BundleError(f"{where}: subfolder must be a non-empty string, got {sub!r}")
    p = PurePosixPath(sub)
    if p.is_absolute() or ".." in p.parts or "\\" in sub or ":" in sub:
        raise BundleError(f"{where}: subfolder {sub!r} must stay inside the bundle (a relative path without '..')")
    return sub


def _parse_component(slot: str, raw: Any, where: str) -> ComponentSpec:
    if not isinstance(raw, dict):
        raise BundleError(f"{where}: component {slot!r} must be a mapping, got {type(raw).__name__}")
    check_keys(raw, _SPEC_KEYS, what=f"key of component {slot!r}", where=where)
    cls = raw.get("class")
    if not isinstance(cls, str):
        raise BundleError(f"{where}: component {slot!r} needs a 'class' (one of {sorted(COMPONENT_CLASSES)})")
    component_class(cls, where)
    given = [k for k in ("subfolder", "source", "repo") if raw.get(k) is not None]
    if not given:
        raise BundleError(f"{where}: component {slot!r} needs a 'subfolder', a 'source' or a 'repo'")
    for key in ("source", "repo", "revision"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise BundleError(f"{where}: {key} of component {slot!r} must be a string, got {raw[key]!r}")
    if raw.get("source") is not None and raw["source"] not in KNOWN_SOURCES:
        raise BundleError(
            f"{where}: source of component {slot!r} must name a known checkpoint ({', '.join(KNOWN_SOURCES)}), got "
            f"{raw['source'][:80]!r}; weights on disk belong in a subfolder of the bundle"
        )
    if raw.get("repo") is not None and not HUB_ID.fullmatch(raw["repo"]):
        raise BundleError(
            f"{where}: repo of component {slot!r} must be a Hub id 'owner/name', got {raw['repo'][:80]!r}; "
            "weights on disk belong in a subfolder of the bundle"
        )
    sub = _safe_subfolder(raw["subfolder"], where) if raw.get("subfolder") is not None else None
    return ComponentSpec(cls, sub, raw.get("source"), raw.get("repo"), raw.get("revision"))


def parse_bundle_spec(data: Any, where: str) -> BundleSpec:
    """Validate a ``pipeline.json`` mapping (keys, classes, slots, paths) into a :class:`BundleSpec`."""
    try:
        return _parse_bundle_spec(data, where)
    except OptionError as err:  # unknown keys / classes: the same one line, as a bundle error
        raise BundleError(str(err)) from None


def _parse_bundle_spec(data: Any, where: str) -> BundleSpec:
    if not isinstance(data, dict):
        raise BundleError(f"{where}: {PIPELINE_FILE} must hold a mapping, got {type(data).__name__}")
    check_keys(data, _BUNDLE_KEYS, what="pipeline key", where=where)
    if data.get("_class_name", "InversionPipeline") != "InversionPipeline":
        raise BundleError(f"{where}: holds a {data['_class_name']!r}, not an InversionPipeline")
    if data.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        raise BundleError(
            f"{where}: bundle format {data['format']!r} is not supported (this e3dge reads format {FORMAT_VERSION}); upgrade e3dge"
        )
    comps = data.get("components")
    if not isinstance(comps, dict):
        raise BundleError(f"{where}: 'components' must be a mapping of slot -> component")
    check_keys(comps, COMPONENT_SLOTS, what="component slot", where=where)
    if "generator" not in comps:
        raise BundleError(f"{where}: 'components' needs at least a 'generator'")
    components = {slot: _parse_component(slot, raw, where) for slot, raw in comps.items()}
    aligner = data.get("aligner") or {"convention": "eg3d", "detector": "hog"}
    if not isinstance(aligner, dict):
        raise BundleError(f"{where}: 'aligner' must be a mapping")
    check_keys(aligner, ("convention", "detector"), what="aligner option", where=where)
    directions = data.get("directions")
    if directions is not None:
        directions = _safe_subfolder(directions, where)
    needs = data.get("needs") or []
    if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
        raise BundleError(f"{where}: 'needs' must be a list of strings")
    return BundleSpec(components, str(data.get("description", "")), dict(aligner), directions, list(needs))


def read_bundle_spec(path: str | os.PathLike) -> BundleSpec:
    """Read and validate a ``pipeline.json`` file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(f"{path}: not valid JSON ({str(err).splitlines()[0]})") from None
    except RecursionError:
        raise BundleError(f"{path}: nested too deeply to be a {PIPELINE_FILE}") from None
    return parse_bundle_spec(data, str(path))


def _looks_local(name: str) -> bool:
    """A path rather than a Hub id: absolute, ``.``/``~`` prefixed, more than one ``/``, or a Windows path."""
    return (
        name.startswith((".", "~", "/"))
        or os.sep in name.replace("/", "", 1)
        or name.count("/") > 1
        or ":" in name
        or "\\" in name
    )


def resolve_bundle(
    name_or_path: str | os.PathLike, revision: str | None = None, local_files_only: bool | None = None
) -> tuple[BundleSpec, Path | None]:
    """``(spec, root folder)`` of a known bundle name, a local folder, or a Hub repo (downloaded to the cache)."""
    name = str(name_or_path)
    if name in BUNDLES:
        known = BUNDLES[name]
        if known.spec is not None:
            return known.spec, None
        root = known.path or _toy_dir()
        return read_bundle_spec(root / PIPELINE_FILE), root
    folder = Path(name).expanduser()
    if folder.is_dir():
        if not (folder / PIPELINE_FILE).is_file():
            raise BundleError(
                f"{folder} has no {PIPELINE_FILE}; a pipeline bundle holds {PIPELINE_FILE} and one folder per component"
            )
        return read_bundle_spec(folder / PIPELINE_FILE), folder
    if folder.exists() or _looks_local(name) or name.count("/") != 1:
        known = ", ".join(BUNDLES)
        raise BundleError(f"{name}: no such folder, and not a known bundle ({known}) or a Hub id 'owner/name'")
    return _download_bundle(name, revision, local_files_only)


def _download_bundle(repo: str, revision: str | None, local_files_only: bool | None) -> tuple[BundleSpec, Path]:
    patterns = [PIPELINE_FILE, "*/config.json", "*/model.safetensors", "*/*.json", "*/*.safetensors"]
    try:
        root = hub_snapshot(repo, revision, local_files_only, allow_patterns=patterns)
    except CheckpointNotFoundError as err:
        raise BundleError(str(err)) from None
    if not (root / PIPELINE_FILE).is_file():
        raise BundleError(f"{repo}: the Hub repo has no {PIPELINE_FILE}; it is not a pipeline bundle")
    return read_bundle_spec(root / PIPELINE_FILE), root


def check_component_folder(root: Path, spec: ComponentSpec, slot: str) -> Path:
    """The component's local folder inside the bundle, which must exist; no path or link in it may leave the bundle."""
    assert spec.subfolder is not None
    folder = (root / spec.subfolder).resolve()
    if root.resolve() not in folder.parents and folder != root.resolve():
        raise BundleError(f"{root / PIPELINE_FILE}: component {slot!r} points outside the bundle")
    if not folder.is_dir():
        raise BundleError(
            f"{root / PIPELINE_FILE}: component {slot!r} names subfolder {spec.subfolder!r}, which the bundle does not have"
        )
    for entry in sorted((root / spec.subfolder).iterdir()):  # every file it may read: no link leads out
        if entry.is_file() or entry.is_symlink():
            confined_file(entry, root)
    return folder
