"""Notebook 04 (3D in Plotly): depth surfaces, point clouds, meshes, and what an edit does to the geometry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from e3dge.core.cameras import split_label
from e3dge.export.plots import depth_points, point_cloud_figure
from e3dge.rendering.volume import sample_rays
from e3dge.tutorials.checks import CheckResult, check_against

__all__ = [
    "DepthChange",
    "depth_change",
    "before_after_figure",
    "difference_figure",
    "points_figure",
    "back_project_solution",
    "check_back_project",
    "moved_fraction_solution",
    "check_moved_fraction",
]


@dataclass
class DepthChange:
    """How an edit moves the surface seen from one camera (depth = distance along each ray, world units)."""

    attribute: str
    strength: float
    before: object  # e3dge Render
    after: object
    difference: np.ndarray  # [r, r] after - before on pixels opaque in both, NaN elsewhere
    moved_fraction: float  # of those pixels, the share that moved more than ``threshold``
    threshold: float


def depth_change(
    pipe, inv, attribute: str, strength: float, yaw: float = 0.0, pitch: float = 0.0, threshold: float = 0.01
) -> DepthChange:
    """Render ``inv`` before and after an edit from the same camera and compare their depth maps."""
    before = pipe.render(inv, yaw=yaw, pitch=pitch, quality="full")
    after = pipe.render(inv, yaw=yaw, pitch=pitch, edits={attribute: strength}, quality="full")
    both = (before.mask > 0.5) & (after.mask > 0.5)
    diff = np.where(both, after.depth - before.depth, np.nan)
    return DepthChange(
        attribute,
        strength,
        before,
        after,
        diff,
        moved_fraction_solution(before.depth, after.depth, before.mask, after.mask, threshold),
        threshold,
    )


def points_figure(render, title: str, max_points: int = 6000):
    """The render's depth back-projected to world points, coloured by its image (the app's point cloud view)."""

    return point_cloud_figure(
        render.depth, render.mask, render.image, render.camera, title=title, max_points=max_points
    )


def before_after_figure(change: DepthChange, max_points: int = 6000):
    """Two 3D scenes side by side: the point cloud before and after the edit."""

    fig = make_subplots(
        1,
        2,
        specs=[[{"type": "scene"}, {"type": "scene"}]],
        subplot_titles=("before", f"{change.attribute} {change.strength:+.1f}"),
    )
    for col, render in ((1, change.before), (2, change.after)):
        for trace in points_figure(render, "", max_points).data:
            fig.add_trace(trace, 1, col)
    cam = dict(up=dict(x=0, y=1, z=0), eye=dict(x=0.35, y=0.25, z=1.9))
    fig.update_scenes(aspectmode="data", camera=cam)
    fig.update_layout(height=420, width=1000, showlegend=False, margin=dict(l=0, r=0, t=40, b=0))
    return fig


def difference_figure(change: DepthChange):
    """Where the edit moved the surface: depth after - before (blue nearer, red farther), world units."""

    lim = float(np.nanmax(np.abs(change.difference))) if np.isfinite(change.difference).any() else 1.0
    fig = go.Figure(
        go.Heatmap(z=change.difference[::-1], colorscale="RdBu_r", zmin=-lim, zmax=lim, colorbar=dict(title="Δ depth"))
    )
    fig.update_layout(
        title=f"{change.attribute}: {100 * change.moved_fraction:.1f} % of the face moved > {change.threshold}",
        height=380,
        width=440,
        yaxis=dict(scaleanchor="x"),
        margin=dict(l=10, r=10, t=40, b=10),
    )
    return fig


# ----------------------------------------------------------------------------- exercises
def back_project_solution(depth: np.ndarray, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """World points ``[r*r, 3]``: each pixel's ray origin + its depth (distance along the unit ray) x the ray direction."""
    return origins + directions * depth.reshape(-1, 1)


def check_back_project(fn, render) -> CheckResult:
    """The learner's points for the opaque pixels must equal e3dge's ``depth_points`` (what the point cloud figure draws)."""

    cam2world, intrinsics = split_label(render.camera.float().reshape(1, 25))
    origins, directions = (t[0].numpy() for t in sample_rays(cam2world, intrinsics, render.depth.shape[0]))

    def reference(depth, o, d):
        return depth_points(depth, render.mask, render.camera)[0]

    def learner(depth, o, d):
        pts = fn(depth, o, d)
        return (
            None if pts is None else np.asarray(pts).reshape(-1, 3)[depth_points(depth, render.mask, render.camera)[1]]
        )

    return check_against(
        "exercise 1 (back-projection)",
        learner,
        reference,
        render.depth,
        origins,
        directions,
        atol=1e-4,
        hint="depth is the distance along each (unit) ray, not camera-space z",
    )


def moved_fraction_solution(
    before: np.ndarray, after: np.ndarray, mask_before: np.ndarray, mask_after: np.ndarray, threshold: float
) -> float:
    """Share of the pixels opaque in both renders whose depth changed by more than ``threshold``."""
    both = (mask_before > 0.5) & (mask_after > 0.5)
    return float((np.abs(after - before)[both] > threshold).mean()) if both.any() else 0.0


def check_moved_fraction(fn, change: DepthChange) -> CheckResult:
    """Compare the learner's fraction with the reference on the edit above."""
    args = (change.before.depth, change.after.depth, change.before.mask, change.after.mask, change.threshold)
    return check_against(
        "exercise 2 (share of the face an edit moves)",
        fn,
        moved_fraction_solution,
        *args,
        atol=1e-6,
        hint="count only pixels opaque (mask > 0.5) in both renders",
    )
