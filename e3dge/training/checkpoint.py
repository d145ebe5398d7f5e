"""Training checkpoints that never run code: tensors in safetensors, everything else as plain JSON.

A checkpoint is one ``.safetensors`` file. Its tensors are the state's tensors (model weights,
optimizer moments, RNG states as uint8 tensors); its metadata holds the rest of the nested state
(step, options, optimizer hyper-parameters, log of averages...) as JSON in which each tensor is a
``{"__tensor__": name}`` reference. Reading one parses JSON and tensor bytes only, so a downloaded
run folder cannot execute anything. Writes go to a temporary file renamed into place (atomic).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from e3dge.core.errors import UserError
from e3dge.core.files import atomic_path

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "restore_optimizer", "FORMAT"]

FORMAT = "e3dge-checkpoint-1"
_TENSOR, _TUPLE, _ITEMS = "__tensor__", "__tuple__", "__items__"


class CheckpointError(UserError, ValueError):
    """A checkpoint file that cannot be read as an e3dge checkpoint."""


def _encode(obj: Any, name: str, tensors: dict[str, torch.Tensor]) -> Any:
    """``obj`` as JSON-able data; tensors are moved into ``tensors`` under unique names."""
    if isinstance(obj, torch.Tensor):
        key = name or "tensor"
        while key in tensors:
            key += "_"
        tensors[key] = obj.detach().cpu().contiguous().clone()  # clone: no shared storage in the file
        return {_TENSOR: key}
    if isinstance(obj, (bool, int, float, str)) or obj is None:
        return obj
    if isinstance(obj, tuple):
        return {_TUPLE: [_encode(v, f"{name}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{name}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        plain = all(isinstance(k, str) for k in obj) and not ({_TENSOR, _TUPLE, _ITEMS} & set(obj))
        if plain:
            return {k: _encode(v, f"{name}/{k}" if name else k, tensors) for k, v in obj.items()}
        for k in obj:
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"checkpoint dict keys must be plain values, got {type(k).__name__}")
        return {_ITEMS: [[k, _encode(v, f"{name}/{k}", tensors)] for k, v in obj.items()]}
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint (at {name or 'the top'})")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], where: str) -> Any:
    """Inverse of :func:`_encode`; a reference to a missing tensor is a :class:`CheckpointError`."""
    if isinstance(obj, list):
        return [_decode(v, tensors, where) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if _TENSOR in obj:
        key = obj[_TENSOR]
        if not isinstance(key, str) or key not in tensors:
            raise CheckpointError(f"{where}: refers to a tensor {key!r} the file does not hold; the file is damaged")
        return tensors[key]
    if _TUPLE in obj:
        return tuple(_decode(v, tensors, where) for v in obj[_TUPLE])
    if _ITEMS in obj:
        pairs = obj[_ITEMS]
        if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
            raise CheckpointError(f"{where}: malformed {_ITEMS} entry; the file is damaged")
        return {k: _decode(v, tensors, where) for k, v in pairs}
    return {k: _decode(v, tensors, where) for k, v in obj.items()}


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    """Write ``state`` (nested dicts/lists/tuples of tensors and JSON values) atomically to ``path``."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(state, "", tensors)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "e3dge": FORMAT, "state": json.dumps(skeleton)})
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (JSON + tensor bytes only, nothing is executed)."""
    path = Path(path)
    hint = "delete it, or pass --restart to set the run aside and start over"
    try:
        with safe_open(str(path), framework="pt", device=str(map_location)) as f:
            meta = f.metadata() or {}
            if meta.get("e3dge") != FORMAT or "state" not in meta:
                raise CheckpointError(f"{path}: not an e3dge training checkpoint (no {FORMAT} metadata); {hint}")
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        skeleton = json.loads(meta["state"])
    except CheckpointError:
        raise
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:  # truncated, hostile header, bad JSON
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{path}: unreadable checkpoint ({reason}); {hint}") from None
    if not isinstance(skeleton, dict):
        raise CheckpointError(f"{path}: checkpoint state is not a mapping; {hint}")
    return _decode(skeleton, tensors, str(path))


def restore_optimizer(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """Load an optimizer's moments from a checkpoint but keep the hyperparameters it was built with.

    ``torch.optim.Optimizer.load_state_dict`` also restores each group's learning rate, betas and the rest, so a run
    resumed with new options (``--override``) would train on the old ones; the optimizer is built from the options
    given now, and those win.
    """
    settings = [{k: v for k, v in group.items() if k != "params"} for group in optimizer.param_groups]
    try:
        optimizer.load_state_dict(state)
    except (ValueError, KeyError, TypeError) as err:  # other parameter groups or shapes: another model
        raise CheckpointError(
            f"the checkpoint's optimizer does not fit this run ({err}); start over with --restart"
        ) from None
    for group, wanted in zip(optimizer.param_groups, settings):
        group.update(wanted)
