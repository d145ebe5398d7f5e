"""Locate and load dlib's models (cached): HOG / CNN face detectors, 68 / 5 point predictors, face recognizer.

The ``.dat`` files come from the ``face_recognition_models`` package; they are found with
``importlib.util.find_spec`` so the package itself (which imports ``pkg_resources``) is never imported.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

from .errors import MissingDependencyError

__all__ = ["model_path", "import_dlib", "hog_detector", "cnn_detector", "shape_predictor", "face_recognizer"]

_FILES = {
    "landmarks68": "shape_predictor_68_face_landmarks.dat",
    "landmarks5": "shape_predictor_5_face_landmarks.dat",
    "cnn": "mmod_human_face_detector.dat",
    "recognition": "dlib_face_recognition_resnet_model_v1.dat",
}
_INSTALL = 'pip install "e3dge[faces]"  (dlib-bin and face_recognition_models)'


def import_dlib():
    """Import dlib or raise a :class:`MissingDependencyError` that says how to install it."""
    try:
        import dlib  # noqa: PLC0415
    except ImportError as exc:
        raise MissingDependencyError(f"face detection needs dlib: {_INSTALL} ({exc})") from None
    return dlib


def model_path(kind: str) -> Path:
    """Path of a dlib model file: ``kind`` is ``landmarks68``, ``landmarks5``, ``cnn`` or ``recognition``."""
    if kind not in _FILES:
        raise ValueError(f"unknown dlib model {kind!r}; expected one of {sorted(_FILES)}")
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"dlib model files not found: {_INSTALL}")
    for root in spec.submodule_search_locations:
        path = Path(root) / "models" / _FILES[kind]
        if path.is_file():
            return path
    raise MissingDependencyError(f"{_FILES[kind]} is missing from face_recognition_models; reinstall it: {_INSTALL}")


@functools.lru_cache(maxsize=None)
def hog_detector():
    """dlib's frontal face detector (HOG + linear SVM), built once."""
    return import_dlib().get_frontal_face_detector()


@functools.lru_cache(maxsize=None)
def cnn_detector():
    """dlib's MMOD CNN face detector (more robust to pose, slow on CPU), loaded once."""
    return import_dlib().cnn_face_detection_model_v1(str(model_path("cnn")))


@functools.lru_cache(maxsize=None)
def shape_predictor(kind: str = "landmarks68"):
    """dlib's 68-point (iBUG 300-W) or 5-point landmark predictor, loaded once."""
    return import_dlib().shape_predictor(str(model_path(kind)))


@functools.lru_cache(maxsize=None)
def face_recognizer():
    """dlib's face-recognition ResNet (128-d descriptors), loaded once."""
    return import_dlib().face_recognition_model_v1(str(model_path("recognition")))
