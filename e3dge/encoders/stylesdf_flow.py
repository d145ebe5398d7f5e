"""The official E3DGE inference data flow on the StyleSDF backbone, step by step, with every intermediate kept.

1. photo ``[N, 3, H, W]`` in [-1, 1] -> average-pooled to 256 (E0, E1) and to 64 (the pose estimator);
2. E0 -> renderer ``W+ [N, 9, 256]`` and decoder ``W+ [N, 10, 512]`` offsets, added to the fixed mean latents;
3. the volume discriminator -> (azimuth, elevation): the reference camera;
4. G0 (no local branch) at the reference view -> thumbnail, depth; residual ``D = photo_256 - nearest-up(thumb)``;
5. E1(D, depth) -> ``F_ref`` (hybrid only); for a query view: G0 there -> thumb_q, depth_q, surface xyz_q, sample points;
   ``f3d`` = ``F_ref`` at the points projected into the reference camera; E_ADA(D, up(thumb_q)) -> aligned
   residual; E1(aligned, depth_q) -> ``F_q``; ``f2d`` = ``F_q`` at the points in the query camera; visibility =
   the query surface point projects inside the reference image (no occlusion test, as the official code);
6. fusion(f2d, visibility, f3d) (or ``f2d`` alone for a 2D-alignment-only runner) -> ``(alpha, beta)`` from E1's FiLM head with the points' positional encoding
   -> the SIREN's last hidden layer becomes ``(alpha + 1) h + beta`` on the texture path (the SDF keeps ``h``);
7. render -> the decoder with E0's decoder W+ -> the image.
Edits add ``s * boundary`` to every row of both W+; the reference residual is then re-aligned by E_ADA to the
edited reference render and E1 reads the edited depth (the official editing flow). Noise is the stored
``decoder.noises`` (fixed) unless asked otherwise, so a run is reproducible; the mean latents are fixed in the bundle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from e3dge.backbones.ops import apply_film
from e3dge.backbones.output import GeneratorOutput
from e3dge.backbones.stylesdf.network import StyleSDFGenerator, StyleSDFLatents, VolumeRender
from e3dge.core.cameras import SphereCamera, sphere_to_label
from e3dge.encoders.aligner import ResidualAligner
from e3dge.encoders.fusion import FeatureFusion
from e3dge.encoders.global_encoder import EncoderOutput
from e3dge.encoders.local import LocalEncoder
from e3dge.encoders.pixel_aligned import project, sample_features
from e3dge.encoders.stylesdf_encoder import StyleSDFEncoderOutput, StyleSDFGlobalEncoder
from e3dge.encoders.volume_pose import VolumePoseEstimator

__all__ = [
    "StyleSDFModels",
    "EncodedFace",
    "ReferenceView",
    "QueryTrace",
    "encode_face",
    "reference_view",
    "render_query",
    "project_points",
    "ENCODER_SIZE",
    "face_from_latents",
    "latents_from_offsets",
    "PackedLatentEncoder",
]

ENCODER_SIZE = 256


@dataclass(frozen=True)
class StyleSDFModels:
    """The networks of an official-layout E3DGE on StyleSDF (the local slots are None for a global-only model)."""

    generator: StyleSDFGenerator
    encoder: StyleSDFGlobalEncoder
    pose: VolumePoseEstimator
    mean: StyleSDFLatents  # renderer [1, 256] and decoder [1, 512] means (fixed at conversion)
    local_encoder: LocalEncoder | None = None
    aligner_2d: ResidualAligner | None = None
    fusion: FeatureFusion | None = None

    @property
    def has_local(self) -> bool:
        """E1 and E_ADA are present: the 2D alignment at least (E3DGE_2DAlignOnly_Runner); with the fusion, the hybrid (Full)."""
        return self.local_encoder is not None and self.aligner_2d is not None


@dataclass(frozen=True)
class EncodedFace:
    """E0 and the pose estimator's reading of a photo."""

    image: torch.Tensor  # [N, 3, 256, 256] the photo pooled to E0's size
    renderer_offsets: torch.Tensor | None  # [N, 9, 256] (None when the latents did not come from E0)
    decoder_offsets: torch.Tensor | None  # [N, 10, 512]
    latents: StyleSDFLatents  # offsets + means
    azimuth: torch.Tensor  # [N] radians
    elevation: torch.Tensor  # [N] radians


