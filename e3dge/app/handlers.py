"""The app's logic as plain functions: numpy / PIL / file paths in and out, per-visitor state passed explicitly.

Nothing here imports Gradio, so tests, notebooks and other front ends call the same code. The
models are shared (cached per bundle and device); a visitor's own data lives in :class:`AppState`,
which the UI keeps in ``gr.State``. Files for download go to a fresh folder per call, so visitors
never see each other's files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from e3dge.app.models import get_pipeline
from e3dge.backbones.base import Quality
from e3dge.core.errors import UserError
from e3dge.core.files import write_json
from e3dge.editing.direction import check_edits
from e3dge.export import MeshOptions, depth_surface_figure, extract_mesh, save_mesh
from e3dge.faces import align_face
from e3dge.faces.io import load_image
from e3dge.inversion.bundle import PIPELINE_FILE, BundleError, read_bundle_spec
from e3dge.inversion.outputs import orbit_angles, write_video

__all__ = [
    "AppState",
    "Alignment",
    "InversionResult",
    "align_photo",
    "has_toonify",
    "invert_photo",
    "refine",
    "render_view",
    "mesh_file",
    "depth_figure",
    "orbit_video",
    "result_json",
    "direction_sliders",
    "SMALL_FACE_PX",
    "MAX_SLIDERS",
]

SMALL_FACE_PX = 128
"""Faces narrower than this in the photo are upscaled a lot: the app warns that details will be invented."""
MAX_SLIDERS = 16
"""Editing sliders the UI keeps; a bundle's directions fill them in order, the rest are hidden."""
ROLL_WARN_DEG = 15.0


@dataclass
class AppState:
    """One visitor's data: which bundle, and their current inversion (planes live in the pipeline's cache)."""

    bundle: str = "toy"
    inversion: object | None = None  # e3dge.inversion.Inversion


@dataclass
class Alignment:
    """Step 1: the crop a model will see, with landmarks drawn, its pose and anything the visitor should know."""

    face: object | None  # e3dge.faces.AlignedFace, or None for an already aligned crop
    preview: np.ndarray  # uint8 crop with landmarks
    yaw_deg: float | None
    pitch_deg: float | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class InversionResult:
    """Step 2: the state with the new inversion, the model's input and its reconstruction."""

    state: AppState
    aligned: np.ndarray
    reconstruction: np.ndarray
    message: str


