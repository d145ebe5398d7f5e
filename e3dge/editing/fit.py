"""Finding directions (InterfaceGAN): a linear SVM on latents with binary labels; its unit normal is the direction.

Latents may be sampled codes (InterfaceGAN, E3DGE) or codes produced by inverting images (PREIM3D's
"inversion manifold"): ``[N, w_dim]`` gives one offset for every W+ row, ``[N, num_ws, w_dim]`` one
offset per row. Conditional manipulation (InterfaceGAN Sec. 2.2) projects other attributes'
directions out of the normal, so editing one leaves the others' classifier scores unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from e3dge.core.errors import UserError
from e3dge.editing.direction import Direction

__all__ = ["FitResult", "binarize", "fit_direction", "project_out"]


@dataclass
class FitResult:
    """A fitted direction and how well a linear boundary separated the labels on held-out latents."""

    direction: Direction
    train_accuracy: float
    val_accuracy: float
    num_samples: int


def binarize(values: np.ndarray, tail: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Ordinal scores -> (kept indices, 0/1 labels): the lowest and highest ``tail`` fractions (0.5 = median split)."""
    values = np.asarray(values, dtype=np.float64)
    if not 0 < tail <= 0.5:
        raise UserError(f"tail must be in (0, 0.5], got {tail}")
    order = np.argsort(values, kind="stable")
    k = max(1, int(round(tail * len(values))))
    low, high = order[:k], order[len(values) - k :]
    idx = np.concatenate([low, high])
    return idx, np.concatenate([np.zeros(len(low)), np.ones(len(high))]).astype(np.int64)


def project_out(vector: torch.Tensor, others: list[torch.Tensor]) -> torch.Tensor:
    """``vector`` minus its components along ``others`` (Gram-Schmidt on them first), renormalised."""
    basis: list[torch.Tensor] = []
    for o in others:
        o = o.flatten().double()
        for b in basis:
            o = o - (o @ b) * b
        if o.norm() > 1e-8:
            basis.append(o / o.norm())
    v = vector.flatten().double()
    for b in basis:
        v = v - (v @ b) * b
    if v.norm() < 1e-8:
        raise UserError("the direction lies in the span of the conditions; nothing is left to edit")
    return (v / v.norm()).reshape(vector.shape).to(vector.dtype)


def fit_direction(
    name: str,
    latents: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    rows: tuple[int, ...] | None = None,
    conditions: list[Direction] | None = None,
    source: str = "sampled latents",
    validation_fraction: float = 0.2,
    C: float = 1.0,
    seed: int = 0,
    strength_range: tuple[float, float] = (-3.0, 3.0),
) -> FitResult:
    """Fit a linear SVM on ``latents`` (``[N, D]`` or ``[N, num_ws, D]``) vs 0/1 ``labels``; return the unit normal."""

    x = (
        latents.detach().cpu().double().numpy()
        if isinstance(latents, torch.Tensor)
        else np.asarray(latents, dtype=np.float64)
    )
    y = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if x.ndim not in (2, 3) or len(x) != len(y):
        raise UserError(
            f"latents must be [N, w_dim] or [N, num_ws, w_dim] with one label each; got {list(x.shape)} and {len(y)} labels"
        )
    if not set(np.unique(y).tolist()) <= {0, 1} or len(np.unique(y)) < 2:
        raise UserError(
            f"labels must be 0/1 with both classes present (binarize ordinal scores first), got values {sorted(set(np.unique(y).tolist()))[:5]}"
        )
    if not np.isfinite(x).all():
        raise UserError("latents must be finite")
    shape = x.shape[1:]
    flat = x.reshape(len(x), -1)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(flat))
    n_val = int(round(validation_fraction * len(flat)))
    val, train = order[:n_val], order[n_val:]
    mean = flat[train].mean(0)  # centre: the boundary's offset does not change its normal
    from sklearn.svm import (
        LinearSVC,  # heavy (1.6 s with scipy): loaded when a direction is fitted, not by every CLI call
    )

    svm = LinearSVC(C=C, dual="auto", max_iter=20000, random_state=seed).fit(flat[train] - mean, y[train])
    normal = torch.from_numpy(svm.coef_[0].reshape(shape)).float()
    normal = normal / normal.norm()
    if conditions:
        normal = project_out(
            normal, [c.vector.expand(*shape) if c.vector.ndim < len(shape) else c.vector for c in conditions]
        )
    acc = lambda idx: float((svm.predict(flat[idx] - mean) == y[idx]).mean()) if len(idx) else float("nan")
    info = {
        "train_accuracy": acc(train),
        "val_accuracy": acc(val),
        "num_samples": int(len(flat)),
        "conditions": [c.name for c in conditions or []],
    }
    direction = Direction(name, normal, rows, source, strength_range, info)
    return FitResult(direction, info["train_accuracy"], info["val_accuracy"], int(len(flat)))
