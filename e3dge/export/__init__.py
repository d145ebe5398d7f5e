"""3D outputs of an inversion: meshes (marching cubes, clean-up, vertex colours; .glb/.ply/.obj) and Plotly figures."""

from e3dge.export.files import MESH_FORMATS, mesh_bytes, save_mesh
from e3dge.export.mesh import Mesh, MeshOptions, extract_mesh, field_grid, mesh_from_grid
from e3dge.export.plots import depth_points, depth_surface_figure, mesh_figure, point_cloud_figure, write_html

__all__ = [
    "Mesh",
    "MeshOptions",
    "field_grid",
    "mesh_from_grid",
    "extract_mesh",
    "MESH_FORMATS",
    "mesh_bytes",
    "save_mesh",
    "depth_points",
    "depth_surface_figure",
    "mesh_figure",
    "point_cloud_figure",
    "write_html",
]
