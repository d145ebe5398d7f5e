"""Crop/align conventions (FFHQ quad, EG3D crop) as explicit transforms, image warping and paste-back.

Why: E3DGE/EG3D models only work on faces cropped exactly the way their training data was; keeping
the crop as a photo->aligned matrix lets a result be pasted back into the original photo and lets
video frames be smoothed before warping.

All coordinates are pixel centres: pixel ``(i, j)`` covers ``[i - 0.5, i + 0.5]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import FaceOptionError
from .landmarks import check_landmarks, eye_centers, five_points

__all__ = [
    "CONVENTIONS",
    "BFM_LM3D_5",
    "EG3D_RESCALE",
    "EG3D_TARGET",
    "EG3D_CENTER_CROP",
    "AlignTransform",
    "pos_fit",
    "ffhq_transform",
    "eg3d_transform",
    "align_transform",
    "warp_image",
    "paste_back",
]

CONVENTIONS = ("eg3d", "ffhq")

BFM_LM3D_5 = np.array(
    [
        [-0.31148657, 0.29036078, 0.13377953],
        [0.30979887, 0.28972036, 0.13179526],
        [0.0032535, -0.04617932, 0.55244243],
        [-0.25216928, -0.38133916, 0.22405732],
        [0.2484662, -0.38128236, 0.22235769],
    ]
)
"""Deep3DFaceRecon's standard 5-point 3D face (BFM units, y up): eye centres, nose tip, mouth corners.

Source: ``BFM/similarity_Lm3D_all.mat`` of Deep3DFaceRecon(_pytorch) reduced to 5 points by its
``load_lm3d`` (mean of eye corners 37/40 and 43/46, points 31, 49, 55 in 1-based iBUG numbering);
these numeric values are the ones widely quoted from that file (e.g. in ports of ``align_img``).
"""

EG3D_TARGET = 1024
"""EG3D in-the-wild preprocessing: ``align_img(..., target_size=1024, rescale_factor=300)``."""
EG3D_RESCALE = 300.0
EG3D_CENTER_CROP = 700
"""... then a centre crop of 700 px resized to 512 (``crop_images_in_the_wild.py``)."""


@dataclass(frozen=True)
class AlignTransform:
    """A photo -> aligned-image affine map (pixel centres) for one output size and convention."""

    matrix: np.ndarray
    """``[3, 3]`` homogeneous matrix: ``aligned = matrix @ [x, y, 1]``."""
    size: int
    """Output width and height in pixels."""
    convention: str

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Map photo points ``[N, 2]`` into the aligned image."""
        pts = np.asarray(points, dtype=np.float64)
        return pts @ self.matrix[:2, :2].T + self.matrix[:2, 2]

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Map aligned-image points ``[N, 2]`` back into the photo."""
        inv = np.linalg.inv(self.matrix)
        pts = np.asarray(points, dtype=np.float64)
        return pts @ inv[:2, :2].T + inv[:2, 2]

    @property
    def scale(self) -> float:
        """Aligned pixels per photo pixel (geometric mean of the two axes)."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:2, :2]))))

    @property
    def rotation_degrees(self) -> float:
        """In-plane rotation applied to the photo (counter-clockwise on screen is positive)."""
        return float(np.degrees(np.arctan2(-self.matrix[1, 0], self.matrix[0, 0])))

    def to_dict(self) -> dict:
        """JSON-friendly form (``matrix`` as nested lists)."""
        return {"matrix": self.matrix.tolist(), "size": self.size, "convention": self.convention}

    @classmethod
    def from_dict(cls, d: dict) -> AlignTransform:
        """Inverse of :meth:`to_dict`."""
        return cls(np.asarray(d["matrix"], dtype=np.float64), int(d["size"]), str(d["convention"]))


