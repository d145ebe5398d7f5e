"""Numeric precision of a pipeline's forward passes: float32 (the default, as the official code) or bfloat16 autocast.

``bf16`` runs the convolutions and matrix products of the encoders, the local branch and the decoders in bfloat16
(AVX512-BF16 / AMX CPUs, Ampere+ GPUs); the SIREN and the volume compositing stay float32, and latents are kept in
float32. It changes results (benchmarks/stylesdf_speed.py measures by how much), so it is only ever an option.
"""

from __future__ import annotations

import contextlib
from typing import Literal

import torch

from e3dge.core.errors import UserError

__all__ = ["Precision", "PRECISIONS", "check_precision", "autocast", "full_precision"]

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "bf16")


def check_precision(precision: str) -> Precision:
    """``precision`` if it is one of :data:`PRECISIONS`, else a one-line error."""
    if precision not in PRECISIONS:
        raise UserError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision  # type: ignore[return-value]


def autocast(device: torch.device, precision: Precision) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on ``device`` for ``bf16``; nothing for ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def full_precision(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast switched off on ``device`` (for the layers that must stay float32); nothing where autocast does not exist (meta)."""
    if not torch.amp.is_autocast_available(device.type):
        return contextlib.nullcontext()
    return torch.autocast(device.type, enabled=False)