def _draw_landmarks(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The crop with its 68 landmarks as small dots."""

    pic = Image.fromarray(image)
    draw = ImageDraw.Draw(pic)
    r = max(1, image.shape[0] // 200)
    for x, y in np.asarray(landmarks, dtype=np.float64):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(0, 255, 120))
    return np.asarray(pic)


def align_photo(photo: str | Path | np.ndarray, bundle: str, skip_alignment: bool = False) -> Alignment:
    """Align a photo with the bundle's aligner settings (or take it as an aligned crop); say what looks wrong."""
    if photo is None:
        raise UserError("upload a photo first (or pick an example)")
    pipe = get_pipeline(bundle)
    if skip_alignment:
        loaded = load_image(photo)
        h, w = loaded.pixels.shape[:2]
        if h != w:
            raise UserError(
                f"an aligned crop must be square, this image is {w}x{h}: untick 'already aligned' to crop the face"
            )
        return Alignment(None, loaded.pixels, None, None, list(loaded.notes))

    face = align_face(
        photo, convention=pipe.aligner.get("convention", "eg3d"), detector=pipe.aligner.get("detector", "hog")
    )
    yaw, pitch, roll = face.pose.degrees
    warnings = list(face.notes)
    if face.face.size < SMALL_FACE_PX:
        warnings.append(
            f"the face is small ({face.face.size:.0f} px wide): the crop is upscaled, so fine detail will be invented"
        )
    if abs(roll) > ROLL_WARN_DEG:
        warnings.append(f"the head is tilted by {roll:.0f} degrees: the crop straightens it")
    return Alignment(face, _draw_landmarks(face.image, face.landmarks), float(yaw), float(pitch), warnings)


def has_toonify(bundle: str) -> bool:
    """Whether a bundle folder holds the Toonify pair (read from its pipeline.json; nothing is loaded or downloaded)."""

    path = Path(str(bundle)).expanduser() / PIPELINE_FILE
    try:
        return path.is_file() and "toonify_generator" in read_bundle_spec(path).components
    except BundleError:
        return False


def invert_photo(state: AppState, alignment: Alignment, bundle: str, toonify: bool = False) -> InversionResult:
    """Step 2: invert the aligned face (E0, or the optimisation baseline for a bundle without an encoder); ``toonify``: the Toonify pair."""
    pipe = get_pipeline(bundle)
    image = alignment.face if alignment.face is not None else alignment.preview
    extra = {"generator": "toonify"} if toonify else {}
    if toonify and "toonify" not in pipe.generators:
        raise UserError(
            "this model has no Toonify generator; convert one into a StyleSDF bundle (e3dge convert e3dge --toonify ...)"
        )
    inv = pipe.invert(image, align=False, optimize=pipe.encoder is None, **extra)
    yaw, pitch = inv.degrees
    total = sum(inv.timings.values())
    msg = f"{inv.method}: yaw {yaw:+.1f} deg, pitch {pitch:+.1f} deg ({inv.camera_source} camera), {total:.2f} s"
    return InversionResult(AppState(bundle, inv), inv.aligned, inv.reconstruction, msg)


def refine(state: AppState, steps: int = 50, progress: bool = True) -> InversionResult:
    """Test-time refinement P+C (paper Sec. 4.4) of the visitor's inversion, from the aligned input."""
    inv = _inversion(state)
    pipe = get_pipeline(state.bundle)
    camera = (inv.yaw, inv.pitch) if inv.camera_source in ("aligner", "given") else None
    new = pipe.invert(inv.aligned, align=False, camera=camera, refine="pose+code", steps=steps, progress=progress)
    new = _with_transform(new, inv)
    loss = (
        f"loss {new.loss_curve[0]:.4f} -> {new.loss_curve[-1]:.4f} in {len(new.loss_curve)} steps"
        if new.loss_curve
        else ""
    )
    return InversionResult(
        AppState(state.bundle, new),
        new.aligned,
        new.reconstruction,
        f"refined (P+C): {loss}, {sum(new.timings.values()):.1f} s",
    )


def _with_transform(new, old):
    """``new`` keeping ``old``'s way back to the photo (refinement starts from the aligned crop)."""

    return dataclasses.replace(new, transform=old.transform, source=old.source, notes=list(old.notes) + list(new.notes))


def _inversion(state: AppState | None):
    if state is None or state.inversion is None:
        raise UserError("invert a photo first (step 2)")
    return state.inversion


def direction_sliders(bundle: str) -> list[tuple[str, float, float]]:
    """(name, low, high) of each editing direction in the bundle, at most :data:`MAX_SLIDERS`, sorted by name."""
    pipe = get_pipeline(bundle)
    out = [(name, *d.strength_range) for name, d in sorted((pipe.directions or {}).items())]
    return out[:MAX_SLIDERS]


def edits_from_sliders(bundle: str, strengths: list[float]) -> dict[str, float]:
    """Slider values -> ``{direction: strength}`` (zeros dropped)."""
    names = [name for name, _, _ in direction_sliders(bundle)]
    edits = check_edits({n: s for n, s in zip(names, strengths) if s is not None})  # NaN, inf, text: one-line errors
    return {n: s for n, s in edits.items() if s != 0.0}


def render_view(
    state: AppState, yaw_deg: float, pitch_deg: float, strengths: list[float], quality: str = "preview"
) -> np.ndarray:
    """Step 3: the (edited) face at (yaw, pitch) degrees; tri-planes come from the cache, so this is cheap."""
    inv = _inversion(state)
    yaw, pitch = _radians(yaw_deg, pitch_deg)
    pipe = get_pipeline(state.bundle)
    view = pipe.render(
        inv,
        yaw=yaw,
        pitch=pitch,
        edits=edits_from_sliders(state.bundle, strengths),
        quality=quality,
    )
    return view.image


VISITORS = Path(tempfile.gettempdir()) / "e3dge-app-visitors"
"""One folder per visitor (named by a hash of Gradio's session id) for their downloads; removed when they leave."""


def _visitor_key(session: str) -> str:
    return hashlib.sha256(session.encode("utf-8", "replace")).hexdigest()[:32]


def visitor_folder(session: str | None = None) -> Path:
    """The folder of one visitor's downloads (each download replaces the last of its kind); a new folder without a session."""
    if not session:
        return Path(tempfile.mkdtemp(prefix="e3dge-app-"))
    folder = VISITORS / _visitor_key(session)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def forget_visitor(session: str | None) -> None:
    """Remove a visitor's download folder (the app calls it when the visitor leaves)."""
    if session:
        shutil.rmtree(VISITORS / _visitor_key(session), ignore_errors=True)


def _radians(yaw_deg: Any, pitch_deg: Any) -> tuple[float, float]:
    """Slider degrees -> radians; each a finite number within +-90, else a one-line error."""
    for name, value in (("yaw", yaw_deg), ("pitch", pitch_deg)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or abs(value) > 90
        ):
            raise UserError(f"{name} must be between -90 and 90 degrees, got {str(value)[:40]!r}")
    return math.radians(yaw_deg), math.radians(pitch_deg)


def mesh_file(state: AppState, strengths: list[float], resolution: int = 128, session: str | None = None) -> str:
    """The (edited) face as a .glb with vertex colours, for ``gr.Model3D`` and download."""

    inv = _inversion(state)
    mesh = extract_mesh(
        get_pipeline(state.bundle),
        inv,
        edits=edits_from_sliders(state.bundle, strengths),
        options=MeshOptions(resolution=resolution),
    )
    return str(save_mesh(mesh, visitor_folder(session) / "face.glb"))


def depth_figure(state: AppState, yaw_deg: float, pitch_deg: float, strengths: list[float]):
    """Depth of the (edited) face at the current view as a Plotly 3D surface coloured by the render."""

    inv = _inversion(state)
    yaw, pitch = _radians(yaw_deg, pitch_deg)
    pipe = get_pipeline(state.bundle)
    view = pipe.render(
        inv,
        yaw=yaw,
        pitch=pitch,
        edits=edits_from_sliders(state.bundle, strengths),
        quality="full",
    )
    return depth_surface_figure(view.depth, view.mask, view.image, title="depth (drag to turn)")


def orbit_video(
    state: AppState,
    strengths: list[float],
    frames: int = 48,
    fps: int = 24,
    progress: bool = True,
    session: str | None = None,
    quality: Quality = "full",
) -> str:
    """An orbit of the (edited) face as an H.264 mp4, every frame at ``quality`` (``preview``: about 5x faster)."""

    inv = _inversion(state)
    pipe = get_pipeline(state.bundle)
    edits = edits_from_sliders(state.bundle, strengths)
    images = [
        pipe.render(inv, yaw=y, pitch=p, edits=edits, quality=quality).image
        for y, p in tqdm(orbit_angles(frames), desc="orbit", disable=not progress)
    ]
    return str(write_video(visitor_folder(session) / "orbit.mp4", images, fps))


def result_json(state: AppState, strengths: list[float], session: str | None = None) -> str:
    """The inversion's camera, pose, timings, edits and latent as a JSON file."""
    inv = _inversion(state)
    path = visitor_folder(session) / "inversion.json"
    write_json(
        path, {**inv.summary(), "bundle": state.bundle, "edits": edits_from_sliders(state.bundle, strengths)}, indent=1
    )
    return str(path)
