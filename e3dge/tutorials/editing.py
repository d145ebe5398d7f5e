"""Notebook 03 (hybrid alignment and editing): toy heads with exact ground truth, directions, alignments, edit precision."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import torch

from e3dge.core.cameras import label_from_yaw_pitch
from e3dge.core.images import to_model_input
from e3dge.editing import Direction
from e3dge.editing.fit import binarize, fit_direction
from e3dge.editing.toy import toy_attribute_labels
from e3dge.encoders.hybrid import ViewRender
from e3dge.encoders.pixel_aligned import project, visibility
from e3dge.metrics.image import mae
from e3dge.toy import FACTOR_NAMES, HeadFactorMap, render_heads
from e3dge.tutorials.checks import PENDING_MARK, CheckResult, report

__all__ = [
    "ToyHeads",
    "toy_heads",
    "to_uint8",
    "sampled_codes",
    "hair_colour_direction_solution",
    "check_direction",
    "ALIGNMENT_ROWS",
    "e0_view",
    "render_with",
    "alignment_comparison",
    "edited_view",
    "EditSweep",
    "edit_sweep",
    "sweep_figure",
    "in_image_visibility_solution",
    "check_visibility",
]

RES = 64
ALIGNMENT_ROWS = {
    "E0 only": None,
    "local features, no alignment": "local",
    "2D alignment (E_ADA)": "2d",
    "3D alignment (projection)": "3d",
    "hybrid (paper)": "hybrid",
}


@dataclass
class ToyHeads:
    """Photo-like toy heads with their exact factors and true cameras (ground truth for any view and any attribute change)."""

    pixels: np.ndarray  # uint8 [N, 128, 128, 3]
    z: torch.Tensor  # [N, z_dim] the heads' latents (also the toy generator's z)
    factors: torch.Tensor  # [N, F]
    yaw: torch.Tensor  # [N] radians
    pitch: torch.Tensor  # [N]
    resolution: int = RES  # raw render size of every comparison

    def target(self, i: int, yaw: float, pitch: float, factors: torch.Tensor | None = None) -> torch.Tensor:
        """The procedural photo render ``[1, 3, R, R]`` of head ``i`` (or of ``factors``) at (yaw, pitch)."""

        f = self.factors[i : i + 1] if factors is None else factors
        return render_heads(
            f, label_from_yaw_pitch(torch.tensor([yaw]), torch.tensor([pitch])), self.resolution, photo=True
        ).image


def toy_heads(num: int, seed: int = 5150, resolution: int = RES) -> ToyHeads:
    """``num`` held-out photo-like heads at mild random poses (seed 5150 is the benchmarks' held-out draw)."""

    g = torch.Generator().manual_seed(seed)
    fm = HeadFactorMap()
    z = torch.randn(num, fm.z_dim, generator=g)
    yaw, pitch = (torch.rand(num, generator=g) * 2 - 1) * 0.4, (torch.rand(num, generator=g) * 2 - 1) * 0.2
    f = fm.factors(z)
    img = render_heads(f, label_from_yaw_pitch(yaw, pitch), 128, photo=True).image
    return ToyHeads(to_uint8(img), z, f, yaw, pitch, resolution)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[N, 3, H, W]`` in [-1, 1] -> uint8 ``[N, H, W, 3]``."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


# ----------------------------------------------------------------------------- directions
@torch.no_grad()
def sampled_codes(G, num: int, seed: int = 8080) -> tuple[torch.Tensor, dict[str, np.ndarray]]:
    """``num`` sampled W codes of the toy generator and the attribute scores of the heads they draw (exact, from the factor map)."""

    z = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(seed))
    w = G.mapping(z, torch.zeros(num, G.c_dim))[:, 0]
    return w, toy_attribute_labels(HeadFactorMap(G.z_dim).factors(z))


def hair_colour_direction_solution(w: torch.Tensor, scores: np.ndarray) -> torch.Tensor:
    """InterfaceGAN: a linear SVM between the lightest and darkest thirds of hair colour scores; its unit normal ``[w_dim]``."""

    idx, y = binarize(scores, 1 / 3)
    return fit_direction("hair_colour", w[idx], y).direction.vector


