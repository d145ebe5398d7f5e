"""EG3D camera conventions: 25-value labels, look-at poses, orbits, yaw/pitch <-> label.

Conventions (NVlabs/eg3d ``docs/camera_conventions.md``):

* world: y up, the face looks along +z; the frontal camera sits on +z looking at the pivot;
* ``cam2world`` is an OpenCV camera-to-world matrix (x right, y down, z forward);
* intrinsics are normalised by the image size: ``[[f, 0, 0.5], [0, f, 0.5], [0, 0, 1]]``;
* the label is ``cat(cam2world.flatten(16), intrinsics.flatten(9))`` -> 25 values.

StyleSDF / official E3DGE cameras (:class:`SphereCamera`) are OpenGL: on the unit sphere at azimuth ``a``,
elevation ``e`` -> ``(cos e sin a, sin e, cos e cos a)``, looking at the origin down their -z axis, +y up,
a pinhole focal in pixels ``0.5 * res / tan(half_fov)`` (half-angle 6 degrees). e3dge's ``yaw`` equals the
azimuth and ``pitch = -elevation`` (both move the camera the same way as the EG3D offsets).

Angles follow EG3D's ``LookAtPoseSampler``: ``horizontal`` (``theta``) and ``vertical`` in radians,
``(pi/2, pi/2)`` is frontal. e3dge's ``yaw``/``pitch`` are offsets from frontal,
``yaw = horizontal - pi/2`` and ``pitch = vertical - pi/2``; positive yaw moves the camera to +x,
positive pitch moves it below the face (EG3D maps ``vertical`` to the polar angle through
``phi = arccos(1 - 2 * vertical / pi)``, which these functions reproduce exactly).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

__all__ = [
    "FFHQ_FOCAL",
    "FFHQ_RADIUS",
    "FFHQ_PIVOT",
    "fov_to_intrinsics",
    "intrinsics_matrix",
    "lookat_cam2world",
    "cam2world_from_yaw_pitch",
    "make_label",
    "split_label",
    "label_from_yaw_pitch",
    "yaw_pitch_from_label",
    "frontal_label",
    "orbit_labels",
    "check_label",
    "STYLESDF_HALF_FOV",
    "STYLESDF_DIST_RADIUS",
    "SphereCamera",
    "sphere_camera",
    "sphere_orbit",
    "sphere_to_label",
    "Camera",
    "angle_tensors",
    "Projection",
    "project_points",
]

STYLESDF_HALF_FOV = 6.0
"""Half field-of-view of StyleSDF's FFHQ camera, degrees (``--fov 6``)."""
STYLESDF_DIST_RADIUS = 0.12
"""Half the near-far range around the unit camera distance (near 0.88, far 1.12)."""

FFHQ_FOCAL = 4.2647
"""Normalised focal length of the FFHQ EG3D models (about 18.84 degrees field of view)."""
FFHQ_RADIUS = 2.7
"""Camera distance from the origin for FFHQ (``avg_camera_radius``)."""
FFHQ_PIVOT = (0.0, 0.0, 0.2)
"""Look-at point for FFHQ (``avg_camera_pivot``); AFHQ uses (0, 0, -0.06)."""


