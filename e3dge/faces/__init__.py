"""Faces in the wild: safe loading, dlib detection + landmarks, FFHQ / EG3D alignment, pose, video.

Quick start::

    from e3dge.faces import align_face, paste_back
    result = align_face("photo.jpg", convention="eg3d")   # 512x512 crop as EG3D's preprocessing
    result.image, result.label, result.pose.degrees, result.transform

Needs the ``faces`` extra (``pip install "e3dge[faces]"``: dlib-bin, face_recognition_models).
"""

from __future__ import annotations

from .align import CONVENTIONS, AlignTransform, align_transform, eg3d_transform, ffhq_transform, paste_back, warp_image
from .api import MAX_OUTPUT_SIZE, AlignedFace, align_face, align_loaded
from .detect import MIN_FACE_SIZE, Face, choose_face, detect_faces
from .errors import (
    FaceError,
    FaceIndexError,
    FaceOptionError,
    FaceTooSmallError,
    ImageLoadError,
    ImageTooLargeError,
    MissingDependencyError,
    NoFaceError,
    NotAnImageError,
    TruncatedImageError,
)
from .io import MAX_PIXELS, LoadedImage, load_image
from .landmarks import eye_centers, five_points
from .pose import HeadPose, camera_label, estimate_pose

__all__ = [
    "CONVENTIONS",
    "MAX_OUTPUT_SIZE",
    "MAX_PIXELS",
    "MIN_FACE_SIZE",
    "AlignTransform",
    "AlignedFace",
    "Face",
    "HeadPose",
    "LoadedImage",
    "FaceError",
    "FaceIndexError",
    "FaceOptionError",
    "FaceTooSmallError",
    "ImageLoadError",
    "ImageTooLargeError",
    "MissingDependencyError",
    "NoFaceError",
    "NotAnImageError",
    "TruncatedImageError",
    "align_face",
    "align_loaded",
    "align_transform",
    "align_video",
    "camera_label",
    "choose_face",
    "detect_faces",
    "eg3d_transform",
    "estimate_pose",
    "eye_centers",
    "ffhq_transform",
    "five_points",
    "load_image",
    "paste_back",
    "smooth_transforms",
    "warp_image",
]


def __getattr__(name: str):
    # Video support imports imageio lazily so that photo-only users never load ffmpeg.
    if name in ("align_video", "smooth_transforms"):
        from . import video

        return getattr(video, name)
    raise AttributeError(f"module 'e3dge.faces' has no attribute {name!r}")
