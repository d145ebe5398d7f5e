"""Checkpoint folders (``config.json`` + ``model.safetensors``) on disk or on the Hugging Face Hub.

Hub files go through ``huggingface_hub`` (its cache, revisions and ``HF_HUB_OFFLINE=1`` offline
mode). Weights are safetensors only: loading never unpickles anything.

Loading checks before it allocates: ``config.json`` must be JSON whose keys are the class's
constructor arguments and whose values pass :meth:`PretrainedMixin.validate_config` (types, ranges,
sizes), and the safetensors header must list exactly the model's tensors with the right shapes and
dtypes. Every refusal is one line naming the file (a :class:`~e3dge.core.errors.UserError`).
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, TypeVar

import torch
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from e3dge.core.errors import UserError, one_line
from e3dge.core.files import atomic_path, write_json
from e3dge.core.options import OptionError, check_keys, check_range, closest

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "PretrainedSource",
    "PretrainedMixin",
    "resolve_file",
    "MAX_MODEL_VALUES",
    "meta_model",
    "hub_snapshot",
    "confined_file",
    "regular_files",
    "read_config",
    "read_safetensors_header",
    "check_tensors",
    "tensor_specs",
    "one_line",
    "CheckpointNotFoundError",
    "CheckpointFileError",
    "ConfigField",
    "IntField",
    "NumberField",
    "BoolField",
    "ChoiceField",
    "StrField",
    "ListField",
    "DictField",
    "check_fields",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
MAX_CONFIG_BYTES = 1 << 20  # a model config is a few KB; refuse megabytes of JSON
_FILE_SUFFIXES = {
    ".json",
    ".safetensors",
    ".pkl",
    ".pt",
    ".pth",
    ".ckpt",
    ".bin",
    ".zip",
    ".tar",
    ".gz",
    ".npz",
    ".onnx",
}
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,95})?")

T = TypeVar("T", bound="PretrainedMixin")


MAX_MODEL_VALUES = 1_000_000_000
"""Most parameter and buffer values a saved config may describe (4 GB as float32), checked before anything is built."""


def meta_model(build: Callable[[], Any], where: str) -> Any:
    """``build()`` on PyTorch's ``meta`` device (shapes only, nothing allocated), refused in one line when it would
    hold more than :data:`MAX_MODEL_VALUES` values: what a config describes is known before it is built for real."""
    with torch.device("meta"):
        skeleton = build()
    values = sum(t.numel() for t in skeleton.state_dict().values())
    if values > MAX_MODEL_VALUES:
        raise _fail(
            where,
            f"describes a model of {values / 1e9:.2f} billion values; at most {MAX_MODEL_VALUES / 1e9:.0f} billion "
            "are built (e3dge's largest network, the official StyleSDF E0, has 0.26 billion)",
        )
    return skeleton


class CheckpointNotFoundError(UserError, FileNotFoundError):
    """A checkpoint could not be found locally, in the Hub cache, or on the Hub."""


class CheckpointFileError(UserError, ValueError):
    """A ``config.json`` or ``model.safetensors`` that e3dge cannot use (not JSON, corrupt, wrong tensors)."""


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class PretrainedSource:
    """Where a known checkpoint lives on the Hub."""

    repo_id: str
    filename: str
    revision: str | None = None
    description: str = ""


# ---------------------------------------------------------------- locating files
def _looks_local(name_or_path: str | os.PathLike) -> bool:
    """Whether ``name_or_path`` is meant as a local path rather than a Hub id ``owner/name``."""
    if isinstance(name_or_path, os.PathLike):
        return True
    text = str(name_or_path)
    if os.path.isabs(text) or text.startswith((".", "~")) or Path(text).suffix.lower() in _FILE_SUFFIXES:
        return True
    if any(s in text for s in (os.sep, os.altsep) if s):
        return not _plausible_hub_id(text)
    return False


def _plausible_hub_id(text: str) -> bool:
    return bool(_HUB_ID.fullmatch(text)) and "--" not in text and ".." not in text and not text.endswith((".", "-"))


def _local_file(folder: Path, filename: str, shown: str) -> Path:
    if not folder.exists():
        what = "file" if folder.suffix.lower() in _FILE_SUFFIXES else "folder"
        raise CheckpointNotFoundError(
            f"{shown}: no such {what} (a checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME})"
        )
    if not folder.is_dir():
        raise CheckpointNotFoundError(
            f"{shown}: is a file, not a checkpoint folder; give the folder that holds {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    path = folder / filename
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"{shown} has no {filename}; a checkpoint folder holds {CONFIG_NAME} and {WEIGHTS_NAME}"
        )
    return path


def confined_file(path: Path, root: Path) -> Path:
    """The real location of ``path``, a regular file whose real location lies inside ``root``; else a one-line error.

    In a Hub cache snapshot (``.../snapshots/<revision>``) files are links to the repo's ``blobs`` folder, which is
    inside too. A link out of a local bundle (to a key file, to another user's data) is refused.
    """
    real, base = Path(path).resolve(), Path(root).resolve()
    inside = base in real.parents
    if not inside and base.parent.name == "snapshots":
        inside = (base.parent.parent / "blobs") in real.parents
    if not inside:
        raise UserError(f"{path}: leads outside {root} (a link to {real}); a bundle's files must lie inside it")
    if not real.is_file():
        raise UserError(f"{path}: not a regular file")
    return real


def regular_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` (sorted), refusing symbolic links and special files with a one-line error."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            if p.is_symlink():
                raise UserError(f"{p}: a symbolic link; copy the file itself into {folder} (links are never uploaded)")
            if name in filenames and not p.is_file():
                raise UserError(f"{p}: not a regular file")
            if name in filenames:
                out.append(p)
    return sorted(out)


def hub_snapshot(
    repo_id: str,
    revision: str | None = None,
    local_files_only: bool | None = None,
    allow_patterns: Sequence[str] = (CONFIG_NAME, WEIGHTS_NAME),
) -> Path:
    """The Hub cache folder of a repo (by default a component's ``config.json`` + ``model.safetensors``), downloaded
    when needed. Only the Hub is asked, never a local folder of the same name: a reference cannot reach the disk."""
    try:
        return Path(
            snapshot_download(
                repo_id, revision=revision, local_files_only=bool(local_files_only), allow_patterns=list(allow_patterns)
            )
        )
    except HFValidationError as err:
        raise CheckpointNotFoundError(f"{repo_id}: not a Hub repo id of the form 'owner/name'") from err
    except LocalEntryNotFoundError as err:
        raise CheckpointNotFoundError(
            f"{repo_id} is not in the local Hub cache and the Hub cannot be reached (offline mode or no network); "
            "download it once with network access"
        ) from err
    except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as err:
        raise CheckpointNotFoundError(f"{repo_id}: no such Hub repo or revision ({err.__class__.__name__})") from err
    except (HfHubHTTPError, OSError) as err:
        raise CheckpointNotFoundError(
            f"{repo_id}: download failed ({err.__class__.__name__}: {one_line(err)[:200]})"
        ) from err


def resolve_file(
    repo_id_or_path: str | os.PathLike,
    filename: str,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """Local path of ``filename`` inside a folder, or downloaded (and cached) from a Hub repo."""
    folder = Path(repo_id_or_path).expanduser()
    if folder.is_dir() or _looks_local(repo_id_or_path):
        return _local_file(folder, filename, str(repo_id_or_path))

    name = str(repo_id_or_path)
    try:
        return Path(
            hf_hub_download(
                name, filename, revision=revision, cache_dir=cache_dir, local_files_only=bool(local_files_only)
            )
        )
    except HFValidationError as err:
        raise CheckpointNotFoundError(
            f"{name}: no such folder, and not a Hub repo id of the form 'owner/name'"
        ) from err
    except LocalEntryNotFoundError as err:
        raise CheckpointNotFoundError(
            f"{filename} of {name} is not in the local Hub cache and the Hub cannot be reached "
            "(offline mode or no network). Download it once with network access, or pass a local folder."
        ) from err
    except (RepositoryNotFoundError, EntryNotFoundError) as err:
        raise CheckpointNotFoundError(
            f"{name}: no such local folder, Hub repo or file {filename!r} ({err.__class__.__name__})"
        ) from err
    except (HfHubHTTPError, OSError) as err:
        reason = f"{err.__class__.__name__}: {one_line(err)[:200]}"
        raise CheckpointNotFoundError(f"{name}: could not fetch {filename!r} from the Hub ({reason})") from err


# ---------------------------------------------------------------- reading files
def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """Parse a ``config.json``: a JSON object of at most 1 MiB, no NaN/Infinity; one-line error otherwise."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise CheckpointFileError(f"{path}: {size} bytes is too large for a model config (at most {MAX_CONFIG_BYTES})")
    try:
        config = json.loads(path.read_bytes().decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as err:
        raise CheckpointFileError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise CheckpointFileError(
            f"{path}: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None
    except (ValueError, RecursionError) as err:
        raise CheckpointFileError(f"{path}: not valid JSON ({one_line(err)[:120]})") from None
    if not isinstance(config, dict):
        raise CheckpointFileError(
            f"{path}: expected a JSON object of constructor arguments, got a {type(config).__name__}"
        )
    return config


_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
_FLOAT_CODES = {"F64", "F32", "F16", "BF16"}  # floating tensors may be stored in any of these (cast on load)


def read_safetensors_header(path: str | os.PathLike) -> dict[str, tuple[list[int], str]]:
    """``{name: (shape, dtype code)}`` from a safetensors header, without reading the tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {
                name: (list(f.get_slice(name).get_shape()), str(f.get_slice(name).get_dtype())) for name in f.keys()
            }
    except SafetensorError as err:
        raise CheckpointFileError(f"{path}: not a valid safetensors file ({one_line(err)[:200]})") from None


def _dtype_code(dtype: torch.dtype) -> str:
    return _SAFETENSORS_DTYPES.get(dtype, str(dtype))


def tensor_specs(state: Mapping[str, torch.Tensor]) -> dict[str, tuple[list[int], str]]:
    """``{name: (shape, dtype code)}`` of in-memory tensors, comparable with :func:`read_safetensors_header`."""
    return {name: (list(t.shape), _dtype_code(t.dtype)) for name, t in state.items()}


def _examples(names: set[str]) -> str:
    shown = sorted(names)[:3]
    return ", ".join(repr(n) for n in shown) + (", ..." if len(names) > 3 else "")


def check_tensors(
    found: Mapping[str, tuple[Sequence[int], str]], expected: Mapping[str, torch.Tensor], where: str
) -> None:
    """Raise :class:`CheckpointFileError` unless ``found`` (name -> shape, dtype code) matches the model's tensors."""
    missing, unexpected = set(expected) - set(found), set(found) - set(expected)
    if missing or unexpected:
        parts = [
            f"{len(names)} {what} ({_examples(names)})"
            for names, what in ((missing, "missing"), (unexpected, "unexpected"))
            if names
        ]
        raise CheckpointFileError(f"{where}: tensors do not match the model its config describes: {'; '.join(parts)}")
    for name, tensor in expected.items():
        shape, code = found[name]
        if list(shape) != list(tensor.shape):
            raise CheckpointFileError(
                f"{where}: tensor {name!r} has shape {list(shape)}, the config needs {list(tensor.shape)}"
            )
        want = _dtype_code(tensor.dtype)
        if code != want and not (tensor.is_floating_point() and code in _FLOAT_CODES):
            raise CheckpointFileError(f"{where}: tensor {name!r} is stored as {code}, expected {want}")


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except SafetensorError as err:
        raise CheckpointFileError(f"{path}: not a valid safetensors file ({one_line(err)[:200]})") from None


# ---------------------------------------------------------------- config checks
class ConfigField:
    """How one config value is checked; ``check`` raises :class:`OptionError` naming ``where`` and the key."""

    def check(self, name: str, value: Any, where: str) -> None:
        raise NotImplementedError


def _fail(where: str, message: str) -> OptionError:
    return OptionError(f"{where}: {message}" if where else message)


@dataclass(frozen=True)
class IntField(ConfigField):
    """An integer (not a bool) in ``[lo, hi]``, optionally a power of two, optionally ``None``."""

    lo: int
    hi: int
    power_of_two: bool = False
    optional: bool = False

    def check(self, name: str, value: Any, where: str) -> None:
        if value is None and self.optional:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            kind = "a power of two" if self.power_of_two else "an integer"
            null = " or null" if self.optional else ""
            raise _fail(where, f"{name} must be {kind} between {self.lo} and {self.hi}{null}, got {_short(value)}")
        if self.power_of_two and not (self.lo <= value <= self.hi and not value & (value - 1)):
            raise _fail(where, f"{name} must be a power of two between {self.lo} and {self.hi}, got {value}")
        check_range(name, value, self.lo, self.hi, integer=True, where=where)


@dataclass(frozen=True)
class NumberField(ConfigField):
    """A finite number (int or float, not a bool) in ``[lo, hi]``, optionally ``None``."""

    lo: float
    hi: float
    optional: bool = False

    def check(self, name: str, value: Any, where: str) -> None:
        if value is None and self.optional:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            null = " or null" if self.optional else ""
            raise _fail(
                where, f"{name} must be a number between {self.lo:g} and {self.hi:g}{null}, got {_short(value)}"
            )
        check_range(name, value, self.lo, self.hi, where=where)


@dataclass(frozen=True)
class BoolField(ConfigField):
    """``true`` or ``false`` (not 0/1)."""

    def check(self, name: str, value: Any, where: str) -> None:
        if not isinstance(value, bool):
            raise _fail(where, f"{name} must be true or false, got {_short(value)}")


@dataclass(frozen=True)
class ChoiceField(ConfigField):
    """One of ``choices`` (compared with type: ``1`` is not ``True``)."""

    choices: tuple

    def check(self, name: str, value: Any, where: str) -> None:
        if any(type(value) is type(c) and value == c for c in self.choices):
            return
        hint = closest(value, [c for c in self.choices if isinstance(c, str)]) if isinstance(value, str) else None
        suggestion = f"; did you mean {hint!r}?" if hint else ""
        raise _fail(
            where,
            f"{name} must be one of {', '.join(_short(c) for c in self.choices)}, got {_short(value)}{suggestion}",
        )


@dataclass(frozen=True)
class StrField(ConfigField):
    """A short string."""

    max_len: int = 64

    def check(self, name: str, value: Any, where: str) -> None:
        if not isinstance(value, str) or len(value) > self.max_len:
            raise _fail(where, f"{name} must be a string of at most {self.max_len} characters, got {_short(value)}")


@dataclass(frozen=True)
class ListField(ConfigField):
    """A list (or tuple) of ``min_len..max_len`` items, each checked by ``item``."""

    item: ConfigField
    min_len: int
    max_len: int

    def check(self, name: str, value: Any, where: str) -> None:
        if not isinstance(value, (list, tuple)) or not self.min_len <= len(value) <= self.max_len:
            size = str(self.min_len) if self.min_len == self.max_len else f"{self.min_len} to {self.max_len}"
            raise _fail(where, f"{name} must be a list of {size} items, got {_short(value)}")
        for i, item in enumerate(value):
            self.item.check(f"{name}[{i}]", item, where)


@dataclass(frozen=True)
class DictField(ConfigField):
    """A nested object with a known set of keys (``None`` allowed when ``optional``)."""

    spec: Mapping[str, ConfigField]
    required: tuple[str, ...] = ()
    optional: bool = True

    def check(self, name: str, value: Any, where: str) -> None:
        if value is None and self.optional:
            return
        if not isinstance(value, Mapping):
            raise _fail(where, f"{name} must be an object, got {_short(value)}")
        check_fields(value, self.spec, where, prefix=f"{name}.", required=self.required)


def check_fields(
    config: Mapping, spec: Mapping[str, ConfigField], where: str = "", prefix: str = "", required: Sequence[str] = ()
) -> None:
    """Check ``config``'s keys against ``spec`` (unknown -> closest valid name), required keys, then each value."""
    bad = [k for k in config if not isinstance(k, str)]
    if bad:
        raise _fail(where, f"config keys must be strings, got {_short(bad[0])}")
    check_keys(config, spec, what=f"{prefix[:-1]} key" if prefix else "config key", where=where)
    for key in required:
        if key not in config:
            raise _fail(where, f"missing config key {prefix + key!r}")
    for key, value in config.items():
        spec[key].check(prefix + key, value, where)


class _AnyValue(ConfigField):
    """A constructor argument the class does not describe: any JSON value."""

    def check(self, name: str, value: Any, where: str) -> None:
        return None


_ANY = _AnyValue()


# ---------------------------------------------------------------- models
class PretrainedMixin:
    """Adds ``save_pretrained`` / ``from_pretrained`` to a module whose ``config`` dict is its constructor kwargs.

    Subclasses describe their constructor arguments in ``CONFIG_SPEC`` (keys = the constructor's
    named arguments plus ``EXTRA_CONFIG_KEYS`` taken by ``**kwargs``) and may extend
    :meth:`validate_config` with checks that involve several values.
    """

    config: dict[str, Any]
    CONFIG_SPEC: ClassVar[Mapping[str, ConfigField]] = {}
    EXTRA_CONFIG_KEYS: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def config_keys(cls) -> tuple[set[str], set[str]]:
        """(all valid config keys, required ones) from the constructor's signature and ``EXTRA_CONFIG_KEYS``."""
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        required = {p.name for p in named if p.default is p.empty}
        return {p.name for p in named} | set(cls.EXTRA_CONFIG_KEYS), required

    @classmethod
    def validate_config(cls, config: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """Check keys, types and ranges of constructor kwargs before anything is allocated; returns a copy."""
        if not isinstance(config, Mapping):
            raise _fail(where, f"expected an object of constructor arguments, got {type(config).__name__}")
        valid, required = cls.config_keys()
        check_fields(config, {k: cls.CONFIG_SPEC.get(k, _ANY) for k in valid}, where, required=sorted(required))
        return dict(config)

    def save_pretrained(self, save_directory: str | os.PathLike, dtype: torch.dtype | None = None) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (all persistent parameters and buffers).

        ``dtype`` (e.g. ``torch.float16``) stores the floating parameters in that type to halve the file;
        buffers (statistics such as a mean latent) stay exact. ``from_pretrained`` casts back on load.
        """
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        config = {"_class_name": type(self).__name__, **self.config}
        write_json(out / CONFIG_NAME, config, indent=2, sort_keys=True)
        state, seen = {}, set()
        for k, v in self.state_dict().items():  # type: ignore[attr-defined]
            v = v.detach().contiguous().cpu()
            key = (v.untyped_storage().data_ptr(), v.storage_offset()) if v.numel() else None
            state[k] = (
                v.clone() if key in seen else v
            )  # a module registered under two names (official layouts): stored twice
            seen.add(key)
        if dtype is not None:
            params = {name for name, _ in self.named_parameters()}  # type: ignore[attr-defined]
            state = {k: v.to(dtype) if k in params and v.is_floating_point() else v for k, v in state.items()}
        with atomic_path(out / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt", "class": type(self).__name__})
        return out

    @classmethod
    def build_checked(cls: type[T], config: Mapping[str, Any], where: str) -> T:
        """``cls(**validate_config(config))``; a constructor's ValueError becomes a one-line config error."""
        kwargs = cls.validate_config(config, where)
        try:
            return cls(**kwargs)
        except ValueError as err:
            raise _fail(where, one_line(err)) from err

    @classmethod
    def from_pretrained(
        cls: type[T],
        name_or_path: str | os.PathLike,
        revision: str | None = None,
        cache_dir: str | os.PathLike | None = None,
        local_files_only: bool | None = None,
        device: str | torch.device = "cpu",
    ) -> T:
        """Build the model from its checked config and load its checked weights strictly; returned in eval mode."""
        kw = dict(revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        config_path = resolve_file(name_or_path, CONFIG_NAME, **kw)
        config = read_config(config_path)
        class_name = config.pop("_class_name", cls.__name__)
        if class_name != cls.__name__:
            raise _fail(str(config_path), f"holds a {_short(class_name)}, not a {cls.__name__}")
        weights_path = resolve_file(name_or_path, WEIGHTS_NAME, **kw)
        header = read_safetensors_header(weights_path)
        skeleton = meta_model(lambda: cls.build_checked(config, str(config_path)), str(config_path))
        check_tensors(header, skeleton.state_dict(), str(weights_path))  # type: ignore[attr-defined]
        model = cls.build_checked(config, str(config_path))
        model.load_state_dict(_load_safetensors(weights_path), strict=True)  # type: ignore[attr-defined]
        return model.eval().to(device)  # type: ignore[attr-defined]