def _as_tensor(x, dtype=torch.float32, device=None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(dtype=dtype, device=device if device is not None else x.device)
    return torch.as_tensor(x, dtype=dtype, device=device)


def check_label(c: torch.Tensor) -> torch.Tensor:
    """Check that ``c`` is a batch of 25-value camera labels ``[N, 25]`` and return it."""
    if not isinstance(c, torch.Tensor):
        raise TypeError(f"camera label must be a torch.Tensor of shape [N, 25], got {type(c).__name__}")
    if c.ndim != 2 or c.shape[1] != 25:
        raise ValueError(
            f"camera label must have shape [N, 25] (16 cam2world + 9 intrinsics), got {list(c.shape)}; "
            "build one with e3dge.core.cameras.label_from_yaw_pitch()"
        )
    return c


def fov_to_intrinsics(fov_degrees: float) -> torch.Tensor:
    """Normalised intrinsics ``[3, 3]`` for a field of view, as EG3D's ``FOV_to_intrinsics``."""
    focal = 1.0 / (math.tan(fov_degrees * math.pi / 360.0) * 1.414)
    return intrinsics_matrix(focal)


def intrinsics_matrix(focal: float = FFHQ_FOCAL, device=None) -> torch.Tensor:
    """Normalised intrinsics ``[3, 3]``: ``[[f, 0, 0.5], [0, f, 0.5], [0, 0, 1]]``."""
    return torch.tensor([[focal, 0.0, 0.5], [0.0, focal, 0.5], [0.0, 0.0, 1.0]], device=device)


def _normalize(v: torch.Tensor) -> torch.Tensor:
    return v / torch.linalg.norm(v, dim=-1, keepdim=True)


def lookat_cam2world(origin: torch.Tensor, lookat: torch.Tensor) -> torch.Tensor:
    """OpenCV cam2world ``[N, 4, 4]`` for cameras at ``origin [N, 3]`` looking at ``lookat [N|1, 3]``.

    The camera's y axis points down in the image (world up is +y), as EG3D's
    ``create_cam2world_matrix``.
    """
    forward = _normalize(lookat - origin)
    world_up = torch.zeros_like(forward)
    world_up[:, 1] = 1.0
    right = -_normalize(torch.linalg.cross(world_up, forward, dim=-1))
    up = _normalize(torch.linalg.cross(forward, right, dim=-1))
    cam2world = torch.eye(4, dtype=origin.dtype, device=origin.device).repeat(origin.shape[0], 1, 1)
    cam2world[:, :3, :3] = torch.stack((right, up, forward), dim=-1)
    cam2world[:, :3, 3] = origin
    return cam2world


def cam2world_from_yaw_pitch(
    yaw,
    pitch,
    radius: float = FFHQ_RADIUS,
    pivot: Sequence[float] = FFHQ_PIVOT,
    device=None,
) -> torch.Tensor:
    """OpenCV cam2world ``[N, 4, 4]`` from yaw/pitch offsets (radians, 0 = frontal).

    Same placement as EG3D's ``LookAtPoseSampler.sample(pi/2 + yaw, pi/2 + pitch, pivot, radius)``:
    the camera lies on a sphere of ``radius`` around the origin and looks at ``pivot``.
    """
    yaw = _as_tensor(yaw, device=device).reshape(-1)
    pitch = _as_tensor(pitch, device=device).reshape(-1)
    yaw, pitch = torch.broadcast_tensors(yaw, pitch)
    theta = yaw + math.pi / 2
    vertical = torch.clamp(pitch + math.pi / 2, 1e-5, math.pi - 1e-5)
    phi = torch.arccos(1 - 2 * vertical / math.pi)
    origin = torch.stack(
        (
            radius * torch.sin(phi) * torch.cos(math.pi - theta),
            radius * torch.cos(phi),
            radius * torch.sin(phi) * torch.sin(math.pi - theta),
        ),
        dim=-1,
    )
    lookat = _as_tensor(pivot, device=origin.device).reshape(1, 3).expand_as(origin)
    return lookat_cam2world(origin, lookat)


def make_label(cam2world: torch.Tensor, intrinsics: torch.Tensor) -> torch.Tensor:
    """Concatenate cam2world ``[N, 4, 4]`` and intrinsics ``[N|1, 3, 3]`` into labels ``[N, 25]``."""
    if cam2world.ndim != 3 or cam2world.shape[1:] != (4, 4):
        raise ValueError(f"cam2world must have shape [N, 4, 4], got {list(cam2world.shape)}")
    if intrinsics.ndim == 2:
        intrinsics = intrinsics[None]
    if intrinsics.shape[1:] != (3, 3):
        raise ValueError(f"intrinsics must have shape [N, 3, 3] or [3, 3], got {list(intrinsics.shape)}")
    n = cam2world.shape[0]
    intrinsics = intrinsics.to(cam2world).expand(n, 3, 3)
    return torch.cat((cam2world.reshape(n, 16), intrinsics.reshape(n, 9)), dim=1)


def split_label(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split labels ``[N, 25]`` into cam2world ``[N, 4, 4]`` and intrinsics ``[N, 3, 3]``."""
    check_label(c)
    return c[:, :16].reshape(-1, 4, 4), c[:, 16:25].reshape(-1, 3, 3)


def label_from_yaw_pitch(
    yaw,
    pitch,
    radius: float = FFHQ_RADIUS,
    pivot: Sequence[float] = FFHQ_PIVOT,
    focal: float = FFHQ_FOCAL,
    device=None,
) -> torch.Tensor:
    """EG3D camera labels ``[N, 25]`` from yaw/pitch offsets in radians (0, 0 = frontal)."""
    cam2world = cam2world_from_yaw_pitch(yaw, pitch, radius=radius, pivot=pivot, device=device)
    return make_label(cam2world, intrinsics_matrix(focal, device=cam2world.device))


def yaw_pitch_from_label(c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of :func:`label_from_yaw_pitch`: yaw/pitch offsets (radians) from labels ``[N, 25]``.

    Reads the camera position only, so it holds for any look-at pivot.
    """
    cam2world, _ = split_label(c)
    origin = cam2world[:, :3, 3]
    radius = torch.linalg.norm(origin, dim=-1)
    theta = math.pi - torch.atan2(origin[:, 2], origin[:, 0])
    theta = torch.remainder(theta + math.pi, 2 * math.pi) - math.pi  # keep yaw in (-pi, pi]
    cos_phi = torch.clamp(origin[:, 1] / radius, -1.0, 1.0)
    vertical = math.pi * (1 - cos_phi) / 2
    return theta - math.pi / 2, vertical - math.pi / 2


def frontal_label(
    radius: float = FFHQ_RADIUS, pivot: Sequence[float] = FFHQ_PIVOT, focal: float = FFHQ_FOCAL, device=None
) -> torch.Tensor:
    """The frontal label ``[1, 25]`` (what EG3D's demos use to condition the mapping network)."""
    return label_from_yaw_pitch(0.0, 0.0, radius=radius, pivot=pivot, focal=focal, device=device)


def orbit_labels(
    num_frames: int,
    yaw_range: float = 0.35,
    pitch_range: float = 0.25,
    pitch_offset: float = -0.05,
    radius: float = FFHQ_RADIUS,
    pivot: Sequence[float] = FFHQ_PIVOT,
    focal: float = FFHQ_FOCAL,
    device=None,
) -> torch.Tensor:
    """Labels ``[num_frames, 25]`` of EG3D's ``gen_videos.py`` orbit.

    Frame ``t`` of ``T``: ``yaw = yaw_range * sin(2 pi t / T)``,
    ``pitch = pitch_offset + pitch_range * cos(2 pi t / T)`` (offsets from frontal, radians).
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    t = torch.arange(num_frames, dtype=torch.float32, device=device) * (2 * math.pi / num_frames)
    yaw = yaw_range * torch.sin(t)
    pitch = pitch_offset + pitch_range * torch.cos(t)
    return label_from_yaw_pitch(yaw, pitch, radius=radius, pivot=pivot, focal=focal, device=device)


@dataclass(frozen=True)
class SphereCamera:
    """A batch of StyleSDF cameras: OpenGL cam2world on the unit sphere, pixel focal, near/far, and the angles."""

    cam2world: torch.Tensor  # [N, 4, 4]: columns x, y, z (camera looks down -z) and the position
    focal: torch.Tensor  # [N] focal length in pixels at ``resolution``
    near: torch.Tensor  # [N]
    far: torch.Tensor  # [N]
    azimuth: torch.Tensor  # [N] radians
    elevation: torch.Tensor  # [N] radians
    resolution: int

    def __len__(self) -> int:
        return self.cam2world.shape[0]

    def at_resolution(self, resolution: int) -> SphereCamera:
        """The same cameras for another image size (the focal scales with it)."""
        scale = resolution / self.resolution
        return replace(self, focal=self.focal * scale, resolution=resolution)

    @property
    def yaw_pitch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """e3dge's (yaw, pitch) offsets from frontal: ``(azimuth, -elevation)``."""
        return self.azimuth, -self.elevation


def all_finite(*tensors: torch.Tensor) -> bool:
    """Whether every value is finite; a ``meta`` tensor has no values and passes (the device-clean tests run on meta)."""
    return all(t.device.type == "meta" or bool(torch.isfinite(t).all()) for t in tensors)


def sphere_camera(
    azimuth,
    elevation,
    resolution: int = 64,
    half_fov_degrees: float = STYLESDF_HALF_FOV,
    dist_radius: float = STYLESDF_DIST_RADIUS,
    device=None,
) -> SphereCamera:
    """StyleSDF cameras from azimuth/elevation (radians): the placement of StyleSDF's ``generate_camera_params``."""
    azim = _as_tensor(azimuth, device=device).reshape(-1)
    elev = _as_tensor(elevation, device=device).reshape(-1)
    azim, elev = torch.broadcast_tensors(azim, elev)
    if not all_finite(azim, elev):
        raise ValueError("camera azimuth/elevation must be finite numbers (radians)")
    location = torch.stack(
        (torch.cos(elev) * torch.sin(azim), torch.sin(elev), torch.cos(elev) * torch.cos(azim)), dim=-1
    )
    up = torch.zeros_like(location)
    up[:, 1] = 1.0
    z_axis = F.normalize(location, eps=1e-5)
    x_axis = F.normalize(torch.linalg.cross(up, z_axis, dim=-1), eps=1e-5)
    y_axis = F.normalize(torch.linalg.cross(z_axis, x_axis, dim=-1), eps=1e-5)
    pole = torch.isclose(x_axis, torch.zeros_like(x_axis), atol=5e-3).all(
        dim=-1, keepdim=True
    )  # looking straight down/up
    x_axis = torch.where(pole, F.normalize(torch.linalg.cross(y_axis, z_axis, dim=-1), eps=1e-5), x_axis)
    n = azim.shape[0]
    cam2world = torch.eye(4, dtype=azim.dtype, device=azim.device).repeat(n, 1, 1)
    cam2world[:, :3, :3] = torch.stack((x_axis, y_axis, z_axis), dim=-1)
    cam2world[:, :3, 3] = (
        location  # StyleSDF's dist * direction with dist = 1 (not the normalised axis: they differ by an ulp)
    )
    focal = torch.full_like(azim, 0.5 * resolution / math.tan(math.radians(half_fov_degrees)))
    return SphereCamera(
        cam2world,
        focal,
        torch.full_like(azim, 1 - dist_radius),
        torch.full_like(azim, 1 + dist_radius),
        azim,
        elev,
        resolution,
    )


def sphere_orbit(
    num_frames: int, azimuth_range: float = 0.45, elevation_range: float = 0.225, resolution: int = 64, device=None
) -> SphereCamera:
    """E3DGE's elliptic video trajectory: ``azim = 0.45 cos(2 pi t)``, ``elev = 0.225 sin(2 pi t)`` over ``num_frames``."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    t = torch.arange(num_frames, dtype=torch.float32, device=device) * (2 * math.pi / num_frames)
    return sphere_camera(
        azimuth_range * torch.cos(t), elevation_range * torch.sin(t), resolution=resolution, device=device
    )


def sphere_to_label(camera: SphereCamera) -> torch.Tensor:
    """The same cameras as EG3D-style labels ``[N, 25]`` (OpenCV axes: y and z flipped; intrinsics normalised by the image size)."""
    c2w = camera.cam2world.clone()
    c2w[:, :3, 1:3] = -c2w[:, :3, 1:3]
    f = camera.focal / camera.resolution
    intr = torch.zeros(len(camera), 3, 3, dtype=c2w.dtype, device=c2w.device)
    intr[:, 0, 0], intr[:, 1, 1], intr[:, 0, 2], intr[:, 1, 2], intr[:, 2, 2] = f, f, 0.5, 0.5, 1.0
    return make_label(c2w, intr)


@dataclass(frozen=True)
class Projection:
    """World points ``[B, M, 3]`` seen from one camera."""

    grid: torch.Tensor  # [B, M, 2] grid_sample coordinates (x, y); inside the image when both are in [-1, 1]
    depth: torch.Tensor  # [B, M, 1] camera-space z (> 0 in front of the camera)
    distance: torch.Tensor  # [B, M, 1] distance from the camera centre

    @property
    def in_front(self) -> torch.Tensor:
        """``[B, M, 1]`` bool: in front of the camera (z > 0)."""
        return self.depth > 0


def project_points(points: torch.Tensor, label: torch.Tensor) -> Projection:
    """Project world points ``[B, M, 3]`` into the camera of a label ``[B, 25]`` (or ``[1, 25]`` for all).

    ``grid`` is ``2 (u, v) - 1`` for ``grid_sample(..., align_corners=False)``: pixel centres at ``(j + 0.5) / res``, as the renderers' rays.
    """
    cam2world, intrinsics = split_label(label)
    batch = (points.shape[0], -1, -1)
    cam2world, intrinsics = cam2world.to(points).expand(batch), intrinsics.to(points).expand(batch)
    rot, origin = cam2world[:, :3, :3], cam2world[:, :3, 3]
    offset = points - origin[:, None]
    cam = torch.einsum("bji,bmj->bmi", rot, offset)  # world -> camera: R^T (p - o)
    z = cam[..., 2:3]
    safe_z = torch.where(z.abs() < 1e-8, torch.full_like(z, 1e-8), z)  # a point in the camera plane lands far outside
    uv1 = torch.einsum("bij,bmj->bmi", intrinsics, cam / safe_z)
    return Projection(grid=2 * uv1[..., :2] - 1, depth=z, distance=offset.norm(dim=-1, keepdim=True))


@dataclass(frozen=True)
class Camera:
    """The one camera type of the pipeline: e3dge's (yaw, pitch) and the label a backbone's rig places them at.

    ``label`` is EG3D's 25 values (OpenCV cam2world + normalised intrinsics) for every backbone, so projection
    (:meth:`project`), exporters and plots work the same way; ``yaw``/``pitch`` may carry gradients (refinement).
    """

    yaw: torch.Tensor  # [N] radians, 0 = frontal
    pitch: torch.Tensor  # [N]
    label: torch.Tensor  # [N, 25]

    def project(self, points: torch.Tensor) -> Projection:
        """World points ``[N, M, 3]`` in this camera (see :func:`project_points`)."""
        return project_points(points, self.label)

    def detach(self) -> Camera:
        return Camera(self.yaw.detach(), self.pitch.detach(), self.label.detach())

    @property
    def angles(self) -> tuple[float, float]:
        """(yaw, pitch) of the first camera as floats."""
        return float(self.yaw.reshape(-1)[0]), float(self.pitch.reshape(-1)[0])


def angle_tensors(yaw, pitch, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(yaw, pitch) as float32 ``[N]`` tensors on ``device``; tensors that carry gradients keep them (refinement)."""
    return (
        torch.as_tensor(yaw, dtype=torch.float32, device=device).reshape(-1),
        torch.as_tensor(pitch, dtype=torch.float32, device=device).reshape(-1),
    )
