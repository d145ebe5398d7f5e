"""Head pose from 68 landmarks without a 3D morphable model: PnP against a mean 3D face.

Why: EG3D needs a camera label per image; its own pipeline gets it from Deep3DFaceRecon and the
registration-only BFM. Here the pose is the rotation that best projects a public mean 68-point face
onto the detected landmarks under EG3D's intrinsics, solved by Gauss-Newton (Levenberg-Marquardt)
in numpy; yaw/pitch then become a label with :func:`e3dge.core.cameras.label_from_yaw_pitch`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from e3dge.core.cameras import (
    FFHQ_FOCAL,
    FFHQ_PIVOT,
    FFHQ_RADIUS,
    cam2world_from_yaw_pitch,
    intrinsics_matrix,
    label_from_yaw_pitch,
    make_label,
    split_label,
    yaw_pitch_from_label,
)

from .landmarks import check_landmarks

__all__ = [
    "MEAN_FACE_68_MM",
    "MM_TO_WORLD",
    "MIRROR_68",
    "mean_face_world",
    "HeadPose",
    "intrinsics_pixels",
    "project",
    "solve_pnp",
    "pose_from_rotation",
    "estimate_pose",
    "camera_label",
]

# fmt: off
MEAN_FACE_68_MM = np.array([
    [-73.393523, -29.801432, 47.667532], [-72.775014, -10.949766, 45.909403], [-70.533638, 7.929818, 44.842580],
    [-66.850058, 26.074280, 43.141114], [-59.790187, 42.564390, 38.635298], [-48.368973, 56.481080, 30.750622],
    [-34.121101, 67.246992, 18.456453], [-17.875411, 75.056892, 3.609035], [0.098749, 77.061286, -0.881698],
    [17.477031, 74.758448, 5.181201], [32.648966, 66.929021, 19.176563], [46.372358, 56.311389, 30.770570],
    [57.343480, 42.419126, 37.628629], [64.388482, 25.455880, 40.886309], [68.212038, 6.990805, 42.281449],
    [70.486405, -11.666193, 44.142567], [71.375822, -30.365191, 47.140426], [-61.119406, -49.361602, 14.254422],
    [-51.287588, -58.769795, 7.268147], [-37.804800, -61.996155, 0.442051], [-24.022754, -61.033399, -6.606501],
    [-11.635713, -56.686759, -11.967398], [12.056636, -57.391033, -12.051204], [25.106256, -61.902186, -7.315098],
    [38.338588, -62.777713, -1.022953], [51.191007, -59.302347, 5.349435], [60.053851, -50.190255, 11.615746],
    [0.653940, -42.193790, -13.380835], [0.804809, -30.993721, -21.150853], [0.992204, -19.944596, -29.284036],
    [1.226783, -8.414541, -36.948060], [-14.772472, 2.598255, -20.132003], [-7.180239, 4.751589, -23.536684],
    [0.555920, 6.562900, -25.944448], [8.272499, 4.661005, -23.695741], [15.214351, 2.643046, -20.858157],
    [-46.047290, -37.471411, 7.037989], [-37.674688, -42.730510, 3.021217], [-27.883856, -42.711517, 1.353629],
    [-19.648268, -36.754742, -0.111088], [-28.272965, -35.134493, -0.147273], [-38.082418, -34.919043, 1.476612],
    [19.265868, -37.032306, -0.665746], [27.894191, -43.342445, 0.247660], [37.437529, -43.110822, 1.696435],
    [45.170805, -38.086515, 4.894163], [38.196454, -35.532024, 0.282961], [28.764989, -35.484289, -1.172675],
    [-28.916267, 28.612716, -2.240310], [-17.533194, 22.172187, -15.934335], [-6.684590, 19.029051, -22.611355],
    [0.381001, 20.721118, -23.748437], [8.375443, 19.035460, -22.721995], [18.876618, 22.394109, -15.610679],
    [28.794412, 28.079924, -3.217393], [19.057574, 36.298248, -14.987997], [8.956375, 39.634575, -22.554245],
    [0.381549, 40.395647, -23.591626], [-7.428895, 39.836405, -22.406106], [-18.160634, 36.677899, -15.121907],
    [-24.377490, 28.677771, -4.785684], [-6.897633, 25.475976, -20.893742], [0.340663, 26.014269, -22.220479],
    [8.444722, 25.326198, -21.025520], [24.474473, 28.323008, -5.712776], [8.449166, 30.596216, -20.671489],
    [0.205322, 31.408738, -21.903670], [-7.198266, 30.844876, -20.328022],
])
# fmt: on
"""Mean 3D positions of the 68 iBUG landmarks, in millimetres.

