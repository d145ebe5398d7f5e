"""Plotly views of a 3D face: depth as a surface coloured by the image, the mesh, and a back-projected point cloud.

Each function returns a ``plotly.graph_objects.Figure`` (shown by ``fig.show()`` in a notebook, by
``gr.Plot`` in the app, or written with :func:`write_html`). Scenes keep true proportions
(``aspectmode="data"``) and open looking at the face, y up.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image

from e3dge.core.cameras import FFHQ_FOCAL, split_label
from e3dge.core.errors import UserError
from e3dge.core.files import write_text
from e3dge.export.mesh import Mesh
from e3dge.rendering.volume import sample_rays

__all__ = ["depth_points", "depth_surface_figure", "mesh_figure", "point_cloud_figure", "write_html"]

_FRONT = dict(up=dict(x=0, y=1, z=0), eye=dict(x=0.35, y=0.25, z=1.9), center=dict(x=0, y=0, z=0))


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    """``uint8 [H, W, 3]`` resized to ``size x size`` (area-averaged), to match a depth map."""

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise UserError(f"image must be uint8 [H, W, 3], got {image.dtype} {list(image.shape)}")
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BOX))


def _check_depth(depth: np.ndarray, mask: np.ndarray) -> None:
    if depth.ndim != 2 or depth.shape[0] != depth.shape[1] or mask.shape != depth.shape:
        raise UserError(
            f"depth and mask must be square [r, r] maps of one size, got {list(depth.shape)} and {list(mask.shape)}"
        )
    if not (mask > 0.5).any():
        raise UserError("the mask is empty: nothing to show (is the render blank?)")


def _scene(title: str, **axes) -> dict:
    return dict(
        title=dict(text=title),
        scene=dict(aspectmode="data", camera=_FRONT, **axes),
        margin=dict(l=0, r=0, t=40, b=0),
        height=520,
    )


def depth_points(depth: np.ndarray, mask: np.ndarray, camera: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """World points ``[P, 3]`` of the pixels with opacity > 0.5 (origin + depth * ray) and their flat pixel indices."""
    _check_depth(depth, mask)
    cam2world, intrinsics = split_label(camera.float().cpu().reshape(1, 25))
    origins, directions = sample_rays(cam2world, intrinsics, depth.shape[0])
    t = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32).reshape(-1))
    points = (origins[0] + directions[0] * t[:, None]).numpy()
    keep = np.flatnonzero(mask.reshape(-1) > 0.5)
    return points[keep], keep


def depth_surface_figure(
    depth: np.ndarray, mask: np.ndarray, image: np.ndarray, title: str = "depth", focal: float = FFHQ_FOCAL
) -> "go.Figure":  # noqa: F821
    """Depth as a height field over the image plane (nearer = higher, world units), coloured by ``image``; background hidden.

    Drawn as a triangulated grid with one colour per pixel (a ``Surface`` trace would blend colours
    through a colour scale); ``focal`` (normalised) sizes the image plane at the face's distance.
    """

    _check_depth(depth, mask)
    r = depth.shape[0]
    rgb = _resized(image, r).reshape(-1, 3)
    on = (mask > 0.5).reshape(-1)
    scale = float(np.median(depth[mask > 0.5])) / focal / r  # world size of one pixel at the face
    rows, cols = np.divmod(np.arange(r * r), r)
    x, y, z = (
        cols * scale,
        -rows * scale,
        -depth.reshape(-1) + float(depth[mask > 0.5].max()),
    )  # rows go down: the face is upright
    a = (np.arange(r - 1)[:, None] * r + np.arange(r - 1)[None, :]).reshape(-1)  # top-left corner of each pixel quad
    tris = np.concatenate([np.stack([a, a + r, a + 1], 1), np.stack([a + 1, a + r, a + r + 1], 1)])
    tris = tris[on[tris].all(1)]
    used = np.unique(tris)
    remap = np.full(r * r, -1)
    remap[used] = np.arange(len(used))
    t = remap[tris]
    trace = go.Mesh3d(
        x=x[used],
        y=y[used],
        z=z[used],
        i=t[:, 0],
        j=t[:, 1],
        k=t[:, 2],
        vertexcolor=[f"rgb({a},{b},{c})" for a, b, c in rgb[used]],
        flatshading=False,
        lighting=dict(ambient=0.8, diffuse=0.3, specular=0.0),
        name="depth surface",
        hoverinfo="skip",
    )
    return go.Figure(trace, layout=_scene(title, zaxis=dict(title="nearness")))


def mesh_figure(mesh: Mesh, title: str = "mesh") -> "go.Figure":  # noqa: F821
    """The mesh as a ``Mesh3d`` with its vertex colours and soft lighting."""

    if not len(mesh.faces):
        raise UserError("the mesh has no faces")
    v, f, c = mesh.vertices, mesh.faces, mesh.colors
    trace = go.Mesh3d(
        x=v[:, 0],
        y=v[:, 1],
        z=v[:, 2],
        i=f[:, 0],
        j=f[:, 1],
        k=f[:, 2],
        vertexcolor=[f"rgb({a},{b},{d})" for a, b, d in c],
        flatshading=False,
        lighting=dict(ambient=0.55, diffuse=0.6, specular=0.1, roughness=0.8),
        name="mesh",
        hoverinfo="skip",
    )
    return go.Figure(trace, layout=_scene(title))


def point_cloud_figure(
    depth: np.ndarray,
    mask: np.ndarray,
    image: np.ndarray,
    camera: torch.Tensor,
    title: str = "point cloud",
    max_points: int = 20000,
) -> "go.Figure":  # noqa: F821
    """The depth map back-projected with ``camera`` into world points, coloured by ``image`` (at most ``max_points``)."""

    points, keep = depth_points(depth, mask, camera)
    rgb = _resized(image, depth.shape[0]).reshape(-1, 3)[keep]
    if len(points) > max_points:
        pick = np.linspace(0, len(points) - 1, max_points).round().astype(np.int64)
        points, rgb = points[pick], rgb[pick]
    trace = go.Scatter3d(
        x=points[:, 0],
        y=points[:, 1],
        z=points[:, 2],
        mode="markers",
        name="points",
        hoverinfo="skip",
        marker=dict(size=2, color=[f"rgb({a},{b},{d})" for a, b, d in rgb]),
    )
    return go.Figure(trace, layout=_scene(title))


def write_html(figures: list, path: str | os.PathLike) -> Path:
    """One self-contained HTML page with ``figures`` (plotly.js embedded once, so it opens offline)."""
    if not figures:
        raise UserError("no figures to write")
    parts = [fig.to_html(full_html=False, include_plotlyjs=k == 0) for k, fig in enumerate(figures)]
    path = Path(path)
    write_text(
        path,
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>e3dge 3D views</title></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>",
    )
    return path
