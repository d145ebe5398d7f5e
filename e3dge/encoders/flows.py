"""How E0 and the Stage II local branch attach to each backbone: the official flow of each, behind one interface.

:func:`encoder_flow` is the one place that knows both official E3DGE flows; the pipeline only calls
:meth:`EncoderFlow.encode`, :meth:`EncoderFlow.reference` and :meth:`EncoderFlow.render`:

- EG3D (e3dge's reimplementation, :mod:`e3dge.encoders.hybrid`): E0 reads the photo at the generator's size and
  predicts W+ and (yaw, pitch); the local branch's FiLM modulates the decoded colour features; previews use the 3D
  alignment alone (no extra render); the reference view is always the unedited code's.
- StyleSDF (the released E3DGE, :mod:`e3dge.encoders.stylesdf_flow`): E0 predicts offsets from the fixed mean
  latents, the volume discriminator the pose; the FiLM modulates the SIREN's last hidden layer at full quality only;
  an edit re-aligns the reference residual to the edited reference render (the official editing flow).

Stage II trains the local branch through the same flows (:meth:`EncoderFlow.branch_render`), so what is trained is
what inference runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import torch
import torch.nn.functional as F

from e3dge.backbones.base import Backbone, Encoded, Quality, View, ViewRender
from e3dge.backbones.eg3d.adapter import EG3DBackbone
from e3dge.backbones.stylesdf.adapter import StyleSDFBackbone
from e3dge.core.cameras import Camera
from e3dge.core.errors import UserError
from e3dge.encoders.global_encoder import GlobalEncoder, encoder_config
from e3dge.encoders.hybrid import Alignment, LocalBranch
from e3dge.encoders.pixel_aligned import VisibilityMode
from e3dge.encoders.stylesdf_encoder import StyleSDFEncoderConfig, StyleSDFGlobalEncoder
from e3dge.encoders.stylesdf_flow import (
    PackedLatentEncoder,
    StyleSDFModels,
    encode_face,
    encoder_size,
    face_from_latents,
    reference_view,
    render_query,
)

__all__ = [
    "EncoderFlow",
    "EG3DFlow",
    "StyleSDFFlow",
    "encoder_flow",
    "trainable_encoder",
    "batch_encoder",
    "film_channels",
    "BranchRender",
    "FilmTarget",
    "LocalSlots",
    "PREVIEW_ALIGNMENT",
    "ENCODER_SIZES",
]

EncoderSize = Literal["tiny", "ir_se50"]
FilmTarget = Literal["colour", "features"]
"""Where Stage II's FiLM acts: ``colour`` (the official placement, every backbone) or ``features`` (EG3D's tri-plane
features before the decoder: an ablation that moves the density too; bundles apply ``colour`` only)."""
FILM_TARGETS: tuple[FilmTarget, ...] = ("colour", "features")
ENCODER_SIZES: tuple[EncoderSize, ...] = ("tiny", "ir_se50")

PREVIEW_ALIGNMENT = "3d"
"""EG3D previews: 3D projection only (no E_ADA, no extra render; within about 0.001 MAE of hybrid on held-out toy heads)."""


@dataclass(frozen=True)
class LocalSlots:
    """Stage II's modules as a bundle holds them (None where absent)."""

    local_encoder: torch.nn.Module | None = None
    aligner_2d: torch.nn.Module | None = None
    fusion: torch.nn.Module | None = None


@dataclass(frozen=True, kw_only=True)
class BranchRender:
    """One Stage II query view: the render with the local branch, E0's plain render there, and E_ADA's residual."""

    view: View  # with the branch's FiLM (gradients reach the branch only)
    plain: View  # E0 alone at the query view (no gradients)
    aligned_residual: torch.Tensor | None  # [N, 3, R, R] at the branch's working size (2d / hybrid alignment)


@dataclass(frozen=True, kw_only=True)
class EG3DReference:
    """The EG3D flow's input view: E0's raw render there, and the residual with E1's map of it (shared by all views)."""

    view: ViewRender
    inputs: tuple[torch.Tensor, torch.Tensor]  # residual [1, 3, R, R], E1 map [1, C, r, r]


