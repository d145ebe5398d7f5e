"""``InversionPipeline``: one photo in, an editable 3D face out, on any backbone (diffusers-style: components + glue, no math).

The pipeline registers its components (the 3D GAN, E0 with its pose head or the backbone's pose estimator, the
slots of Stage II's local branch, the face aligner's options, editing directions), loads and saves them as a
bundle (:mod:`e3dge.inversion.bundle`), and strings them together through two interfaces, so it never branches
on the backbone it holds:

- the :class:`~e3dge.backbones.base.Backbone` adapter of the generator (latent layout, scene, render, field, PTI);
- the :class:`~e3dge.encoders.flows.EncoderFlow` that attaches E0 and the local branch to that backbone.

:meth:`InversionPipeline.invert`: align (e3dge.faces) -> E0 -> optional refinement (P / P+C) or the optimisation
baseline (W/W+ then PTI on a private copy) -> an :class:`Inversion`. :meth:`InversionPipeline.render`: any view,
with edits and the local branch. Scenes (EG3D tri-planes) and reference views are cached under keys derived from
their content (latent, crop, camera, edits, the generator's weights), so a changed latent never meets a stale scene.
Models are only read, so one pipeline can serve many users from many threads.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from e3dge.backbones.base import QUALITIES, Backbone, Quality, View, content_hash, module_hash
from e3dge.backbones.registry import backbone_for, bundle_slots
from e3dge.core.cameras import Camera, yaw_pitch_from_label
from e3dge.core.errors import UserError
from e3dge.core.files import write_json
from e3dge.core.hub import hub_snapshot
from e3dge.core.images import resize_square, to_uint8
from e3dge.core.precision import Precision, autocast, check_precision
from e3dge.editing.direction import apply_edits, check_edits
from e3dge.editing.files import load_directions, save_directions
from e3dge.encoders.flows import EncoderFlow, LocalSlots, encoder_flow
from e3dge.faces.api import AlignedFace, align_face
from e3dge.faces.io import load_image
from e3dge.inversion.bundle import (
    PIPELINE_FILE,
    BundleError,
    BundleSpec,
    ComponentSpec,
    check_component_folder,
    component_class,
    resolve_bundle,
)
from e3dge.inversion.optimize import optimize_inversion
from e3dge.inversion.refine import REFINE_MODES, Criteria, RefineMode, refine_latent
from e3dge.metrics.loaders import make_identity, make_lpips

__all__ = [
    "Inversion",
    "Render",
    "InversionPipeline",
    "QUALITIES",
    "Method",
    "CameraSource",
    "prepare_image",
    "check_render_args",
    "save_bundle",
    "given_camera",
]

Method = Literal[
    "e0", "e0+pose", "e0+pose+code", "e0+local", "e0+pose+local", "e0+pose+code+local", "optimization+pti", "latent"
]
CameraSource = Literal["aligner", "encoder", "given", "optimized"]
MAX_RENDER_RESOLUTION = 2048
DEFAULT_VARIANT = "default"


@dataclass(frozen=True, kw_only=True)
class Inversion:
    """An inverted face: latent, camera, the aligned input and its way back to the photo, and the reconstruction."""

    ws: torch.Tensor  # [1, num_ws, w_dim] the backbone's (packed) W+ code
    camera: torch.Tensor  # [1, 25] label of the input view
    yaw: float  # radians, 0 = frontal (camera offsets, as e3dge.core.cameras)
    pitch: float
    aligned: np.ndarray  # uint8 [S, S, 3]: what the encoder saw
    transform: Any  # e3dge.faces.AlignTransform photo -> aligned (None when align=False)
    reconstruction: np.ndarray  # uint8 [R, R, 3] rendered at the input camera
    depth: np.ndarray  # float32 [r, r] distance along the ray
    mask: np.ndarray  # float32 [r, r] accumulated opacity
    method: Method
    camera_source: CameraSource
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    loss_curve: list[float] = field(default_factory=list)  # refinement / optimisation loss per step
    notes: list[str] = field(default_factory=list)
    source: str = ""
    backbone_name: str = "eg3d"
    variant: str = DEFAULT_VARIANT  # which generator of the bundle ("toonify" for the Toonify pair)
    tuned: Backbone | None = field(default=None, repr=False)  # PTI-tuned private backbone of this inversion

    @property
    def degrees(self) -> tuple[float, float]:
        """(yaw, pitch) in degrees."""
        return math.degrees(self.yaw), math.degrees(self.pitch)

    @cached_property
    def key(self) -> str:
        """A digest of what a render of this inversion depends on: latent, camera, crop, generator (never object identity)."""
        return content_hash(
            self.ws,
            float(self.yaw),
            float(self.pitch),
            self.aligned,
            self.variant,
            self.tuned.identity if self.tuned else "",
        )

    def summary(self) -> dict[str, Any]:
        """JSON-friendly: camera, pose, method, timings, latent (as nested lists)."""
        return {
            "source": self.source,
            "backbone": self.backbone_name,
            "generator": self.variant,
            "method": self.method,
            "camera_source": self.camera_source,
            "yaw_deg": round(self.degrees[0], 3),
            "pitch_deg": round(self.degrees[1], 3),
            "camera_label": [round(float(v), 6) for v in self.camera[0]],
            "timings_s": {k: round(v, 4) for k, v in self.timings.items()},
            "loss_curve": [round(v, 6) for v in self.loss_curve],
            "notes": list(self.notes),
            "transform": self.transform.to_dict() if self.transform is not None else None,
            "ws_shape": list(self.ws.shape),
            "ws": self.ws[0].tolist(),
        }


@dataclass(frozen=True, kw_only=True)
class Render:
    """One view of an inversion."""

    image: np.ndarray  # uint8 [R, R, 3]
    depth: np.ndarray  # float32 [r, r] distance along the ray
    mask: np.ndarray  # float32 [r, r]
    camera: torch.Tensor  # [1, 25]
    time_s: float
    cached_planes: bool  # the scene came from the cache (the backbone's latent-only part did not run)


@dataclass(frozen=True)
class Variant:
    """One generator of a bundle with the flow that attaches its encoders (``default``, or ``toonify`` for the Toonify pair)."""

    backbone: Backbone
    flow: EncoderFlow


@torch.no_grad()
def prepare_image(
    image, align: bool, aligner: dict[str, Any]
) -> tuple[np.ndarray, Any, list[str], str, torch.Tensor | None]:
    """(aligned pixels, transform, notes, source name, the aligner's camera or None) of any supported image input."""
    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu()
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 3 or x.shape[0] != 3:
            raise UserError(f"a tensor image must be [3, H, W] or [1, 3, H, W] in [-1, 1], got {list(image.shape)}")
        image = to_uint8(x)
    if isinstance(image, AlignedFace):  # aligned already (e.g. an app showing the crop first): one path, same camera
        return image.image, image.transform, list(image.notes), image.source.name, image.label
    if align:
        face = align_face(image, convention=aligner.get("convention", "eg3d"), detector=aligner.get("detector", "hog"))
        return face.image, face.transform, list(face.notes), face.source.name, face.label
    loaded = load_image(image)
    h, w = loaded.pixels.shape[:2]
    if h != w:
        raise UserError(
            f"{loaded.name}: align=False needs a square, already aligned crop, got {w}x{h}; use align=True for a photo"
        )
    return loaded.pixels, None, list(loaded.notes), loaded.name, None


def check_render_args(quality: Quality, resolution: int | None, yaw: float | None, pitch: float | None) -> None:
    """One-line errors for a render request's quality, output size and angles (every pipeline checks the same way)."""
    if quality not in QUALITIES:
        raise UserError(f"quality must be one of {QUALITIES}, got {quality!r}")
    if resolution is not None and (not isinstance(resolution, int) or not 16 <= resolution <= MAX_RENDER_RESOLUTION):
        raise UserError(f"resolution must be an integer between 16 and {MAX_RENDER_RESOLUTION}, got {resolution!r}")
    for name, value in (("yaw", yaw), ("pitch", pitch)):
        if value is not None and (
            not isinstance(value, (int, float)) or not math.isfinite(value) or abs(value) > math.pi
        ):
            raise UserError(f"{name} must be a number of radians in [-pi, pi], got {value!r}")


def save_bundle(
    save_directory: str | os.PathLike,
    components: dict[str, torch.nn.Module],
    description: str,
    aligner: dict[str, Any],
    directions: dict[str, Any] | None,
) -> Path:
    """Write ``pipeline.json`` (atomically) and one subfolder per component, plus the editing directions when there are any."""
    out = Path(save_directory)
    out.mkdir(parents=True, exist_ok=True)
    comps = {}
    for slot, module in components.items():
        module.save_pretrained(out / slot)
        comps[slot] = ComponentSpec(type(module).__name__, subfolder=slot)
    spec = BundleSpec(comps, description, aligner)
    if directions:
        save_directions(out / "directions", directions)
        spec.directions = "directions"
    write_json(out / PIPELINE_FILE, spec.to_dict())
    return out


class PlaneCache:
    """A thread-safe LRU of per-face values (scenes, reference views) under content-derived keys."""

    def __init__(self, capacity: int = 32) -> None:
        self.capacity, self._lock, self._items = capacity, threading.Lock(), OrderedDict()

    def get(self, key) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


def _at_precision(method):
    """Run a pipeline method under its precision's autocast (a no-op for fp32)."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with autocast(self.device, self.precision):
            return method(self, *args, **kwargs)

    return run


class InversionPipeline:
    """Registered components + glue: :meth:`invert` a photo, :meth:`render` any view of the result, on any backbone."""

    def __init__(
        self,
        generator: torch.nn.Module,
        encoder: torch.nn.Module | None = None,
        local_encoder: torch.nn.Module | None = None,  # Stage II slot (E1)
        aligner_2d: torch.nn.Module | None = None,  # Stage II slot (E_ADA)
        fusion: torch.nn.Module | None = None,  # Stage II slot
        pose_estimator: torch.nn.Module | None = None,  # StyleSDF: the official volume discriminator
        latent_mean: torch.nn.Module | None = None,  # StyleSDF: the fixed mean latents
        toonify_generator: torch.nn.Module | None = None,  # the Toonify pair: a second generator, encoder and mean
        toonify_encoder: torch.nn.Module | None = None,
        toonify_latent_mean: torch.nn.Module | None = None,
        aligner: dict[str, Any] | None = None,  # e3dge.faces options: convention, detector
        directions: dict[str, Any] | None = None,  # editing directions by name
        description: str = "",
        plane_cache_size: int = 32,
        precision: Precision = "fp32",  # "bf16": bfloat16 autocast (faster, changes results; see e3dge.core.precision)
    ) -> None:
        self.precision = check_precision(precision)
        self._slots = dict(
            generator=generator,
            encoder=encoder,
            local_encoder=local_encoder,
            aligner_2d=aligner_2d,
            fusion=fusion,
            pose_estimator=pose_estimator,
            latent_mean=latent_mean,
            toonify_generator=toonify_generator,
            toonify_encoder=toonify_encoder,
            toonify_latent_mean=toonify_latent_mean,
        )
        for module in self._slots.values():
            if module is not None:
                module.eval().requires_grad_(False)
        self.backbone = backbone_for(generator, latent_mean)
        extra = sorted(k for k, v in self._slots.items() if v is not None and k not in self.backbone.bundle_slots)
        if extra:
            raise UserError(
                f"components {extra} do not belong to a {self.backbone.name} pipeline (its slots: {', '.join(self.backbone.bundle_slots)})"
            )
        local = LocalSlots(local_encoder, aligner_2d, fusion)
        self._variants = {
            DEFAULT_VARIANT: Variant(self.backbone, encoder_flow(self.backbone, encoder, pose_estimator, local))
        }
        if (
            toonify_generator is not None and toonify_encoder is not None
        ):  # the Toonify pair has no local branch, as released
            toon = backbone_for(toonify_generator, toonify_latent_mean)
            self._variants["toonify"] = Variant(toon, encoder_flow(toon, toonify_encoder, pose_estimator, LocalSlots()))
        self.flow = self._variants[DEFAULT_VARIANT].flow
        self.generator, self.encoder = generator, encoder
        self.local_encoder, self.aligner_2d, self.fusion = local_encoder, aligner_2d, fusion
        self.aligner = dict(aligner or {"convention": "eg3d", "detector": "hog"})
        self.directions = dict(directions or {})
        for name, d in self.directions.items():
            if d.w_dim != self.backbone.layout.w_dim:
                raise UserError(
                    f"direction {name!r} is {d.w_dim}-d, but this {self.backbone.name} latent is {self.backbone.layout.w_dim}-d per W+ row"
                )
        self.description = description
        self.scenes = PlaneCache(plane_cache_size)  # (generator, edited latent) -> scene
        self.references = PlaneCache(plane_cache_size)  # (inversion, quality, edits) -> the local branch's input view
        self._criteria: Criteria | None = None
        self._criteria_lock = threading.Lock()

    # ------------------------------------------------------------------ bundles
    @property
    def components(self) -> dict[str, torch.nn.Module]:
        """The registered model components (slots left empty are omitted)."""
        return {k: v for k, v in self._slots.items() if v is not None}

    @functools.cached_property
    def identity(self) -> str:
        """A hash of every component's class, configuration and weights and of the directions (which results a saved
        output may be reused for); a bf16 pipeline's results are not an fp32 pipeline's."""
        parts = [(slot, module_hash(m)) for slot, m in sorted(self.components.items())]
        directions = [(n, d.vector) for n, d in sorted(self.directions.items())]
        precision = [] if self.precision == "fp32" else [("precision", self.precision)]
        return content_hash(*parts, *(x for pair in directions for x in pair), *precision)

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    @property
    def generators(self) -> tuple[str, ...]:
        """The generators this bundle inverts with: ``default``, and ``toonify`` when it holds the Toonify pair."""
        return tuple(self._variants)

    @property
    def local_branch(self):
        """The local-branch modules as the default flow runs them (None without Stage II)."""
        return self.flow.branch

    @property
    def supports_local(self) -> bool:
        return self.flow.has_local

    def criteria(self) -> Criteria:
        """LPIPS / ArcFace ID for refinement and optimisation when their weights are installed (loaded once; else off with a warning)."""
        with self._criteria_lock:
            if self._criteria is None:
                with warnings.catch_warnings():  # their long "where to put the weights" texts: one short line instead
                    warnings.simplefilter("ignore")
                    self._criteria = Criteria(make_lpips("alex", self.device), make_identity("arcface", self.device))
                off = [
                    name
                    for name, c in (("LPIPS", self._criteria.lpips), ("ArcFace ID", self._criteria.identity))
                    if c is None
                ]
                if off:
                    warnings.warn(
                        f"refinement uses pixel losses only: {' and '.join(off)} weights are not installed (README: Encoders and metrics)",
                        stacklevel=3,
                    )
            return self._criteria

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike = "toy",
        revision: str | None = None,
        local_files_only: bool | None = None,
        device: str | torch.device = "cpu",
        precision: Precision = "fp32",
    ) -> InversionPipeline:
        """A known bundle (``"toy"``, ``"eg3d-ffhq"``), a local bundle folder or a Hub repo holding ``pipeline.json``;
        ``precision="bf16"`` runs it under bfloat16 autocast."""
        check_precision(precision)
        spec, root = resolve_bundle(name_or_path, revision=revision, local_files_only=local_files_only)
        generator_class = spec.components["generator"].cls
        extra = sorted(set(spec.components) - set(bundle_slots(generator_class)))
        if extra:
            raise BundleError(
                f"{name_or_path}: components {extra} do not belong to a bundle whose generator is a {generator_class}"
            )
        models = {
            slot: _load_component(slot, comp, root, local_files_only, device) for slot, comp in spec.components.items()
        }
        directions = None
        if spec.directions is not None and root is not None:
            directions = load_directions(
                check_component_folder(root, ComponentSpec(generator_class, subfolder=spec.directions), "directions")
            )
        return cls(
            **models, aligner=spec.aligner, directions=directions, description=spec.description, precision=precision
        )

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``pipeline.json`` and one subfolder per component (config.json + model.safetensors)."""
        return save_bundle(save_directory, self.components, self.description, self.aligner, self.directions)

    def variant(self, name: str = DEFAULT_VARIANT) -> Variant:
        """The generator ``name`` of this bundle with its flow; a one-line error naming the ones it has."""
        if name not in self._variants:
            hint = " (convert the Toonify pair with e3dge convert e3dge --toonify ...)" if name == "toonify" else ""
            raise UserError(f"generator={name!r} is not in this bundle; it has {', '.join(self._variants)}{hint}")
        return self._variants[name]

    def _of(self, inversion: Inversion) -> tuple[Backbone, EncoderFlow]:
        """The backbone that renders ``inversion`` (its PTI copy when it has one) and the flow of its generator."""
        v = self.variant(inversion.variant)
        return inversion.tuned or v.backbone, v.flow

    # ------------------------------------------------------------------ inversion
    @_at_precision
    def invert(
        self,
        image,
        *,
        align: bool = True,
        camera: torch.Tensor | tuple[float, float] | None = None,
        refine: RefineMode | None = None,
        steps: int | None = None,
        optimize: bool = False,
        progress: bool = False,
        local: bool = True,
        generator: str = DEFAULT_VARIANT,
    ) -> Inversion:
        """Invert a photo (path, PIL, numpy ``uint8 [H, W, 3]``, a tensor in [-1, 1], or an ``e3dge.faces.AlignedFace``).

        ``align``: crop with e3dge.faces (the bundle's crop convention + camera); ``False`` for an already aligned square crop.
        ``camera``: a label ``[1, 25]`` or ``(yaw, pitch)`` radians; default: the aligner's (EG3D) or the pose estimator's.
        ``refine``: ``"pose"`` (P) or ``"pose+code"`` (P+C) test-time refinement for ``steps`` (default 50).
        ``optimize``: the optimisation baseline (W/W+ then PTI on a private copy), e.g. for bundles without an encoder.
        ``local``: use the bundle's Stage II local branch (when it has one) for the reconstruction.
        ``generator``: ``"toonify"`` inverts with the bundle's Toonify pair.
        """
        if refine is not None and refine not in REFINE_MODES:
            raise UserError(f"refine must be one of {REFINE_MODES} or None, got {refine!r}")
        if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 10000):
            raise UserError(f"steps must be an integer between 1 and 10000, got {steps!r}")
        if refine is not None and optimize:
            raise UserError("choose refine (starts from E0) or optimize (starts from the mean latent), not both")
        v = self.variant(generator)
        backbone, flow = v.backbone, v.flow
        if not flow.has_encoder and not optimize:
            raise UserError(
                "this bundle has no encoder (E0) yet; invert with optimize=True (the optimisation baseline, --optimize)"
                + (
                    " or convert an official E3DGE runner into it (e3dge convert e3dge RUNNER.pt BUNDLE)"
                    if backbone.name == "stylesdf"
                    else ""
                )
            )
        timings: dict[str, float] = {}
        t = time.perf_counter()
        aligned, transform, notes, source, aligner_camera = prepare_image(image, align, self.aligner)
        timings["align"] = time.perf_counter() - t
        photo = backbone.photo(aligned)
        yaw_pitch, camera_source = given_camera(camera)
        if yaw_pitch is None and aligner_camera is not None and flow.camera_prior == "aligner":
            yaw_pitch, camera_source = _yaw_pitch(aligner_camera), "aligner"
        curve: list[float] = []
        tuned = None
        if optimize:
            if yaw_pitch is None and aligner_camera is not None:
                yaw_pitch = _yaw_pitch(aligner_camera)
            t = time.perf_counter()
            res = optimize_inversion(
                backbone,
                photo,
                *(yaw_pitch or (0.0, 0.0)),
                w_steps=steps or 200,
                pti_steps=(steps or 200) // 2,
                criteria=self.criteria(),
                progress=progress,
            )
            ws, (yaw, pitch), tuned, curve = res.ws, (res.yaw, res.pitch), res.backbone, res.curve
            timings["optimize"] = time.perf_counter() - t
            method, camera_source = "optimization+pti", "optimized"
        else:
            t = time.perf_counter()
            with torch.no_grad():
                enc = flow.encode(photo)
            timings["encode"] = time.perf_counter() - t
            ws = enc.ws
            if yaw_pitch is None:
                yaw_pitch, camera_source = (enc.yaw, enc.pitch), "encoder"
            yaw, pitch = yaw_pitch
            method = "e0"
            if refine is not None:
                res = refine_latent(
                    backbone,
                    ws,
                    yaw,
                    pitch,
                    photo,
                    mode=refine,
                    steps=steps or 50,
                    criteria=self.criteria(),
                    progress=progress,
                )
                ws, yaw, pitch, curve = res.ws, res.yaw, res.pitch, res.curve
                timings["refine"] = res.time_s
                method = f"e0+{refine}"
        t = time.perf_counter()
        model = tuned or backbone
        ws = ws.detach().float()  # the code is kept at full precision, also when E0 ran under autocast
        cam = model.camera(yaw, pitch)
        with torch.no_grad():
            scene = model.scene(ws)
            if local and tuned is None and flow.uses_local("full"):
                reference = flow.reference(photo, ws, cam, "full")
                view = flow.render(reference, photo, ws, scene, cam, "full")
                method += "+local"
            else:
                reference, view = None, model.render(ws, scene, cam, "full")
        timings["render"] = time.perf_counter() - t
        inv = Inversion(
            ws=ws,
            camera=cam.label.detach(),
            yaw=float(yaw),
            pitch=float(pitch),
            aligned=aligned,
            transform=transform,
            reconstruction=to_uint8(view.image),
            depth=_numpy(view.depth),
            mask=_numpy(view.mask),
            method=method,
            camera_source=camera_source,
            timings=timings,
            loss_curve=curve,
            notes=notes,
            source=source,
            backbone_name=model.name,
            variant=generator,
            tuned=tuned,
        )
        self.scenes.put(self._scene_key(model, ws), _detached(scene))
        if reference is not None:
            self.references.put(self._reference_key(inv, flow, "full", ws), flow.without_cache_payload(reference))
        return inv

    def from_latent(
        self,
        ws: torch.Tensor,
        yaw: float = 0.0,
        pitch: float = 0.0,
        source: str = "latent",
        generator: str = DEFAULT_VARIANT,
    ) -> Inversion:
        """An :class:`Inversion` for a known W+ code (e.g. a sampled face or another projector's result)."""
        backbone = self.variant(generator).backbone
        try:
            backbone.layout.check(ws)
        except ValueError as err:
            raise UserError(str(err)) from None
        if ws.shape[0] != 1:
            raise UserError(
                f"ws must hold one face [1, {backbone.layout.num_ws}, {backbone.layout.w_dim}], got {list(ws.shape)}"
            )
        t = time.perf_counter()
        cam = backbone.camera(yaw, pitch)
        ws = ws.detach().to(self.device, torch.float32)
        with torch.no_grad():
            scene = backbone.scene(ws)
            view = backbone.render(ws, scene, cam, "full")
        recon = to_uint8(view.image)
        inv = Inversion(
            ws=ws,
            camera=cam.label,
            yaw=float(yaw),
            pitch=float(pitch),
            aligned=recon,
            transform=None,
            reconstruction=recon,
            depth=_numpy(view.depth),
            mask=_numpy(view.mask),
            method="latent",
            camera_source="given",
            timings={"render": time.perf_counter() - t},
            source=source,
            backbone_name=backbone.name,
            variant=generator,
        )
        self.scenes.put(self._scene_key(backbone, ws), _detached(scene))
        return inv

    # ------------------------------------------------------------------ views
    @_at_precision
    def render(
        self,
        inversion: Inversion,
        yaw: float | None = None,
        pitch: float | None = None,
        edits: dict[str, float] | None = None,
        resolution: int | None = None,
        quality: Quality = "preview",
        local: bool = True,
    ) -> Render:
        """Render ``inversion`` at (yaw, pitch) radians (default: its own view) with ``edits``; scenes come from the cache when they can.

        With a Stage II local branch in the bundle (and ``local``), the view's colour is modulated by the input photo's
        pixel-aligned features (each backbone's official flow: EG3D hybrid at full quality, 3D alignment in previews;
        StyleSDF at full quality).
        """
        check_render_args(quality, resolution, yaw, pitch)
        t = time.perf_counter()
        backbone, flow = self._of(inversion)
        ws = self.edited_latent(inversion, edits)
        scene, cached = self._scene(backbone, ws)
        cam = backbone.camera(inversion.yaw if yaw is None else yaw, inversion.pitch if pitch is None else pitch)
        with torch.no_grad():
            if local and inversion.tuned is None and flow.uses_local(quality):
                photo = backbone.photo(inversion.aligned)
                reference = self._reference(inversion, flow, photo, quality, ws)
                view = flow.render(reference, photo, ws, scene, cam, quality)
            else:
                view = backbone.render(ws, scene, cam, quality)
            image = view.image if resolution is None else resize_square(view.image, resolution)
        return Render(
            image=to_uint8(image),
            depth=_numpy(view.depth),
            mask=_numpy(view.mask),
            camera=cam.label.detach().cpu(),
            time_s=time.perf_counter() - t,
            cached_planes=cached,
        )

    @_at_precision
    def render_view(
        self,
        inversion: Inversion,
        camera: Camera,
        edits: dict[str, float] | None = None,
        quality: Quality = "full",
        decode: bool = True,
    ) -> View:
        """The raw tensors of one view without the local branch (exporters: depth, masks, colours)."""
        backbone, _ = self._of(inversion)
        ws = self.edited_latent(inversion, edits)
        scene, _ = self._scene(backbone, ws)
        with torch.no_grad():
            return backbone.render(ws, scene, camera, quality, decode=decode)

    def scene_for(
        self, inversion: Inversion, edits: dict[str, float] | None = None
    ) -> tuple[Backbone, torch.Tensor, Any]:
        """(backbone, edited ws, scene) of ``inversion`` with ``edits``; exporters query the field through them."""
        backbone, _ = self._of(inversion)
        ws = self.edited_latent(inversion, edits)
        return backbone, ws, self._scene(backbone, ws)[0]

    def edited_latent(self, inversion: Inversion, edits: dict[str, float] | None) -> torch.Tensor:
        """``inversion.ws`` with the named editing directions applied (unknown names: a one-line error)."""
        edits = {k: v for k, v in check_edits(edits).items() if v != 0.0}
        ws = inversion.ws.to(self.device)
        return apply_edits(ws, self.directions, edits) if edits else ws

    def _scene_key(self, backbone: Backbone, ws: torch.Tensor) -> tuple[str, str]:
        return backbone.identity, content_hash(ws)

    def _scene(self, backbone: Backbone, ws: torch.Tensor) -> tuple[Any, bool]:
        key = self._scene_key(backbone, ws)
        scene = self.scenes.get(key)
        if scene is not None:
            return scene, True
        with torch.no_grad():
            scene = backbone.scene(ws)
        self.scenes.put(key, scene)
        return scene, False

    def _reference_key(
        self, inversion: Inversion, flow: EncoderFlow, quality: Quality, edited_ws: torch.Tensor
    ) -> tuple[str, ...]:
        edited = content_hash(edited_ws) if flow.edits_move_reference else ""
        return flow.backbone.identity, inversion.key, quality, edited

    def _reference(
        self, inversion: Inversion, flow: EncoderFlow, photo: torch.Tensor, quality: Quality, edited_ws: torch.Tensor
    ):
        """The local branch's input view for ``inversion`` (cached: it does not change while the head turns)."""
        key = self._reference_key(inversion, flow, quality, edited_ws)
        reference = self.references.get(key)
        if reference is None:
            ws = inversion.ws.to(self.device)
            moved = flow.edits_move_reference and not torch.equal(edited_ws, ws)
            reference = flow.reference(
                photo, ws, flow.backbone.camera(inversion.yaw, inversion.pitch), quality, edited_ws if moved else None
            )
            reference = flow.without_cache_payload(reference)
            self.references.put(key, reference)
        return reference


