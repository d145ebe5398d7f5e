"""``StyleSDFPipeline``: the official E3DGE on StyleSDF behind the same ``invert`` / ``render`` surface as the EG3D pipeline.

Built by ``InversionPipeline.from_pretrained`` for a bundle whose generator is a ``StyleSDFGenerator`` (made by
``e3dge convert stylesdf`` + ``e3dge convert e3dge``). Inversion follows the official data flow
(:mod:`e3dge.pipelines.stylesdf_flow`): E0 + the volume-discriminator pose, then the hybrid-alignment local branch
at every full-quality view. ``generator="toonify"`` inverts with the Toonify pair when the bundle has it.
Yaw/pitch follow e3dge's convention: ``azimuth = yaw``, ``elevation = -pitch``. Depth maps are distances along the
ray (as EG3D's), and cameras are also given as EG3D-style labels so exporters and plots work unchanged.
Models are only read; per-inversion state lives in thread-safe LRU caches.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from e3dge.backbones.stylesdf import StyleSDFGenerator, StyleSDFLatents, StyleSDFMeanLatents
from e3dge.cameras import SphereCamera, sphere_to_label
from e3dge.errors import UserError
from e3dge.pipelines.inversion import Inversion, PlaneCache, Render, check_render_args, prepare_image, save_bundle, to_model_input, to_uint8
from e3dge.pipelines.stylesdf_flow import EncodedFace, StyleSDFModels, encode_face, reference_view, render_query

__all__ = ["StyleSDFPipeline", "StyleSDFInversion", "GENERATORS"]

GENERATORS = ("default", "toonify")


@dataclass(frozen=True)
class StyleSDFInversion(Inversion):
    """An :class:`Inversion` on StyleSDF: ``ws`` is the renderer W+ ``[1, 9, 256]``; the decoder W+ and the generator used ride along."""

    decoder_ws: torch.Tensor | None = None  # [1, 10, 512]
    variant: str = "default"  # "default" or "toonify"
    azimuth: float = 0.0  # radians (StyleSDF's camera)
    elevation: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-friendly, with StyleSDF's camera angles and both latents' shapes."""
        out = super().summary()
        out.update(backbone="stylesdf", generator=self.variant, azimuth_rad=round(self.azimuth, 6), elevation_rad=round(self.elevation, 6),
                   decoder_ws_shape=list(self.decoder_ws.shape) if self.decoder_ws is not None else None)  # fmt: skip
        return out


def _ray_lengths(resolution: int, focal: float) -> np.ndarray:
    """``|d|`` of each pixel's ray direction (camera z = -1): camera depth x this = distance along the ray."""
    c = (np.arange(resolution) + 0.5 - resolution / 2) / focal
    return np.sqrt(1 + c[None, :] ** 2 + c[:, None] ** 2).astype(np.float32)


