"""Photo orientation: find the face in a photo turned by 90, 180 or 270 degrees, or say it is rotated.

Why: dlib's detectors and the EG3D crop assume an upright face. A sideways phone photo without EXIF
orientation either hides the face or yields a crop and camera label with the wrong roll. We detect
on the photo as it is; when no face is found there, or its landmarks lean more than 45 degrees, the
three other quarter turns are tried and the one whose landmarks are most upright wins. The turn is
folded into the returned transform, so crops and ``paste_back`` still refer to the original photo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .detect import Face
from .errors import FaceError

__all__ = [
    "MAX_UPRIGHT_TILT",
    "FaceRotatedError",
    "UprightDetection",
    "face_tilt_degrees",
    "quarter_turn_matrix",
    "detect_upright",
]

MAX_UPRIGHT_TILT = 45.0
"""Largest lean (degrees) of the eyes -> mouth axis from vertical that still counts as upright."""


class FaceRotatedError(FaceError):
    """The only face found leans too far, in every quarter turn of the photo."""


@dataclass
class UprightDetection:
    """Faces found in the photo turned by ``quarter_turns`` x 90 degrees counter-clockwise (``np.rot90``)."""

    quarter_turns: int
    pixels: np.ndarray  # the turned photo the faces refer to
    faces: list[Face]
    to_turned: np.ndarray  # [3, 3]: original photo pixel -> turned photo pixel

    @property
    def degrees(self) -> int:
        return 90 * self.quarter_turns


def face_tilt_degrees(face: Face) -> float:
    """Lean of the eyes -> mouth axis from straight down (0 upright, +-90 sideways, 180 upside down)."""
    lm = face.landmarks68
    eyes, mouth = lm[36:48].mean(0), lm[48:68].mean(0)
    dx, dy = mouth - eyes
    return math.degrees(math.atan2(-dx, dy))


def quarter_turn_matrix(quarter_turns: int, width: int, height: int) -> np.ndarray:
    """``[3, 3]`` map from pixel ``(x, y)`` of a ``width x height`` image to ``np.rot90(image, quarter_turns)``."""
    m = np.eye(3)
    w, h = width, height
    for _ in range(quarter_turns % 4):  # one counter-clockwise turn: (x, y) -> (y, w - 1 - x)
        m = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w - 1.0], [0.0, 0.0, 1.0]]) @ m
        w, h = h, w
    return m


def detect_upright(
    pixels: np.ndarray,
    detect: Callable[[np.ndarray], list[Face]],
    name: str = "photo",
    orient: Callable[[np.ndarray], list[Face]] | None = None,
) -> UprightDetection:
    """Detect faces upright: as is, else the quarter turn whose main face is most upright.

    ``orient``: a detector that only finds upright faces (dlib's HOG), used to choose the turn when ``detect`` also
    finds turned faces (dlib's CNN does, and the landmark fit then pulls their landmarks upright, so the lean alone
    cannot tell); ``detect`` then runs once on the chosen turn. Raises :class:`FaceRotatedError` when a face is
    found but leans more than :data:`MAX_UPRIGHT_TILT` in every turn; returns an empty ``faces`` list when there is
    no face at all.
    """
    if orient is not None:
        chosen = detect_upright(pixels, orient, name)
        if chosen.faces:
            return UprightDetection(
                chosen.quarter_turns, chosen.pixels, detect(chosen.pixels) or chosen.faces, chosen.to_turned
            )
    h, w = pixels.shape[:2]
    faces = detect(pixels)
    if faces and abs(face_tilt_degrees(faces[0])) <= MAX_UPRIGHT_TILT:
        return UprightDetection(0, pixels, faces, np.eye(3))
    best: UprightDetection | None = UprightDetection(0, pixels, faces, np.eye(3)) if faces else None
    for k in (1, 2, 3):
        turned = np.rot90(pixels, k).copy()  # plain strides (dlib checks them)
        found = detect(turned)
        if found and (best is None or abs(face_tilt_degrees(found[0])) < abs(face_tilt_degrees(best.faces[0]))):
            best = UprightDetection(k, turned, found, quarter_turn_matrix(k, w, h))
    if best is None:
        return UprightDetection(0, pixels, [], np.eye(3))
    tilt = face_tilt_degrees(best.faces[0])
    if abs(tilt) > MAX_UPRIGHT_TILT:
        raise FaceRotatedError(
            f"the face in {name} is rotated by about {tilt:.0f} degrees in every quarter turn of the photo: "
            "rotate the photo so the face is upright and try again"
        )
    return best
