"""Video: per-frame detection and alignment with transforms smoothed by a centred mean filter.

Why: aligning each frame independently makes the crop shake with landmark noise; like E3DGE's video
preprocessing, the per-frame crop transforms (and poses) are averaged over a sliding window before
warping. Frames are read twice (landmarks, then warping) so long videos never sit in memory.

A video stored sideways (a phone video whose rotation tag was lost) is handled like a turned photo
(:mod:`e3dge.faces.orientation`): the quarter turn that makes the first face upright is applied to
every frame, folded into the transforms and reported as ``VideoResult.rotation_degrees``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch
from tqdm.auto import tqdm

from e3dge.core.files import atomic_path, write_json
from e3dge.core.options import OptionError, check_range

from .align import AlignTransform, align_transform, warp_image
from .api import check_align_options
from .detect import MIN_FACE_SIZE, Face, choose_face, detect_faces
from .errors import FaceError, FaceOptionError, ImageTooLargeError, NoFaceError, NotAnImageError
from .io import MAX_PIXELS, to_rgb_array
from .orientation import detect_upright
from .pose import camera_label, estimate_pose

__all__ = [
    "MAX_WINDOW",
    "VideoResult",
    "smooth_series",
    "smooth_transforms",
    "jitter",
    "align_video",
    "check_video_options",
]

MAX_WINDOW = 301
"""Longest smoothing window, in frames (12 s at 25 fps)."""


def smooth_series(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over axis 0 (``window`` frames, odd); the window shrinks at the ends."""
    values = np.asarray(values, dtype=np.float64)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if window == 1 or len(values) < 2:
        return values.copy()
    half = window // 2
    csum = np.concatenate((np.zeros((1,) + values.shape[1:]), np.cumsum(values, axis=0)))
    idx = np.arange(len(values))
    lo, hi = np.maximum(idx - half, 0), np.minimum(idx + half + 1, len(values))
    shape = (-1,) + (1,) * (values.ndim - 1)
    return (csum[hi] - csum[lo]) / (hi - lo).reshape(shape)


def smooth_transforms(matrices: np.ndarray, window: int = 5) -> np.ndarray:
    """Mean-filter ``[T, 3, 3]`` photo->aligned matrices entry by entry (an average of affine maps is affine)."""
    matrices = np.asarray(matrices, dtype=np.float64)
    out = smooth_series(matrices, window)
    out[:, 2] = (0.0, 0.0, 1.0)
    return out


def jitter(values: np.ndarray) -> float:
    """Shake of a sequence ``[T, ...]``: RMS of its second difference (frame-to-frame acceleration)."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    if len(values) < 3:
        return 0.0
    return float(np.sqrt(np.mean(np.sum(np.diff(values, n=2, axis=0) ** 2, axis=1))))


def _fill_missing(matrices: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Linearly interpolate the matrices of frames without a face from their neighbours."""
    t = np.arange(len(matrices))
    out = matrices.copy()
    flat = out.reshape(len(out), -1)
    for j in range(flat.shape[1]):
        flat[:, j] = np.interp(t, t[found], flat[found, j])
    return flat.reshape(matrices.shape)


@dataclass
class VideoResult:
    """What :func:`align_video` did."""

    out_path: Path
    cameras_path: Path | None
    fps: float
    transforms: np.ndarray
    """Smoothed photo->aligned matrices ``[T, 3, 3]`` used for the output frames."""
    raw_transforms: np.ndarray
    """Per-frame matrices before smoothing (interpolated where no face was found)."""
    poses_deg: np.ndarray
    """Smoothed (yaw, pitch, roll) per frame in degrees, ``[T, 3]``."""
    labels: torch.Tensor
    """EG3D camera labels ``[T, 25]`` from the smoothed poses."""
    missing: list[int] = field(default_factory=list)
    """Frames where no face was found (their transform was interpolated)."""
    rotation_degrees: int = 0
    """Quarter turn (counter-clockwise, as ``np.rot90``) that made the face upright; already in ``transforms``."""

    @property
    def num_frames(self) -> int:
        return len(self.transforms)


