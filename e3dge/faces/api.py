"""One call from a photo to an aligned face, its transform and its EG3D camera label."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from e3dge.core.options import OptionError, check_range

from .align import CONVENTIONS, AlignTransform, align_transform, warp_image
from .detect import DETECTORS, MIN_FACE_SIZE, Face, choose_face, detect_faces
from .errors import FaceOptionError
from .io import MAX_PIXELS, ImageSource, LoadedImage, load_image
from .orientation import UprightDetection, detect_upright
from .pose import HeadPose, estimate_pose

__all__ = [
    "AlignedFace",
    "align_face",
    "align_loaded",
    "MAX_OUTPUT_SIZE",
    "MIN_OUTPUT_SIZE",
    "MAX_MIN_FACE_SIZE",
    "OutputSizeError",
    "check_output_size",
    "check_align_options",
    "check_max_pixels",
]

MIN_OUTPUT_SIZE, MAX_OUTPUT_SIZE = 16, 4096
"""Smallest and largest aligned crop, in pixels (a crop is allocated as size x size x 3)."""

MAX_MIN_FACE_SIZE = 10000
"""Largest ``min_face_size`` accepted (a face that large would exceed the pixel limit of a photo anyway)."""


class OutputSizeError(FaceOptionError):
    """An aligned-crop size e3dge refuses to allocate."""


@dataclass
class AlignedFace:
    """Result of :func:`align_face`: the crop, how it was made, and the camera."""

    image: np.ndarray
    """Aligned face ``uint8 [size, size, 3]``."""
    transform: AlignTransform
    """Photo -> aligned map; ``paste_back(photo, edited, transform)`` undoes it."""
    face: Face
    """The chosen face (photo coordinates)."""
    faces: list[Face]
    """Every detected face, best candidate first (``faces[index] is face``)."""
    index: int
    pose: HeadPose
    landmarks: np.ndarray
    """The chosen face's 68 landmarks in the aligned image."""
    source: LoadedImage
    notes: list[str] = field(default_factory=list)
    """Things the user should know (several faces, EXIF rotation, transparency, a turned photo...)."""
    rotation_degrees: int = 0
    """Quarter turn (counter-clockwise, as ``np.rot90``) that made the face upright; already in ``transform``."""

    @property
    def label(self) -> torch.Tensor:
        """EG3D camera label ``[1, 25]`` including the estimated roll."""
        return self.pose.label()

    def summary(self) -> dict:
        """JSON-friendly description (label, pose in degrees, transform, landmarks)."""
        yaw, pitch, roll = self.pose.degrees
        return {
            "source": self.source.name,
            "convention": self.transform.convention,
            "size": self.transform.size,
            "label": [round(float(v), 6) for v in self.label[0]],
            "yaw_deg": round(yaw, 3),
            "pitch_deg": round(pitch, 3),
            "roll_deg": round(roll, 3),
            "pose_rms_px": round(self.pose.rms_error, 3),
            "transform": self.transform.to_dict(),
            "face_index": self.index,
            "photo_turned_deg": self.rotation_degrees,
            "num_faces": len(self.faces),
            "face_box": [round(float(v), 1) for v in self.face.box],
            "landmarks68_photo": np.round(self.face.landmarks68, 2).tolist(),
            "notes": list(self.notes),
        }


def align_loaded(
    loaded: LoadedImage,
    convention: str = "eg3d",
    size: int | None = None,
    detector: str = "hog",
    face_index: int | None = None,
    min_face_size: float = MIN_FACE_SIZE,
    faces: list[Face] | None = None,
) -> AlignedFace:
    """:func:`align_face` for an already loaded image (or with faces already detected, upright).

    A photo turned by a quarter turn is handled (see :mod:`e3dge.faces.orientation`): the face is
    found in the turned photo, the turn is folded into ``transform`` and reported in ``notes``.
    """
    check_align_options(convention, size, detector, face_index, min_face_size)
    if faces is None:
        orient = (lambda px: detect_faces(px, detector="hog")) if detector == "cnn" else None
        found = detect_upright(loaded.pixels, lambda px: detect_faces(px, detector=detector), loaded.name, orient)
    else:
        found = UprightDetection(0, loaded.pixels, faces, np.eye(3))
    faces = found.faces
    face, notes = choose_face(faces, face_index, min_size=min_face_size, name=loaded.name)
    index = faces.index(face) if face_index is None else face_index % len(faces)
    turned_size = (found.pixels.shape[1], found.pixels.shape[0])
    in_turned = align_transform(face.landmarks68, turned_size, convention, size)
    aligned = warp_image(found.pixels, in_turned)
    lm_aligned = in_turned.apply(face.landmarks68)
    pose = estimate_pose(lm_aligned, in_turned.size)
    transform = AlignTransform(
        in_turned.matrix @ found.to_turned, in_turned.size, in_turned.convention
    )  # from the original photo
    if found.quarter_turns:
        notes.append(
            f"{loaded.name} is turned: the face is upright after a {found.degrees} degree counter-clockwise turn, which the crop applies"
        )
        back = np.linalg.inv(found.to_turned)
        faces = [_face_in_photo(f, back) for f in faces]
        face = faces[index]
    return AlignedFace(
        aligned, transform, face, faces, index, pose, lm_aligned, loaded, loaded.notes + notes, found.degrees
    )


