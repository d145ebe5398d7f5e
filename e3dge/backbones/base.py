"""The ``Backbone`` protocol: everything the pipeline, refinement, optimisation, PTI and exporters ask of a 3D GAN.

The pipeline never branches on which backbone it holds (EDM's ``Precond`` / diffusers' scheduler idea): an
adapter (:class:`e3dge.backbones.eg3d.adapter.EG3DBackbone`, :class:`e3dge.backbones.stylesdf.adapter.StyleSDFBackbone`)
answers these questions for its generator:

- the latent layout: every backbone's latent is one tensor ``ws [N, num_ws, w_dim]`` whose :class:`LatentLayout`
  says which rows and columns each part occupies (StyleSDF packs its renderer and decoder W+ side by side), so an
  editing direction ``[w_dim]`` or ``[num_ws, w_dim]`` adds to it the same way on every backbone;
- the mean latent (optimisation starts there), latents of random codes (:meth:`Backbone.sample_latent`, the pseudo
  pairs of training), the cacheable :meth:`Backbone.scene` of a latent (EG3D tri-planes),
- a differentiable :meth:`Backbone.render` at a :class:`~e3dge.core.cameras.Camera` with a quality level (and, for
  training, random ray jitter and the samples per ray), and the width of the features ``colour_hook`` modulates
  (:attr:`Backbone.film_channels`, the local branch's FiLM width),
- the field at points (:meth:`Backbone.field`: occupancy that grows inwards, and colour) for meshes,
- the camera rig (:class:`CameraRig`) and the parameters PTI may tune (:meth:`Backbone.tunable_copy`).
E0 and the Stage II local branch attach to a backbone in :mod:`e3dge.encoders.flows` (the official flow of each).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Literal, Protocol, runtime_checkable

import numpy as np
import torch

from e3dge.core.cameras import Camera

__all__ = [
    "Quality",
    "FieldKind",
    "LatentPart",
    "LatentLayout",
    "CameraRig",
    "View",
    "ViewRender",
    "FieldSample",
    "Encoded",
    "Backbone",
    "QUALITIES",
    "content_hash",
    "module_hash",
]

Quality = Literal["preview", "full"]
"""``preview``: the raw volume render (fewer samples where the backbone can), upsampled; ``full``: the model's own image."""
QUALITIES: tuple[Quality, ...] = ("preview", "full")
FieldKind = Literal["density", "sdf"]


@dataclass(frozen=True, kw_only=True)
class LatentPart:
    """One part of a packed latent: ``ws[:, :rows, start:stop]``."""

    name: str
    rows: int
    start: int
    stop: int


@dataclass(frozen=True, kw_only=True)
class LatentLayout:
    """How a backbone's latents sit in ``ws [N, num_ws, w_dim]`` (cells outside every part are unused and ignored)."""

    num_ws: int
    w_dim: int
    parts: tuple[LatentPart, ...]

    def split(self, ws: torch.Tensor) -> dict[str, torch.Tensor]:
        """The parts of ``ws`` by name, each ``[N, rows, stop - start]``."""
        self.check(ws)
        return {p.name: ws[:, : p.rows, p.start : p.stop] for p in self.parts}

    def pack(self, parts: dict[str, torch.Tensor]) -> torch.Tensor:
        """The inverse of :meth:`split` (unused cells are zero); each part may be ``[N, dim]`` (one row for all) or ``[N, rows, dim]``."""
        first = next(iter(parts.values()))
        ws = first.new_zeros(first.shape[0], self.num_ws, self.w_dim)
        for p in self.parts:
            x = parts[p.name]
            ws[:, : p.rows, p.start : p.stop] = x[:, None].expand(-1, p.rows, -1) if x.ndim == 2 else x
        return ws

    def check(self, ws: Any, what: str = "ws") -> torch.Tensor:
        """``ws`` itself when it is a float tensor ``[N, num_ws, w_dim]``; else a ValueError naming the expected shape."""
        if not isinstance(ws, torch.Tensor) or ws.ndim != 3 or tuple(ws.shape[1:]) != (self.num_ws, self.w_dim):
            raise ValueError(
                f"{what} must be a tensor [N, {self.num_ws}, {self.w_dim}], got {list(getattr(ws, 'shape', [])) or type(ws).__name__}"
            )
        return ws