def pos_fit(points2d: np.ndarray, points3d: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares affine camera from 3D points to 2D points; returns (translation [2], scale).

    Solves ``[u, v] = [r1 . X + tx, r2 . X + ty]`` for the 8 unknowns and reports
    ``scale = (|r1| + |r2|) / 2`` (pixels per model unit) and ``translation = (tx, ty)``, the image
    position of the model origin: the quantity Deep3DFaceRecon's ``POS`` step feeds to its crop.
    """
    x = np.asarray(points3d, dtype=np.float64)
    p = np.asarray(points2d, dtype=np.float64)
    n = len(x)
    design = np.zeros((2 * n, 8))
    design[0::2, :3] = x
    design[0::2, 3] = 1.0
    design[1::2, 4:7] = x
    design[1::2, 7] = 1.0
    k, *_ = np.linalg.lstsq(design, p.reshape(-1), rcond=None)
    scale = (np.linalg.norm(k[0:3]) + np.linalg.norm(k[4:7])) / 2
    return np.array([k[3], k[7]]), float(scale)


def _affine(ax: float, bx: float, ay: float, by: float) -> np.ndarray:
    return np.array([[ax, 0.0, bx], [0.0, ay, by], [0.0, 0.0, 1.0]])


def eg3d_transform(landmarks: np.ndarray, image_size: tuple[int, int], size: int = 512) -> AlignTransform:
    """EG3D's in-the-wild crop as one transform, from 5 (or 68) landmarks and the photo size.

    Reproduces, in closed form, NVlabs/eg3d ``crop_images_in_the_wild.py``: Deep3DFaceRecon's
    ``align_img`` (y flipped, POS fit of the 5 points to :data:`BFM_LM3D_5`, scale
    ``s = 300 / pos_scale``, resize of the photo to ``int(w0 * s) x int(h0 * s)``, integer
    1024-pixel crop centred on the fitted face origin), then the 700-pixel centre crop and the
    resize to 512 (or ``size``). No rotation: head roll stays in the image (and in the camera).
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    lm5 = five_points(lm) if lm.shape[0] == 68 else check_landmarks(lm, 5)
    w0, h0 = (int(v) for v in image_size)
    flipped = np.stack((lm5[:, 0], h0 - 1 - lm5[:, 1]), axis=1)  # Deep3DFaceRecon works with y up
    t, pos_scale = pos_fit(flipped, BFM_LM3D_5)
    s = EG3D_RESCALE / pos_scale
    w, h = int(w0 * s), int(h0 * s)
    left = int(w / 2 - EG3D_TARGET / 2 + (t[0] - w0 / 2) * s)  # int() truncates toward zero, like astype(int32)
    up = int(h / 2 - EG3D_TARGET / 2 + (h0 / 2 - t[1]) * s)
    off = int(EG3D_TARGET / 2 - EG3D_CENTER_CROP / 2)
    k = size / EG3D_CENTER_CROP
    # resize: x' = (x + .5) * w / w0 - .5; crops: x'' = x' - left - off; resize: out = (x'' + .5) * k - .5
    sx, sy = w / w0, h / h0
    matrix = _affine(sx * k, (0.5 * sx - left - off) * k - 0.5, sy * k, (0.5 * sy - up - off) * k - 0.5)
    return AlignTransform(matrix, int(size), "eg3d")


def ffhq_quad(landmarks68: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FFHQ's oriented crop square from 68 landmarks: centre ``c`` and half-axes ``x`` (right), ``y`` (down).

    From NVlabs/ffhq-dataset ``recreate_aligned_images``: eyes = mean of each eye's 6 points,
    mouth = mean of the two corners; ``x`` is the eye-to-eye vector minus the eye-to-mouth vector
    turned 90 degrees, normalised to ``max(2 * |eye_to_eye|, 1.8 * |eye_to_mouth|)``; ``y`` is
    ``x`` turned 90 degrees; ``c = eye_avg + 0.1 * eye_to_mouth``.
    """
    lm = check_landmarks(landmarks68)
    eye_l, eye_r = eye_centers(lm)
    eye_avg = (eye_l + eye_r) / 2
    eye_to_eye = eye_r - eye_l
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x = x / np.hypot(*x) * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.array([-x[1], x[0]])
    c = eye_avg + eye_to_mouth * 0.1
    return c, x, y


def ffhq_transform(landmarks68: np.ndarray, size: int = 1024) -> AlignTransform:
    """FFHQ alignment as a similarity transform: the quad ``c +- x +- y`` fills the ``size`` square.

    FFHQ samples the quad corners (+0.5 for pixel edges) with ``PIL.Image.transform(QUAD)``, so
    output pixel centre ``(u, v)`` sees photo point ``c + (2 (u + .5) / size - 1) x + (2 (v + .5) / size - 1) y``.
    """
    c, x, y = ffhq_quad(landmarks68)
    a = 2.0 / size
    out_to_photo = np.array(
        [
            [a * x[0], a * y[0], c[0] + (0.5 * a - 1) * (x[0] + y[0])],
            [a * x[1], a * y[1], c[1] + (0.5 * a - 1) * (x[1] + y[1])],
            [0.0, 0.0, 1.0],
        ]
    )
    return AlignTransform(np.linalg.inv(out_to_photo), int(size), "ffhq")


def align_transform(
    landmarks68: np.ndarray, image_size: tuple[int, int], convention: str = "eg3d", size: int | None = None
) -> AlignTransform:
    """The transform of ``convention`` (``eg3d`` or ``ffhq``; default size 512 for both)."""
    if convention == "eg3d":
        return eg3d_transform(landmarks68, image_size, size or 512)
    if convention == "ffhq":
        return ffhq_transform(landmarks68, size or 512)
    raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def _sample(
    image: np.ndarray, out_to_src: np.ndarray, out_wh: tuple[int, int], pad: str, resample=Image.BICUBIC
) -> np.ndarray:
    """Resample ``image`` so output pixel ``p`` takes source point ``out_to_src @ p`` (pixel centres).

    Only the needed source region is cut out and padded (``black``, ``reflect`` or ``edge``); when
    the map shrinks by 2x or more the region is first downscaled with a Lanczos filter to avoid aliasing.
    """
    h, w = image.shape[:2]
    ow, oh = out_wh
    corners = np.array([[-0.5, -0.5, 1], [ow - 0.5, -0.5, 1], [-0.5, oh - 0.5, 1], [ow - 0.5, oh - 0.5, 1]]).T
    src = (out_to_src @ corners)[:2]
    margin = 4 + 2 * np.sqrt(abs(np.linalg.det(out_to_src[:2, :2])))
    x0, y0 = np.floor(src.min(1) - margin).astype(int)
    x1, y1 = np.ceil(src.max(1) + margin).astype(int)
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if cx1 <= cx0 or cy1 <= cy0:  # the output lies entirely outside the photo
        region = np.zeros((max(y1 - y0, 1), max(x1 - x0, 1), image.shape[2]), image.dtype)
    else:
        region = image[cy0:cy1, cx0:cx1]
        pads = ((cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1), (0, 0))
        if any(p for pair in pads for p in pair):
            mode = {"black": "constant", "reflect": "reflect", "edge": "edge"}.get(pad)
            if mode is None:
                raise ValueError(f"pad must be 'black', 'reflect' or 'edge', got {pad!r}")
            if mode == "reflect" and min(region.shape[:2]) < 2:
                mode = "edge"
            region = np.pad(region, pads, mode=mode)
    # Region pixel centres: src = region + (x0, y0).
    m = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]]) @ out_to_src
    src_per_out = np.linalg.svd(m[:2, :2], compute_uv=False).min()
    pil = Image.fromarray(region)
    if src_per_out >= 2.0:
        f = int(src_per_out)
        rw, rh = max(1, round(region.shape[1] / f)), max(1, round(region.shape[0] / f))
        fx, fy = region.shape[1] / rw, region.shape[0] / rh
        pil = pil.resize((rw, rh), Image.LANCZOS)
        m = np.array([[1 / fx, 0, 0.5 / fx - 0.5], [0, 1 / fy, 0.5 / fy - 0.5], [0, 0, 1.0]]) @ m
    # PIL's AFFINE works in pixel-edge coordinates (centre of pixel i is i + 0.5) on both sides.
    edge = (
        np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1.0]])
        @ m
        @ np.array([[1.0, 0, -0.5], [0, 1.0, -0.5], [0, 0, 1.0]])
    )
    out = pil.transform((ow, oh), Image.AFFINE, data=tuple(edge[:2].reshape(-1)), resample=resample)
    return np.asarray(out)


def warp_image(image: np.ndarray, transform: AlignTransform, pad: str | None = None) -> np.ndarray:
    """Apply ``transform`` to ``image`` (``uint8 [H, W, 3]``) -> ``[size, size, 3]``.

    ``pad`` fills areas outside the photo: ``black`` (EG3D's crop does this), ``reflect`` (FFHQ
    reflects the photo, which hides borders better) or ``edge``; the default follows the convention.
    """
    if pad is None:
        pad = "reflect" if transform.convention == "ffhq" else "black"
    return _sample(image, np.linalg.inv(transform.matrix), (transform.size, transform.size), pad)


def paste_back(photo: np.ndarray, aligned: np.ndarray, transform: AlignTransform, feather: float = 0.06) -> np.ndarray:
    """Put an aligned (e.g. edited or re-rendered) face back into ``photo`` with a feathered border.

    ``aligned`` may have any square size; it is resampled to ``transform.size`` first. ``feather``
    is the blend ramp width as a fraction of the aligned size.
    """
    photo, aligned = _rgb_pixels(photo, "photo"), _rgb_pixels(aligned, "aligned")
    if not isinstance(transform, AlignTransform):
        raise FaceOptionError(f"paste_back needs the AlignTransform of the crop, got {type(transform).__name__}")
    if aligned.shape[0] != aligned.shape[1]:
        raise FaceOptionError(f"paste_back needs a square aligned face, got {aligned.shape[1]}x{aligned.shape[0]}")
    if aligned.shape[0] != transform.size or aligned.shape[1] != transform.size:
        aligned = np.asarray(Image.fromarray(aligned).resize((transform.size, transform.size), Image.LANCZOS))
    n = transform.size
    ramp = np.minimum(np.arange(n) + 0.5, n - 0.5 - np.arange(n)) / max(feather * n, 1e-6)
    ramp = np.clip(ramp, 0.0, 1.0)
    mask = (np.minimum.outer(ramp, ramp) * 255).astype(np.uint8)
    h, w = photo.shape[:2]
    warped = _sample(aligned, transform.matrix, (w, h), "black")
    alpha = _sample(np.repeat(mask[:, :, None], 3, axis=2), transform.matrix, (w, h), "black")[:, :, :1] / 255.0
    out = photo.astype(np.float32) * (1 - alpha) + warped.astype(np.float32) * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _rgb_pixels(x, name: str) -> np.ndarray:
    """``x`` as ``uint8 [H, W, 3]``; a path, a grey or RGBA picture or another dtype is a one-line error saying what to pass."""
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3 or 0 in x.shape:
        got = f"array {x.dtype} {list(x.shape)}" if isinstance(x, np.ndarray) else type(x).__name__
        raise FaceOptionError(
            f"paste_back needs {name} as RGB pixels (uint8 [H, W, 3]; read a file with e3dge.faces.load_image), got {got}"
        )
    return x
