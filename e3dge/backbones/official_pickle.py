"""Read NVIDIA ``torch_utils.persistence`` pickles (EG3D, StyleGAN2/3) as plain data, executing nothing.

An official snapshot stores each network as ``_reconstruct_persistent_obj(meta)`` where ``meta``
carries the class's *source code* (``module_src``) and the module's ``__dict__``. Unpickling it
normally runs that source. This reader maps every global to an allow-list of data rebuilders
(tensors, storages, ordered dicts, numpy scalars); persistent objects and ``torch.nn`` modules
become inert records whose state is walked for parameters, buffers and constructor kwargs.
Any other global (``os.system``, ``builtins.eval``, ``subprocess.*``, ...) is refused, and so is a
nested tensor storage that fails torch's own weights-only check; a file that cannot be read as such a
pickle (truncated, hostile arguments to an allowed rebuilder) is one :class:`UnreadablePickleError`.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from e3dge.core.errors import UserError, refused_global

__all__ = [
    "UnsafePickleError",
    "UnreadablePickleError",
    "PersistentRecord",
    "OfficialCheckpoint",
    "safe_load_pickle",
    "read_official_pickle",
]


class UnsafePickleError(UserError, pickle.UnpicklingError):
    """The pickle references something outside the allow-list; it was not loaded."""


class UnreadablePickleError(UserError, ValueError):
    """The file is not a readable official snapshot (corrupt, truncated, or not the expected structure)."""


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:200]


@dataclass
class PersistentRecord:
    """Inert stand-in for a ``persistent_class`` object: its class name and saved ``__dict__``."""

    class_name: str
    version: int
    state: dict
    module_src: str = field(repr=False, default="")  # kept as text; never executed


class _InertObject:
    """Inert stand-in for a plain ``torch.nn`` module (e.g. ``Sequential``): records class and state."""

    qualname = "?"

    def __init__(self, *args, **kwargs):
        self.state: dict = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"_state": state}

    def __repr__(self) -> str:
        return f"<inert {self.qualname}>"


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access in the original)."""


def _reconstruct_persistent(meta: dict) -> PersistentRecord:
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise ValueError(f"unsupported persistent object record {type(meta).__name__}")
    return PersistentRecord(
        class_name=str(meta.get("class_name")),
        version=int(meta.get("version", 0)),
        state=meta.get("state") or {},
        module_src=str(meta.get("module_src", "")),
    )


def _numpy_scalar(dtype, data=None):
    if data is None:  # object scalars are never legitimate here
        raise ValueError("refusing a numpy object scalar")
    return np.frombuffer(data, dtype=dtype)[0]


MAX_TENSOR_VALUES = 1 << 31
"""Largest tensor an official snapshot may hold (EG3D's largest has a few million values)."""