@dataclass(frozen=True, kw_only=True)
class CameraRig:
    """Where a backbone's cameras sit and what its depth maps mean."""

    radius: float  # camera distance from the origin
    fov_degrees: float  # full vertical field of view
    ray_start: float  # nearest distance along a ray that is rendered
    ray_end: float
    field_half_size: float  # the field lives in the cube [-h, h]^3 (meshes are extracted there)
    depth_range: tuple[float, float]  # distances along the ray shown white .. black in depth images
    depth: Literal["distance"] = (
        "distance"  # depth maps hold the distance from the camera centre along each pixel's ray
    )


@dataclass(frozen=True, kw_only=True)
class View:
    """One render: final image, raw volume render, depth (distance along the ray) and opacity."""

    image: torch.Tensor  # [N, 3, R, R] about [-1, 1]
    image_raw: torch.Tensor  # [N, 3, r, r]
    depth: torch.Tensor  # [N, 1, r, r]
    mask: torch.Tensor  # [N, 1, r, r]
    trace: Any = None  # backbone-specific intermediates (StyleSDF: the official flow's QueryTrace)


@dataclass(frozen=True)
class ViewRender:
    """E0's raw render of one view as the local branch reads it: thumbnail ``[B, 3, r, r]``, depth ``[B, 1, r, r]``, label ``[B, 25]``."""

    image: torch.Tensor
    depth: torch.Tensor
    label: torch.Tensor


@dataclass(frozen=True, kw_only=True)
class FieldSample:
    """The field at points: ``occupancy`` grows towards the inside (EG3D raw density, StyleSDF ``-sdf``), ``rgb`` in [0, 1]."""

    occupancy: torch.Tensor  # [N, M]
    rgb: torch.Tensor | None  # [N, M, 3]; None when asked for the occupancy only


@dataclass(frozen=True, kw_only=True)
class Encoded:
    """What E0 (and the backbone's pose estimator) read from a photo."""

    ws: torch.Tensor  # [1, num_ws, w_dim]
    yaw: float  # radians
    pitch: float


@runtime_checkable
class Backbone(Protocol):
    """What every pipeline feature needs of a 3D GAN (see the module docstring)."""

    name: str  # "eg3d" or "stylesdf"
    field_kind: FieldKind
    layout: LatentLayout
    rig: CameraRig
    identity: str  # a hash of the generator's configuration and weights (part of every cache key)
    generator: torch.nn.Module
    bundle_slots: tuple[str, ...]  # the bundle components this backbone can use
    refine_resolution: int | None  # raw render size of refinement / optimisation steps (None: the model's own)

    @property
    def device(self) -> torch.device: ...

    @property
    def image_resolution(self) -> int: ...

    @property
    def neural_resolution(self) -> int: ...

    @property
    def z_dim(self) -> int: ...

    @property
    def film_channels(self) -> int: ...

    def mean_latent(self) -> torch.Tensor: ...

    def sample_latent(self, z: torch.Tensor, camera: Camera, truncation: float = 1.0) -> torch.Tensor: ...

    def camera(self, yaw: torch.Tensor | float, pitch: torch.Tensor | float) -> Camera: ...

    def photo(self, pixels: np.ndarray) -> torch.Tensor: ...

    def scene(self, ws: torch.Tensor) -> Any: ...

    def render(
        self,
        ws: torch.Tensor,
        scene: Any,
        camera: Camera,
        quality: Quality = "full",
        *,
        decode: bool = True,
        neural_resolution: int | None = None,
        colour_hook: Callable | None = None,
        jitter: torch.Generator | None = None,
        ray_samples: int | None = None,
    ) -> View: ...

    def field(self, ws: torch.Tensor, scene: Any, points: torch.Tensor, colour: bool = True) -> FieldSample: ...

    def surface_level(self, ws: torch.Tensor, scene: Any, camera: Camera) -> float: ...

    def tunable_copy(self) -> tuple[Backbone, list[torch.nn.Parameter]]: ...

    def frozen(self) -> Backbone: ...


def content_hash(*parts: Any) -> str:
    """A short hex digest of tensors, arrays and plain values (what cache keys are made of)."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, torch.Tensor):
            t = part.detach().to("cpu", torch.float32).contiguous()
            h.update(str(tuple(t.shape)).encode())
            h.update(t.numpy().tobytes())
        elif isinstance(part, np.ndarray):
            h.update(str(part.shape).encode() + str(part.dtype).encode())
            h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(repr(part).encode())
        h.update(b"|")
    return h.hexdigest()


def module_hash(module: torch.nn.Module) -> str:
    """:func:`content_hash` of a module's class, configuration and every tensor of its state dict."""
    state = module.state_dict()
    return content_hash(
        type(module).__name__, repr(getattr(module, "config", None)), *(x for k in sorted(state) for x in (k, state[k]))
    )