def media_reason(exc: BaseException) -> str:
    """What went wrong in one short phrase, from ffmpeg's log (its build banner stays out of messages; ``--debug``
    shows the whole chained error)."""
    text = str(exc)
    if "does not contain any stream" in text or ("Audio:" in text and "Video:" not in text):
        return "it has no video stream"
    if "Invalid data found" in text or "moov atom not found" in text:
        return "not a video file, or cut short"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith((" ", "ffmpeg version"))]
    return (lines[-1] if lines else type(exc).__name__)[:120]


def _open_reader(path: Path):
    if not path.exists():
        raise NotAnImageError(f"{path}: no such file")
    try:
        return imageio.get_reader(str(path))
    except Exception as exc:  # imageio raises several types for unreadable media
        raise NotAnImageError(f"{path.name}: not a video ffmpeg can read ({media_reason(exc)})") from exc


def _frames(path: Path):
    reader = _open_reader(path)
    try:
        i = -1
        for i, frame in enumerate(reader):
            yield to_rgb_array(np.asarray(frame))
    except (OSError, RuntimeError, ValueError) as exc:
        if isinstance(exc, FaceError):
            raise
        raise NotAnImageError(f"{path.name}: frame {i + 1} cannot be decoded ({media_reason(exc)})") from exc
    finally:
        reader.close()


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map ``[N, 2]`` points by a ``[3, 3]`` affine matrix."""
    return points @ matrix[:2, :2].T + matrix[:2, 2]


Turn = tuple[int, np.ndarray]
"""(quarter turns, ``[3, 3]`` frame -> turned frame map) applied to every frame of a video."""


def _detect_turned(
    frame: np.ndarray, turn: Turn | None, detect, name: str, orient=None
) -> tuple[list[Face], np.ndarray, Turn | None]:
    """Faces in ``frame`` turned by ``turn``; until a face fixes the turn, every quarter turn is tried (chosen with
    ``orient`` when given, as :func:`~e3dge.faces.orientation.detect_upright`)."""
    if turn is not None:
        turned = np.rot90(frame, turn[0]).copy() if turn[0] else frame  # plain strides for dlib
        return detect(turned), turned, turn
    upright = detect_upright(frame, detect, name, orient)
    return upright.faces, upright.pixels, (upright.quarter_turns, upright.to_turned) if upright.faces else None


def check_video_options(
    convention: str = "eg3d",
    size: int | None = None,
    window: int = 5,
    detector: str = "hog",
    min_face_size: float = MIN_FACE_SIZE,
    quality: int = 8,
) -> None:
    """Refuse bad :func:`align_video` arguments in one line (:class:`FaceOptionError`) before reading the video."""
    check_align_options(convention, size, detector, None, min_face_size)
    for name, value, lo, hi in (("window (frames)", window, 1, MAX_WINDOW), ("quality", quality, 0, 10)):
        try:
            check_range(name, int(value) if isinstance(value, np.integer) else value, lo, hi, integer=True)
        except OptionError as err:
            raise FaceOptionError(str(err)) from None


def align_video(
    in_path,
    out_path,
    convention: str = "eg3d",
    size: int | None = None,
    window: int = 5,
    detector: str = "hog",
    min_face_size: float = MIN_FACE_SIZE,
    cameras_path=None,
    progress: bool = True,
    quality: int = 8,
) -> VideoResult:
    """Align every frame of ``in_path`` and write an ``size`` x ``size`` video to ``out_path``.

    The first frame's main face is followed through the video (nearest face to the previous one);
    frames without a face borrow an interpolated transform. Transforms and poses are smoothed with a
    centred mean filter of ``window`` frames (1 disables smoothing). Per-frame camera labels, poses
    and transforms go to ``cameras_path`` (default: ``out_path`` with ``.json``); pass ``False`` to skip.
    """
    in_path, out_path = Path(in_path), Path(out_path)
    check_video_options(convention, size, window, detector, min_face_size, quality)
    reader = _open_reader(in_path)
    try:
        meta = reader.get_meta_data()
        try:
            total = reader.count_frames()
        except Exception:
            total = None
    finally:
        reader.close()
    fps = float(meta.get("fps") or 25.0)
    w, h = (meta.get("size") or (0, 0))[:2]
    if w * h > MAX_PIXELS:  # from the container's header, before a frame is decoded
        raise ImageTooLargeError(f"{in_path.name}: frames of {w}x{h} exceed {MAX_PIXELS / 1e6:.0f} megapixels")

    raw, found, chosen_lm = [], [], []
    prev_center = None
    turn: Turn | None = None  # fixed by the first frame with a face
    detect = lambda px: detect_faces(px, detector=detector, max_side=960)  # noqa: E731
    orient = (lambda px: detect_faces(px, detector="hog", max_side=960)) if detector == "cnn" else None
    bar = tqdm(total=total, desc=f"faces {in_path.name}", unit="frame", disable=not progress)
    for frame in _frames(in_path):
        h, w = frame.shape[:2]
        if w * h > MAX_PIXELS:
            raise ImageTooLargeError(f"{in_path.name}: frames of {w}x{h} exceed {MAX_PIXELS / 1e6:.0f} megapixels")
        faces, turned, turn = _detect_turned(frame, turn, detect, f"{in_path.name} frame {len(raw)}", orient)
        face: Face | None = None
        if faces:
            if prev_center is None:
                face, _ = choose_face(faces, min_size=min_face_size, name=f"{in_path.name} frame {len(raw)}")
            else:
                face = min(faces, key=lambda f: float(np.linalg.norm(f.center - prev_center)))
        if face is not None:
            to_turned = turn[1]  # type: ignore[index]
            prev_center = face.center
            in_turned = align_transform(face.landmarks68, (turned.shape[1], turned.shape[0]), convention, size).matrix
            raw.append(in_turned @ to_turned)  # from the frame as stored
            chosen_lm.append(_apply(np.linalg.inv(to_turned), face.landmarks68))
            found.append(True)
        else:
            raw.append(np.eye(3))
            chosen_lm.append(np.zeros((68, 2)))
            found.append(False)
        bar.update(1)
    bar.close()
    if not raw:
        raise NotAnImageError(f"{in_path.name} has no frames")
    found_arr = np.array(found)
    if not found_arr.any():
        raise NoFaceError(
            f"no face found in any of the {len(raw)} frames of {in_path.name}: use a video where the face is "
            f"visible and at least {min_face_size} px wide"
        )
    raw_m = _fill_missing(np.stack(raw), found_arr)
    smooth_m = smooth_transforms(raw_m, window)
    out_size = int(size or 512)

    poses = np.zeros((len(raw), 3))
    for i, (m, lm) in enumerate(zip(smooth_m, chosen_lm)):
        if found_arr[i]:
            tr = AlignTransform(m, out_size, convention)
            poses[i] = estimate_pose(tr.apply(lm), out_size).degrees
    valid = np.flatnonzero(found_arr)
    for j in range(3):
        poses[:, j] = np.interp(np.arange(len(raw)), valid, poses[valid, j])
    poses = smooth_series(poses, window)
    labels = camera_label(*(torch.from_numpy(np.radians(poses[:, j])).float() for j in range(3)))

    with atomic_path(out_path) as tmp:  # a kill while writing leaves no half video under the real name
        writer = imageio.get_writer(str(tmp), fps=fps, quality=quality, macro_block_size=2)
        try:
            bar = tqdm(total=len(raw), desc=f"write {out_path.name}", unit="frame", disable=not progress)
            for i, frame in enumerate(_frames(in_path)):
                if i >= len(raw):
                    break
                writer.append_data(warp_image(frame, AlignTransform(smooth_m[i], out_size, convention)))
                bar.update(1)
            bar.close()
        finally:
            writer.close()

    cams = None if cameras_path is False else Path(cameras_path or out_path.with_suffix(".json"))
    if cams is not None:
        payload = {
            "source": in_path.name,
            "convention": convention,
            "size": out_size,
            "fps": fps,
            "window": window,
            "frames_turned_deg": 90 * turn[0],  # type: ignore[index]
            "missing_frames": [int(i) for i in np.flatnonzero(~found_arr)],
            "frames": [
                {
                    "index": i,
                    "label": [round(float(v), 6) for v in labels[i]],
                    "yaw_pitch_roll_deg": [round(float(v), 3) for v in poses[i]],
                    "matrix": smooth_m[i].tolist(),
                }
                for i in range(len(raw))
            ],
        }
        write_json(cams, payload, indent=1)
    missing = [int(i) for i in np.flatnonzero(~found_arr)]
    return VideoResult(out_path, cams, fps, smooth_m, raw_m, poses, labels, missing, 90 * turn[0])  # type: ignore[index]
