"""Where a notebook runs (Colab or not, GPU or CPU) and the budget it can afford there."""

from __future__ import annotations

import base64
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import plotly.io as pio
import torch

__all__ = ["Runtime", "detect_runtime", "show_video", "REPOSITORY", "COLAB_BADGE"]

REPOSITORY = "https://github.com/e3dge/e3dge"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


@dataclass(frozen=True)
class Runtime:
    """The notebook's machine: ``device`` to use, whether it is Colab, and whether to use the small (CPU) budget."""

    device: str
    on_colab: bool
    small: bool
    threads: int

    def __str__(self) -> str:
        where = "Colab" if self.on_colab else "local"
        budget = "small CPU budget" if self.small else "full GPU budget"
        return f"{where} runtime, device {self.device}, {self.threads} CPU threads: {budget}"


def detect_runtime(force_cpu: bool = False) -> Runtime:
    """GPU when there is one (unless ``force_cpu``), else CPU with the small budget; sets Plotly's renderer for the place."""
    on_colab = "google.colab" in sys.modules
    gpu = torch.cuda.is_available() and not force_cpu
    _set_plotly_renderer(on_colab)
    return Runtime("cuda" if gpu else "cpu", on_colab, small=not gpu, threads=torch.get_num_threads())


def _set_plotly_renderer(on_colab: bool) -> None:
    """Colab's renderer there; elsewhere figures load plotly.js from its CDN (notebooks and their HTML stay small)."""

    pio.renderers.default = "colab" if on_colab else os.environ.get("E3DGE_PLOTLY_RENDERER", "notebook_connected")


def show_video(path: str | os.PathLike, width: int = 256):
    """An inline HTML5 player with the mp4 embedded (works in Colab, Jupyter and exported HTML)."""
    from IPython.display import HTML

    data = base64.b64encode(Path(path).read_bytes()).decode()
    return HTML(
        f'<video width="{width}" controls loop autoplay muted><source src="data:video/mp4;base64,{data}" type="video/mp4"></video>'
    )
