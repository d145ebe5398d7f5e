"""Editing directions: a named vector in W / W+ and how to apply it (``ws + strength * direction`` on its rows)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch

from e3dge.core.errors import UserError

__all__ = ["Direction", "apply_edits", "check_edits", "MAX_EDIT_STRENGTH"]


@dataclass(frozen=True)
class Direction:
    """An editing direction.

    ``vector`` is ``[w_dim]`` (the same offset on every row it touches, as InterfaceGAN / E3DGE) or
    ``[num_ws, w_dim]`` (one offset per W+ row, as PREIM3D / GOAE). ``rows`` lists the W+ rows it
    touches (``None``: all). ``strength_range`` is the range it was validated on.
    """

    name: str
    vector: torch.Tensor
    rows: tuple[int, ...] | None = None
    source: str = ""
    strength_range: tuple[float, float] = (-3.0, 3.0)
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vector.ndim not in (1, 2) or not torch.isfinite(self.vector).all():
            raise UserError(
                f"direction {self.name!r}: vector must be finite [w_dim] or [num_ws, w_dim], got shape {list(self.vector.shape)}"
            )
        lo, hi = self.strength_range
        if not lo < hi:
            raise UserError(
                f"direction {self.name!r}: strength_range must be (low, high) with low < high, got {self.strength_range}"
            )

    @property
    def w_dim(self) -> int:
        return int(self.vector.shape[-1])

    def offset(self, num_ws: int) -> torch.Tensor:
        """The ``[num_ws, w_dim]`` offset of strength 1 (zero on rows the direction does not touch)."""
        if self.vector.ndim == 2 and self.vector.shape[0] != num_ws:
            raise UserError(
                f"direction {self.name!r} has {self.vector.shape[0]} W+ rows but the generator has {num_ws}"
            )
        full = self.vector.expand(num_ws, -1) if self.vector.ndim == 1 else self.vector
        if self.rows is None:
            return full
        bad = [r for r in self.rows if not 0 <= r < num_ws]
        if bad:
            raise UserError(f"direction {self.name!r} touches rows {bad}, outside the generator's {num_ws} W+ rows")
        keep = torch.zeros(num_ws, 1, dtype=full.dtype)
        keep[list(self.rows)] = 1
        return full * keep

    def apply(self, ws: torch.Tensor, strength: float) -> torch.Tensor:
        """``ws [N, num_ws, w_dim] + strength * offset`` (a new tensor; ``ws`` is not changed)."""
        if ws.ndim != 3 or ws.shape[-1] != self.w_dim:
            raise UserError(f"direction {self.name!r} is {self.w_dim}-d but the latent is {list(ws.shape)}")
        return ws + float(strength) * self.offset(ws.shape[1]).to(ws.device, ws.dtype)


MAX_EDIT_STRENGTH = 10.0
"""Largest |strength| of an edit: directions are unit vectors and useful edits lie within about +-3 (the official ranges
are within +-2); far beyond, the latent leaves the generator's domain and renders garbage."""


def check_edits(edits: Any) -> dict[str, float]:
    """``{name: strength}`` as floats, each finite and within :data:`MAX_EDIT_STRENGTH`; else a one-line error."""
    if edits is None:
        return {}
    if not isinstance(edits, dict):
        raise UserError(f"edits must be a mapping of direction name to strength, got {type(edits).__name__}")
    out = {}
    for name, value in edits.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserError(f"edit strength of {str(name)[:60]!r} must be a finite number, got {str(value)[:40]!r}")
        if abs(value) > MAX_EDIT_STRENGTH:
            raise UserError(
                f"edit strength of {str(name)[:60]!r} must be within +-{MAX_EDIT_STRENGTH:g}, got {value:g}"
            )
        out[str(name)] = float(value)
    return out


def apply_edits(ws: torch.Tensor, directions: dict[str, Direction], edits: dict[str, float]) -> torch.Tensor:
    """Apply several named edits in a fixed (sorted) order; unknown names are a one-line error listing the available ones."""
    edits = check_edits(edits)
    unknown = sorted(set(edits) - set(directions))
    if unknown:
        have = ", ".join(sorted(directions)) or "none"
        raise UserError(f"unknown editing direction(s) {unknown}; available: {have}")
    for name in sorted(edits):
        ws = directions[name].apply(ws, edits[name])
    return ws
