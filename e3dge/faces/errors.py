"""Errors raised by :mod:`e3dge.faces`, each with a message that says what to do next.

All derive from :class:`FaceError` (a ``ValueError``) so callers and the CLI can catch one type and
print ``str(err)`` instead of a traceback.
"""

from __future__ import annotations

from e3dge.core.options import OptionError

__all__ = [
    "FaceError",
    "FaceOptionError",
    "ImageLoadError",
    "NotAnImageError",
    "TruncatedImageError",
    "ImageTooLargeError",
    "NoFaceError",
    "FaceTooSmallError",
    "FaceIndexError",
    "MissingDependencyError",
]


class FaceError(ValueError):
    """Base class: a photo or video that e3dge.faces cannot turn into an aligned face."""


class FaceOptionError(FaceError, OptionError):
    """An argument of an e3dge.faces function outside what it accepts (also an :class:`e3dge.core.options.OptionError`)."""


class ImageLoadError(FaceError):
    """The input could not be read as an image."""


class NotAnImageError(ImageLoadError):
    """The file does not exist or is not in an image format Pillow can decode."""


class TruncatedImageError(ImageLoadError):
    """The file starts like an image but its data is cut short or corrupt."""


class ImageTooLargeError(ImageLoadError):
    """The image has more pixels than allowed (protects against decompression bombs)."""


class NoFaceError(FaceError):
    """No face was detected."""


class FaceTooSmallError(FaceError):
    """The chosen face is smaller than the minimum size that gives a usable crop."""


class FaceIndexError(FaceError):
    """The requested face index does not exist in the photo."""


class MissingDependencyError(FaceError, ImportError):
    """An optional dependency (dlib-bin, face_recognition_models) is not installed."""
