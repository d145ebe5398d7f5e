"""Inversion: the pipeline (one photo in, an editable 3D face out), its outputs, bundles, refinement and optimisation."""

from e3dge.inversion.bundle import BUNDLES, PIPELINE_FILE, BundleError, KnownBundle
from e3dge.inversion.pipeline import Inversion, InversionPipeline, Render

__all__ = ["BUNDLES", "PIPELINE_FILE", "BundleError", "KnownBundle", "Inversion", "InversionPipeline", "Render"]
