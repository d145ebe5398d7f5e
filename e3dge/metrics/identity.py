"""Identity (ID) loss and metric: cosine similarity of ArcFace IR-SE50 embeddings, as pSp computes it.

E3DGE's reconstruction loss is ``L2 + 0.8 LPIPS + 0.1 ID`` with ``ID = 1 - cos(R(y), R(y_hat))`` and R
the ArcFace IR-SE50 network of pixel2style2pixel (pSp), weights ``model_ir_se50.pth`` (from
TreB1eN/InsightFace_Pytorch). What pSp does (``criteria/id_loss.py``, ``models/encoders/model_irse.py``),
reimplemented here from those facts:

* net: ``Backbone(input_size=112, num_layers=50, mode='ir_se', drop_ratio=0.6, affine=True)``: the IR-SE
  stem and 24 units of :mod:`e3dge.encoders.irse`, then ``output_layer`` = BatchNorm2d(512), Dropout(0.6),
  Flatten, Linear(512*7*7, 512), BatchNorm1d(512); the embedding is divided by its L2 norm;
* input: a 256x256 RGB batch in [-1, 1] (no other normalisation), cropped to rows 35:223 and columns
  32:220, then AdaptiveAvgPool2d to 112x112;
* loss: mean over the batch of ``1 - <f(y_hat), f(y)>``, the target's embedding detached; net in eval mode.

Weights are never made up silently. Search order: explicit path > ``$E3DGE_ARCFACE_WEIGHTS`` > local cache
``torch.hub.get_dir()/checkpoints/model_ir_se50.pth`` > Hugging Face Hub repo (``hub_repo_id`` or
``$E3DGE_ARCFACE_HUB_REPO``; honours ``HF_HUB_OFFLINE``). Missing weights raise
:class:`ArcFaceWeightsNotFoundError` unless ``allow_random_backbone=True`` (tests only: loud warning,
``is_calibrated=False``); :func:`make_identity_loss` turns the ID term off with a warning instead.

:class:`DlibFaceIdentity` (dlib's 128-d face-recognition ResNet) is a documented substitute for ID
*metrics* when the ArcFace file is unavailable; its numbers are not comparable with ArcFace ones.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from e3dge.core.errors import one_line
from e3dge.encoders.irse import IRSE_DEPTHS, make_body, make_input_layer, stage_units
from e3dge.faces.errors import MissingDependencyError
from e3dge.faces.models import face_recognizer, import_dlib, shape_predictor
from e3dge.metrics.lpips import WeightsFileError, _hub_file, read_state_dict

__all__ = [
    "ARCFACE_FILE",
    "WEIGHTS_ENV",
    "HUB_REPO_ENV",
    "PSP_SIZE",
    "PSP_CROP",
    "DLIB_SAME_PERSON_THRESHOLD",
    "ArcFaceWeightsNotFoundError",
    "UncalibratedIdentityWarning",
    "IdentityTermOffWarning",
    "ArcFaceIRSE50",
    "find_arcface_weights",
    "load_arcface",
    "psp_face_crop",
    "IdentitySimilarity",
    "IdentityLoss",
    "make_identity_loss",
    "DlibFaceIdentity",
]

ARCFACE_FILE = "model_ir_se50.pth"
"""File name of pSp's ArcFace IR-SE50 weights (a plain state dict of the Backbone)."""
WEIGHTS_ENV = "E3DGE_ARCFACE_WEIGHTS"
"""Environment variable holding the path of ``model_ir_se50.pth`` (or a ``.safetensors`` copy)."""
HUB_REPO_ENV = "E3DGE_ARCFACE_HUB_REPO"
"""Environment variable naming a Hub repo that holds ``model_ir_se50.pth`` (optional)."""
PSP_URL = "https://drive.google.com/file/d/1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn/view?usp=sharing"
"""Where pSp's README links the IR-SE50 weights (for error messages only)."""
PSP_SIZE = 256
"""Image size pSp's ID loss sees (its generator outputs are pooled to 256x256 first)."""
PSP_CROP = (35, 223, 32, 220)
"""pSp's face crop in 256x256 pixels: rows ``35:223``, columns ``32:220`` (188x188)."""
ARCFACE_SIZE = 112
DLIB_SAME_PERSON_THRESHOLD = 0.6
"""dlib's convention: descriptors closer than 0.6 (Euclidean) are the same person (99.38% on LFW)."""


