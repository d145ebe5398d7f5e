"""Safe image loading: size limits before decoding, EXIF rotation, every common mode to 8-bit RGB.

Why: photos from phones and the web come rotated by EXIF, as CMYK JPEGs, 16-bit PNGs, palettes with
transparency, or are simply broken; a decompression bomb must be refused before its pixels are
decoded. Everything downstream (dlib, warping) then sees one thing: a ``uint8 [H, W, 3]`` array.
"""

from __future__ import annotations

import io as _stdio
import os
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageTooLargeError, NotAnImageError, TruncatedImageError

__all__ = ["MAX_PIXELS", "DEFAULT_BACKGROUND", "LoadedImage", "load_image", "to_rgb_array"]

MAX_PIXELS = 50_000_000
"""Largest accepted image, in pixels (width * height), checked from the header before decoding."""

DEFAULT_BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited on white (what most viewers show) unless told otherwise."""

ImageSource = Union[str, os.PathLike, bytes, bytearray, Image.Image, np.ndarray, _stdio.IOBase]


@dataclass
class LoadedImage:
    """An image ready for face detection, plus what was done to get it there."""

    pixels: np.ndarray
    """``uint8 [H, W, 3]`` RGB, upright."""
    name: str
    """File name (or a description) used in messages."""
    original_mode: str = "RGB"
    exif_rotated: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` in pixels."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name or str(source)
    if isinstance(source, (bytes, bytearray)):
        return "<image bytes>"
    if isinstance(source, Image.Image):
        return getattr(source, "filename", "") or "<PIL image>"
    if isinstance(source, np.ndarray):
        return "<array>"
    return getattr(source, "name", "<file object>")


def _too_large(name: str, width: int, height: int, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{name} is {width}x{height} ({width * height / 1e6:.1f} megapixels), over the limit of "
        f"{max_pixels / 1e6:.0f} megapixels; refusing to decode it (it may be a decompression bomb). "
        "Downscale it first, e.g. to 4000 px on the long side."
    )


def _composite(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    rgba = img.convert("RGBA")
    base = Image.new("RGBA", rgba.size, tuple(background) + (255,))
    return Image.alpha_composite(base, rgba).convert("RGB")


def _high_bit_to_uint8(arr: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    arr = arr.astype(np.float64)
    if sixteen_bit or arr.max(initial=0) > 255:
        top = 65535.0 if arr.max(initial=0) <= 65535 else float(arr.max())
        arr = arr * (255.0 / top)
    return np.clip(np.rint(arr), 0, 255).astype(np.uint8)


def _pil_to_rgb(img: Image.Image, background: tuple[int, int, int], notes: list[str]) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        out = img
    elif mode in ("RGBA", "RGBa", "LA", "La", "PA") or (mode == "P" and "transparency" in img.info):
        out = _composite(img, background)
        notes.append(f"transparent pixels composited on RGB{tuple(background)}")
    elif mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img)
        if mode == "F":
            arr = arr.astype(np.float64)
            arr = arr * 255.0 if arr.max(initial=0) <= 1.0 else arr
            gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
        else:
            gray = _high_bit_to_uint8(arr, sixteen_bit=mode.startswith("I;16"))
        notes.append(f"{mode} grayscale scaled to 8 bits")
        return np.repeat(gray[:, :, None], 3, axis=2)
    elif mode == "CMYK":
        out = img.convert("RGB")
        notes.append("CMYK converted to RGB")
    else:  # 1, L, P without transparency, YCbCr, LAB, HSV, RGBX, ...
        out = img.convert("RGB")
    return np.ascontiguousarray(np.asarray(out, dtype=np.uint8))


def to_rgb_array(arr: np.ndarray, background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> np.ndarray:
    """Convert an array (gray, RGB or RGBA; uint8, uint16 or float in [0, 1]) to ``uint8 [H, W, 3]``."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise NotAnImageError(f"expected an image array [H, W], [H, W, 3] or [H, W, 4], got shape {list(arr.shape)}")
    if arr.dtype == np.uint8:
        a8 = arr
    elif np.issubdtype(arr.dtype, np.floating):
        scale = 255.0 if float(np.nanmax(arr, initial=0)) <= 1.0 else 1.0
        a8 = np.clip(np.rint(np.nan_to_num(arr) * scale), 0, 255).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
        a8 = _high_bit_to_uint8(arr, sixteen_bit=arr.dtype in (np.uint16, np.int32, np.uint32))
    else:
        raise NotAnImageError(f"unsupported image array dtype {arr.dtype}")
    if a8.ndim == 2:
        a8 = np.repeat(a8[:, :, None], 3, axis=2)
    if a8.shape[2] == 4:
        alpha = a8[:, :, 3:4].astype(np.float32) / 255.0
        bg = np.asarray(background, dtype=np.float32)[None, None]
        a8 = np.clip(np.rint(a8[:, :, :3] * alpha + bg * (1 - alpha)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a8)


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = MAX_PIXELS,
    background: tuple[int, int, int] = DEFAULT_BACKGROUND,
) -> LoadedImage:
    """Load a path, bytes, file object, PIL image or array as upright ``uint8`` RGB.

    Refuses images over ``max_pixels`` from the header (before decoding), applies the EXIF
    orientation, converts grayscale / 16-bit / CMYK / palette / alpha images to RGB (alpha is
    composited on ``background``, white by default) and turns every decoding failure into a
    :class:`~e3dge.faces.errors.ImageLoadError` subclass with a readable message.
    """
    name = _describe(source)
    if isinstance(source, np.ndarray):
        h, w = source.shape[:2]
        if w * h > max_pixels:
            raise _too_large(name, w, h, max_pixels)
        return LoadedImage(to_rgb_array(source, background), name, original_mode=str(source.dtype))

    if isinstance(source, Image.Image):
        img = source
    else:
        fp = _stdio.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray)) else source
        if isinstance(fp, (str, os.PathLike)):
            path = Path(fp)
            if not path.exists():
                raise NotAnImageError(f"{path}: no such file")
            if path.is_dir():
                raise NotAnImageError(f"{path} is a folder, not an image (the CLI aligns a folder in batch mode)")
        with warnings.catch_warnings():
            # Pillow's own bomb check (MAX_IMAGE_PIXELS, ~89 MP) only warns below twice its limit: make it fatal.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img = Image.open(fp)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageTooLargeError(f"{name} is too large to decode safely ({exc}); downscale it first") from None
            except UnidentifiedImageError:
                raise NotAnImageError(
                    f"{name} is not an image Pillow can read; save it as JPEG or PNG "
                    "(HEIC, RAW and PDF files are not supported)"
                ) from None
            except (
                OSError,
                ValueError,
                SyntaxError,
                EOFError,
                struct.error,
            ) as exc:  # corrupt headers raise all of these
                raise NotAnImageError(
                    f"{name} could not be opened: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                ) from None

    width, height = img.size
    if width * height > max_pixels:
        raise _too_large(name, width, height, max_pixels)
    if width < 1 or height < 1:
        raise NotAnImageError(f"{name} has no pixels ({width}x{height})")

    notes: list[str] = []
    original_mode = img.mode
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
            notes.append(f"{name} has {img.n_frames} frames; using the first")
        img.load()
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError) as exc:
        raise TruncatedImageError(f"{name} is truncated or corrupt ({exc}); download or export it again") from None

    exif_rotated = False
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # malformed EXIF must not stop an otherwise fine photo
        orientation = 1
    if orientation not in (None, 1):
        try:
            img = ImageOps.exif_transpose(img)
            exif_rotated = True
            notes.append(f"rotated upright from EXIF orientation {orientation}")
        except Exception:
            notes.append(f"EXIF orientation {orientation} could not be applied; using the stored pixels")

    pixels = _pil_to_rgb(img, tuple(background), notes)
    return LoadedImage(pixels, name, original_mode=original_mode, exif_rotated=exif_rotated, notes=notes)
