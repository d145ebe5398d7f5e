"""Read official ``torch.save`` checkpoints (StyleSDF ``.pt``, E3DGE runners) as plain tensors, executing nothing.

``torch.load(weights_only=True)`` rebuilds only tensors, containers and numbers: a file that names any other
global (``os.system``, an ``argparse.Namespace``, a model class) is refused with the global it named.
A checkpoint is a dict of sections; :func:`read_torch_checkpoint` keeps the sections a converter asks for,
reports the ones it ignores (optimizer states, iteration counters), and checks that every kept section is a
flat mapping of names to tensors. Storage is memory-mapped, so nothing is allocated beyond the file itself.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from e3dge.core.errors import UserError, one_line, refused_global

__all__ = ["OfficialTorchFileError", "TorchCheckpoint", "read_torch_checkpoint", "MAX_CHECKPOINT_BYTES"]

MAX_CHECKPOINT_BYTES = 8 << 30
"""Largest official file accepted (the E3DGE runners are 1.6 GB)."""


class OfficialTorchFileError(UserError, ValueError):
    """An official ``.pt`` file that cannot be used: unsafe, unreadable, or missing what the converter needs."""


@dataclass
class TorchCheckpoint:
    """The tensor sections of an official checkpoint and what was left out."""

    path: Path
    sections: dict[str, dict[str, torch.Tensor]]
    ignored: list[str] = field(default_factory=list)  # top-level keys not read (optimizer states, counters)
    scalars: dict[str, int | float] = field(default_factory=dict)  # top-level numbers, e.g. the iteration


def _load(path: Path) -> object:
    if not zipfile.is_zipfile(path):  # the legacy format reads every storage into memory at the size it declares
        raise OfficialTorchFileError(
            f"{path}: not a zip-format torch checkpoint (the official files are; this one is in the legacy pre-1.6 "
            "format or damaged), so it is not read; download the official file again"
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as err:
        name = refused_global(err)
        if name:
            raise OfficialTorchFileError(
                f"{path}: refused to load: it names {name!r}, which a weights file has no reason to contain "
                "(nothing was executed)"
            ) from None
        raise OfficialTorchFileError(f"{path}: not a readable torch checkpoint ({one_line(err)[:160]})") from None
    except (RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile) as err:
        raise OfficialTorchFileError(
            f"{path}: not a readable torch checkpoint ({one_line(err)[:160]}); is the download complete?"
        ) from None


def _tensor_section(value: object, where: str) -> dict[str, torch.Tensor]:
    if not isinstance(value, Mapping):
        raise OfficialTorchFileError(f"{where}: expected a state dict (names -> tensors), got {type(value).__name__}")
    bad = [str(k) for k, v in value.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise OfficialTorchFileError(f"{where}: entries that are not tensors: {', '.join(bad[:3])}")
    return dict(value)


def read_torch_checkpoint(
    path: str | os.PathLike, sections: Sequence[str], optional: Sequence[str] = ()
) -> TorchCheckpoint:
    """Read ``sections`` (each a state dict) from an official checkpoint; ``optional`` ones may be absent."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise OfficialTorchFileError(
            f"{path}: no such file; download the official checkpoint first (see the model card)"
        )
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise OfficialTorchFileError(
            f"{path}: {size / 2**30:.1f} GiB is larger than any official checkpoint ({MAX_CHECKPOINT_BYTES >> 30} GiB); wrong file?"
        )
    data = _load(path)
    if not isinstance(data, Mapping):
        raise OfficialTorchFileError(f"{path}: expected a dict of state dicts, got {type(data).__name__}")
    missing = [s for s in sections if s not in data]
    if missing:
        found = ", ".join(sorted(map(str, data))[:8]) or "nothing"
        raise OfficialTorchFileError(
            f"{path}: has no {', '.join(repr(m) for m in missing)} (it holds {found}); is it the right file?"
        )
    wanted = list(sections) + [s for s in optional if s in data]
    kept = {s: _tensor_section(data[s], f"{path} [{s!r}]") for s in wanted}
    scalars = {
        str(k): v for k, v in data.items() if k not in kept and isinstance(v, (int, float)) and not isinstance(v, bool)
    }
    ignored = sorted(str(k) for k in data if k not in kept)
    return TorchCheckpoint(path, kept, ignored, scalars)
