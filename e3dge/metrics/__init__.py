"""Image metrics and perceptual losses (LPIPS without torchvision, ArcFace identity loss / dlib ID metric)."""

from e3dge.metrics.identity import (
    ArcFaceIRSE50,
    ArcFaceWeightsNotFoundError,
    DlibFaceIdentity,
    IdentityLoss,
    IdentitySimilarity,
    IdentityTermOffWarning,
    UncalibratedIdentityWarning,
    make_identity_loss,
)
from e3dge.metrics.lpips import LPIPS, LPIPSWeightsNotFoundError, UncalibratedLPIPSWarning

__all__ = [
    "LPIPS",
    "LPIPSWeightsNotFoundError",
    "UncalibratedLPIPSWarning",
    "ArcFaceIRSE50",
    "ArcFaceWeightsNotFoundError",
    "DlibFaceIdentity",
    "IdentityLoss",
    "IdentitySimilarity",
    "IdentityTermOffWarning",
    "UncalibratedIdentityWarning",
    "make_identity_loss",
]