class ArcFaceWeightsNotFoundError(FileNotFoundError):
    """``model_ir_se50.pth`` was found nowhere in the search order (or an explicit path does not exist)."""


class UncalibratedIdentityWarning(UserWarning):
    """The ArcFace net runs with random weights: its outputs are NOT identity similarities."""


class IdentityTermOffWarning(UserWarning):
    """No ArcFace weights: the ID term of the reconstruction loss is switched off."""


class ArcFaceIRSE50(nn.Module):
    """pSp's ``Backbone(112, 50, 'ir_se', drop_ratio=0.6, affine=True)``: same module names, order and shapes.

    Input ``[N, 3, 112, 112]`` in [-1, 1]; output ``[N, 512]`` with unit L2 norm (pSp's ``l2_norm``, no eps).
    """

    def __init__(self, drop_ratio: float = 0.6) -> None:
        super().__init__()
        self.input_layer = make_input_layer(3, 64)
        self.output_layer = nn.Sequential(  # registered before ``body`` as in pSp, so state_dict order matches
            nn.BatchNorm2d(512),
            nn.Dropout(drop_ratio),
            nn.Flatten(),
            nn.Linear(512 * 7 * 7, 512),
            nn.BatchNorm1d(512, affine=True),
        )
        self.body = make_body(stage_units(64, (64, 128, 256, 512), IRSE_DEPTHS[50]), use_se=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1:] != (3, ARCFACE_SIZE, ARCFACE_SIZE):
            raise ValueError(f"ArcFaceIRSE50 expects [N, 3, 112, 112], got {list(x.shape)}")
        x = self.output_layer(self.body(self.input_layer(x)))
        return x / torch.norm(x, 2, 1, True)