def check_direction(vector, reference: Direction, threshold: float = 0.8) -> CheckResult:
    """The learner's direction must point the same way as the bundle's (cosine >= ``threshold``)."""
    name = "exercise 1 (a hair-colour direction)"
    if vector is None:
        print(f"{PENDING_MARK} {name}: not answered yet (replace `raise NotImplementedError`)")
        return CheckResult(name, False, "not answered yet")
    v = torch.as_tensor(vector, dtype=torch.float64).flatten()
    ref = reference.vector.double().flatten()
    if v.shape != ref.shape:
        return report(name, False, f"a vector of {ref.numel()} values (one w) is expected, got {v.numel()}")
    cos = float(v @ ref / (v.norm() * ref.norm()).clamp_min(1e-12))
    return report(
        name,
        cos >= threshold,
        f"cosine {cos:.3f} with the shipped direction (needs >= {threshold})"
        + ("" if cos >= 0 else "; it points the other way: flip the sign"),
    )


# ----------------------------------------------------------------------------- alignments
def _kw(res: int) -> dict:
    return dict(deterministic=True, superresolution=False, neural_rendering_resolution=res)


@torch.no_grad()
def e0_view(pipe, ws: torch.Tensor, cam: torch.Tensor, res: int = RES) -> tuple[torch.Tensor, ViewRender]:
    """E0's tri-planes for ``ws`` and its raw render + depth at ``cam`` (what the local branch reads and modulates)."""
    planes = pipe.generator.planes(ws)
    out = pipe.generator.synthesis(ws, cam, planes=planes, **_kw(res))
    return planes, ViewRender(out.image_raw, out.depth, cam)


@torch.no_grad()
def render_with(
    pipe,
    ws: torch.Tensor,
    planes: torch.Tensor,
    query: ViewRender,
    reference: ViewRender,
    photo: torch.Tensor,
    alignment: str | None,
    visibility: str = "in_image",
) -> torch.Tensor:
    """Raw render ``[1, 3, R, R]`` at the query view: E0's alone (``alignment`` None) or modulated by the local branch reading ``photo``."""
    if alignment is None or pipe.local_branch is None:
        return query.image.clamp(-1, 1)
    hook = pipe.local_branch.colour_hook(photo, reference, query, alignment, visibility)
    return pipe.generator.synthesis(
        ws, query.label, planes=planes, colour_hook=hook, **_kw(query.image.shape[-1])
    ).image_raw.clamp(-1, 1)


def alignment_comparison(
    pipe, heads: ToyHeads, i: int, turn: float = 0.5
) -> dict[str, tuple[np.ndarray, float, np.ndarray, float]]:
    """Per alignment row: (source image, source MAE, novel image, novel MAE) for head ``i``; the novel view turns ``turn`` rad across the front."""

    inv = pipe.invert(heads.pixels[i], align=False, local=False)
    photo = to_model_input(heads.pixels[i], pipe.generator.img_resolution, "cpu")
    yaw, pitch = float(heads.yaw[i]), float(heads.pitch[i])
    yaw2 = yaw - turn * math.copysign(1.0, yaw + 1e-6)
    t_src, t_novel = heads.target(i, yaw, pitch), heads.target(i, yaw2, pitch)
    r = heads.resolution
    planes, ref = e0_view(pipe, inv.ws, inv.camera, r)
    _, src = e0_view(pipe, inv.ws, label_from_yaw_pitch(inv.yaw, inv.pitch), r)
    _, novel = e0_view(pipe, inv.ws, label_from_yaw_pitch(yaw2, pitch), r)
    out = {}
    for name, alignment in ALIGNMENT_ROWS.items():
        a = render_with(pipe, inv.ws, planes, src, ref, photo, alignment)
        b = render_with(pipe, inv.ws, planes, novel, ref, photo, alignment)
        out[name] = (to_uint8(a)[0], float(mae(a, t_src)), to_uint8(b)[0], float(mae(b, t_novel)))
    out["ground truth"] = (to_uint8(t_src)[0], 0.0, to_uint8(t_novel)[0], 0.0)
    return out


def edited_view(
    pipe, inv, attribute: str, strength: float, yaw: float, pitch: float = 0.0, local: bool = True
) -> np.ndarray:
    """What the widgets show: ``inv`` edited along ``attribute`` by ``strength`` and turned to (yaw, pitch), with or without the local branch."""
    return pipe.render(
        inv, yaw=yaw, pitch=pitch, edits={attribute: strength} if strength else None, quality="full", local=local
    ).image


