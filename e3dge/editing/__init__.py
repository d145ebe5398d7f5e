"""Editing: directions in W / W+ (InterfaceGAN fits, PREIM3D inversion-manifold fits, peers' files) and applying them."""

from e3dge.editing.direction import Direction, apply_edits
from e3dge.editing.files import load_directions, load_goae, load_interfacegan, load_preim3d, save_directions
from e3dge.editing.fit import FitResult, binarize, fit_direction, project_out

__all__ = [
    "Direction",
    "apply_edits",
    "load_directions",
    "save_directions",
    "load_preim3d",
    "load_goae",
    "load_interfacegan",
    "FitResult",
    "binarize",
    "fit_direction",
    "project_out",
]