def check_output_size(size: int | None) -> None:
    """Refuse crop sizes that are not an integer in 16..MAX_OUTPUT_SIZE, before anything is allocated."""
    if size is None:
        return
    value = int(size) if isinstance(size, np.integer) else size
    try:
        check_range("the aligned size (pixels)", value, MIN_OUTPUT_SIZE, MAX_OUTPUT_SIZE, integer=True)
    except OptionError as err:
        raise OutputSizeError(f"{err}; use e.g. 512 (EG3D) or 1024 (FFHQ)") from None


def check_align_options(
    convention: str = "eg3d",
    size: int | None = None,
    detector: str = "hog",
    face_index: int | None = None,
    min_face_size: float = MIN_FACE_SIZE,
) -> None:
    """Refuse bad alignment arguments in one line (:class:`FaceOptionError`) before any file is read or pixel allocated."""
    check_output_size(size)
    if convention not in CONVENTIONS:
        raise FaceOptionError(f"convention must be one of {', '.join(CONVENTIONS)}, got {convention!r}")
    if detector not in DETECTORS:
        raise FaceOptionError(f"detector must be one of {', '.join(DETECTORS)}, got {detector!r}")
    index = int(face_index) if isinstance(face_index, np.integer) else face_index
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise FaceOptionError(
            f"face_index must be an integer (0 = the largest central face) or None, got {face_index!r}"
        )
    min_face = float(min_face_size) if isinstance(min_face_size, (np.integer, np.floating)) else min_face_size
    try:
        check_range("min_face_size (pixels)", min_face, 0, MAX_MIN_FACE_SIZE)
    except OptionError as err:
        raise FaceOptionError(f"{err}; the default is {MIN_FACE_SIZE}") from None


def check_max_pixels(max_pixels: int) -> None:
    """Refuse a pixel limit that is not a positive integer."""
    value = int(max_pixels) if isinstance(max_pixels, np.integer) else max_pixels
    try:
        check_range("max_pixels", value, 1, None, integer=True)
    except OptionError as err:
        raise FaceOptionError(str(err)) from None


def _face_in_photo(face: Face, turned_to_photo: np.ndarray) -> Face:
    """A face found in the turned photo, in the original photo's coordinates."""
    lm = face.landmarks68 @ turned_to_photo[:2, :2].T + turned_to_photo[:2, 2]
    l, t, r, b = face.box
    corners = np.array([[l, t], [r, t], [l, b], [r, b]]) @ turned_to_photo[:2, :2].T + turned_to_photo[:2, 2]
    box = (*corners.min(0).tolist(), *corners.max(0).tolist())
    return Face(box=tuple(float(v) for v in box), score=face.score, landmarks68=lm)


def align_face(
    source: ImageSource,
    convention: str = "eg3d",
    size: int | None = None,
    detector: str = "hog",
    face_index: int | None = None,
    min_face_size: float = MIN_FACE_SIZE,
    max_pixels: int = MAX_PIXELS,
) -> AlignedFace:
    """Load a photo safely, find its main face, crop it in ``convention`` and estimate its camera.

    ``convention``: ``eg3d`` (EG3D's in-the-wild crop, 512 px by default) or ``ffhq`` (FFHQ's
    eye/mouth quad, any ``size``, 512 by default). Raises a :class:`~e3dge.faces.errors.FaceError`
    subclass with an actionable message for unreadable files, huge images, no face or a tiny face, and
    a :class:`~e3dge.faces.errors.FaceOptionError` for bad arguments before the file is even opened.
    """
    check_align_options(convention, size, detector, face_index, min_face_size)
    check_max_pixels(max_pixels)
    loaded = load_image(source, max_pixels=max_pixels)
    return align_loaded(loaded, convention, size, detector, face_index, min_face_size)
