"""Writing outputs: every file appears whole or not at all, and nothing a user gave is overwritten unasked."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from e3dge.core.errors import UserError

__all__ = [
    "atomic_path",
    "write_bytes",
    "write_text",
    "write_json",
    "write_png",
    "check_destination",
    "file_digest",
    "read_json",
]


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary file beside ``path`` (same suffix, so writers pick the format) that replaces ``path`` when the block
    ends; on any error or interrupt it is removed and ``path`` keeps what it had."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """``data`` into ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """``text`` (UTF-8) into ``path`` atomically."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2, sort_keys: bool = False) -> Path:
    """``obj`` as JSON into ``path`` atomically."""
    return write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys))


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in ``path``, or None when it is missing, unreadable, not JSON or nested too deeply (an earlier
    output that cannot be trusted is treated as absent)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError, RecursionError):
        return None


def write_png(path: str | os.PathLike, pixels: np.ndarray) -> Path:
    """A ``uint8 [H, W, 3]`` (or ``[H, W]``) picture as a PNG, atomically."""
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(pixels)).save(tmp, format="png")
    return Path(path)


def check_destination(out: str | os.PathLike, overwrite: bool, what: str = "output folder") -> Path:
    """``out`` when it is absent, an empty folder, or ``overwrite`` is set; else a one-line error (nothing changed)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder; choose a new {what}")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise UserError(
            f"{out}: is not empty; choose a new {what} (nothing was changed), or pass --overwrite to replace it"
        )
    return out


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes: what an earlier output's provenance is checked against before it is reused."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
