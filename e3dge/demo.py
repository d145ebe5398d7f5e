"""The offline main job: render a seeded orbit video and depth maps from a generator.

Frames are written one by one to ``<out>/frames/`` so an interrupted run resumes where it stopped;
the video (``orbit.mp4``), a depth strip and a colour/depth contact sheet are assembled at the end.
``<out>/frames/options.json`` records what the frames were made with (seed, frame count, truncation,
a fingerprint of the generator); frames are reused only when all of it is identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from tqdm.auto import tqdm

from e3dge.backbones.base import module_hash
from e3dge.backbones.eg3d.network import TriPlaneGenerator, eg3d_config
from e3dge.core.cameras import frontal_label, orbit_labels
from e3dge.core.files import atomic_path, read_json, write_json, write_png
from e3dge.core.options import check_range

__all__ = [
    "OrbitResult",
    "default_offline_generator",
    "to_uint8_image",
    "depth_to_uint8",
    "orbit_options",
    "render_orbit",
    "MAX_FRAMES",
    "MAX_FPS",
    "MAX_SEED",
]

MANIFEST = "options.json"
MAX_FRAMES = 10_000
MAX_FPS = 240
MAX_SEED = 2**32 - 1  # numpy RandomState seeds


@dataclass
class OrbitResult:
    """Files written by :func:`render_orbit`."""

    video: Path
    depth_video: Path
    sheet: Path
    num_frames: int
    frames_reused: int
    note: str = ""  # set when frames already on disk were made with other options and were rendered again


def default_offline_generator(seed: int = 0) -> tuple[TriPlaneGenerator, str]:
    """The best generator available without network, and a line describing it.

    Until the toy lab ships trained weights, this is a seeded, randomly initialised small EG3D:
    it exercises the full pipeline (mapping, tri-planes, volume rendering, super-resolution) but
    its pictures carry no meaning.
    """
    try:
        from e3dge.toy import load_toy_generator  # type: ignore[attr-defined]

        return load_toy_generator(), "toy-lab EG3D distilled from procedural heads"
    except ImportError:
        pass
    config = dict(eg3d_config("tiny"), z_dim=64, w_dim=64, channel_max=64, plane_resolution=64, plane_channels=8)
    config["rendering_kwargs"] = dict(config["rendering_kwargs"], depth_resolution=24, depth_resolution_importance=24)
    config["sr_kwargs"] = {"width": 16}
    config["neural_rendering_resolution"] = 64
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's RNG is untouched
        torch.manual_seed(seed)
        G = TriPlaneGenerator(**config).eval().requires_grad_(False)
    return G, "randomly initialised small EG3D (no trained weights available offline yet)"


def to_uint8_image(img: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` in [-1, 1] -> ``[H, W, 3]`` uint8."""
    return ((img.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def depth_to_uint8(depth: torch.Tensor, near: float, far: float) -> np.ndarray:
    """``[1, H, W]`` depth -> ``[H, W, 3]`` uint8, near = bright, over a fixed range so frames compare."""
    d = ((far - depth[0]) / (far - near)).clamp(0, 1)
    g = (d * 255).round().to(torch.uint8).cpu().numpy()
    return np.repeat(g[..., None], 3, axis=-1)


def orbit_options(G: torch.nn.Module, seed: int, num_frames: int, truncation_psi: float) -> dict:
    """What the frames of :func:`render_orbit` depend on (written to ``frames/options.json``)."""
    check_range("seed", seed, 0, MAX_SEED, integer=True)
    check_range("num_frames", num_frames, 1, MAX_FRAMES, integer=True)
    check_range("truncation_psi", truncation_psi, -2.0, 2.0)
    return {
        "format": 1,
        "seed": seed,
        "num_frames": num_frames,
        "truncation_psi": truncation_psi,
        "generator": module_hash(G),
    }


def _frame_paths(frames_dir: Path, i: int) -> tuple[Path, Path]:
    return frames_dir / f"rgb_{i:04d}.png", frames_dir / f"depth_{i:04d}.png"


def _read_manifest(path: Path) -> dict | None:
    manifest = read_json(path)
    return manifest if isinstance(manifest, dict) else None


def _write_manifest(frames_dir: Path, options: dict) -> None:
    write_json(frames_dir / MANIFEST, options, sort_keys=True)


def _differences(old: dict, new: dict) -> str:
    keys = [k for k in new if old.get(k) != new[k]]
    return "; ".join(f"{k}: {old.get(k)!r} -> {new[k]!r}" for k in keys) or "unreadable options.json"


def _prepare_frames(frames_dir: Path, options: dict) -> tuple[bool, str]:
    """Whether frames on disk may be reused, and a note when frames made otherwise will be rendered again.

    Frames listed by an older ``options.json`` (this tool's own output) are removed. Frames it cannot
    vouch for are only overwritten, never deleted; the manifest is then written once all are new.
    """
    manifest = frames_dir / MANIFEST
    old = _read_manifest(manifest)
    if old == options:
        return True, ""
    note = ""
    if old is not None and type(old.get("num_frames")) is int:
        for i in range(min(old["num_frames"], MAX_FRAMES)):
            for path in _frame_paths(frames_dir, i):
                path.unlink(missing_ok=True)
        note = (
            f"frames in {frames_dir} were made with other options ({_differences(old, options)}); rendered them again"
        )
    if any(p.exists() for i in range(options["num_frames"]) for p in _frame_paths(frames_dir, i)):
        manifest.unlink(missing_ok=True)
        return (
            False,
            note or f"frames in {frames_dir} have no readable {MANIFEST} (older e3dge?); rendered them all again",
        )
    _write_manifest(frames_dir, options)
    return True, note


@torch.no_grad()
def render_orbit(
    G: TriPlaneGenerator,
    out_dir: str | Path,
    seed: int = 0,
    num_frames: int = 48,
    truncation_psi: float = 0.7,
    fps: int = 24,
    progress: bool = True,
) -> OrbitResult:
    """Render ``num_frames`` of EG3D's orbit for latent ``seed``; resumes from frames made with the same options."""

    check_range("fps", fps, 1, MAX_FPS, integer=True)
    options = orbit_options(G, seed, num_frames, truncation_psi)
    out = Path(out_dir)
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    reuse, note = _prepare_frames(frames_dir, options)
    rk = G.rendering_kwargs
    radius, pivot = rk.get("avg_camera_radius", 2.7), rk.get("avg_camera_pivot", [0, 0, 0.2])
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    ws = G.mapping(z, frontal_label(radius=radius, pivot=pivot), truncation_psi=truncation_psi)
    planes = G.planes(ws)
    cams = orbit_labels(num_frames, radius=radius, pivot=pivot)
    near, far = float(rk["ray_start"]), float(rk["ray_end"])
    reused, damaged, rgb, depth = 0, [], [], []
    for i in tqdm(range(num_frames), desc="orbit", disable=not progress):
        rgb_path, depth_path = _frame_paths(frames_dir, i)
        if reuse and rgb_path.exists() and depth_path.exists():
            kept = _read_frame(rgb_path), _read_frame(depth_path)
            if kept[0] is not None and kept[1] is not None:
                rgb.append(kept[0])
                depth.append(kept[1])
                reused += 1
                continue
            damaged.append(rgb_path.name if kept[0] is None else depth_path.name)
        res = G.synthesis(ws, cams[i : i + 1], planes=planes, deterministic=True)
        d = torch.nn.functional.interpolate(res.depth, size=res.image.shape[-2:], mode="nearest")
        depth.append(depth_to_uint8(d[0], near, far))
        rgb.append(to_uint8_image(res.image[0]))
        write_png(depth_path, depth[-1])
        write_png(rgb_path, rgb[-1])  # written last: marks the frame complete
    if not reuse:
        _write_manifest(frames_dir, options)
    if damaged:
        shown = ", ".join(damaged[:3]) + (f" and {len(damaged) - 3} more" if len(damaged) > 3 else "")
        note = "; ".join(x for x in (note, f"unreadable frames in {frames_dir} rendered again: {shown}") if x)
    video, depth_video, sheet = out / "orbit.mp4", out / "orbit_depth.mp4", out / "sheet.png"
    for path, frames in ((video, rgb), (depth_video, depth)):
        with atomic_path(path) as tmp:
            iio.imwrite(tmp, np.stack(frames), fps=fps, codec="libx264", macro_block_size=1)
    picks = np.linspace(0, num_frames - 1, min(6, num_frames)).round().astype(int)
    write_png(
        sheet,
        np.concatenate([np.concatenate([rgb[i] for i in picks], 1), np.concatenate([depth[i] for i in picks], 1)], 0),
    )
    return OrbitResult(video, depth_video, sheet, num_frames, reused, note)


def _read_frame(path: Path) -> np.ndarray | None:
    """A frame written by an earlier run, or None when it cannot be read whole (a damaged file is rendered again)."""
    try:
        return np.asarray(iio.imread(path))
    except (OSError, ValueError, RuntimeError, SyntaxError):
        return None
