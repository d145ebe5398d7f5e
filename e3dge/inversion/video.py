"""Video inversion: align with smoothed transforms, invert every frame, smooth the codes, write a side-by-side video.

Resumable: the aligned video, each frame's code (``frames/ws_*.npy``, read with
``allow_pickle=False``) and each composed frame are kept; a rerun with the same options reuses
them, other options start the frames over (the folder's own files only).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from e3dge.core.errors import UserError
from e3dge.core.files import atomic_path, file_digest, read_json, write_json
from e3dge.faces.video import align_video
from e3dge.inversion.outputs import write_video
from e3dge.inversion.pipeline import InversionPipeline
from e3dge.inversion.refine import RefineMode

__all__ = ["VideoInversion", "smooth_codes", "invert_video"]


@dataclass
class VideoInversion:
    """Files of a video inversion."""

    video: Path  # input | reconstruction | chosen view, side by side
    aligned: Path
    frames_dir: Path
    num_frames: int
    frames_reused: int


def smooth_codes(ws: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of per-frame codes ``[T, ...]`` over ``window`` frames (edges use what exists)."""
    if window <= 1 or len(ws) < 2:
        return ws
    half = window // 2
    csum = np.concatenate([np.zeros_like(ws[:1]), np.cumsum(ws, axis=0)])
    idx = np.arange(len(ws))
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(ws))
    return (csum[hi] - csum[lo]) / (hi - lo).reshape(-1, *([1] * (ws.ndim - 1)))


ALIGNMENT_MANIFEST = "alignment.json"
"""Which input (its SHA-256) and aligner options ``aligned.mp4`` was made from: reused only when both match."""


def _saved_code(path: Path, pipe: InversionPipeline) -> np.ndarray | None:
    """A frame's saved code when it reads whole, in this pipeline's latent shape and finite; else None (redone)."""
    try:
        ws = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    layout = pipe.backbone.layout
    ok = ws.shape == (layout.num_ws, layout.w_dim) and ws.dtype == np.float32 and np.isfinite(ws).all()
    return ws if ok else None


def _frames_state(frames_dir: Path, options: dict) -> None:
    """Prepare ``frames/`` for ``options``: keep it when they match, else clear our own files."""
    manifest = frames_dir / "options.json"
    if frames_dir.is_dir():
        if read_json(manifest) == options:
            return
        for p in [*frames_dir.glob("ws_*.npy"), *frames_dir.glob("frame_*.png"), manifest]:
            p.unlink(missing_ok=True)
    frames_dir.mkdir(parents=True, exist_ok=True)
    write_json(manifest, options, indent=None)


def invert_video(
    pipe: InversionPipeline,
    in_path: str | Path,
    out_dir: str | Path,
    refine: RefineMode | None = None,
    steps: int | None = None,
    view: tuple[float, float] = (0.5, 0.0),
    smooth_window: int = 3,
    align_window: int = 5,
    fps: int | None = None,
    progress: bool = True,
) -> VideoInversion:
    """Invert every frame of ``in_path`` into ``out_dir`` (aligned.mp4, frames/, inversion.mp4)."""

    in_path, out = Path(in_path), Path(out_dir)
    if not in_path.is_file():
        raise UserError(f"{in_path}: no such video file")
    out.mkdir(parents=True, exist_ok=True)
    aligned, cams_path, provenance = out / "aligned.mp4", out / "aligned.json", out / ALIGNMENT_MANIFEST
    source = file_digest(in_path)
    alignment = {
        "input_sha256": source,
        "convention": pipe.aligner.get("convention", "eg3d"),
        "detector": pipe.aligner.get("detector", "hog"),
        "window": align_window,
    }
    if not (aligned.is_file() and cams_path.is_file() and read_json(provenance) == alignment):
        provenance.unlink(missing_ok=True)  # written again only once the new alignment is complete
        align_video(
            in_path,
            aligned,
            alignment["convention"],
            window=align_window,
            detector=alignment["detector"],
            progress=progress,
        )
        write_json(provenance, alignment)
    cams = json.loads(cams_path.read_text())
    labels = torch.tensor([f["label"] for f in cams["frames"]], dtype=torch.float32)
    frames = list(iio.imiter(aligned))
    if len(frames) != len(labels):
        raise UserError(f"{aligned}: {len(frames)} frames but {len(labels)} cameras; delete {out} and run again")
    frames_dir = out / "frames"
    options = {
        "input_sha256": source,
        "refine": refine,
        "steps": steps,
        "smooth_window": smooth_window,
        "view": list(view),
        "model": pipe.identity,
    }
    _frames_state(frames_dir, options)
    inversions, reused = [], 0
    for i in tqdm(range(len(frames)), desc="invert frames", disable=not progress):
        path = frames_dir / f"ws_{i:05d}.npy"
        kept = _saved_code(path, pipe) if path.is_file() else None
        if kept is not None:  # resumed: reuse the code computed before (refinement is the slow part)
            inv = pipe.invert(frames[i], align=False, camera=labels[i : i + 1])
            inv = dataclasses.replace(inv, ws=torch.from_numpy(kept)[None])
            reused += 1
        else:  # new, or an unreadable code from an interrupted run: computed again
            inv = pipe.invert(frames[i], align=False, camera=labels[i : i + 1], refine=refine, steps=steps)
            with atomic_path(path) as tmp:
                np.save(tmp, inv.ws[0].numpy())
        inversions.append(inv)
    smoothed = smooth_codes(np.stack([inv.ws[0].numpy() for inv in inversions]), smooth_window)
    composed = []
    for i, inv in enumerate(tqdm(inversions, desc="render frames", disable=not progress)):
        inv = dataclasses.replace(inv, ws=torch.from_numpy(smoothed[i]).float()[None])
        recon = pipe.render(inv, quality="full").image
        novel = pipe.render(inv, yaw=view[0], pitch=view[1], quality="full").image
        size = recon.shape[0]

        src = np.asarray(Image.fromarray(frames[i]).resize((size, size), Image.BICUBIC))
        composed.append(np.concatenate([src, recon, novel], axis=1))
    video = write_video(out / "inversion.mp4", composed, int(fps or round(cams.get("fps", 25))))
    return VideoInversion(video, aligned, frames_dir, len(frames), reused)
