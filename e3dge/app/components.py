"""The app's Gradio components: an upload that e3dge reads itself, and outputs that serve whole files to concurrent sessions.

Gradio writes a ``.pyi`` stub next to the module that defines a component subclass, so these
classes live alone here (``components.pyi`` is that generated stub) and never shadow ``ui.py``.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image

from e3dge.core.files import write_bytes

__all__ = ["PhotoInput", "ImageOutput", "ImageSliderOutput", "png_in_cache"]


def png_in_cache(value, cache_dir: str):
    """An image array written once, atomically, as a PNG under Gradio's content-addressed cache; anything else unchanged.

    Gradio writes output arrays in place under a folder named by their content, so two sessions that
    produce the same picture at once rewrite a file while it is being served (a truncated download);
    writing under a temporary name and renaming it into place gives every reader a whole file.
    """
    if not isinstance(value, np.ndarray):
        return value
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(value)).save(buffer, format="png")
    data = buffer.getvalue()
    folder = Path(cache_dir) / hashlib.sha256(data).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "image.png"
    if not target.exists():
        write_bytes(target, data)
    return target


class PhotoInput(gr.Image):
    """A ``gr.Image`` that hands the uploaded file's path over unread, so e3dge's own reader checks it (format, size, pixels).

    Gradio's own preprocessing opens every upload with PIL first, so a file that is not an image
    would fail there with a multi-line message; e3dge's reader refuses it in one line instead.
    """

    def get_block_name(self) -> str:
        return "image"

    def preprocess(self, payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return str(payload.path)
        try:
            return super().preprocess(payload)
        except Exception as err:  # noqa: BLE001 - a webcam/clipboard frame Gradio cannot decode
            raise gr.Error(
                f"the image could not be read ({type(err).__name__}); upload a JPEG, PNG or WebP photo"
            ) from None


class ImageOutput(gr.Image):
    """A read-only ``gr.Image`` whose arrays reach the browser through :func:`png_in_cache`."""

    def get_block_name(self) -> str:
        return "image"

    def postprocess(self, value):
        return super().postprocess(png_in_cache(value, self.GRADIO_CACHE))


class ImageSliderOutput(gr.ImageSlider):
    """A read-only ``gr.ImageSlider`` whose two arrays reach the browser through :func:`png_in_cache`."""

    def get_block_name(self) -> str:
        return "imageslider"

    def postprocess(self, value):
        if value is None:
            return None
        return super().postprocess(tuple(png_in_cache(v, self.GRADIO_CACHE) for v in value))