Frame as published: x to the image right, y down, z away from a frontal camera (the nose tip has
the smallest z). Source: the mean shape of OpenFace's in-the-wild 68-point point distribution model
(Baltrusaitis et al., OpenFace), the same numbers distributed as ``assets/model.txt`` of
yinguobing/head-pose-estimation and used across the "head pose estimation with dlib + solvePnP"
literature. Eye centres are about 65 mm apart.
"""

MM_TO_WORLD = 0.0024
"""EG3D world units per millimetre (about 0.16 units between the eyes, as an FFHQ head at radius 2.7).

Only the estimated translation depends on it; rotations do not."""

_JAW_WEIGHT = 0.5  # jaw contour points slide along the cheek with yaw: trust them less


MIRROR_68 = np.array(
    list(range(16, -1, -1))
    + list(range(26, 16, -1))
    + [27, 28, 29, 30]
    + [35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)
"""Index of each landmark's left/right counterpart in the 68-point layout (for mirroring)."""


def mean_face_world() -> np.ndarray:
    """The mean face ``[68, 3]`` in EG3D world axes (x = subject's left, y up, z out of the face).

    The published shape is made exactly left/right symmetric (averaged with its mirror image), which
    removes a ~1 degree yaw bias on frontal faces.
    """
    world = MEAN_FACE_68_MM * np.array([1.0, -1.0, -1.0]) * MM_TO_WORLD
    mirrored = world[MIRROR_68] * np.array([-1.0, 1.0, 1.0])
    return (world + mirrored) / 2


def intrinsics_pixels(size: float, focal: float = FFHQ_FOCAL) -> np.ndarray:
    """EG3D's normalised intrinsics in pixels of a ``size`` square image (pixel-centre coordinates)."""
    return np.array([[focal * size, 0.0, size / 2 - 0.5], [0.0, focal * size, size / 2 - 0.5], [0.0, 0.0, 1.0]])


