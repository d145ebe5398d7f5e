"""The calibrated criteria inference and training share: LPIPS and the ArcFace ID loss, or None when their weights are absent."""

from __future__ import annotations

import warnings

import torch

from e3dge.metrics.identity import make_identity_loss
from e3dge.metrics.lpips import LPIPS, LPIPSWeightsNotFoundError

__all__ = ["make_lpips", "make_identity"]


def make_lpips(net: str, device: torch.device | str = "cpu"):
    """Calibrated LPIPS, or None with a warning when its weights are missing (never a random-backbone LPIPS)."""
    if net == "off":
        return None
    try:
        return LPIPS(net).to(device).eval()
    except LPIPSWeightsNotFoundError as err:
        warnings.warn(f"LPIPS term is OFF: {err}", stacklevel=2)
        return None


def make_identity(kind: str, device: torch.device | str = "cpu"):
    """ArcFace identity loss, or None with a warning when ``model_ir_se50.pth`` is missing."""
    if kind == "off":
        return None
    loss = make_identity_loss(required=False)
    return None if loss is None else loss.to(device)
