"""``InversionPipeline``: one photo in, an editable 3D face out (diffusers-style: components + glue, no math).

The pipeline registers its components (the 3D GAN, the global encoder E0 with its pose head, the
slots of Stage II's local branch, the face aligner's options, editing directions), loads and saves
them as a bundle (:mod:`e3dge.pipelines.bundle`), and strings them together:

- :meth:`InversionPipeline.invert`: align (e3dge.faces) -> E0 -> optional refinement (P / P+C) or the
  optimisation baseline -> an :class:`Inversion`;
- :meth:`InversionPipeline.render`: any view of an inversion; tri-planes are cached per
  (inversion, edits), so turning the head never reruns the backbone.

Models are only read (never moved, retuned or reconfigured in place), so one pipeline can serve
many users from many threads.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from e3dge.backbones.eg3d import TriPlaneGenerator
from e3dge.cameras import label_from_yaw_pitch, yaw_pitch_from_label
from e3dge.errors import UserError
from e3dge.pipelines.bundle import PIPELINE_FILE, BundleError, BundleSpec, ComponentSpec, check_component_folder, component_class, resolve_bundle
from e3dge.pipelines.optimize import optimize_inversion
from e3dge.pipelines.refine import REFINE_MODES, Criteria, refine_latent

__all__ = ["Inversion", "Render", "InversionPipeline", "QUALITIES", "prepare_image", "check_render_args", "save_bundle"]

QUALITIES = ("preview", "full")
PREVIEW_ALIGNMENT = "3d"
"""Stage II alignment of preview renders: 3D projection only (no E_ADA, no extra render; within about 0.001 MAE of hybrid on held-out toy heads, benchmarks/results/stage2.md)."""
MAX_RENDER_RESOLUTION = 2048


@dataclass(frozen=True)
class Inversion:
    """An inverted face: latent, camera, the aligned input and its way back to the photo, and the reconstruction."""

    ws: torch.Tensor  # [1, num_ws, w_dim] W+ code
    camera: torch.Tensor  # [1, 25] EG3D label of the input view
    yaw: float  # radians, 0 = frontal (camera offsets, as e3dge.cameras)
    pitch: float
    aligned: np.ndarray  # uint8 [S, S, 3]: what the encoder saw
    transform: Any  # e3dge.faces.AlignTransform photo -> aligned (None when align=False)
    reconstruction: np.ndarray  # uint8 [R, R, 3] rendered at the input camera
    depth: np.ndarray  # float32 [r, r] distance along the ray
    mask: np.ndarray  # float32 [r, r] accumulated opacity
    method: str  # "e0", "e0+pose", "e0+pose+code", "optimization", "optimization+pti"
    camera_source: str  # "aligner", "encoder", "given", or "optimized"
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    loss_curve: list[float] = field(default_factory=list)  # refinement / optimisation loss per step
    notes: list[str] = field(default_factory=list)
    source: str = ""
    generator: TriPlaneGenerator | None = field(default=None, repr=False)  # PTI-tuned copy, private to this inversion
    key: str = field(default_factory=lambda: uuid.uuid4().hex)  # identifies the inversion in the plane cache

    @property
    def degrees(self) -> tuple[float, float]:
        """(yaw, pitch) in degrees."""
        return math.degrees(self.yaw), math.degrees(self.pitch)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly: camera, pose, method, timings, latent (as nested lists)."""
        return {
            "source": self.source, "method": self.method, "camera_source": self.camera_source,
            "yaw_deg": round(self.degrees[0], 3), "pitch_deg": round(self.degrees[1], 3),
            "camera_label": [round(float(v), 6) for v in self.camera[0]], "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "loss_curve": [round(v, 6) for v in self.loss_curve], "notes": list(self.notes),
            "transform": self.transform.to_dict() if self.transform is not None else None,
            "ws_shape": list(self.ws.shape), "ws": self.ws[0].tolist(),
        }  # fmt: skip


