"""Stage II glue: the local branch's FiLM of the generator's colour path, with 2D, 3D or hybrid alignment.

Given the input (reference) view — the photo, its camera, and E0's render there (thumbnail, depth) —
and a query view with E0's render there, :meth:`LocalBranch.colour_hook` returns the hook that
``TriPlaneGenerator.synthesis(..., colour_hook=...)`` applies to every sample point:

- ``local``: E1 on the input residual ``Δ = photo - thumbnail``, sampled where the point projects in the
  *query* view (no alignment: right at the input view, misplaced at novel views);
- ``2d``: E1 on ``E_ADA(Δ, query thumbnail)`` (the residual moved to the query view) with the query depth,
  sampled in the query view;
- ``3d``: E1 on ``Δ`` with the input depth, sampled where the point projects in the *input* view;
- ``hybrid``: both, fused with the point's visibility in the input view (``in_image`` as the official
  code, or ``occlusion`` aware: a depth test against the input view's depth).
The fused feature and the point's positional encoding give ``(alpha, beta)``; colour features become
``(alpha + 1) f + beta``. Density is never modulated (geometry stays E0's), as in the official code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from e3dge.backbones.base import ViewRender
from e3dge.encoders.aligner import ResidualAligner
from e3dge.encoders.blocks import apply_film
from e3dge.encoders.fusion import FeatureFusion
from e3dge.encoders.local import LocalEncoder
from e3dge.encoders.pixel_aligned import VISIBILITY_MODES, project, sample_features, visibility

__all__ = ["ALIGNMENTS", "Alignment", "ViewRender", "LocalMaps", "LocalBranch"]

Alignment = Literal["local", "2d", "3d", "hybrid"]
ALIGNMENTS: tuple[Alignment, ...] = ("local", "2d", "3d", "hybrid")


@dataclass(frozen=True)
class LocalMaps:
    """What the branch computed for one query view: E1's maps (2D-aligned and input-view) and E_ADA's residual."""

    alignment: str
    map_2d: torch.Tensor | None
    map_3d: torch.Tensor | None
    aligned_residual: torch.Tensor | None


def _to(x: torch.Tensor, size: int) -> torch.Tensor:
    """Square images resized to ``size`` (antialiased when shrinking), so photo and renders subtract pixel by pixel."""
    if x.shape[-1] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)


class LocalBranch(nn.Module):
    """E1 + E_ADA + fusion as one callable; the modules are read only (one branch serves many requests)."""

    def __init__(
        self, local_encoder: LocalEncoder, aligner: ResidualAligner | None = None, fusion: FeatureFusion | None = None
    ) -> None:
        super().__init__()
        self.local_encoder, self.aligner, self.fusion = local_encoder, aligner, fusion

    @property
    def resolution(self) -> int:
        """Working size of residuals: E1's input size."""
        return int(self.local_encoder.config["input_size"])

    @property
    def default_alignment(self) -> str:
        """The richest alignment these modules support: hybrid, else 2d, else 3d."""
        return self.available()[-1]

    def available(self) -> tuple[str, ...]:
        """Alignments these modules support."""
        return (
            ("local", "3d")
            + (("2d",) if self.aligner is not None else ())
            + (("hybrid",) if self.aligner is not None and self.fusion is not None else ())
        )

    def residual(self, photo: torch.Tensor, reference: ViewRender) -> torch.Tensor:
        """``Δ = photo - E0's thumbnail`` at the branch's working resolution."""
        return self.image_residual(photo, reference.image)

    def image_residual(self, image: torch.Tensor, thumb: torch.Tensor) -> torch.Tensor:
        """``image - thumb`` at the branch's working resolution (both resized to it)."""
        return _to(image, self.resolution) - _to(thumb, self.resolution)

    def aligned_residual(self, residual: torch.Tensor, query: ViewRender) -> torch.Tensor:
        """E_ADA's residual at the query view."""
        return self.aligner(residual, _to(query.image, self.resolution))

    def input_maps(self, photo: torch.Tensor, reference: ViewRender) -> tuple[torch.Tensor, torch.Tensor]:
        """The input view's residual and E1's map of it (with the input depth): what every view of one face shares."""
        delta = self.residual(photo, reference)
        return delta, self.local_encoder(delta, reference.depth)  # E1 brings each depth map to its input size itself

    def prepare(
        self,
        photo: torch.Tensor,
        reference: ViewRender,
        query: ViewRender,
        alignment: str = "hybrid",
        inputs: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> LocalMaps:
        """E1's feature maps (and E_ADA's residual) for rendering ``query``; ``inputs`` (from :meth:`input_maps`)
        saves recomputing the input view's part, which does not change while the head turns."""
        if alignment not in self.available():
            raise ValueError(f"alignment must be one of {self.available()} for these modules, got {alignment!r}")
        E1 = self.local_encoder
        uses_3d = alignment in ("local", "3d", "hybrid")
        if inputs is not None:
            delta, map_3d = inputs[0], inputs[1] if uses_3d else None
        else:
            delta = self.residual(photo, reference)
            map_3d = E1(delta, reference.depth) if uses_3d else None
        aligned = self.aligned_residual(delta, query) if alignment in ("2d", "hybrid") else None
        map_2d = E1(aligned, query.depth) if aligned is not None else None
        return LocalMaps(alignment, map_2d, map_3d, aligned)

    def hook(self, maps: LocalMaps, reference: ViewRender, query: ViewRender, visibility_mode: str = "in_image"):
        """The generator ``colour_hook`` for rendering ``query`` with prepared maps (see the module docstring)."""
        if visibility_mode not in VISIBILITY_MODES:
            raise ValueError(f"visibility must be one of {VISIBILITY_MODES}, got {visibility_mode!r}")
        E1, alignment = self.local_encoder, maps.alignment

        def hook(colour: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
            n = colour.shape[0]
            pts = points.reshape(n, -1, 3)
            in_query = project(pts, query.label)
            if alignment == "local":
                feats = sample_features(maps.map_3d, in_query)
            elif alignment == "2d":
                feats = sample_features(maps.map_2d, in_query)
            else:
                in_ref = project(pts, reference.label)
                f3d = sample_features(maps.map_3d, in_ref)
                if alignment == "3d":
                    feats = f3d
                else:
                    vis = visibility(in_ref, visibility_mode, depth=reference.depth)
                    feats = self.fusion(sample_features(maps.map_2d, in_query), vis, f3d)
            alpha, beta = E1.film(feats, pts)
            return apply_film(colour.reshape(n, -1, colour.shape[-1]), alpha, beta).reshape(colour.shape)

        return hook

    def colour_hook(
        self,
        photo: torch.Tensor,
        reference: ViewRender,
        query: ViewRender,
        alignment: str = "hybrid",
        visibility_mode: str = "in_image",
        inputs: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        """``hook(prepare(...))`` in one call."""
        return self.hook(self.prepare(photo, reference, query, alignment, inputs), reference, query, visibility_mode)