@dataclass(frozen=True)
class ReferenceView:
    """G0 at the input view and what E1 makes of the residual there."""

    camera: SphereCamera
    thumb: torch.Tensor  # [N, 3, 64, 64]
    depth: torch.Tensor  # [N, 1, 64, 64]
    residual: torch.Tensor  # [N, 3, 256, 256] photo - nearest-up(thumb) (or its edit-aligned version)
    feature_map: torch.Tensor | None  # [N, C, 64, 64] E1(residual, depth); None without a local branch
    base: VolumeRender | None = (
        None  # G0's unedited render here, with its SIREN trunk: a query at this very camera reuses it
    )
    # (large: drop it, ``without_base()``, before keeping the view for long)

    def without_base(self) -> ReferenceView:
        """The same view without the kept G0 render (what a cache should hold)."""
        return dataclasses.replace(self, base=None)


@dataclass(frozen=True)
class QueryTrace:
    """Every intermediate of one rendered view (the local ones are None without a local branch)."""

    output: GeneratorOutput  # the final render (image at the decoder's size)
    thumb: torch.Tensor  # [N, 3, 64, 64] G0 at this view
    depth: torch.Tensor  # [N, 1, 64, 64] G0 at this view
    xyz: torch.Tensor  # [N, 3, 64, 64] G0's surface points
    aligned_residual: torch.Tensor | None = None  # [N, 3, 256, 256]
    feature_map: torch.Tensor | None = None  # [N, C, 64, 64] E1(aligned, depth_q)
    f3d: torch.Tensor | None = None  # [N, M, C] M = 64 * 64 * 24
    f2d: torch.Tensor | None = None  # [N, M, C]
    visibility: torch.Tensor | None = None  # [N, M, 1]
    fused: torch.Tensor | None = None  # [N, M, C]
    alpha: torch.Tensor | None = None  # [N, M, width]
    beta: torch.Tensor | None = None  # [N, M, width]


def project_points(points: torch.Tensor, camera: SphereCamera) -> tuple[torch.Tensor, torch.Tensor]:
    """World ``points [N, M, 3]`` -> normalised image coordinates ``[N, M, 2]`` (grid_sample's, +v down) and in-image ``[N, M, 1]``."""
    grid = project(points, sphere_to_label(camera).to(points)).grid
    return grid, (grid.abs() <= 1).all(dim=-1, keepdim=True).to(points.dtype)


def _up(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x, size=(size, size), mode="nearest")


def encode_face(models: StyleSDFModels, photo: torch.Tensor) -> EncodedFace:
    """Steps 1-3: pool the photo, E0 offsets + means, pose from the volume discriminator."""
    image = F.adaptive_avg_pool2d(photo, encoder_size(models))
    enc = models.encoder(image)
    latents = latents_from_offsets(models.mean, enc)
    pose = models.pose(photo)  # it average-pools to its input size (64: the official pool_64)
    return EncodedFace(image, enc.renderer_offsets, enc.decoder_offsets, latents, pose.azim, pose.elev)


def latents_from_offsets(mean: StyleSDFLatents, enc: StyleSDFEncoderOutput) -> StyleSDFLatents:
    """E0's W+ offsets added to the fixed mean latents (each ``[1, dim]``, broadcast over rows)."""
    return StyleSDFLatents(mean.renderer[:, None] + enc.renderer_offsets, mean.decoder[:, None] + enc.decoder_offsets)


class PackedLatentEncoder(torch.nn.Module):
    """E0 of StyleSDF as Stage I trains it: a batch of photos -> the packed latent ``ws`` (fixed means + E0's offsets).

    It predicts no pose (the released flow takes the volume discriminator's); ``save_pretrained`` writes E0 alone,
    the bundle's ``encoder`` slot.
    """

    predicts_pose = False

    def __init__(self, encoder: StyleSDFGlobalEncoder, mean: StyleSDFLatents, pack) -> None:
        super().__init__()
        self.encoder, self.pack = encoder, pack
        self.register_buffer("mean_renderer", mean.renderer.detach().clone(), persistent=False)
        self.register_buffer("mean_decoder", mean.decoder.detach().clone(), persistent=False)

    def forward(self, photo: torch.Tensor) -> EncoderOutput:
        enc = self.encoder(F.adaptive_avg_pool2d(photo, int(self.encoder.config["input_size"])))
        ws = self.pack(latents_from_offsets(StyleSDFLatents(self.mean_renderer, self.mean_decoder), enc))
        offsets = self.pack(StyleSDFLatents(enc.renderer_offsets, enc.decoder_offsets))
        return EncoderOutput(ws_offset=offsets, ws=ws, pose=None)

    def save_pretrained(self, save_directory) -> Path:
        return self.encoder.save_pretrained(save_directory)