def given_camera(camera) -> tuple[tuple[float, float] | None, str]:
    """(yaw, pitch) radians and ``"given"`` from ``(yaw, pitch)`` or a label ``[1, 25]`` (e.g. a video aligner's); ``(None, "")`` for None."""
    if camera is None:
        return None, ""
    if isinstance(camera, torch.Tensor):
        if tuple(camera.shape) not in ((1, 25), (25,)):
            raise UserError(
                f"camera must be a label [1, 25] or (yaw, pitch) in radians, got a tensor of shape {list(camera.shape)}"
            )
        if not bool(torch.isfinite(camera).all()):
            raise UserError("camera label holds NaN or infinite values; give a finite label [1, 25] or (yaw, pitch)")
        return _yaw_pitch(camera.reshape(1, 25)), "given"
    if (
        isinstance(camera, (tuple, list))
        and len(camera) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in camera)
    ):
        return (float(camera[0]), float(camera[1])), "given"
    raise UserError(f"camera must be a label [1, 25] or (yaw, pitch) in radians, got {camera!r}")


def _yaw_pitch(label: torch.Tensor) -> tuple[float, float]:
    yaw, pitch = yaw_pitch_from_label(label.float().cpu())
    return float(yaw[0]), float(pitch[0])


def _numpy(x: torch.Tensor) -> np.ndarray:
    """``[1, 1, r, r]`` -> float32 ``[r, r]`` on the CPU."""
    return x[0, 0].detach().float().cpu().numpy()


def _detached(scene: Any) -> Any:
    return scene.detach() if isinstance(scene, torch.Tensor) else scene


def _load_component(
    slot: str, comp: ComponentSpec, root: Path | None, local_files_only: bool | None, device
) -> torch.nn.Module:
    """Build one component from its bundle subfolder, a known checkpoint name or another Hub repo."""
    cls = component_class(comp.cls)
    if comp.source is not None:
        source = comp.source
    elif comp.repo is not None:  # always from the Hub (its cache), never a local folder of the same name
        source = str(hub_snapshot(comp.repo, comp.revision, local_files_only))
    else:
        if root is None:
            raise BundleError(f"component {slot!r} names a subfolder but the bundle has no folder")
        source = str(check_component_folder(root, comp, slot))
    kwargs = {"revision": comp.revision} if comp.revision and comp.repo is None else {}
    return cls.from_pretrained(source, local_files_only=local_files_only, device=device, **kwargs)
