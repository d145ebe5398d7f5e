"""Mesh files: .glb (vertex colours; what ``gr.Model3D`` shows best), .ply and .obj with normals, written atomically.

.ply and .obj carry the sRGB colours of the render; .glb carries them in linear light, as glTF
specifies (stored sRGB would look washed out in every glTF viewer).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from e3dge.core.errors import UserError
from e3dge.core.files import write_bytes
from e3dge.export.mesh import Mesh

__all__ = ["MESH_FORMATS", "mesh_bytes", "save_mesh", "srgb_to_linear", "linear_to_srgb"]

MESH_FORMATS = ("glb", "ply", "obj")


def srgb_to_linear(colors: np.ndarray) -> np.ndarray:
    """uint8 sRGB -> uint8 linear light (the sRGB transfer curve), as glTF's COLOR_0 expects."""
    c = colors.astype(np.float64) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return np.round(lin * 255).astype(np.uint8)


def linear_to_srgb(colors: np.ndarray) -> np.ndarray:
    """uint8 linear light -> uint8 sRGB (the inverse of :func:`srgb_to_linear`, up to rounding)."""
    c = colors.astype(np.float64) / 255
    srgb = np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)
    return np.round(srgb * 255).astype(np.uint8)


def mesh_bytes(mesh: Mesh, fmt: str) -> bytes:
    """The file contents of ``mesh`` in ``fmt`` (glb / ply / obj), each with vertex colours and normals."""
    from trimesh.exchange.gltf import export_glb
    from trimesh.exchange.obj import export_obj
    from trimesh.exchange.ply import export_ply

    if fmt not in MESH_FORMATS:
        raise UserError(f"mesh format must be one of {', '.join(MESH_FORMATS)}, got {fmt!r}")
    if fmt == "glb":  # glTF vertex colours are linear; viewers convert them back to sRGB on screen
        linear = dataclasses.replace(mesh, colors=srgb_to_linear(mesh.colors))
        return export_glb(linear.to_trimesh(), include_normals=True)
    tm = mesh.to_trimesh()
    if fmt == "ply":
        return export_ply(tm, encoding="binary", vertex_normal=True)
    return export_obj(tm, include_normals=True, include_color=True, include_texture=False).encode()


def save_mesh(mesh: Mesh, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write ``mesh`` to ``path`` (format from ``fmt`` or the suffix) through a temporary file, so a kill leaves no half file."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    data = mesh_bytes(mesh, fmt)
    return write_bytes(path, data)
