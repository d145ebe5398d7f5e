"""The Gradio app's logic (``spaces_app.py`` at the repository root only builds and launches it)."""

from e3dge.app.handlers import AppState
from e3dge.app.models import available_bundles, get_pipeline

__all__ = ["AppState", "available_bundles", "get_pipeline", "build_demo", "launch_kwargs", "QUEUE"]


def __getattr__(name: str):
    """``build_demo`` / ``launch_kwargs`` / ``QUEUE`` import Gradio only when asked for."""
    if name in ("build_demo", "launch_kwargs", "QUEUE"):
        from e3dge.app import ui

        return getattr(ui, name)
    raise AttributeError(name)