@dataclass(frozen=True)
class Render:
    """One view of an inversion."""

    image: np.ndarray  # uint8 [R, R, 3]
    depth: np.ndarray  # float32 [r, r]
    mask: np.ndarray  # float32 [r, r]
    camera: torch.Tensor  # [1, 25]
    time_s: float
    cached_planes: bool  # the tri-planes came from the cache (the backbone did not run)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[1, 3, H, W]`` in [-1, 1] -> ``uint8 [H, W, 3]``."""
    return ((image[0].detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def to_model_input(pixels: np.ndarray, size: int, device: torch.device | str) -> torch.Tensor:
    """``uint8 [H, W, 3]`` -> ``[1, 3, size, size]`` in [-1, 1] (antialiased resize)."""
    x = torch.from_numpy(np.array(pixels, copy=True)).permute(2, 0, 1)[None].float().div(127.5).sub(1).to(device)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
    return x


@torch.no_grad()
def prepare_image(image, align: bool, aligner: dict[str, Any]) -> tuple[np.ndarray, Any, list[str], str, torch.Tensor | None]:
    """(aligned pixels, transform, notes, source name, the aligner's camera or None) of any supported image input."""
    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu()
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 3 or x.shape[0] != 3:
            raise UserError(f"a tensor image must be [3, H, W] or [1, 3, H, W] in [-1, 1], got {list(image.shape)}")
        image = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    from e3dge.faces.api import AlignedFace

    if isinstance(image, AlignedFace):  # aligned already (e.g. an app showing the crop first): one path, same camera
        return image.image, image.transform, list(image.notes), image.source.name, image.label
    if align:
        from e3dge.faces import align_face

        face = align_face(image, convention=aligner.get("convention", "eg3d"), detector=aligner.get("detector", "hog"))
        return face.image, face.transform, list(face.notes), face.source.name, face.label
    from e3dge.faces.io import load_image

    loaded = load_image(image)
    h, w = loaded.pixels.shape[:2]
    if h != w:
        raise UserError(f"{loaded.name}: align=False needs a square, already aligned crop, got {w}x{h}; use align=True for a photo")
    return loaded.pixels, None, list(loaded.notes), loaded.name, None


def check_render_args(quality: str, resolution: int | None, yaw: float | None, pitch: float | None) -> None:
    """One-line errors for a render request's quality, output size and angles (every pipeline checks the same way)."""
    if quality not in QUALITIES:
        raise UserError(f"quality must be one of {QUALITIES}, got {quality!r}")
    if resolution is not None and (not isinstance(resolution, int) or not 16 <= resolution <= MAX_RENDER_RESOLUTION):
        raise UserError(f"resolution must be an integer between 16 and {MAX_RENDER_RESOLUTION}, got {resolution!r}")
    for name, value in (("yaw", yaw), ("pitch", pitch)):
        if value is not None and (not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > math.pi):
            raise UserError(f"{name} must be a number of radians in [-pi, pi], got {value!r}")


def save_bundle(save_directory: str | os.PathLike, components: dict[str, torch.nn.Module], description: str, aligner: dict[str, Any],
                directions: dict[str, Any] | None) -> Path:  # fmt: skip
    """Write ``pipeline.json`` (atomically) and one subfolder per component, plus the editing directions when there are any."""
    import json

    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    comps = {}
    for slot, module in components.items():
        module.save_pretrained(out / slot)
        comps[slot] = ComponentSpec(type(module).__name__, subfolder=slot)
    spec = BundleSpec(comps, description, aligner)
    if directions:
        from e3dge.editing import save_directions

        save_directions(out / "directions", directions)
        spec.directions = "directions"
    tmp = out / (PIPELINE_FILE + ".tmp")
    tmp.write_text(json.dumps(spec.to_dict(), indent=2))
    tmp.replace(out / PIPELINE_FILE)
    return out


class PlaneCache:
    """A thread-safe LRU of tri-planes keyed by (inversion, edits) (or of any per-inversion renders)."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity, self._lock, self._items = capacity, threading.Lock(), OrderedDict()

    def get(self, key) -> torch.Tensor | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, planes: torch.Tensor) -> None:
        with self._lock:
            self._items[key] = planes
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


class InversionPipeline:
    """Registered components + glue: :meth:`invert` a photo, :meth:`render` any view of the result."""

    supports_refinement = True
    """P / P+C refinement and the optimisation baseline (StyleSDF bundles: False)."""

    def __init__(
        self,
        generator: TriPlaneGenerator,
        encoder: torch.nn.Module | None = None,
        local_encoder: torch.nn.Module | None = None,  # Stage II slot (E1)
        aligner_2d: torch.nn.Module | None = None,  # Stage II slot (E_ADA)
        fusion: torch.nn.Module | None = None,  # Stage II slot
        aligner: dict[str, Any] | None = None,  # e3dge.faces options: convention, detector
        directions: dict[str, Any] | None = None,  # editing directions by name (the editing issue)
        description: str = "",
        plane_cache_size: int = 32,
    ) -> None:
        self.generator, self.encoder = generator.eval().requires_grad_(False), encoder
        if encoder is not None:
            encoder.eval().requires_grad_(False)
        self.local_encoder, self.aligner_2d, self.fusion = local_encoder, aligner_2d, fusion
        self.local_branch = None
        if local_encoder is not None:
            from e3dge.encoders.hybrid import LocalBranch

            for m in (local_encoder, aligner_2d, fusion):
                if m is not None:
                    m.eval().requires_grad_(False)
            self.local_branch = LocalBranch(local_encoder, aligner_2d, fusion)
        self.aligner = dict(aligner or {"convention": "eg3d", "detector": "hog"})
        self.directions = dict(directions or {})
        self.description = description
        self.planes = PlaneCache(plane_cache_size)
        self.reference_views = PlaneCache(plane_cache_size)  # Stage II: E0's render at each inversion's input view
        self._criteria: Criteria | None = None
        self._criteria_lock = threading.Lock()

    def criteria(self) -> Criteria:
        """LPIPS / ArcFace ID for refinement and optimisation when their weights are installed (loaded once; else off with a warning)."""
        with self._criteria_lock:
            if self._criteria is None:
                import warnings

                from e3dge.training.sources import make_identity, make_lpips

                with warnings.catch_warnings():  # their long "where to put the weights" texts: one short line instead
                    warnings.simplefilter("ignore")
                    self._criteria = Criteria(make_lpips("alex", self.device), make_identity("arcface", self.device))
                off = [name for name, c in (("LPIPS", self._criteria.lpips), ("ArcFace ID", self._criteria.identity)) if c is None]
                if off:
                    warnings.warn(f"refinement uses pixel losses only: {' and '.join(off)} weights are not installed (README: Encoders and metrics)",
                                  stacklevel=3)  # fmt: skip
            return self._criteria

    # ------------------------------------------------------------------ bundles
    @property
    def components(self) -> dict[str, torch.nn.Module]:
        """The registered model components (slots left empty are omitted)."""
        slots = {"generator": self.generator, "encoder": self.encoder, "local_encoder": self.local_encoder, "aligner_2d": self.aligner_2d, "fusion": self.fusion}
        return {k: v for k, v in slots.items() if v is not None}

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike = "toy", revision: str | None = None, local_files_only: bool | None = None, device: str | torch.device = "cpu"
    ) -> "InversionPipeline":
        """A known bundle (``"toy"``, ``"eg3d-ffhq"``), a local bundle folder or a Hub repo holding ``pipeline.json``."""
        spec, root = resolve_bundle(name_or_path, revision=revision, local_files_only=local_files_only)
        stylesdf = spec.components["generator"].cls == "StyleSDFGenerator"
        only_stylesdf = {"pose_estimator", "latent_mean", "toonify_generator", "toonify_encoder", "toonify_latent_mean"} & set(spec.components)
        if only_stylesdf and not stylesdf:
            raise BundleError(f"{name_or_path}: components {sorted(only_stylesdf)} belong to StyleSDF bundles, but the generator is a {spec.components['generator'].cls}")
        models = {slot: _load_component(slot, comp, root, local_files_only, device) for slot, comp in spec.components.items()}
        directions = None
        if spec.directions is not None and root is not None:
            from e3dge.editing import load_directions

            directions = load_directions(check_component_folder(root, ComponentSpec("TriPlaneGenerator", subfolder=spec.directions), "directions"))
        if stylesdf:  # the official E3DGE flow on StyleSDF: same invert / render surface
            from e3dge.pipelines.stylesdf_pipeline import StyleSDFPipeline

            return StyleSDFPipeline(**models, aligner=spec.aligner, directions=directions, description=spec.description)  # type: ignore[return-value]
        return cls(**models, aligner=spec.aligner, directions=directions, description=spec.description)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``pipeline.json`` and one subfolder per component (config.json + model.safetensors)."""
        return save_bundle(save_directory, self.components, self.description, self.aligner, self.directions)

    # ------------------------------------------------------------------ inversion
    def _prepare(self, image, align: bool) -> tuple[np.ndarray, Any, list[str], str, torch.Tensor | None]:
        """(aligned pixels, transform, notes, source name, the aligner's camera or None)."""
        return prepare_image(image, align, self.aligner)

    def invert(
        self,
        image,
        *,
        align: bool = True,
        camera: torch.Tensor | tuple[float, float] | None = None,
        refine: str | None = None,
        steps: int | None = None,
        optimize: bool = False,
        progress: bool = False,
        local: bool = True,
    ) -> Inversion:
        """Invert a photo (path, PIL, numpy ``uint8 [H, W, 3]``, a tensor in [-1, 1], or an ``e3dge.faces.AlignedFace``).

        ``align``: crop with e3dge.faces (EG3D crop + camera); ``False`` for an already aligned square crop.
        ``camera``: a label ``[1, 25]`` or ``(yaw, pitch)`` radians; default: the aligner's, else E0's pose head.
        ``refine``: ``"pose"`` (P) or ``"pose+code"`` (P+C) test-time refinement for ``steps`` (default 50).
        ``optimize``: the optimisation baseline (W/W+ then PTI), for bundles without an encoder.
        ``local``: use the bundle's Stage II local branch (when it has one) for the reconstruction.
        """
        if refine is not None and refine not in REFINE_MODES:
            raise UserError(f"refine must be one of {REFINE_MODES} or None, got {refine!r}")
        if steps is not None and (not isinstance(steps, int) or not 1 <= steps <= 10000):
            raise UserError(f"steps must be an integer between 1 and 10000, got {steps!r}")
        if self.encoder is None and not optimize:
            raise UserError("this bundle has no encoder (E0); invert with optimize=True (the optimisation baseline, --optimize)")
        G, device = self.generator, self.device
        timings: dict[str, float] = {}
        t = time.perf_counter()
        aligned, transform, notes, source, aligner_camera = self._prepare(image, align)
        timings["align"] = time.perf_counter() - t
        target = to_model_input(aligned, G.img_resolution, device)
        yaw_pitch, camera_source = self._given_camera(camera)
        if yaw_pitch is None and aligner_camera is not None:
            yaw_pitch, camera_source = _yaw_pitch(aligner_camera), "aligner"
        curve: list[float] = []
        tuned = None
        if optimize:
            t = time.perf_counter()
            res = optimize_inversion(G, target, *(yaw_pitch or (0.0, 0.0)), w_steps=steps or 200, pti_steps=(steps or 200) // 2,
                                     criteria=self.criteria(), progress=progress)  # fmt: skip
            ws, (yaw, pitch), tuned, curve = res.ws, (res.yaw, res.pitch), res.generator, res.curve
            timings["optimize"] = time.perf_counter() - t
            method, camera_source = "optimization+pti", "optimized"
        else:
            t = time.perf_counter()
            with torch.no_grad():
                enc = self.encoder(target)
            timings["encode"] = time.perf_counter() - t
            ws = enc.ws
            if yaw_pitch is None:
                yaw_pitch, camera_source = (float(enc.pose[0, 0]), float(enc.pose[0, 1])), "encoder"
            yaw, pitch = yaw_pitch
            method = "e0"
            if refine is not None:
                res = refine_latent(G, ws, yaw, pitch, target, mode=refine, steps=steps or 50, criteria=self.criteria(), progress=progress)
                ws, yaw, pitch, curve = res.ws, res.yaw, res.pitch, res.curve
                timings["refine"] = res.time_s
                method = f"e0+{refine}"
        t = time.perf_counter()
        cam = label_from_yaw_pitch(yaw, pitch, device=device)
        with torch.no_grad():
            out = (tuned or G).synthesis(ws, cam, deterministic=True)
            if local and self.local_branch is not None and tuned is None:
                from e3dge.encoders.hybrid import ViewRender

                view = ViewRender(out.image_raw, out.depth, cam)
                hook = self.local_branch.colour_hook(target, view, view, self.local_branch.default_alignment)
                out = G.synthesis(ws, cam, planes=out.planes, deterministic=True, colour_hook=hook)
                method += "+local"
        timings["render"] = time.perf_counter() - t
        inv = Inversion(ws.detach(), cam, float(yaw), float(pitch), aligned, transform, to_uint8(out.image), out.depth[0, 0].cpu().numpy(),
                        out.mask[0, 0].cpu().numpy(), method, camera_source, timings, curve, notes, source, tuned)  # fmt: skip
        self.planes.put((inv.key, ()), out.planes.detach())
        return inv

    def from_latent(self, ws: torch.Tensor, yaw: float = 0.0, pitch: float = 0.0, source: str = "latent") -> Inversion:
        """An :class:`Inversion` for a known W+ code (e.g. a sampled face or another projector's result)."""
        G = self.generator
        if not isinstance(ws, torch.Tensor) or ws.shape != (1, G.num_ws, G.w_dim):
            raise UserError(f"ws must be a tensor [1, {G.num_ws}, {G.w_dim}], got {getattr(ws, 'shape', type(ws).__name__)}")
        t = time.perf_counter()
        cam = label_from_yaw_pitch(yaw, pitch, device=self.device)
        with torch.no_grad():
            out = G.synthesis(ws.to(self.device), cam, deterministic=True)
        recon = to_uint8(out.image)
        inv = Inversion(ws.detach(), cam, float(yaw), float(pitch), recon, None, recon, out.depth[0, 0].cpu().numpy(), out.mask[0, 0].cpu().numpy(),
                        "latent", "given", {"render": time.perf_counter() - t}, source=source)  # fmt: skip
        self.planes.put((inv.key, ()), out.planes.detach())
        return inv

    @staticmethod
    def _given_camera(camera) -> tuple[tuple[float, float] | None, str]:
        if camera is None:
            return None, ""
        if isinstance(camera, torch.Tensor):
            if camera.shape not in ((1, 25), (25,)):
                raise UserError(f"camera must be a label [1, 25] or (yaw, pitch) in radians, got a tensor of shape {list(camera.shape)}")
            return _yaw_pitch(camera.reshape(1, 25)), "given"
        if isinstance(camera, (tuple, list)) and len(camera) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in camera):
            return (float(camera[0]), float(camera[1])), "given"
        raise UserError(f"camera must be a label [1, 25] or (yaw, pitch) in radians, got {camera!r}")

    # ------------------------------------------------------------------ views
    def render(
        self,
        inversion: Inversion,
        yaw: float | None = None,
        pitch: float | None = None,
        edits: dict[str, float] | None = None,
        resolution: int | None = None,
        quality: str = "preview",
        local: bool = True,
    ) -> Render:
        """Render ``inversion`` at (yaw, pitch) radians (default: its own view); planes come from the cache when they can.

        With a Stage II local branch in the bundle (and ``local``), the view's colour is modulated by the
        input photo's pixel-aligned features: hybrid 2D/3D alignment at full quality (one extra raw render),
        3D alignment in previews.
        """
        check_render_args(quality, resolution, yaw, pitch)
        t = time.perf_counter()
        cached = self.planes.get((inversion.key, self._edited_ws(inversion, edits)[1])) is not None
        G, ws, planes = self.planes_for(inversion, edits)
        device = self.device
        cam = label_from_yaw_pitch(inversion.yaw if yaw is None else yaw, inversion.pitch if pitch is None else pitch, device=device)
        overrides, neural = self._quality(G, quality)
        with torch.no_grad():
            hook = self._local_hook(inversion, G, ws, planes, cam, overrides, quality) if local and self.local_branch is not None and inversion.generator is None else None
            out = G.synthesis(ws.to(device), cam, planes=planes, deterministic=True, neural_rendering_resolution=neural, rendering_overrides=overrides,
                              superresolution=quality == "full", colour_hook=hook)  # fmt: skip
            image = out.image
            if resolution is not None and resolution != image.shape[-1]:
                image = F.interpolate(image, size=(resolution, resolution), mode="bilinear", align_corners=False, antialias=resolution < image.shape[-1])
        return Render(to_uint8(image), out.depth[0, 0].cpu().numpy(), out.mask[0, 0].cpu().numpy(), cam.cpu(), time.perf_counter() - t, cached)

    def _local_hook(self, inversion: Inversion, G: TriPlaneGenerator, ws: torch.Tensor, planes: torch.Tensor, cam: torch.Tensor, overrides,
                    quality: str = "full"):  # fmt: skip
        """The local branch's colour hook for one view: the input view rendered from the unedited code (its residual is the photo's
        detail), the query view from the (edited) code; E_ADA moves the residual onto the query view (full quality; previews use the
        3D alignment alone, which needs no extra render)."""
        from e3dge.encoders.hybrid import ViewRender

        kw = dict(deterministic=True, rendering_overrides=overrides, superresolution=False)
        key = (inversion.key, tuple(sorted((overrides or {}).items())))
        ref = self.reference_views.get(key)  # the input view does not change while the user turns or edits the head
        if ref is None:
            _, ws0, planes0 = self.planes_for(inversion)
            out = G.synthesis(ws0.to(self.device), inversion.camera, planes=planes0, **kw)
            ref = ViewRender(out.image_raw, out.depth, inversion.camera)
            self.reference_views.put(key, ref)
        branch = self.local_branch
        alignment = branch.default_alignment if quality == "full" else PREVIEW_ALIGNMENT
        if alignment in ("2d", "hybrid"):  # E_ADA and the 2D branch need E0's render of the query view
            out = G.synthesis(ws.to(self.device), cam, planes=planes, **kw)
            query = ViewRender(out.image_raw, out.depth, cam)
        else:
            query = ViewRender(ref.image, ref.depth, cam)  # 3D alignment reads the input view only; the query camera places the points
        photo = to_model_input(inversion.aligned, G.img_resolution, self.device)
        return branch.colour_hook(photo, ref, query, alignment)

    def planes_for(self, inversion: Inversion, edits: dict[str, float] | None = None) -> tuple[TriPlaneGenerator, torch.Tensor, torch.Tensor]:
        """(generator, edited ws, tri-planes) of ``inversion`` with ``edits``; planes come from the cache when they can.

        The generator is the inversion's own PTI-tuned copy when it has one. Exporters (meshes, point
        clouds) query the field through these planes, so they never rerun the backbone for a cached face.
        """
        G = inversion.generator or self.generator
        ws, edit_key = self._edited_ws(inversion, edits)
        key = (inversion.key, edit_key)
        planes = self.planes.get(key)
        if planes is None:
            with torch.no_grad():
                planes = G.planes(ws.to(self.device))
            self.planes.put(key, planes)
        return G, ws, planes

    @staticmethod
    def _quality(G: TriPlaneGenerator, quality: str) -> tuple[dict[str, int] | None, int | None]:
        """Preview: half the ray samples and no super-resolution (the raw render, upsampled); full: the model's own."""
        if quality == "full":
            return None, None
        rk = G.rendering_kwargs
        samples = {"depth_resolution": max(8, rk["depth_resolution"] // 2), "depth_resolution_importance": max(0, rk["depth_resolution_importance"] // 2)}
        return samples, None

    def _edited_ws(self, inversion: Inversion, edits: dict[str, float] | None) -> tuple[torch.Tensor, tuple]:
        """``inversion.ws`` with the named editing directions applied, and a hashable key of the edits."""
        edits = {k: float(v) for k, v in (edits or {}).items() if float(v) != 0.0}
        if not edits:
            return inversion.ws, ()
        from e3dge.editing import apply_edits

        return apply_edits(inversion.ws, self.directions, edits), tuple(sorted(edits.items()))


def _yaw_pitch(label: torch.Tensor) -> tuple[float, float]:
    yaw, pitch = yaw_pitch_from_label(label.float().cpu())
    return float(yaw[0]), float(pitch[0])


def _load_component(slot: str, comp: ComponentSpec, root: Path | None, local_files_only: bool | None, device) -> torch.nn.Module:
    """Build one component from its bundle subfolder, a known checkpoint name or another Hub repo."""
    cls = component_class(comp.cls)
    if comp.source is not None:
        source = comp.source
    elif comp.repo is not None:
        source = comp.repo
    else:
        if root is None:
            raise BundleError(f"component {slot!r} names a subfolder but the bundle has no folder")
        source = str(check_component_folder(root, comp, slot))
    kwargs = {"revision": comp.revision} if comp.revision else {}
    return cls.from_pretrained(source, local_files_only=local_files_only, device=device, **kwargs)