def _existing(path: str | os.PathLike, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ArcFaceWeightsNotFoundError(f"ArcFace IR-SE50 weights: {what} {p} does not exist")
    return p


def find_arcface_weights(
    path: str | os.PathLike | None = None, hub_repo_id: str | None = None, revision: str | None = None
) -> tuple[Path | None, list[str]]:
    """Locate ``model_ir_se50.pth``: ``path`` > ``$E3DGE_ARCFACE_WEIGHTS`` > torch hub cache > Hub.

    Returns (path or None, places tried).
    An explicit path or environment variable naming a missing file is an error, not a fallback.
    """
    if path is not None:
        return _existing(path, "explicit path"), [f"explicit path {path}"]
    env_path = os.environ.get(WEIGHTS_ENV)
    if env_path:
        return _existing(env_path, f"${WEIGHTS_ENV}"), [f"${WEIGHTS_ENV}={env_path}"]
    tried = [f"${WEIGHTS_ENV}: not set"]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / ARCFACE_FILE
    if cached.is_file():
        return cached, tried + [f"torch hub cache {cached}: found"]
    tried.append(f"torch hub cache {cached}: missing")
    repo_id = hub_repo_id or os.environ.get(HUB_REPO_ENV) or None
    found, line = _hub_file(repo_id, ARCFACE_FILE, revision, env=HUB_REPO_ENV)
    return found, tried + [line]


def load_arcface(
    weights: str | os.PathLike | None = None,
    hub_repo_id: str | None = None,
    hub_revision: str | None = None,
    allow_random_backbone: bool = False,
) -> tuple[ArcFaceIRSE50, str, bool]:
    """Build :class:`ArcFaceIRSE50`, load its weights strictly; returns (frozen eval net, source, is_calibrated)."""
    path, tried = find_arcface_weights(weights, hub_repo_id, hub_revision)
    if path is None:  # decide before building 44M parameters
        text = (
            f"ArcFace IR-SE50 weights ({ARCFACE_FILE}, used by pSp's ID loss) not found. Searched:\n    "
            + "\n    ".join(tried)
            + f"\n  Fix: download {ARCFACE_FILE} (pSp README, 'IR-SE50 Model': {PSP_URL}) to "
            f"{Path(torch.hub.get_dir()) / 'checkpoints'}/, set ${WEIGHTS_ENV}=PATH, or pass weights=PATH."
        )
        if not allow_random_backbone:
            raise ArcFaceWeightsNotFoundError(
                text + "\nRefusing to compute identity numbers with a random network; pass allow_random_backbone=True "
                "only for tests and smoke runs."
            )
        warnings.warn(
            "!!! " + text + "\nallow_random_backbone=True: using a random network (seed 0). "
            "These outputs are NOT identity similarities; do not report them. !!!",
            UncalibratedIdentityWarning,
            stacklevel=3,
        )
    with torch.random.fork_rng(devices=[]):  # deterministic init that leaves the caller's RNG alone
        torch.manual_seed(0)
        net = ArcFaceIRSE50()
    if path is None:
        source, calibrated = "random seed 0 (uncalibrated)", False
    else:
        try:  # a plain dict has no version metadata, so files without num_batches_tracked still load
            net.load_state_dict(read_state_dict(path), strict=True)
        except RuntimeError as err:
            raise WeightsFileError(
                f"{path} is not pSp's {ARCFACE_FILE} (IR-SE50 Backbone state dict): {one_line(err)[:300]}"
            ) from err
        source, calibrated = str(path), True
    net.requires_grad_(False)
    return net.eval(), source, calibrated


def psp_face_crop(x: torch.Tensor, crop: tuple[int, int, int, int] = PSP_CROP) -> torch.Tensor:
    """pSp's preprocessing: resize to 256x256 if needed, crop ``crop`` (top, bottom, left, right), pool to 112x112.

    Inputs other than 256x256 are first resized to 256x256: by area (adaptive average pooling, what
    pSp's ``face_pool`` does to its 1024 px outputs) when both sides are >= 256, else bilinearly
    (``antialias=True``). The crop numbers assume FFHQ-style alignment as in pSp's data.
    """
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"identity inputs must be RGB batches [N, 3, H, W] in [-1, 1], got {list(x.shape)}")
    if tuple(x.shape[2:]) != (PSP_SIZE, PSP_SIZE):
        if min(x.shape[2:]) >= PSP_SIZE:
            x = F.adaptive_avg_pool2d(x, (PSP_SIZE, PSP_SIZE))
        else:
            x = F.interpolate(x, size=(PSP_SIZE, PSP_SIZE), mode="bilinear", align_corners=False, antialias=True)
    top, bottom, left, right = crop
    return F.adaptive_avg_pool2d(x[:, :, top:bottom, left:right], (ARCFACE_SIZE, ARCFACE_SIZE))


