"""Meshes from an inversion: density grid -> marching cubes (scikit-image) -> clean-up (trimesh) -> vertex colours.

The grid samples the backbone's field once, over its cube (EG3D: the tri-plane box, ``box_warp / 2``; StyleSDF: the
renderer's), in chunks of points so memory stays bounded. The field is an occupancy that grows inwards (EG3D: raw
density ``sigma``, whose own shape extraction uses 10; StyleSDF: ``-sdf``). The iso-level is a number or ``"auto"``:
the backbone's surface (EG3D: the median raw density at the surface points the renderer sees from the inversion's
view, which follows each model's density scale; StyleSDF: the zero level set). Vertex colours are the field's
colour at the vertices, so the mesh looks like the render.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from e3dge.backbones.base import Backbone
from e3dge.core.errors import UserError

__all__ = ["Mesh", "MeshOptions", "field_grid", "extract_mesh", "mesh_from_grid"]

MAX_GRID = 512
"""Largest grid side: 512^3 points is already 134 M field queries (minutes on a GPU)."""


@dataclass(frozen=True)
class MeshOptions:
    """How to extract a mesh: grid resolution, cube half-size, iso-level, clean-up."""

    resolution: int = 128  # grid points per side
    half_size: float | None = None  # cube [-h, h]^3; None = the backbone's field cube
    level: float | str = "auto"  # occupancy iso-level, or "auto" (the backbone's surface)
    largest_component: bool = True  # drop floaters: keep the component with the most faces
    smooth_iterations: int = 0  # Taubin smoothing steps (0 = none; keeps volume, unlike Laplacian)
    target_faces: int | None = None  # decimate to about this many faces (needs fast_simplification)
    chunk: int = 262144  # field queries per forward pass

    def __post_init__(self) -> None:
        if not isinstance(self.resolution, int) or not 16 <= self.resolution <= MAX_GRID:
            raise UserError(f"mesh resolution must be an integer between 16 and {MAX_GRID}, got {self.resolution!r}")
        if self.half_size is not None and not (isinstance(self.half_size, (int, float)) and 0 < self.half_size <= 10):
            raise UserError(f"mesh half_size must be a number in (0, 10], got {self.half_size!r}")
        if self.level != "auto" and not (isinstance(self.level, (int, float)) and math.isfinite(self.level)):
            raise UserError(f"mesh level must be 'auto' or a finite number, got {self.level!r}")
        if not isinstance(self.smooth_iterations, int) or not 0 <= self.smooth_iterations <= 100:
            raise UserError(f"smooth_iterations must be an integer between 0 and 100, got {self.smooth_iterations!r}")
        if self.target_faces is not None and not (isinstance(self.target_faces, int) and self.target_faces >= 100):
            raise UserError(f"target_faces must be an integer >= 100, got {self.target_faces!r}")


@dataclass
class Mesh:
    """A triangle mesh in world coordinates (EG3D: y up, the face looks along +z)."""

    vertices: np.ndarray  # float32 [V, 3]
    faces: np.ndarray  # int64 [F, 3], counter-clockwise seen from outside
    colors: np.ndarray  # uint8 [V, 3]
    normals: np.ndarray  # float32 [V, 3], unit, pointing out
    level: float = 0.0  # the raw-sigma iso-level used
    info: dict = field(default_factory=dict)

    def to_trimesh(self):
        """A ``trimesh.Trimesh`` with vertex colours and normals (no processing: vertices stay as they are)."""
        import trimesh

        return trimesh.Trimesh(
            self.vertices, self.faces, vertex_normals=self.normals, vertex_colors=self.colors, process=False
        )


def _grid_points(resolution: int, half: float) -> torch.Tensor:
    """``[R^3, 3]`` cube points, x fastest-varying last (index order x, y, z)."""
    axis = torch.linspace(-half, half, resolution)
    x, y, z = torch.meshgrid(axis, axis, axis, indexing="ij")
    return torch.stack((x, y, z), dim=-1).reshape(-1, 3)


@torch.no_grad()
def _field_on_grid(field, resolution: int, half: float, chunk: int, device) -> np.ndarray:
    """``field(points [1, M, 3]) -> [M]`` on a ``resolution^3`` grid over ``[-half, half]^3`` (float32, index order x, y, z), in chunks."""
    points = _grid_points(resolution, half).to(device)
    values = torch.empty(len(points))
    for s in range(0, len(points), chunk):
        values[s : s + chunk] = field(points[None, s : s + chunk]).float().cpu()
    return values.reshape(resolution, resolution, resolution).numpy()


def field_grid(
    backbone: Backbone, ws: torch.Tensor, scene: Any, resolution: int, half: float, chunk: int = 262144
) -> np.ndarray:
    """The backbone's occupancy (EG3D raw density, StyleSDF ``-sdf``) on a ``resolution^3`` grid over ``[-half, half]^3``."""
    return _field_on_grid(
        lambda p: backbone.field(ws, scene, p, colour=False).occupancy[0], resolution, half, chunk, backbone.device
    )