class StyleSDFPipeline:
    """Registered StyleSDF components + the official E3DGE flow: :meth:`invert` a photo, :meth:`render` any view."""

    depth_range = (0.9, 1.1)
    """Distances along the ray that depth images map to white .. black (the face sits about 1 from the camera)."""
    field_kind = "sdf"
    supports_refinement = False
    """Test-time refinement and the optimisation baseline are EG3D-only."""

    def __init__(
        self,
        generator: StyleSDFGenerator,
        encoder: torch.nn.Module | None = None,
        pose_estimator: torch.nn.Module | None = None,
        latent_mean: StyleSDFMeanLatents | None = None,
        local_encoder: torch.nn.Module | None = None,
        aligner_2d: torch.nn.Module | None = None,
        fusion: torch.nn.Module | None = None,
        toonify_generator: StyleSDFGenerator | None = None,
        toonify_encoder: torch.nn.Module | None = None,
        toonify_latent_mean: StyleSDFMeanLatents | None = None,
        aligner: dict[str, Any] | None = None,
        directions: dict[str, Any] | None = None,
        description: str = "",
        cache_size: int = 16,
    ) -> None:
        self._slots = dict(generator=generator, encoder=encoder, pose_estimator=pose_estimator, latent_mean=latent_mean, local_encoder=local_encoder,
                           aligner_2d=aligner_2d, fusion=fusion, toonify_generator=toonify_generator, toonify_encoder=toonify_encoder,
                           toonify_latent_mean=toonify_latent_mean)  # fmt: skip
        for module in self._slots.values():
            if module is not None:
                module.eval().requires_grad_(False)
        self.generator, self.encoder = generator, encoder
        self.local_encoder, self.aligner_2d, self.fusion = local_encoder, aligner_2d, fusion
        self.aligner = dict(aligner or {"convention": "ffhq", "detector": "hog"})
        self.directions = dict(directions or {})
        for name, d in self.directions.items():
            if d.vector.ndim != 1 or d.vector.shape[0] != 3 * generator.style_dim:
                raise UserError(f"direction {name!r} is not a StyleSDF direction (renderer {generator.style_dim} + decoder {2 * generator.style_dim} values)")
        for enc, gen in ((encoder, generator), (toonify_encoder, toonify_generator)):
            sizes = getattr(enc, "sizes", None)
            if sizes is not None and gen is not None and (sizes.renderer_ws, sizes.renderer_dim, sizes.decoder_ws, sizes.decoder_dim) != (
                    gen.num_renderer_ws, gen.style_dim, gen.num_decoder_ws, 2 * gen.style_dim):
                raise UserError(f"the encoder predicts renderer {sizes.renderer_ws}x{sizes.renderer_dim} and decoder {sizes.decoder_ws}x{sizes.decoder_dim} "
                                f"latents, the generator takes {gen.num_renderer_ws}x{gen.style_dim} and {gen.num_decoder_ws}x{2 * gen.style_dim}: "
                                "the bundle mixes models of different sizes")  # fmt: skip
        self.description = description
        self.faces = PlaneCache(cache_size)  # inversion key -> (EncodedFace, variant)
        self.references = PlaneCache(cache_size)  # (inversion key, edits) -> ReferenceView

    # ------------------------------------------------------------------ bundles
    @property
    def components(self) -> dict[str, torch.nn.Module]:
        """The registered model components (empty slots omitted)."""
        return {k: v for k, v in self._slots.items() if v is not None}

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @property
    def generators(self) -> tuple[str, ...]:
        """The generators this bundle can invert with (``toonify`` when it has the pair)."""
        toon = self._slots["toonify_generator"] is not None and self._slots["toonify_encoder"] is not None
        return GENERATORS if toon else GENERATORS[:1]

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``pipeline.json`` and one subfolder per component."""
        return save_bundle(save_directory, self.components, self.description, self.aligner, self.directions)

    def models(self, variant: str = "default") -> StyleSDFModels:
        """The networks of the official flow for ``variant`` (the Toonify pair has no local branch, as released)."""
        if variant not in self.generators:
            raise UserError(f"generator={variant!r} is not in this bundle; it has {', '.join(self.generators)}"
                            + ("" if variant != "toonify" else " (convert the Toonify pair with e3dge convert e3dge --toonify ...)"))  # fmt: skip
        s = self._slots
        if s["encoder"] is None or s["pose_estimator"] is None or s["latent_mean"] is None:
            raise UserError("this StyleSDF bundle has no encoder yet; convert an official E3DGE runner into it (e3dge convert e3dge RUNNER.pt BUNDLE)")
        if variant == "toonify":
            return StyleSDFModels(s["toonify_generator"], s["toonify_encoder"], s["pose_estimator"], s["toonify_latent_mean"].latents)
        return StyleSDFModels(s["generator"], s["encoder"], s["pose_estimator"], s["latent_mean"].latents, s["local_encoder"], s["aligner_2d"], s["fusion"])

    # ------------------------------------------------------------------ inversion
    def invert(
        self,
        image,
        *,
        align: bool = True,
        camera: tuple[float, float] | torch.Tensor | None = None,
        refine: str | None = None,
        steps: int | None = None,
        optimize: bool = False,
        progress: bool = False,
        local: bool = True,
        generator: str = "default",
    ) -> StyleSDFInversion:
        """Invert a photo with E0 (+ the local branch); ``camera=(yaw, pitch)`` radians overrides the pose estimator."""
        if refine is not None or optimize:
            raise UserError("StyleSDF bundles invert with the encoders only: test-time refinement and the optimisation baseline are EG3D-only in e3dge")
        models = self.models(generator)
        given = _given_camera(camera)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        aligned, transform, notes, source, _ = prepare_image(image, align, self.aligner)
        timings["align"] = time.perf_counter() - t
        photo = self._photo(aligned)
        t = time.perf_counter()
        with torch.no_grad():
            face = encode_face(models, photo)
            if given is not None:
                face = dataclasses.replace(face, azimuth=torch.tensor([given[0]], device=self.device), elevation=torch.tensor([-given[1]], device=self.device))
            timings["encode"] = time.perf_counter() - t
            t = time.perf_counter()
            ref = reference_view(models, face)
            trace = render_query(models, face, ref, ref.camera, local=local)
            timings["render"] = time.perf_counter() - t
        azim, elev = float(face.azimuth[0]), float(face.elevation[0])
        method = "e0" + ("+local" if local and models.has_local else "")
        inv = StyleSDFInversion(face.latents.renderer.detach().cpu(), sphere_to_label(ref.camera).cpu(), azim, -elev, aligned, transform,
                                to_uint8(trace.output.image), self._depth(trace.output.depth, ref.camera), trace.output.mask[0, 0].cpu().numpy(),
                                method, "given" if given is not None else "encoder", timings, [], notes, source, None,
                                decoder_ws=face.latents.decoder.detach().cpu(), variant=generator, azimuth=azim, elevation=elev)  # fmt: skip
        self.faces.put(inv.key, face)
        self.references.put((inv.key, ()), ref.without_base())
        return inv

    def _photo(self, pixels: np.ndarray) -> torch.Tensor:
        """``uint8 [S, S, 3]`` -> ``[1, 3, S, S]`` in [-1, 1] at its own size (the flow pools it, as the official code)."""
        return to_model_input(pixels, pixels.shape[0], self.device)

    @staticmethod
    def _depth(depth: torch.Tensor, camera: SphereCamera) -> np.ndarray:
        """Camera-space depth ``[1, 1, r, r]`` -> distance along each pixel's ray (EG3D's meaning) as float32 ``[r, r]``."""
        r = depth.shape[-1]
        return depth[0, 0].cpu().numpy() * _ray_lengths(r, float(camera.focal[0]) * r / camera.resolution)

    # ------------------------------------------------------------------ views
    def _face(self, inv: StyleSDFInversion) -> EncodedFace:
        """The encoded input of ``inv`` with the inversion's own latents and camera (which a caller may have replaced, e.g. smoothed)."""
        face = self.faces.get(inv.key)
        if face is None:  # evicted or a derived inversion: E0 is deterministic, so encoding the aligned crop again gives the same image
            models = self.models(inv.variant)
            with torch.no_grad():
                face = encode_face(models, self._photo(inv.aligned))
            self.faces.put(inv.key, face)
        latents = StyleSDFLatents(torch.as_tensor(inv.ws).to(self.device), torch.as_tensor(inv.decoder_ws).to(self.device))
        return dataclasses.replace(face, latents=latents, azimuth=torch.tensor([inv.azimuth], device=self.device),
                                   elevation=torch.tensor([inv.elevation], device=self.device))  # fmt: skip

    def edited_latents(self, inv: StyleSDFInversion, edits: dict[str, float] | None) -> tuple[StyleSDFLatents, tuple]:
        """The inversion's latents with ``edits`` (``s * boundary`` on every row of both W+), and a hashable key of the edits."""
        face = self._face(inv)
        edits = {k: float(v) for k, v in (edits or {}).items() if float(v) != 0.0}
        unknown = sorted(set(edits) - set(self.directions))
        if unknown:
            raise UserError(f"unknown editing direction(s) {unknown}; available: {', '.join(sorted(self.directions)) or 'none'}")
        if not edits:
            return face.latents, ()
        r, d = face.latents.renderer, face.latents.decoder
        dim = r.shape[-1]
        for name in sorted(edits):
            v = self.directions[name].vector.to(r)
            r, d = r + edits[name] * v[:dim], d + edits[name] * v[dim:]
        return StyleSDFLatents(r, d), tuple(sorted(edits.items()))

    def render(
        self,
        inversion: StyleSDFInversion,
        yaw: float | None = None,
        pitch: float | None = None,
        edits: dict[str, float] | None = None,
        resolution: int | None = None,
        quality: str = "preview",
        local: bool = True,
    ) -> Render:
        """Render at (yaw, pitch) radians; ``full``: the decoded image with the local branch; ``preview``: the 64^2 volume render upsampled."""
        check_render_args(quality, resolution, yaw, pitch)
        t = time.perf_counter()
        models = self.models(inversion.variant)
        face = self._face(inversion)
        latents, key = self.edited_latents(inversion, edits)
        G = models.generator
        camera = G.camera(inversion.azimuth if yaw is None else yaw, inversion.elevation if pitch is None else -pitch)
        with torch.no_grad():
            ref = self.references.get((inversion.key, key))  # the input view's residual and E1 map do not change while the head turns
            if ref is None and quality == "full" and local and models.has_local:
                ref = reference_view(models, face, latents if key else None).without_base()
                self.references.put((inversion.key, key), ref)
            use_local = quality == "full" and local and models.has_local and ref is not None
            trace = render_query(models, face, ref, camera, latents, local=use_local, decode=quality == "full") if use_local else None
            out = trace.output if trace is not None else G.synthesis(latents, camera, decode=quality == "full")
            image = out.image
            if resolution is not None and resolution != image.shape[-1]:
                image = torch.nn.functional.interpolate(image, size=(resolution, resolution), mode="bilinear", align_corners=False,
                                                        antialias=resolution < image.shape[-1])  # fmt: skip
        return Render(to_uint8(image), self._depth(out.depth, camera), out.mask[0, 0].cpu().numpy(), sphere_to_label(camera).cpu(),
                      time.perf_counter() - t, False)  # fmt: skip (no tri-planes: the SIREN field is queried per view)

    def sdf_field(self, inversion: StyleSDFInversion, edits: dict[str, float] | None = None):
        """(generator, renderer W+) of the (edited) inversion, for exporters that query the SDF (meshes)."""
        latents, _ = self.edited_latents(inversion, edits)
        return self.models(inversion.variant).generator, latents.renderer


def _given_camera(camera) -> tuple[float, float] | None:
    """(yaw, pitch) radians from ``(yaw, pitch)`` or an EG3D-style label ``[1, 25]`` (e.g. a video aligner's camera)."""
    if camera is None:
        return None
    if isinstance(camera, torch.Tensor) and tuple(camera.shape) in ((1, 25), (25,)):
        from e3dge.cameras import yaw_pitch_from_label

        yaw, pitch = yaw_pitch_from_label(camera.reshape(1, 25).float().cpu())
        return float(yaw[0]), float(pitch[0])
    if isinstance(camera, (tuple, list)) and len(camera) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in camera):
        return float(camera[0]), float(camera[1])
    raise UserError(f"camera must be (yaw, pitch) in radians or a label [1, 25], got {camera!r}")
