"""68-point landmark layout (iBUG 300-W, dlib's order) and the 5 points derived from it.

Why: the FFHQ quad and the EG3D crop each start from a few anatomical points; naming the index
ranges once keeps the two conventions and the pose solver consistent.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "JAW",
    "RIGHT_BROW",
    "LEFT_BROW",
    "NOSE_BRIDGE",
    "NOSE_LOWER",
    "NOSE_TIP",
    "EYE_IMAGE_LEFT",
    "EYE_IMAGE_RIGHT",
    "MOUTH_OUTER",
    "MOUTH_INNER",
    "MOUTH_CORNERS",
    "eye_centers",
    "five_points",
    "check_landmarks",
]

# Index ranges in the 68-point layout. "image left" is the subject's right side (photos are not mirrored).
JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)  # subject's right = image left
LEFT_BROW = slice(22, 27)
NOSE_BRIDGE = slice(27, 31)
NOSE_LOWER = slice(31, 36)
NOSE_TIP = 30
EYE_IMAGE_LEFT = slice(36, 42)
EYE_IMAGE_RIGHT = slice(42, 48)
MOUTH_OUTER = slice(48, 60)
MOUTH_INNER = slice(60, 68)
MOUTH_CORNERS = (48, 54)


def check_landmarks(lm: np.ndarray, count: int = 68) -> np.ndarray:
    """Return ``lm`` as ``float64 [count, 2]`` (x, y pixel coordinates) or raise ``ValueError``."""
    arr = np.asarray(lm, dtype=np.float64)
    if arr.shape != (count, 2):
        raise ValueError(f"expected {count} landmarks of shape [{count}, 2], got {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("landmarks contain NaN or infinity")
    return arr


def eye_centers(lm68: np.ndarray) -> np.ndarray:
    """Centres ``[2, 2]`` of the image-left and image-right eyes: mean of the six points of each eye."""
    lm = check_landmarks(lm68)
    return np.stack((lm[EYE_IMAGE_LEFT].mean(0), lm[EYE_IMAGE_RIGHT].mean(0)))


def five_points(lm68: np.ndarray) -> np.ndarray:
    """The 5 points ``[5, 2]`` used by EG3D / Deep3DFaceRecon: eye centres, nose tip, mouth corners.

    Order: image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth
    corner (MTCNN's order). Eye centres are the mean of the two eye corners (points 36/39 and
    42/45), the same definition as Deep3DFaceRecon's ``extract_5p`` and its 5-point template.
    """
    lm = check_landmarks(lm68)
    return np.stack(
        (
            (lm[36] + lm[39]) / 2,
            (lm[42] + lm[45]) / 2,
            lm[NOSE_TIP],
            lm[MOUTH_CORNERS[0]],
            lm[MOUTH_CORNERS[1]],
        )
    )