def _checked_rebuild_tensor(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    """``torch._utils._rebuild_tensor_v2`` once the view is known to lie inside its storage and not to repeat it.

    A hostile file can describe a view of billions of values over a 4-value storage (zero strides); it costs nothing
    to make, but every later copy of it allocates them all. Weights never overlap, so such views are refused.
    """
    if not isinstance(storage, torch.storage.TypedStorage):
        raise UnreadablePickleError(f"a tensor refers to a {type(storage).__name__}, not a tensor storage")
    if not all(isinstance(v, int) and v >= 0 for v in (storage_offset, *size, *stride)) or len(size) != len(stride):
        raise UnreadablePickleError(f"a tensor has an invalid shape {tuple(size)} / strides {tuple(stride)}")
    numel = math.prod(size)
    extent = storage_offset + sum((n - 1) * st for n, st in zip(size, stride)) + 1 if numel else storage_offset
    if numel > MAX_TENSOR_VALUES or extent > storage.size() or numel > storage.size():
        raise UnreadablePickleError(
            f"a tensor of shape {tuple(size)} does not fit its storage of {storage.size()} values (a hostile or damaged file)"
        )
    return torch._utils._rebuild_tensor_v2(
        storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata
    )


_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _checked_rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch", "Size"): torch.Size,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): np.dtype,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}
_INERT_OFFICIAL_CLASSES = {
    # Plain (non-persistent) classes that EG3D snapshots reference by import path.
    ("training.triplane", "OSGDecoder"),
    ("training.volumetric_rendering.renderer", "ImportanceRenderer"),
    ("training.volumetric_rendering.ray_sampler", "RaySampler"),
    ("training.volumetric_rendering.ray_marcher", "MipRayMarcher2"),
}
_TORCH_DTYPES = {name for name in dir(torch) if isinstance(getattr(torch, name, None), torch.dtype)}
_INERT_CLASSES: dict[str, type] = {}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str):
        key = (module, name)
        if key == ("torch.storage", "_load_from_bytes"):
            return self._storage_from_bytes
        if key in _ALLOWED:
            return _ALLOWED[key]
        if module == "torch" and name in _TORCH_DTYPES:
            return getattr(torch, name)
        if key in _INERT_OFFICIAL_CLASSES or (module.startswith("torch.nn.modules.") and name.isidentifier()):
            qualname = f"{module}.{name}"
            if qualname not in _INERT_CLASSES:
                _INERT_CLASSES[qualname] = type(name, (_InertObject,), {"qualname": qualname})
            return _INERT_CLASSES[qualname]
        raise UnsafePickleError(
            f"refused to load {self._source}: it references '{module}.{name}', which official EG3D/StyleGAN "
            "checkpoints never need. The file may be malicious or is not an NVIDIA persistence pickle; "
            "nothing in it was executed."
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refused to load {self._source}: unexpected persistent id {str(pid)[:80]!r}")

    def _storage_from_bytes(self, data: bytes):
        """A nested ``torch.save`` blob, read with torch's weights-only unpickler (never ``weights_only=False``)."""
        if not isinstance(data, bytes):
            raise UnreadablePickleError(f"{self._source}: a tensor storage is a {type(data).__name__}, not bytes")
        try:
            return torch.load(io.BytesIO(data), weights_only=True)
        except pickle.UnpicklingError as err:
            found = refused_global(err)
            if found:
                raise UnsafePickleError(
                    f"refused to load {self._source}: a tensor storage references '{found}', which official "
                    "checkpoints never need. The file may be malicious; nothing in it was executed."
                ) from None
            raise


def safe_load_pickle(path_or_file: str | os.PathLike | io.IOBase) -> Any:
    """Unpickle with the allow-list above: :class:`UnsafePickleError` for other globals, :class:`UnreadablePickleError` if corrupt."""
    if isinstance(path_or_file, (str, os.PathLike)):
        with open(path_or_file, "rb") as f:
            return _load(f, os.fspath(path_or_file))
    return _load(path_or_file, "<stream>")


def _load(file: Any, source: str) -> Any:
    try:
        return _RestrictedUnpickler(file, source).load()
    except UnsafePickleError:
        raise
    except UnreadablePickleError as err:
        if str(err).startswith(source):
            raise
        raise UnreadablePickleError(f"{source}: {err}") from None
    except Exception as err:  # whatever a truncated or hostile stream makes an allowed rebuilder raise
        reason = f"{type(err).__name__}: {_first_line(err)}"
        raise UnreadablePickleError(f"{source}: cannot read it as an official snapshot pickle ({reason})") from None


def _module_dict(obj: Any) -> dict:
    if isinstance(obj, PersistentRecord):
        return obj.state
    if isinstance(obj, _InertObject):
        return obj.state
    raise ValueError(f"expected a network record, found {type(obj).__name__}")


def _tensor(value: Any, name: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} is a {type(value).__name__}, not a tensor")
    return value.detach().clone()


def _collect_state(obj: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    d = _module_dict(obj)
    for name, p in d.get("_parameters", {}).items():
        if p is not None:
            out[prefix + name] = _tensor(p, prefix + name)
    non_persistent = d.get("_non_persistent_buffers_set", set())
    for name, b in d.get("_buffers", {}).items():
        if b is not None and name not in non_persistent:
            out[prefix + name] = _tensor(b, prefix + name)
    for name, child in d.get("_modules", {}).items():
        if child is not None:
            _collect_state(child, f"{prefix}{name}.", out)


def _plain(value: Any) -> Any:
    """Turn EasyDicts, tuples and numpy scalars into JSON-friendly Python values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


_PLAIN_TYPES = (dict, list, tuple, str, int, float, bool, np.generic)


@dataclass
class OfficialCheckpoint:
    """One network of an official snapshot, as plain data."""

    class_name: str
    init_args: list
    init_kwargs: dict
    attributes: dict  # plain-data attributes of the top module (rendering_kwargs, ...)
    state_dict: dict[str, torch.Tensor]


def read_official_pickle(path: str | os.PathLike, key: str = "G_ema") -> OfficialCheckpoint:
    """Extract network ``key`` (``G_ema`` for inference) from an official snapshot ``.pkl``."""
    data = safe_load_pickle(path)
    if not isinstance(data, dict) or key not in data:
        keys = sorted(map(str, data))[:8] if isinstance(data, dict) else type(data).__name__
        raise UnreadablePickleError(f"{path}: not an official snapshot with a {key!r} entry (found {keys})")
    record = data[key]
    if not isinstance(record, PersistentRecord):
        raise UnreadablePickleError(f"{path}: {key} is not a persistent network record")
    try:
        return _checkpoint(record)
    except Exception as err:  # a hostile structure: non-dict state, non-tensor parameters, cycles
        raise UnreadablePickleError(
            f"{path}: {key} is not a well-formed network record ({type(err).__name__}: {_first_line(err)})"
        ) from None


def _checkpoint(record: PersistentRecord) -> OfficialCheckpoint:
    state_dict: dict[str, torch.Tensor] = {}
    _collect_state(record, "", state_dict)
    attributes = {
        k: _plain(v)
        for k, v in record.state.items()
        if isinstance(k, str) and not k.startswith("_") and k != "training" and isinstance(v, _PLAIN_TYPES)
    }
    return OfficialCheckpoint(
        class_name=record.class_name,
        init_args=_plain(list(record.state.get("_init_args", []))),
        init_kwargs=_plain(dict(record.state.get("_init_kwargs", {}))),
        attributes=attributes,
        state_dict=state_dict,
    )
