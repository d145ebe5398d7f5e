"""One call from a photo to an aligned face, its transform and its EG3D camera label."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .align import AlignTransform, align_transform, warp_image
from .detect import MIN_FACE_SIZE, Face, choose_face, detect_faces
from .io import MAX_PIXELS, ImageSource, LoadedImage, load_image
from .pose import HeadPose, estimate_pose

__all__ = ["AlignedFace", "align_face", "align_loaded"]


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
    """Things the user should know (several faces, EXIF rotation, transparency...)."""

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
    """:func:`align_face` for an already loaded image (or with faces already detected)."""
    pixels = loaded.pixels
    if faces is None:
        faces = detect_faces(pixels, detector=detector)
    face, notes = choose_face(faces, face_index, min_size=min_face_size, name=loaded.name)
    index = faces.index(face) if face_index is None else face_index % len(faces)
    transform = align_transform(face.landmarks68, loaded.size, convention, size)
    aligned = warp_image(pixels, transform)
    lm_aligned = transform.apply(face.landmarks68)
    pose = estimate_pose(lm_aligned, transform.size)
    return AlignedFace(aligned, transform, face, faces, index, pose, lm_aligned, loaded, loaded.notes + notes)


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
    subclass with an actionable message for unreadable files, huge images, no face or a tiny face.
    """
    loaded = load_image(source, max_pixels=max_pixels)
    return align_loaded(loaded, convention, size, detector, face_index, min_face_size)