def project(points3d: np.ndarray, rotation: np.ndarray, translation: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Pinhole projection ``[N, 2]`` of world points with a world->camera (OpenCV) pose."""
    cam = points3d @ rotation.T + translation
    uvw = cam @ k.T
    return uvw[:, :2] / uvw[:, 2:3]


def _rodrigues(w: np.ndarray) -> np.ndarray:
    theta = float(np.linalg.norm(w))
    if theta < 1e-12:
        return np.eye(3)
    kx, ky, kz = w / theta
    kmat = np.array([[0, -kz, ky], [kz, 0, -kx], [-ky, kx, 0]])
    return np.eye(3) + math.sin(theta) * kmat + (1 - math.cos(theta)) * kmat @ kmat


def _nearest_rotation(m: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def _weak_perspective_init(model: np.ndarray, norm2d: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Affine-camera fit (closed form) of normalised image points; gives R and t to start from."""
    centroid = (weights[:, None] * model).sum(0) / weights.sum()
    design = np.hstack((model - centroid, np.ones((len(model), 1)))) * np.sqrt(weights)[:, None]
    sol, *_ = np.linalg.lstsq(design, norm2d * np.sqrt(weights)[:, None], rcond=None)
    a1, a2, b = sol[:3, 0], sol[:3, 1], sol[3]
    s = (np.linalg.norm(a1) + np.linalg.norm(a2)) / 2
    r1, r2 = a1 / np.linalg.norm(a1), a2 / np.linalg.norm(a2)
    rotation = _nearest_rotation(np.stack((r1, r2, np.cross(r1, r2))))
    depth = 1.0 / s
    translation = np.array([b[0] * depth, b[1] * depth, depth]) - rotation @ centroid
    return rotation, translation


def solve_pnp(
    points2d: np.ndarray,
    k: np.ndarray,
    model: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    iterations: int = 30,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Perspective-n-point by Levenberg-Marquardt: world->camera ``(R, t)`` and the RMS error in pixels.

    Starts from a closed-form weak-perspective fit, then minimises the weighted reprojection error
    over a rotation update ``exp([w]x) R`` and the translation.
    """
    model = mean_face_world() if model is None else np.asarray(model, dtype=np.float64)
    pts = np.asarray(points2d, dtype=np.float64)
    weights = np.ones(len(pts)) if weights is None else np.asarray(weights, dtype=np.float64)
    sw = np.sqrt(weights)[:, None]
    kinv = np.linalg.inv(k)
    norm2d = (np.hstack((pts, np.ones((len(pts), 1)))) @ kinv.T)[:, :2]
    rotation, translation = _weak_perspective_init(model, norm2d, weights)

    def residual(r: np.ndarray, t: np.ndarray) -> np.ndarray:
        return ((project(model, r, t, k) - pts) * sw).reshape(-1)

    res = residual(rotation, translation)
    damping = 1e-3
    eps = 1e-6
    for _ in range(iterations):
        jac = np.empty((res.size, 6))
        for i in range(6):
            step = np.zeros(6)
            step[i] = eps * (1.0 if i < 3 else max(1.0, abs(translation[2])))
            jac[:, i] = (residual(_rodrigues(step[:3]) @ rotation, translation + step[3:]) - res) / step[i]
        jtj, jtr = jac.T @ jac, jac.T @ res
        while True:
            delta = -np.linalg.solve(jtj + damping * np.diag(np.diag(jtj) + 1e-12), jtr)
            r_new = _rodrigues(delta[:3]) @ rotation
            t_new = translation + delta[3:]
            res_new = residual(r_new, t_new) if t_new[2] > 0 else None
            if res_new is not None and res_new @ res_new <= res @ res:
                rotation, translation, damping = r_new, t_new, max(damping / 10, 1e-9)
                improved = res @ res - res_new @ res_new
                res = res_new
                break
            damping *= 10
            if damping > 1e8:
                improved = 0.0
                break
        if improved <= 1e-12 * max(res @ res, 1e-12):
            break
    rms = float(np.sqrt(np.mean(np.sum((project(model, rotation, translation, k) - pts) ** 2, axis=1))))
    return rotation, translation, rms


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def pose_from_rotation(
    rotation: np.ndarray, radius: float = FFHQ_RADIUS, pivot: Sequence[float] = FFHQ_PIVOT
) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in radians of the EG3D look-at camera whose orientation is ``rotation``.

    ``rotation`` is world->camera. The camera is placed on the sphere of ``radius`` so that it looks
    at ``pivot`` along the estimated optical axis; yaw/pitch are read back with
    :func:`e3dge.core.cameras.yaw_pitch_from_label` and roll is the remaining turn about the optical axis.
    """
    cam_to_world = np.asarray(rotation, dtype=np.float64).T
    forward = cam_to_world[:, 2]
    p = np.asarray(pivot, dtype=np.float64)
    pf = float(p @ forward)
    lam = pf + math.sqrt(max(pf * pf - p @ p + radius * radius, 0.0))
    origin = p - lam * forward
    c2w = torch.eye(4, dtype=torch.float64)[None]
    c2w[0, :3, 3] = torch.from_numpy(origin)
    yaw, pitch = yaw_pitch_from_label(make_label(c2w, intrinsics_matrix().double()))
    yaw, pitch = float(yaw[0]), float(pitch[0])
    lookat = cam2world_from_yaw_pitch(yaw, pitch, radius=radius, pivot=pivot)[0, :3, :3].double().numpy()
    rel = lookat.T @ cam_to_world
    roll = math.atan2(rel[1, 0], rel[0, 0])
    return yaw, pitch, roll


def camera_label(
    yaw,
    pitch,
    roll=0.0,
    radius: float = FFHQ_RADIUS,
    pivot: Sequence[float] = FFHQ_PIVOT,
    focal: float = FFHQ_FOCAL,
) -> torch.Tensor:
    """EG3D labels ``[N, 25]``: :func:`e3dge.core.cameras.label_from_yaw_pitch`, then the camera rolled about its axis."""
    label = label_from_yaw_pitch(yaw, pitch, radius=radius, pivot=pivot, focal=focal)
    roll_t = torch.as_tensor(roll, dtype=torch.float32).reshape(-1).expand(label.shape[0])
    if not torch.any(roll_t != 0):
        return label
    cam2world, intrinsics = split_label(label)
    c, s = torch.cos(roll_t), torch.sin(roll_t)
    rz = torch.zeros(label.shape[0], 3, 3)
    rz[:, 0, 0], rz[:, 0, 1], rz[:, 1, 0], rz[:, 1, 1], rz[:, 2, 2] = c, -s, s, c, 1.0
    cam2world = cam2world.clone()
    cam2world[:, :3, :3] = cam2world[:, :3, :3] @ rz
    return make_label(cam2world, intrinsics)


@dataclass(frozen=True)
class HeadPose:
    """Estimated camera pose of a face, in e3dge's conventions (see :mod:`e3dge.core.cameras`).

    ``yaw``/``pitch`` (radians) are the camera offsets that :func:`e3dge.core.cameras.label_from_yaw_pitch`
    takes: positive yaw puts the camera on the subject's left (+x), positive pitch below the face.
    ``roll`` (radians) turns the camera about its optical axis; positive roll shows the face turned
    counter-clockwise on screen.
    """

    yaw: float
    pitch: float
    roll: float
    rotation: np.ndarray
    """World->camera rotation (OpenCV camera axes)."""
    translation: np.ndarray
    """World->camera translation for the mean face at :data:`MM_TO_WORLD` scale."""
    rms_error: float
    """Landmark reprojection RMS error in pixels of the image the pose was solved in."""

    @property
    def degrees(self) -> tuple[float, float, float]:
        """(yaw, pitch, roll) in degrees."""
        return tuple(math.degrees(a) for a in (self.yaw, self.pitch, self.roll))

    def label(self, include_roll: bool = True, focal: float = FFHQ_FOCAL) -> torch.Tensor:
        """The EG3D camera label ``[1, 25]`` (radius 2.7, pivot (0, 0, 0.2), focal 4.2647)."""
        return camera_label(self.yaw, self.pitch, self.roll if include_roll else 0.0, focal=focal)


def estimate_pose(landmarks68: np.ndarray, image_size: float, focal: float = FFHQ_FOCAL) -> HeadPose:
    """Pose of a face from its 68 landmarks in an aligned ``image_size`` square (EG3D intrinsics).

    Landmarks must be in the aligned image (use :meth:`AlignTransform.apply`), because EG3D's
    normalised focal length refers to that crop.
    """
    lm = check_landmarks(landmarks68)
    k = intrinsics_pixels(image_size, focal)
    weights = np.ones(68)
    weights[:17] = _JAW_WEIGHT
    rotation, translation, rms = solve_pnp(lm, k, weights=weights)
    yaw, pitch, roll = pose_from_rotation(rotation)
    return HeadPose(yaw, pitch, roll, rotation, translation, rms)