class IdentitySimilarity(nn.Module):
    """Per-sample ArcFace cosine similarity ``[N]`` of two batches in [-1, 1] (pSp's crop); a metric, no gradients.

    ``is_calibrated`` is True only when real weights were loaded; ``source`` says where they came from.
    The face net is frozen and always in eval mode (``train()`` does not change that).
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        hub_repo_id: str | None = None,
        hub_revision: str | None = None,
        allow_random_backbone: bool = False,
        crop: tuple[int, int, int, int] = PSP_CROP,
    ) -> None:
        super().__init__()
        self.facenet, self.source, self.is_calibrated = load_arcface(
            weights, hub_repo_id, hub_revision, allow_random_backbone
        )
        self.crop = tuple(crop)
        self.eval()

    def train(self, mode: bool = True) -> IdentitySimilarity:
        """Stay in eval mode whatever ``mode`` (frozen BatchNorm statistics, no Dropout), as pSp's facenet."""
        return super().train(False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Unit-norm ArcFace embeddings ``[N, 512]`` of images ``[N, 3, H, W]`` in [-1, 1] (gradients flow)."""
        return self.facenet(psp_face_crop(x, self.crop))

    @torch.no_grad()
    def similarity(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cosine similarity ``[N]`` between the faces of ``x`` and ``y`` (1 = same embedding)."""
        if x.shape != y.shape:
            raise ValueError(f"identity inputs must have the same shape, got {list(x.shape)} and {list(y.shape)}")
        return (self.embed(x) * self.embed(y)).sum(dim=1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.similarity(x, y)


class IdentityLoss(IdentitySimilarity):
    """pSp's ID loss ``mean(1 - <f(y_hat), f(y)>)``; gradients reach ``y_hat`` only (``y`` embedded under no_grad)."""

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        if y_hat.shape != y.shape:
            raise ValueError(f"identity inputs must have the same shape, got {list(y_hat.shape)} and {list(y.shape)}")
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        with torch.no_grad():
            target = self.embed(y)
        loss = 1 - (self.embed(y_hat) * target).sum(dim=1)
        return loss.mean() if reduction == "mean" else loss


def make_identity_loss(
    weights: str | os.PathLike | None = None,
    required: bool = False,
    hub_repo_id: str | None = None,
    hub_revision: str | None = None,
) -> IdentityLoss | None:
    """The trainer's ID loss; None with an :class:`IdentityTermOffWarning` if no weights are found and not ``required``.

    An explicit ``weights`` path (or ``$E3DGE_ARCFACE_WEIGHTS``) that does not exist is always an error.
    """
    try:
        return IdentityLoss(weights, hub_repo_id=hub_repo_id, hub_revision=hub_revision)
    except ArcFaceWeightsNotFoundError as err:
        if required or weights is not None or os.environ.get(WEIGHTS_ENV):
            raise
        warnings.warn(f"The ID term is off (its weight is treated as 0): {err}", IdentityTermOffWarning, stacklevel=2)
        return None


# --------------------------------------------------------------------------------------------------
# dlib substitute (metrics only)


class DlibFaceIdentity:
    """dlib's face-recognition ResNet (128-d descriptors) as an ID *metric* when ArcFace weights are absent.

    Not a loss (no gradients) and not comparable with ArcFace numbers. For each image a face box is
    found with e3dge.faces' detector (``box="detect"``) or is the whole image (``box="full"``, for tight
    crops); landmarks are dlib's own 5-point predictor (``landmarks=5``: eye corners + nose base, the
    layout dlib's chip alignment expects, not e3dge's ``five_points``) or the 68 points;
    ``compute_face_descriptor`` then aligns a 150x150 chip (``padding``) and embeds it. dlib's
    convention: Euclidean distance < 0.6 means the same person. The descriptors were trained for that
    Euclidean threshold; their cosine similarities run high even for unrelated inputs (a coffee cup
    against a face scored 0.93 with ``box="full"``), so report distances or same-person rates.
    """

    def __init__(
        self,
        landmarks: int = 5,
        box: str = "detect",
        detector: str = "hog",
        padding: float = 0.25,
        num_jitters: int = 0,
    ) -> None:
        if landmarks not in (5, 68):
            raise ValueError(f"landmarks must be 5 or 68, got {landmarks!r}")
        if box not in ("detect", "full"):
            raise ValueError(f"box must be 'detect' or 'full', got {box!r}")

        try:
            self._dlib = import_dlib()
            self._net = face_recognizer()
        except MissingDependencyError as err:
            raise MissingDependencyError(
                f"DlibFaceIdentity needs dlib and face_recognition_models: pip install -e .[faces]  ({err})"
            ) from None
        self.landmarks, self.box, self.detector = landmarks, box, detector
        self.padding, self.num_jitters = float(padding), int(num_jitters)

    @staticmethod
    def to_uint8(images: np.ndarray | torch.Tensor | Sequence[np.ndarray | torch.Tensor]) -> list[np.ndarray]:
        """RGB ``uint8 [H, W, 3]`` arrays from arrays (``[H, W, 3]`` / ``[N, H, W, 3]`` uint8) or tensors in [-1, 1]."""
        if isinstance(images, (list, tuple)):
            return [im for item in images for im in DlibFaceIdentity.to_uint8(item)]
        if isinstance(images, torch.Tensor):
            t = images.detach().float().cpu()
            if t.ndim == 3:
                t = t[None]
            if t.ndim != 4 or t.shape[1] != 3:
                raise ValueError(f"tensor images must be [3, H, W] or [N, 3, H, W] in [-1, 1], got {list(t.shape)}")
            arr = ((t.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
            return [np.ascontiguousarray(a) for a in arr]
        arr = np.asarray(images)
        if arr.dtype != np.uint8 or arr.shape[-1] != 3 or arr.ndim not in (3, 4):
            raise ValueError(f"array images must be uint8 [H, W, 3] or [N, H, W, 3], got {arr.dtype} {list(arr.shape)}")
        return [np.ascontiguousarray(a) for a in (arr[None] if arr.ndim == 3 else arr)]

    def _shape(self, img: np.ndarray):
        """dlib ``full_object_detection`` (5 or 68 parts) of the face in ``img``."""
        dlib = self._dlib

        h, w = img.shape[:2]
        if self.box == "full":
            rect = dlib.rectangle(0, 0, w - 1, h - 1)
        else:
            from e3dge.faces.detect import detect_faces
            from e3dge.faces.errors import NoFaceError

            faces = detect_faces(img, detector=self.detector)
            if not faces:
                raise NoFaceError(
                    f"no face found in a {w}x{h} image; DlibFaceIdentity needs a visible face "
                    "(for tight aligned crops use box='full')"
                )
            rect = dlib.rectangle(*(int(round(v)) for v in faces[0].box))
            if self.landmarks == 68:  # reuse the landmarks e3dge.faces already predicted in that box
                pts = [dlib.point(int(round(x)), int(round(y))) for x, y in faces[0].landmarks68]
                return dlib.full_object_detection(rect, pts)
        return shape_predictor(f"landmarks{self.landmarks}")(img, rect)

    def embed(self, images: np.ndarray | torch.Tensor | Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """128-d dlib descriptors ``[N, 128]`` (float32; not normalised, norms of order 1)."""
        out = []
        for img in self.to_uint8(images):
            desc = self._net.compute_face_descriptor(img, self._shape(img), self.num_jitters, self.padding)
            out.append(np.asarray(desc, dtype=np.float32))
        return torch.from_numpy(np.stack(out))

    def _descriptors(self, x) -> torch.Tensor:
        """``x`` itself if it is already a descriptor batch ``[N, 128]`` (from :meth:`embed`), else its descriptors."""
        if isinstance(x, torch.Tensor) and x.ndim == 2 and x.shape[1] == 128:
            return x
        return self.embed(x)

    def similarity(self, a, b) -> torch.Tensor:
        """Cosine similarity ``[N]`` of ``a`` and ``b`` (images, or descriptors from :meth:`embed`)."""
        return F.cosine_similarity(self._descriptors(a), self._descriptors(b), dim=1)

    def distance(self, a, b) -> torch.Tensor:
        """Euclidean distance ``[N]`` of ``a`` and ``b`` (images or descriptors; dlib: < 0.6 means the same person)."""
        return torch.linalg.vector_norm(self._descriptors(a) - self._descriptors(b), dim=1)

    def same_person(self, a, b, threshold: float = DLIB_SAME_PERSON_THRESHOLD) -> torch.Tensor:
        """Boolean ``[N]``: descriptor distance below dlib's threshold."""
        return self.distance(a, b) < threshold

    __call__ = similarity