class EncoderFlow(Protocol):
    """E0 (+ pose) and the local branch on one backbone."""

    backbone: Backbone
    has_encoder: bool
    has_local: bool
    edits_move_reference: bool  # an edit changes the reference view (the key of its cache must include the edits)
    camera_prior: Literal[
        "aligner", "encoder"
    ]  # the default camera of a photo: the aligner's, or the pose estimator's (official)
    branch: Any  # the local-branch modules as this flow runs them (None without Stage II)

    def encode(self, photo: torch.Tensor) -> Encoded: ...

    def uses_local(self, quality: Quality) -> bool: ...

    def reference(
        self,
        photo: torch.Tensor,
        ws: torch.Tensor,
        camera: Camera,
        quality: Quality,
        edited_ws: torch.Tensor | None = None,
    ) -> Any: ...

    def render(
        self,
        reference: Any,
        photo: torch.Tensor,
        ws: torch.Tensor,
        scene: Any,
        camera: Camera,
        quality: Quality,
        decode: bool = True,
    ) -> View: ...

    def without_cache_payload(self, reference: Any) -> Any: ...

    def branch_render(
        self,
        photo: torch.Tensor,
        ws: torch.Tensor,
        reference: Camera,
        query: Camera,
        alignment: Alignment,
        *,
        resolution: int,
        decode: bool,
        ray_samples: int | None = None,
        visibility: VisibilityMode = "in_image",
        film_target: FilmTarget = "colour",
    ) -> BranchRender: ...

    def residual(self, image: torch.Tensor, thumb: torch.Tensor) -> torch.Tensor: ...


class EG3DFlow:
    """GlobalEncoder (W+ and pose head) and :class:`LocalBranch` (2D / 3D / hybrid alignment of the colour FiLM)."""

    edits_move_reference = False
    camera_prior = "aligner"  # the aligner fits EG3D's crop and camera convention

    def __init__(self, backbone: EG3DBackbone, encoder: torch.nn.Module | None, local: LocalSlots) -> None:
        self.backbone, self.encoder = backbone, encoder
        self.branch = (
            LocalBranch(local.local_encoder, local.aligner_2d, local.fusion)
            if local.local_encoder is not None
            else None
        )

    @property
    def has_encoder(self) -> bool:
        return self.encoder is not None

    @property
    def has_local(self) -> bool:
        return self.branch is not None

    def encode(self, photo: torch.Tensor) -> Encoded:
        enc = self.encoder(photo)
        return Encoded(ws=enc.ws, yaw=float(enc.pose[0, 0]), pitch=float(enc.pose[0, 1]))

    def uses_local(self, quality: Quality) -> bool:
        return self.branch is not None

    def reference(
        self,
        photo: torch.Tensor,
        ws: torch.Tensor,
        camera: Camera,
        quality: Quality,
        edited_ws: torch.Tensor | None = None,
    ) -> EG3DReference:
        """E0's raw render of the input view from the unedited code (its residual is the photo's detail), with the
        residual and E1's map of it, computed once for every view of the face."""
        view = self.backbone.render(ws, self.backbone.scene(ws), camera, quality, decode=False)
        ref = ViewRender(view.image_raw, view.depth, camera.label)
        return EG3DReference(view=ref, inputs=self.branch.input_maps(photo, ref))

    def render(
        self,
        reference: EG3DReference,
        photo: torch.Tensor,
        ws: torch.Tensor,
        scene: Any,
        camera: Camera,
        quality: Quality,
        decode: bool = True,
    ) -> View:
        """The view with the colour FiLM: hybrid at full quality (E_ADA reads E0's raw render of this view), 3D in previews."""
        inputs, reference = reference.inputs, reference.view
        alignment = self.branch.default_alignment if quality == "full" else PREVIEW_ALIGNMENT
        if (
            alignment in ("2d", "hybrid") and camera.label is reference.label
        ):  # the input view itself: its render is the reference
            query = reference
        elif alignment in ("2d", "hybrid"):
            g0 = self.backbone.render(ws, scene, camera, quality, decode=False)
            query = ViewRender(g0.image_raw, g0.depth, camera.label)
        else:  # 3D alignment reads the input view only; the query camera places the points
            query = ViewRender(reference.image, reference.depth, camera.label)
        hook = self.branch.colour_hook(photo, reference, query, alignment, inputs=inputs)
        return self.backbone.render(ws, scene, camera, quality, decode=decode, colour_hook=hook)

    def without_cache_payload(self, reference: EG3DReference) -> EG3DReference:
        return reference

    def branch_render(
        self,
        photo: torch.Tensor,
        ws: torch.Tensor,
        reference: Camera,
        query: Camera,
        alignment: Alignment,
        *,
        resolution: int,
        decode: bool,
        ray_samples: int | None = None,
        visibility: VisibilityMode = "in_image",
        film_target: FilmTarget = "colour",
    ) -> BranchRender:
        """E0's raw renders at ``reference`` (the input view) and ``query`` (no gradients), the branch's maps, and the
        query render with the FiLM at ``resolution`` (``decode``: through super-resolution)."""
        b, kw = self.backbone, {"neural_resolution": resolution, "ray_samples": ray_samples}
        with torch.no_grad():
            scene = b.scene(ws)
            ref = b.render(ws, scene, reference, decode=False, **kw)
            plain = b.render(ws, scene, query, decode=decode, **kw)
        ref_view = ViewRender(ref.image_raw, ref.depth, reference.label)
        query_view = ViewRender(plain.image_raw, plain.depth, query.label)
        maps = self.branch.prepare(photo, ref_view, query_view, alignment)
        hook = self.branch.hook(maps, ref_view, query_view, visibility)
        where = {"colour_hook": hook} if film_target == "colour" else {"feature_hook": hook}
        view = b.render(ws, scene, query, decode=decode, **kw, **where)
        return BranchRender(view=view, plain=plain, aligned_residual=maps.aligned_residual)

    def residual(self, image: torch.Tensor, thumb: torch.Tensor) -> torch.Tensor:
        """``image - thumb`` at the branch's working size, as the branch reads the photo's residual."""
        return self.branch.image_residual(image, thumb)


