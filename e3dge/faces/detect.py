"""Face detection (dlib HOG or CNN) + 68 landmarks for every face, and the choice of one face.

Why: in-the-wild photos hold zero, one or many faces; every face is returned with landmarks and the
largest, most central one is proposed, so callers can use it or pick another by index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from .errors import FaceIndexError, FaceTooSmallError, NoFaceError
from .landmarks import eye_centers, five_points
from .models import cnn_detector, hog_detector, import_dlib, shape_predictor

__all__ = ["MIN_FACE_SIZE", "Face", "detect_faces", "choose_face", "dlib_five_points"]

MIN_FACE_SIZE = 64
"""Smallest accepted face, in pixels (largest side of the 68-landmark bounding box)."""

DETECTORS = ("hog", "cnn")


@dataclass(frozen=True)
class Face:
    """One detected face in photo pixel coordinates (x right, y down, pixel centres at integers)."""

    box: tuple[float, float, float, float]
    """Detector box ``(left, top, right, bottom)``."""
    score: float
    """Detector confidence (HOG SVM margin or CNN confidence; higher is surer)."""
    landmarks68: np.ndarray
    """``[68, 2]`` landmarks in iBUG 300-W / dlib order."""

    @property
    def landmarks5(self) -> np.ndarray:
        """``[5, 2]``: eye centres, nose tip, mouth corners (see :func:`landmarks.five_points`)."""
        return five_points(self.landmarks68)

    @property
    def eyes(self) -> np.ndarray:
        """``[2, 2]`` centres of the image-left and image-right eyes."""
        return eye_centers(self.landmarks68)

    @property
    def size(self) -> float:
        """Face size in pixels: the largest side of the landmark bounding box."""
        extent = self.landmarks68.max(0) - self.landmarks68.min(0)
        return float(extent.max())

    @property
    def center(self) -> np.ndarray:
        """Centre ``[2]`` of the landmark bounding box."""
        return (self.landmarks68.max(0) + self.landmarks68.min(0)) / 2


def _run_detector(gray_or_rgb: np.ndarray, detector: str, upsample: int) -> list[tuple[tuple, float]]:
    if detector == "hog":
        rects, scores, _ = hog_detector().run(gray_or_rgb, upsample, 0.0)
        return [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]
    found = cnn_detector()(gray_or_rgb, upsample)
    return [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence)) for d in found]


def _plain(a: np.ndarray) -> np.ndarray:
    """``a`` as uint8 with plain C strides (dlib checks them, even on 1-pixel sides); copied only when needed."""
    a = np.asarray(a, dtype=np.uint8)
    expected = tuple(int(np.prod(a.shape[i + 1 :])) * a.itemsize for i in range(a.ndim))
    return a if a.strides == expected else np.array(a, order="C", copy=True)


def detect_faces(
    image: np.ndarray,
    detector: str = "hog",
    max_side: int = 1600,
    max_upsample: int | None = None,
    min_score: float = 0.3,
) -> list[Face]:
    """All faces in ``image`` (``uint8 [H, W, 3]``) with 68 landmarks, best candidate first.

    Detection runs on a copy downscaled to at most ``max_side`` pixels; it is retried with dlib's
    upsampling (1, then 2 for small images) only when nothing is found, which keeps false
    positives down on clear photos. Landmarks are always predicted on the full-resolution image.
    Detections scoring under ``min_score`` are dropped (dlib reports everything above 0, which
    includes textures such as badges) unless none scores higher, in which case the best is kept.
    Faces are ordered by :func:`face_preference` (large and central first).
    """
    if detector not in DETECTORS:
        raise ValueError(f"detector must be one of {DETECTORS}, got {detector!r}")
    dlib = import_dlib()
    h, w = image.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    small = image
    if scale < 1.0:
        small_wh = (max(1, round(w * scale)), max(1, round(h * scale)))  # a 1 x 3200 strip stays 1 px wide
        small = np.asarray(Image.fromarray(image).resize(small_wh, Image.BILINEAR))
    small, image = _plain(small), _plain(image)
    if max_upsample is None:
        max_upsample = 2 if max(small.shape[:2]) <= 640 else 1
    found: list[tuple[tuple, float]] = []
    for upsample in range(max_upsample + 1):
        found = _run_detector(small, detector, upsample)
        if found:
            break
    if found:
        best = max(score for _, score in found)
        found = [(box, score) for box, score in found if score >= min(min_score, best)]
    predictor = shape_predictor("landmarks68")
    faces = []
    for (l, t, r, b), score in found:
        box = (l / scale, t / scale, r / scale, b / scale)
        rect = dlib.rectangle(*(int(round(v)) for v in box))
        shape = predictor(image, rect)
        lm = np.array([(shape.part(i).x, shape.part(i).y) for i in range(68)], dtype=np.float64)
        faces.append(Face(box=box, score=score, landmarks68=lm))
    return sorted(faces, key=lambda f: -face_preference(f, (w, h)))


def face_preference(face: Face, image_size: tuple[int, int]) -> float:
    """Score for "the main face": size, discounted up to half for distance from the image centre."""
    w, h = image_size
    offset = np.linalg.norm(face.center - np.array([(w - 1) / 2, (h - 1) / 2]))
    return face.size * (1.0 - 0.5 * min(1.0, offset / (0.5 * np.hypot(w, h))))


def choose_face(
    faces: list[Face],
    index: int | None = None,
    min_size: float = MIN_FACE_SIZE,
    name: str = "photo",
) -> tuple[Face, list[str]]:
    """Pick ``faces[index]`` (default: the first, i.e. largest central) and check its size.

    Returns the face and notes for the user (e.g. how many faces were found and which was used).
    """
    if not faces:
        raise NoFaceError(
            f"no face found in {name}: use a photo where the face is visible, roughly frontal and at least "
            f"{min_size} px wide (or try --detector cnn for strong poses)"
        )
    notes = []
    if index is None:
        index = 0
        if len(faces) > 1:
            desc = ", ".join(
                f"#{i} at ({f.center[0]:.0f}, {f.center[1]:.0f}) {f.size:.0f} px" for i, f in enumerate(faces)
            )
            notes.append(
                f"{len(faces)} faces found in {name} ({desc}); using #0, the largest central one "
                "(choose another with face_index / --face-index)"
            )
    elif not -len(faces) <= index < len(faces):
        raise FaceIndexError(f"face index {index} does not exist: {name} has {len(faces)} face(s), numbered from 0")
    face = faces[index]
    if face.size < min_size:
        raise FaceTooSmallError(
            f"the face in {name} is {face.size:.0f} px, smaller than {min_size} px: use a larger or closer photo "
            "(upscaling a tiny face gives a blurry crop and an unreliable pose)"
        )
    return face, notes


def dlib_five_points(image: np.ndarray, face: Face) -> np.ndarray:
    """dlib's own 5-point predictor ``[5, 2]`` (two corners per eye + nose base) for ``face``.

    Provided for users of dlib's 5-point alignment; e3dge's conventions use :attr:`Face.landmarks5`.
    """
    dlib = import_dlib()
    rect = dlib.rectangle(*(int(round(v)) for v in face.box))
    shape = shape_predictor("landmarks5")(image, rect)
    return np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], dtype=np.float64)
