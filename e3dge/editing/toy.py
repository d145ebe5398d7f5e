"""Directions for the toy lab, found both ways with ground-truth labels.

- ``<attr>``: InterfaceGAN on sampled codes (``z -> w``, one w row, applied to every row);
- ``<attr>_preim3d``: PREIM3D's inversion manifold: photo-like toy heads inverted by E0 (W+ codes,
  one offset per row), labelled by the factors that made them.
Binary attributes (smile, glasses) use their labels; ordinal ones (hair colour, skin tone, head
size) the top and bottom thirds of their factor. Each direction's validated strength range is
+-3 standard deviations of the fitting codes' projections on it.
"""

from __future__ import annotations

import numpy as np
import torch

from e3dge.core.cameras import label_from_yaw_pitch
from e3dge.editing.direction import Direction
from e3dge.editing.fit import FitResult, binarize, fit_direction
from e3dge.toy import FACTOR_NAMES, HeadFactorMap, render_heads

__all__ = ["TOY_ATTRIBUTES", "toy_attribute_labels", "fit_toy_directions"]

TOY_ATTRIBUTES = ("smile", "glasses", "hair_colour", "skin_tone", "head_size")
"""Toy attributes with a binary or ordinal label (positive direction: smiling, glasses, black -> red hair, darker skin, larger head)."""
_TAIL = 1 / 3


def toy_attribute_labels(factors: torch.Tensor) -> dict[str, np.ndarray]:
    """Scores per attribute (binary 0/1 or ordinal floats) of heads with these factors."""

    lab = HeadFactorMap.labels(factors)
    f = {name: factors[:, i].numpy() for i, name in enumerate(FACTOR_NAMES)}
    return {
        "smile": lab.is_smiling.long().numpy(),
        "glasses": lab.glasses.long().numpy(),
        "hair_colour": f["hair_colour"],
        "skin_tone": f["skin_tone"],
        "head_size": f["head_size"],
    }


def _fit(name: str, codes: torch.Tensor, scores: np.ndarray, source: str, seed: int, C: float) -> FitResult:
    binary = set(np.unique(scores).tolist()) <= {0, 1}
    idx, y = (np.arange(len(scores)), scores.astype(np.int64)) if binary else binarize(scores, _TAIL)
    res = fit_direction(name, codes[idx], y, source=source, seed=seed, C=C)
    proj = (codes.flatten(1).double() @ res.direction.vector.flatten().double()).numpy()
    spread = 3 * float(proj.std())
    d = res.direction
    res.direction = Direction(
        d.name,
        d.vector,
        d.rows,
        d.source,
        (-spread, spread),
        {**d.info, "label": "binary" if binary else "top/bottom thirds"},
    )
    return res


@torch.no_grad()
def fit_toy_directions(
    G, E=None, num: int = 4000, num_inverted: int = 1500, seed: int = 8080, batch: int = 100, inverted_C: float = 0.01
) -> dict[str, FitResult]:
    """Fit every toy attribute on sampled W codes, and (with the toy E0 ``E``) on inverted photo-like heads.

    W+ codes have ``num_ws`` times more dimensions than samples allow to fit freely, so their SVM is
    regularised harder (``inverted_C``).
    """

    fm = HeadFactorMap(G.z_dim)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(num, G.z_dim, generator=gen)
    w = G.mapping(z, torch.zeros(num, G.c_dim))[:, 0]  # c_gen_conditioning_zero: one w per z
    labels = toy_attribute_labels(fm.factors(z))
    out = {a: _fit(a, w, labels[a], "InterfaceGAN on sampled toy codes", seed, C=1.0) for a in TOY_ATTRIBUTES}
    if E is None:
        return out
    z = torch.randn(num_inverted, G.z_dim, generator=gen)
    yaw = (torch.rand(num_inverted, generator=gen) * 2 - 1) * 0.4
    pitch = (torch.rand(num_inverted, generator=gen) * 2 - 1) * 0.2
    factors = fm.factors(z)
    codes = []
    for s in range(0, num_inverted, batch):
        photos = render_heads(
            factors[s : s + batch],
            label_from_yaw_pitch(yaw[s : s + batch], pitch[s : s + batch]),
            G.img_resolution,
            photo=True,
        ).image
        codes.append(E(photos).ws)
    ws = torch.cat(codes)
    labels = toy_attribute_labels(factors)
    for a in TOY_ATTRIBUTES:
        out[f"{a}_preim3d"] = _fit(
            f"{a}_preim3d", ws, labels[a], "PREIM3D inversion manifold: toy E0 on photo-like heads", seed, C=inverted_C
        )
    return out