class StyleSDFFlow:
    """The released E3DGE on StyleSDF: E0 offsets + mean latents, the volume-discriminator pose, the official local branch."""

    edits_move_reference = True
    camera_prior = "encoder"  # the released flow takes the volume discriminator's pose

    def __init__(
        self,
        backbone: StyleSDFBackbone,
        encoder: torch.nn.Module | None,
        pose_estimator: torch.nn.Module | None,
        local: LocalSlots,
    ) -> None:
        self.backbone, self.encoder, self.pose_estimator = backbone, encoder, pose_estimator
        mean = backbone.mean_latents()
        self.models = StyleSDFModels(
            backbone.generator, encoder, pose_estimator, mean, local.local_encoder, local.aligner_2d, local.fusion
        )
        self.branch = self.models if self.models.has_local else None
        sizes = getattr(encoder, "sizes", None)
        G = backbone.generator
        if sizes is not None and (sizes.renderer_ws, sizes.renderer_dim, sizes.decoder_ws, sizes.decoder_dim) != (
            G.num_renderer_ws,
            G.style_dim,
            G.num_decoder_ws,
            2 * G.style_dim,
        ):
            raise UserError(
                f"the encoder predicts renderer {sizes.renderer_ws}x{sizes.renderer_dim} and decoder {sizes.decoder_ws}x{sizes.decoder_dim} "
                f"latents, the generator takes {G.num_renderer_ws}x{G.style_dim} and {G.num_decoder_ws}x{2 * G.style_dim}: "
                "the bundle mixes models of different sizes"
            )

    @property
    def has_encoder(self) -> bool:
        return self.encoder is not None and self.pose_estimator is not None

    @property
    def has_local(self) -> bool:
        return self.models.has_local

    def encode(self, photo: torch.Tensor) -> Encoded:
        face = encode_face(self.models, photo)
        return Encoded(ws=self.backbone.pack(face.latents), yaw=float(face.azimuth[0]), pitch=-float(face.elevation[0]))

    def uses_local(self, quality: Quality) -> bool:
        return self.models.has_local and quality == "full"

    def _face(self, photo: torch.Tensor, ws: torch.Tensor, camera: Camera):
        return face_from_latents(self.models, photo, self.backbone.latents(ws), camera.yaw, -camera.pitch)

    def reference(
        self,
        photo: torch.Tensor,
        ws: torch.Tensor,
        camera: Camera,
        quality: Quality,
        edited_ws: torch.Tensor | None = None,
    ):
        """G0 at the input view, its residual and E1 map (re-aligned to the edited render when ``edited_ws`` is given)."""
        face = self._face(photo, ws, camera)
        edited = self.backbone.latents(edited_ws) if edited_ws is not None else None
        return face, reference_view(self.models, face, edited)

    def render(
        self,
        reference,
        photo: torch.Tensor,
        ws: torch.Tensor,
        scene: Any,
        camera: Camera,
        quality: Quality,
        decode: bool = True,
    ) -> View:
        """The official query render at ``camera`` (G0 there, f2d / f3d, fusion, FiLM on the texture path, decode)."""
        face, ref = reference
        same_view = ref.base is not None and torch.equal(
            camera.label, self.backbone.camera(face.azimuth, -face.elevation).label
        )
        sphere = ref.camera if same_view else self.backbone.sphere(camera.yaw, camera.pitch)
        latents = scene if scene is not None else self.backbone.latents(ws)
        unedited = torch.equal(latents.renderer, face.latents.renderer) and torch.equal(
            latents.decoder, face.latents.decoder
        )
        trace = render_query(
            self.models, face, ref, sphere, face.latents if unedited else latents, decode=decode and quality == "full"
        )
        view = self.backbone.view(trace.output, sphere)
        return View(image=view.image, image_raw=view.image_raw, depth=view.depth, mask=view.mask, trace=trace)

    def without_cache_payload(self, reference):
        face, ref = reference
        return face, ref.without_base()

    def branch_render(
        self,
        photo: torch.Tensor,
        ws: torch.Tensor,
        reference: Camera,
        query: Camera,
        alignment: Alignment,
        *,
        resolution: int,
        decode: bool,
        ray_samples: int | None = None,
        visibility: VisibilityMode = "in_image",
        film_target: FilmTarget = "colour",
    ) -> BranchRender:
        """The official query render with the branch (2D alignment alone without the fusion, as the stage-2.1 runner),
        and G0's plain render there (no gradients); ``decode`` supervises the decoded image."""
        self.backbone.check_ray_samples(ray_samples)
        if alignment not in ("2d", "hybrid"):
            raise UserError(
                f"StyleSDF's local branch aligns '2d' or 'hybrid' (the official runners), got {alignment!r}"
            )
        if visibility != "in_image" or film_target != "colour":
            raise UserError(
                "StyleSDF's local branch uses in_image visibility and the FiLM on the SIREN's texture path; "
                f"got visibility={visibility!r}, film_target={film_target!r}"
            )
        if decode:
            self.backbone.check_decoded_resolution(resolution)
        models = self.models if alignment == "hybrid" else dataclasses.replace(self.models, fusion=None)
        latents = self.backbone.latents(ws)
        face = face_from_latents(models, photo, latents, reference.yaw, -reference.pitch)
        ref = reference_view(models, face, resolution=resolution)
        sphere = self.backbone.sphere(query.yaw, query.pitch, resolution)
        trace = render_query(models, face, ref, sphere, decode=decode)
        out = self.backbone.view(trace.output, sphere)
        view = View(image=out.image, image_raw=out.image_raw, depth=out.depth, mask=out.mask, trace=trace)
        with torch.no_grad():
            plain = self.backbone.render(ws, latents, query, decode=decode, neural_resolution=resolution)
        return BranchRender(view=view, plain=plain, aligned_residual=trace.aligned_residual)

    def residual(self, image: torch.Tensor, thumb: torch.Tensor) -> torch.Tensor:
        """``image - thumb`` at E1's input size as the official flow forms it: the image pooled (or repeated), the
        thumbnail nearest-upsampled."""
        size = encoder_size(self.models)
        grown = image.shape[-1] < size
        fitted = F.interpolate(image, size=(size, size), mode="nearest") if grown else image
        thumb_up = F.interpolate(thumb, size=(size, size), mode="nearest")
        return F.adaptive_avg_pool2d(fitted, size) - thumb_up