def _clean(mesh: Mesh, options: MeshOptions) -> Mesh:
    """Largest component, Taubin smoothing, decimation (trimesh); colours follow their vertices."""
    import trimesh

    tm = trimesh.Trimesh(mesh.vertices, mesh.faces, vertex_colors=mesh.colors, process=True)
    if options.largest_component and len(tm.faces):
        parts = tm.split(only_watertight=False)
        if len(parts):
            tm = max(parts, key=lambda p: len(p.faces))
    if options.smooth_iterations:
        trimesh.smoothing.filter_taubin(tm, iterations=options.smooth_iterations)
    if options.target_faces is not None and len(tm.faces) > options.target_faces:
        try:
            tm = tm.simplify_quadric_decimation(face_count=options.target_faces)
        except (ImportError, ModuleNotFoundError):
            raise UserError(
                "decimation needs the fast_simplification package: pip install fast_simplification"
            ) from None
    colors = (
        np.asarray(tm.visual.vertex_colors)[:, :3].astype(np.uint8) if len(tm.vertices) else np.zeros((0, 3), np.uint8)
    )
    return Mesh(
        np.asarray(tm.vertices, np.float32),
        np.asarray(tm.faces, np.int64),
        colors,
        np.asarray(tm.vertex_normals, np.float32),
        mesh.level,
        mesh.info,
    )


@torch.no_grad()
def _vertex_colors(backbone: Backbone, ws: torch.Tensor, scene: Any, vertices: np.ndarray, chunk: int) -> np.ndarray:
    """The field's colour at each vertex (what volume rendering composites into the raw image), as uint8."""
    points = torch.from_numpy(vertices).float().to(backbone.device)
    rgb = [
        backbone.field(ws, scene, points[None, s : s + chunk]).rgb[0].float().cpu()
        for s in range(0, len(points), chunk)
    ]
    return (torch.cat(rgb) if rgb else torch.zeros(0, 3)).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


def mesh_from_grid(sigma: np.ndarray, half: float, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Marching cubes (scikit-image) on ``sigma`` at ``level``: world vertices ``[V, 3]`` and outward faces ``[F, 3]``."""
    from skimage.measure import marching_cubes

    lo, hi = float(sigma.min()), float(sigma.max())
    if not lo < level < hi:
        raise UserError(
            f"iso-level {level:.3g} lies outside the field's density range [{lo:.3g}, {hi:.3g}]: no surface; pick a level inside it"
        )
    padded = np.pad(sigma, 1, mode="constant", constant_values=min(lo, level - 1.0))  # closes surfaces cut by the cube
    step = 2 * half / (sigma.shape[0] - 1)
    verts, faces, _, _ = marching_cubes(padded, level=level, spacing=(step, step, step))
    verts = verts - half - step  # undo the padding offset
    # density grows inwards, so scikit-image's faces wind with normals pointing inside: flip them.
    return verts.astype(np.float32), faces[:, ::-1].astype(np.int64).copy()


@torch.no_grad()
def extract_mesh(pipe, inversion, edits: dict[str, float] | None = None, options: MeshOptions | None = None) -> Mesh:
    """The mesh of ``inversion`` (with ``edits``) from ``pipe``'s backbone: field on a grid (once), marching cubes, clean-up, colours."""
    options = options or MeshOptions()
    backbone, ws, scene = pipe.scene_for(inversion, edits)
    half = options.half_size if options.half_size is not None else backbone.rig.field_half_size
    if options.level == "auto":
        level = backbone.surface_level(ws, scene, backbone.camera(inversion.yaw, inversion.pitch))
    else:
        level = float(options.level)
    grid = field_grid(backbone, ws, scene, options.resolution, half, options.chunk)
    field_name = f"{backbone.name} " + ("raw density" if backbone.field_kind == "density" else "-sdf")
    info = {
        "grid_resolution": options.resolution,
        "half_size": half,
        "level": level,
        "field": field_name,
        "edits": dict(edits or {}),
    }
    return _mesh(grid, half, level, lambda v: _vertex_colors(backbone, ws, scene, v, options.chunk), info, options)


def _mesh(grid: np.ndarray, half: float, level: float, colours, info: dict, options: MeshOptions) -> Mesh:
    """Marching cubes, vertex colours from ``colours(vertices)``, clean-up; an empty result is a one-line error."""
    vertices, faces = mesh_from_grid(grid, half, level)
    mesh = _clean(Mesh(vertices, faces, colours(vertices), np.zeros_like(vertices), level, info), options)
    if not len(mesh.faces):
        raise UserError("the mesh is empty at this level; pass another level or a larger half_size")
    return mesh
