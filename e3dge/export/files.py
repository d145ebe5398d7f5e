"""Mesh files: .glb (vertex colours; what ``gr.Model3D`` shows best), .ply and .obj with normals, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from e3dge.errors import UserError
from e3dge.export.mesh import Mesh

__all__ = ["MESH_FORMATS", "mesh_bytes", "save_mesh"]

MESH_FORMATS = ("glb", "ply", "obj")


def mesh_bytes(mesh: Mesh, fmt: str) -> bytes:
    """The file contents of ``mesh`` in ``fmt`` (glb / ply / obj), each with vertex colours and normals."""
    from trimesh.exchange.gltf import export_glb
    from trimesh.exchange.obj import export_obj
    from trimesh.exchange.ply import export_ply

    if fmt not in MESH_FORMATS:
        raise UserError(f"mesh format must be one of {', '.join(MESH_FORMATS)}, got {fmt!r}")
    tm = mesh.to_trimesh()
    if fmt == "glb":
        return export_glb(tm, include_normals=True)
    if fmt == "ply":
        return export_ply(tm, encoding="binary", vertex_normal=True)
    return export_obj(tm, include_normals=True, include_color=True, include_texture=False).encode()


def save_mesh(mesh: Mesh, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write ``mesh`` to ``path`` (format from ``fmt`` or the suffix) through a temporary file, so a kill leaves no half file."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    data = mesh_bytes(mesh, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
