"""Editing directions: a named vector in W / W+ and how to apply it (``ws + strength * direction`` on its rows)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from e3dge.core.errors import UserError

__all__ = ["Direction", "apply_edits"]


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


def apply_edits(ws: torch.Tensor, directions: dict[str, Direction], edits: dict[str, float]) -> torch.Tensor:
    """Apply several named edits in a fixed (sorted) order; unknown names are a one-line error listing the available ones."""
    unknown = sorted(set(edits) - set(directions))
    if unknown:
        have = ", ".join(sorted(directions)) or "none"
        raise UserError(f"unknown editing direction(s) {unknown}; available: {have}")
    for name in sorted(edits):
        ws = directions[name].apply(ws, edits[name])
    return ws
