"""e3dge: one face photo to an editable 3D face (E3DGE inversion and editing), on EG3D or StyleSDF.

``from e3dge import InversionPipeline`` is the front door; it loads lazily so ``import e3dge.core.cameras`` stays light.
"""

from __future__ import annotations

__all__ = ["InversionPipeline", "Inversion", "Render"]


def __getattr__(name: str):
    if name in __all__:
        from e3dge.inversion import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'e3dge' has no attribute {name!r}")
