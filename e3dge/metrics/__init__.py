"""Image metrics and perceptual losses (LPIPS without torchvision)."""

from e3dge.metrics.lpips import LPIPS, LPIPSWeightsNotFoundError, UncalibratedLPIPSWarning

__all__ = ["LPIPS", "LPIPSWeightsNotFoundError", "UncalibratedLPIPSWarning"]
