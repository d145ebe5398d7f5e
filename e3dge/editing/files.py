"""Directions on disk: e3dge's own (``directions.safetensors`` + ``directions.json``) and the files peers ship.

Peers' formats, each checked by shape (a wrong shape is a one-line error naming the file):
- PREIM3D ``.pt``: one tensor ``(num_ws * w_dim, 1)`` = ``(7168, 1)`` -> ``[14, 512]`` per-row offsets
  (read with ``torch.load(weights_only=True)``: nothing is executed);
- GOAE ``.npy``: ``(1, num_ws, w_dim)`` = ``(1, 14, 512)`` per-row offsets;
- InterfaceGAN / official E3DGE ``boundary.npy``: ``(1, w_dim)`` unit normal, added to every row
  (StyleSDF's renderer boundaries are 256-d, its decoder boundaries 512-d).
``.npy`` files are read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from e3dge.core.errors import UserError, one_line, refused_global
from e3dge.core.files import atomic_path, write_json
from e3dge.editing.direction import Direction

__all__ = [
    "DIRECTIONS_WEIGHTS",
    "DIRECTIONS_INFO",
    "save_directions",
    "load_directions",
    "load_preim3d",
    "load_goae",
    "load_interfacegan",
]

DIRECTIONS_WEIGHTS = "directions.safetensors"
DIRECTIONS_INFO = "directions.json"
_INFO_KEYS = {"rows", "source", "strength_range", "info"}


def save_directions(folder: str | os.PathLike, directions: dict[str, Direction]) -> Path:
    """Write ``directions.safetensors`` (vectors) and ``directions.json`` (rows, source, validated range)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / DIRECTIONS_WEIGHTS) as tmp:
        save_file({name: d.vector.detach().float().contiguous().cpu() for name, d in directions.items()}, str(tmp))
    info = {
        name: {
            "rows": list(d.rows) if d.rows is not None else None,
            "source": d.source,
            "strength_range": list(d.strength_range),
            "info": d.info,
        }
        for name, d in directions.items()
    }
    write_json(out / DIRECTIONS_INFO, info, indent=1, sort_keys=True)
    return out


def load_directions(folder: str | os.PathLike) -> dict[str, Direction]:
    """Read :func:`save_directions`'s files; every entry is checked (names match, keys known, values typed)."""
    folder = Path(folder)
    info_path, weights_path = folder / DIRECTIONS_INFO, folder / DIRECTIONS_WEIGHTS
    try:
        info = json.loads(info_path.read_text())
        vectors = load_file(str(weights_path))
    except (OSError, ValueError, RuntimeError, SafetensorError) as err:
        raise UserError(
            f"{folder}: unreadable directions ({one_line(err)[:200]}); it needs {DIRECTIONS_INFO} and {DIRECTIONS_WEIGHTS}"
        ) from None
    if not isinstance(info, dict) or set(info) != set(vectors):
        raise UserError(
            f"{info_path}: must map exactly the names in {DIRECTIONS_WEIGHTS} ({sorted(vectors)}) to their settings"
        )
    out = {}
    for name, entry in info.items():
        if not isinstance(entry, dict) or set(entry) - _INFO_KEYS:
            raise UserError(f"{info_path}: entry {name!r} must be a mapping with keys among {sorted(_INFO_KEYS)}")
        rows, rng = entry.get("rows"), entry.get("strength_range", [-3.0, 3.0])
        if rows is not None and not (
            isinstance(rows, list) and all(isinstance(r, int) and not isinstance(r, bool) for r in rows)
        ):
            raise UserError(f"{info_path}: rows of {name!r} must be a list of integers or null")
        if not (
            isinstance(rng, list)
            and len(rng) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in rng)
        ):
            raise UserError(f"{info_path}: strength_range of {name!r} must be [low, high]")
        out[name] = Direction(
            name,
            vectors[name],
            tuple(rows) if rows is not None else None,
            str(entry.get("source", "")),
            (float(rng[0]), float(rng[1])),
            dict(entry.get("info") or {}),
        )
    return out


def _check_shape(path: Path, array: np.ndarray | torch.Tensor, expected: tuple[int, ...], what: str) -> None:
    if tuple(array.shape) != expected:
        raise UserError(f"{path}: a {what} holds shape {tuple(expected)}, this file holds {tuple(array.shape)}")


def _unit(path: Path, v: torch.Tensor) -> torch.Tensor:
    norm = float(v.norm())
    if not np.isfinite(norm) or norm == 0:
        raise UserError(f"{path}: the direction is zero or not finite")
    return v / norm


def load_preim3d(path: str | os.PathLike, name: str, num_ws: int = 14, w_dim: int = 512) -> Direction:
    """PREIM3D's ``.pt`` direction ``(num_ws * w_dim, 1)`` -> per-row offsets ``[num_ws, w_dim]`` (kept as stored)."""
    path = Path(path)
    try:
        t = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read is the file's problem, reported in one line
        bad = refused_global(err)
        reason = (
            f"it references {bad!r}, which a direction never needs; nothing in it was executed"
            if bad
            else one_line(err)[:200]
        )
        raise UserError(f"{path}: not a readable PREIM3D direction ({reason})") from None
    if not isinstance(t, torch.Tensor):
        raise UserError(f"{path}: a PREIM3D direction is one tensor, this file holds a {type(t).__name__}")
    _check_shape(path, t, (num_ws * w_dim, 1), "PREIM3D direction")
    return Direction(name, t.float().reshape(num_ws, w_dim), source=f"PREIM3D {path.name}")


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable .npy array ({one_line(err)[:200]})") from None


def load_goae(path: str | os.PathLike, name: str, num_ws: int = 14, w_dim: int = 512) -> Direction:
    """GOAE's ``.npy`` direction ``(1, num_ws, w_dim)`` -> per-row offsets (kept as stored)."""
    path = Path(path)
    a = _load_npy(path)
    _check_shape(path, a, (1, num_ws, w_dim), "GOAE direction")
    return Direction(name, torch.from_numpy(a[0].astype(np.float32)), source=f"GOAE {path.name}")


def load_interfacegan(
    path: str | os.PathLike, name: str, w_dim: int = 512, rows: tuple[int, ...] | None = None
) -> Direction:
    """InterfaceGAN / official E3DGE ``boundary.npy`` ``(1, w_dim)`` -> a unit direction added to ``rows`` (all by default)."""
    path = Path(path)
    a = _load_npy(path)
    _check_shape(path, a, (1, w_dim), "InterfaceGAN boundary")
    return Direction(
        name, _unit(path, torch.from_numpy(a[0].astype(np.float32))), rows, source=f"InterfaceGAN {path.name}"
    )
