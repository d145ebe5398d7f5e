"""Files of an inversion: aligned crop, reconstruction, novel views, depth, orbit video, JSON, contact sheet."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
from PIL import Image

from e3dge.core.files import atomic_path, read_json, write_json, write_png
from e3dge.export import (
    MeshOptions,
    depth_surface_figure,
    extract_mesh,
    mesh_figure,
    point_cloud_figure,
    save_mesh,
    write_html,
)
from e3dge.inversion.pipeline import Inversion, InversionPipeline

__all__ = [
    "InversionFiles",
    "depth_image",
    "view_angles",
    "orbit_angles",
    "write_inversion",
    "contact_sheet",
    "write_video",
]

RESULT_JSON = "inversion.json"


@dataclass
class InversionFiles:
    """Paths written by :func:`write_inversion`."""

    folder: Path
    aligned: Path
    reconstruction: Path
    depth: Path
    views: list[Path] = field(default_factory=list)
    video: Path | None = None
    json: Path | None = None
    edited: Path | None = None
    mesh: Path | None = None
    plots: Path | None = None


def depth_image(depth: np.ndarray, mask: np.ndarray, near: float = 2.25, far: float = 3.3) -> np.ndarray:
    """``float [r, r]`` depth -> ``uint8 [r, r, 3]``: near is bright, background (opacity < 0.5) black."""
    d = np.clip((far - depth) / (far - near), 0.0, 1.0)
    g = np.where(mask > 0.5, 0.15 + 0.85 * d, 0.0)
    return np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=-1)


def view_angles(n: int, yaw_range: float = 0.6) -> list[tuple[float, float]]:
    """``n`` (yaw, pitch) radians spread from ``-yaw_range`` to ``+yaw_range`` at pitch 0."""
    if n == 1:
        return [(yaw_range, 0.0)]
    return [(-yaw_range + 2 * yaw_range * i / (n - 1), 0.0) for i in range(n)]


def orbit_angles(
    n: int, yaw_range: float = 0.35, pitch_range: float = 0.25, pitch_offset: float = -0.05
) -> list[tuple[float, float]]:
    """EG3D's orbit (as :func:`e3dge.core.cameras.orbit_labels`) as (yaw, pitch) radians."""
    return [
        (yaw_range * math.sin(2 * math.pi * t / n), pitch_offset + pitch_range * math.cos(2 * math.pi * t / n))
        for t in range(n)
    ]


def write_video(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """H.264 (yuv420p) mp4, written to a temporary name then moved into place."""

    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.stack(frames), fps=fps, codec="libx264", macro_block_size=1)  # imageio-ffmpeg: yuv420p
    return path


def _png(path: Path, pixels: np.ndarray) -> Path:

    return write_png(path, pixels)


def done_with(folder: str | Path, options: dict) -> bool:
    """Whether ``folder`` holds a finished inversion (its ``inversion.json``, written last) made with ``options``."""
    saved = read_json(Path(folder) / RESULT_JSON)
    return isinstance(saved, dict) and saved.get("options") == options


def write_inversion(
    pipe: InversionPipeline,
    inv: Inversion,
    folder: str | Path,
    views: int = 3,
    orbit_frames: int = 48,
    fps: int = 24,
    options: dict[str, Any] | None = None,
    edits: dict[str, float] | None = None,
    mesh: str | None = None,
    mesh_options: Any = None,
    plots: bool = False,
) -> InversionFiles:
    """Write the inversion's files into ``folder`` (created); ``orbit_frames=0`` skips the video.

    With ``edits`` (direction name -> strength) the views and the orbit show the edited face, and
    ``edited.png`` the edit at the input's own view. ``mesh`` ("glb", "ply", "obj") writes
    ``mesh.<fmt>`` of the (edited) face (``mesh_options``: an ``e3dge.export.MeshOptions``);
    ``plots`` writes ``view3d.html``: depth surface, mesh and point cloud in Plotly, viewable offline.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    files = InversionFiles(
        out,
        _png(out / "aligned.png", inv.aligned),
        _png(out / "reconstruction.png", inv.reconstruction),
        _png(out / "depth.png", depth_image(inv.depth, inv.mask, *pipe.variant(inv.variant).backbone.rig.depth_range)),
    )
    if edits:
        files.edited = _png(out / "edited.png", pipe.render(inv, edits=edits, quality="full").image)
    for i, (yaw, pitch) in enumerate(view_angles(views) if views else []):
        files.views.append(
            _png(out / f"view_{i:02d}.png", pipe.render(inv, yaw=yaw, pitch=pitch, edits=edits, quality="full").image)
        )
    if orbit_frames:
        frames = [
            pipe.render(inv, yaw=y, pitch=p, edits=edits, quality="full").image for y, p in orbit_angles(orbit_frames)
        ]
        files.video = write_video(out / "orbit.mp4", frames, fps)
    if mesh or plots:
        _write_3d(pipe, inv, out, files, edits, mesh, mesh_options, plots)
    files.json = out / RESULT_JSON
    summary = {**inv.summary(), "edits": dict(edits or {}), "options": options or {}}
    write_json(files.json, summary, indent=1)  # written last: marks the folder complete (batch runs resume on it)
    return files


def _write_3d(
    pipe: InversionPipeline,
    inv: Inversion,
    out: Path,
    files: InversionFiles,
    edits,
    mesh: str | None,
    mesh_options,
    plots: bool,
) -> None:
    """``mesh.<fmt>`` and/or ``view3d.html`` of the (edited) face at the input's view."""

    surface = extract_mesh(pipe, inv, edits=edits, options=mesh_options or MeshOptions())
    if mesh:
        files.mesh = save_mesh(surface, out / f"mesh.{mesh}", mesh)
    if plots:
        view = pipe.render(inv, edits=edits, quality="full")
        figures = [
            depth_surface_figure(view.depth, view.mask, view.image, "depth (input view)"),
            mesh_figure(surface, "mesh"),
            point_cloud_figure(view.depth, view.mask, view.image, view.camera, "depth as points"),
        ]
        files.plots = write_html(figures, out / "view3d.html")


def contact_sheet(rows: list[list[np.ndarray]], size: int = 128) -> np.ndarray:
    """Rows of images resized to ``size`` and tiled (missing cells black)."""

    width = max(len(r) for r in rows)
    sheet = np.zeros((size * len(rows), size * width, 3), np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            cell = np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))
            sheet[i * size : (i + 1) * size, j * size : (j + 1) * size] = cell
    return sheet
