"""Inversion (and, next, editing) pipelines: one photo in, an editable 3D face out."""

from e3dge.pipelines.bundle import BUNDLES, PIPELINE_FILE, BundleError, KnownBundle
from e3dge.pipelines.inversion import Inversion, InversionPipeline, Render

__all__ = ["BUNDLES", "PIPELINE_FILE", "BundleError", "KnownBundle", "Inversion", "InversionPipeline", "Render"]