# ----------------------------------------------------------------------------- edit precision
@dataclass
class EditSweep:
    """MAE at yaw -30 / +30 deg between an edited inversion and the exact edited head, per strength."""

    attribute: str
    direction: str
    local: bool
    strengths: list[float]
    mae: list[float]

    @property
    def best(self) -> tuple[float, float]:
        """(strength, MAE) of the most precise edit."""
        k = int(np.argmin(self.mae))
        return self.strengths[k], self.mae[k]


def edit_sweep(pipe, heads: ToyHeads, direction: str, strengths: list[float], change: float = 0.3) -> list[EditSweep]:
    """Skin tone moved by ``change`` (towards the middle) on every head: how close each strength of ``direction`` gets, seen at +-30 deg,
    without and with the local branch (hybrid alignment; it reads the unedited photo against E0's unedited render)."""

    k = FACTOR_NAMES.index("skin_tone")
    d = pipe.directions[direction]
    sides = [label_from_yaw_pitch(s * math.radians(30), 0.0) for s in (-1.0, 1.0)]
    totals = np.zeros((2, len(strengths)))
    for i in range(len(heads.z)):
        inv = pipe.invert(heads.pixels[i], align=False, local=False)
        photo = to_model_input(heads.pixels[i], pipe.generator.img_resolution, "cpu")
        f = heads.factors[i : i + 1].clone()
        sign = 1.0 if float(f[0, k]) < 0.5 else -1.0
        f[0, k] += sign * change
        targets = [heads.target(i, s * math.radians(30), 0.0, f) for s in (-1.0, 1.0)]
        _, ref = e0_view(pipe, inv.ws, inv.camera, heads.resolution)
        for j, s in enumerate(strengths):
            ws = d.apply(inv.ws, sign * s)
            for cam, t in zip(sides, targets):
                planes, q = e0_view(pipe, ws, cam, heads.resolution)
                for m, alignment in enumerate((None, "hybrid")):
                    totals[m, j] += float(mae(render_with(pipe, ws, planes, q, ref, photo, alignment), t)) / 2
    means = totals / len(heads.z)
    return [
        EditSweep("skin_tone", direction, local, list(strengths), means[m].tolist())
        for m, local in enumerate((False, True))
    ]


def sweep_figure(sweeps: list[EditSweep]):
    """MAE vs edit strength, one line per (direction, local branch)."""

    fig = go.Figure()
    for s in sweeps:
        fig.add_trace(
            go.Scatter(
                x=s.strengths,
                y=s.mae,
                mode="lines+markers",
                name=f"{s.direction}, {'with' if s.local else 'without'} local branch",
            )
        )
    fig.update_layout(
        xaxis_title="edit strength (towards the target)",
        yaxis_title="MAE at yaw ±30° vs the exact edit",
        height=360,
        width=700,
        margin=dict(l=10, r=10, t=30, b=10),
    )
    return fig


# ----------------------------------------------------------------------------- exercise 2
def in_image_visibility_solution(grid: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """The official visibility: a point counts when it projects inside the image (both grid coordinates in [-1, 1]) in front of the camera."""
    return ((grid.abs() <= 1).all(-1, keepdim=True) & (depth > 0)).float()


def check_visibility(fn, seed: int = 3) -> CheckResult:
    """Compare the learner's mask with e3dge's ``visibility(..., mode="in_image")`` on random points seen from a toy camera."""

    name = "exercise 2 (visibility mask)"
    g = torch.Generator().manual_seed(seed)
    points = (torch.rand(2, 500, 3, generator=g) * 2 - 1) * 1.5
    label = label_from_yaw_pitch(torch.tensor([0.3, -0.2]), torch.tensor([0.1, 0.0]))
    p = project(points, label)
    try:
        got = fn(p.grid, p.depth)
    except NotImplementedError:
        got = None
    if got is None:
        print(f"{PENDING_MARK} {name}: not answered yet (replace `raise NotImplementedError`)")
        return CheckResult(name, False, "not answered yet")
    want = visibility(p, "in_image")
    got = torch.as_tensor(got, dtype=want.dtype)
    if got.shape != want.shape:
        return report(
            name,
            False,
            f"shape {tuple(got.shape)}, expected {tuple(want.shape)} (one value per point, keep the last dim)",
        )
    wrong = int((got != want).sum())
    return report(
        name,
        wrong == 0,
        "matches e3dge's mask"
        if wrong == 0
        else f"{wrong} of {want.numel()} points differ: inside means |x| <= 1 and |y| <= 1, and z > 0",
    )