def face_from_latents(
    models: StyleSDFModels,
    photo: torch.Tensor,
    latents: StyleSDFLatents,
    azimuth: torch.Tensor,
    elevation: torch.Tensor,
) -> EncodedFace:
    """An :class:`EncodedFace` for known latents and camera (a refined, optimised, smoothed or given code): the photo pooled as E0 reads it."""
    return EncodedFace(F.adaptive_avg_pool2d(photo, encoder_size(models)), None, None, latents, azimuth, elevation)


def encoder_size(models: StyleSDFModels) -> int:
    """The size E0 and E1 read the photo at (256 for the released networks)."""
    return int(models.local_encoder.config["input_size"]) if models.local_encoder is not None else ENCODER_SIZE


def reference_view(
    models: StyleSDFModels,
    face: EncodedFace,
    latents: StyleSDFLatents | None = None,
    resolution: int | None = None,
) -> ReferenceView:
    """Step 4-5 at the input view; with edited ``latents`` the residual is re-aligned to the edited render (official
    editing). ``resolution``: the volume render's size (default: the model's own; training may render smaller)."""
    G = models.generator
    camera = G.camera(face.azimuth, face.elevation, resolution)
    base = G.render_volume(face.latents.renderer, camera, keep_trunk=True)
    residual = face.image - _up(base.rgb, face.image.shape[-1])
    thumb, depth = base.rgb, base.depth
    if latents is not None:
        edited = G.render_volume(latents.renderer, camera)
        thumb, depth = edited.rgb, edited.depth
        if models.has_local:
            residual = models.aligner_2d(residual, _up(thumb, residual.shape[-1]))
    hybrid = models.has_local and models.fusion is not None  # F_ref feeds the 3D projection only
    feature_map = models.local_encoder(residual, _up(depth, residual.shape[-1])) if hybrid else None
    return ReferenceView(camera, thumb, depth, residual, feature_map, base)


def render_query(
    models: StyleSDFModels,
    face: EncodedFace,
    ref: ReferenceView,
    camera: SphereCamera,
    latents: StyleSDFLatents | None = None,
    local: bool = True,
    noise_mode: str = "const",
    generator: torch.Generator | None = None,
    decode: bool = True,
    noise: list[torch.Tensor] | None = None,  # explicit decoder noise maps (parity runs); else noise_mode
) -> QueryTrace:
    """Steps 5-7 at ``camera``: G0 there, the local features (when ``local`` and present), the modulated render and decode."""
    G = models.generator
    reuse = (
        ref.base is not None and camera is ref.camera and (latents is None or latents is face.latents)
    )  # the input view, unedited
    latents = latents or face.latents
    g0 = (
        ref.base if reuse else G.render_volume(latents.renderer, camera, keep_trunk=True)
    )  # geometry computed once per view
    if not (local and models.has_local):
        out = G.synthesis(
            latents, camera, noise_mode=noise_mode, generator=generator, decode=decode, noise=noise, trunk=g0.trunk
        )
        return QueryTrace(out, g0.rgb, g0.depth, g0.xyz)
    n, size = g0.rgb.shape[0], ref.residual.shape[-1]
    aligned = models.aligner_2d(ref.residual, _up(g0.rgb, size))
    feature_map = models.local_encoder(aligned, _up(g0.depth, size))
    surface = g0.xyz.flatten(2).transpose(1, 2)  # [N, R, 3]
    _, seen = project_points(surface, ref.camera)
    samples = g0.points.shape[3]
    visibility = seen[:, :, None].expand(-1, -1, samples, -1).reshape(n, -1, 1)
    trace: dict[str, torch.Tensor] = {}
    query_label, ref_label = sphere_to_label(camera).to(surface), sphere_to_label(ref.camera).to(surface)

    def hook(h: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        if points.shape[1] != visibility.shape[1]:
            raise RuntimeError("the local branch needs the whole view in one chunk")
        f2d = sample_features(feature_map, project(points, query_label))
        if models.fusion is None:  # 2D alignment only (the official stage-2.1 runner): the FiLM head reads f2d
            fused, f3d = f2d, None
        else:
            f3d = sample_features(ref.feature_map, project(points, ref_label))
            fused = models.fusion(f2d, visibility, f3d)
        alpha, beta = models.local_encoder.film(fused, points)
        trace.update(f3d=f3d, f2d=f2d, fused=fused, alpha=alpha, beta=beta)
        return apply_film(h, alpha, beta)

    out = G.synthesis(
        latents,
        camera,
        noise_mode=noise_mode,
        generator=generator,
        texture_hook=hook,
        decode=decode,
        noise=noise,
        trunk=g0.trunk,
    )
    return QueryTrace(out, g0.rgb, g0.depth, g0.xyz, aligned, feature_map, visibility=visibility, **trace)