def encoder_flow(
    backbone: Backbone, encoder: torch.nn.Module | None, pose_estimator: torch.nn.Module | None, local: LocalSlots
) -> EncoderFlow:
    """The flow that attaches E0 and the local branch to ``backbone``."""
    if isinstance(backbone, StyleSDFBackbone):
        return StyleSDFFlow(backbone, encoder, pose_estimator, local)
    if isinstance(backbone, EG3DBackbone):
        if pose_estimator is not None:
            raise UserError("a pose_estimator component belongs to StyleSDF bundles; EG3D's E0 has its own pose head")
        return EG3DFlow(backbone, encoder, local)
    raise UserError(f"no encoder flow for a {type(backbone).__name__} backbone")


def decoder_spatials(sizes: tuple[int, ...], rows: int) -> tuple[int, ...]:
    """One decoder head size per decoder W+ row: the configured sizes (the official ones for an official generator), the last repeated."""
    return tuple(sizes[:rows]) + (sizes[-1],) * max(0, rows - len(sizes)) if rows else sizes[:1]


def trainable_encoder(backbone: Backbone, size: EncoderSize) -> torch.nn.Module:
    """A fresh E0 for Stage I on ``backbone``: ``module(photos) -> EncoderOutput`` with ``ws`` in the backbone's layout.

    EG3D: :class:`~e3dge.encoders.GlobalEncoder` (W+ around ``w_avg`` and the pose head). StyleSDF: the official E0
    layout (renderer and decoder offsets around the fixed means), no pose head (the volume discriminator's pose).
    ``size``: ``ir_se50`` (the paper's, 256^2 input) or ``tiny`` (tests, CPU).
    """
    if size not in ENCODER_SIZES:
        raise UserError(f"encoder must be one of {ENCODER_SIZES}, got {size!r}")
    if isinstance(backbone, StyleSDFBackbone):
        G = backbone.generator
        base = StyleSDFEncoderConfig.official() if size == "ir_se50" else StyleSDFEncoderConfig.tiny()
        config = dataclasses.replace(
            base,
            renderer_ws=G.num_renderer_ws,
            renderer_dim=G.style_dim,
            decoder_dim=2 * G.style_dim,
            decoder_spatials=decoder_spatials(base.decoder_spatials, G.num_decoder_ws),
        )
        return PackedLatentEncoder(config.build(), backbone.mean_latents(), backbone.pack)
    if isinstance(backbone, EG3DBackbone):
        G = backbone.generator
        kw = encoder_config(size, num_ws=G.num_ws, w_dim=G.w_dim)
        if G.num_ws < 8:  # small test generators: keep pSp's 3:4:7 coarse/medium/fine proportions
            kw.update(coarse_ws=max(1, G.num_ws * 3 // 14), medium_ws=G.num_ws * 4 // 14)
        E = GlobalEncoder(**kw)
        E.set_w_avg(G.backbone.mapping.w_avg.detach())  # copy_ moves it to the encoder's device
        return E
    raise UserError(f"no encoder for a {type(backbone).__name__} backbone")


def batch_encoder(backbone: Backbone, encoder: torch.nn.Module) -> torch.nn.Module:
    """E0 as training reads it: ``module(photos) -> EncoderOutput`` in ``backbone``'s layout (a StyleSDF E0 gets the
    backbone's fixed means, as inference adds them)."""
    if isinstance(encoder, StyleSDFGlobalEncoder):
        if not isinstance(backbone, StyleSDFBackbone):
            raise UserError(f"a StyleSDF E0 cannot encode for a {backbone.name} generator; pair E0 with its generator")
        return PackedLatentEncoder(encoder, backbone.mean_latents(), backbone.pack)
    return encoder


def film_channels(backbone: Backbone, film_target: FilmTarget) -> int:
    """Channels the local branch's FiLM modulates at ``film_target`` (``features``: EG3D's tri-plane features only)."""
    if film_target not in FILM_TARGETS:
        raise UserError(f"film_target must be one of {FILM_TARGETS}, got {film_target!r}")
    if film_target == "colour":
        return backbone.film_channels
    if not isinstance(backbone, EG3DBackbone):
        raise UserError(
            f"film_target 'features' modulates EG3D's tri-plane features; a {backbone.name} backbone has none"
        )
    return backbone.feature_channels
