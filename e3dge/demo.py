"""The offline main job: render a seeded orbit video and depth maps from a generator.

Frames are written one by one to ``<out>/frames/`` so an interrupted run resumes where it stopped;
the video (``orbit.mp4``), a depth strip and a colour/depth contact sheet are assembled at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from e3dge.backbones.eg3d import TriPlaneGenerator, eg3d_config
from e3dge.cameras import frontal_label, orbit_labels

__all__ = ["OrbitResult", "default_offline_generator", "to_uint8_image", "depth_to_uint8", "render_orbit"]


@dataclass
class OrbitResult:
    """Files written by :func:`render_orbit`."""

    video: Path
    depth_video: Path
    sheet: Path
    num_frames: int
    frames_reused: int


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
    torch.manual_seed(seed)
    config = dict(eg3d_config("tiny"), z_dim=64, w_dim=64, channel_max=64, plane_resolution=64, plane_channels=8)
    config["rendering_kwargs"] = dict(config["rendering_kwargs"], depth_resolution=24, depth_resolution_importance=24)
    config["sr_kwargs"] = {"width": 16}
    config["neural_rendering_resolution"] = 64
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
    """Render ``num_frames`` of EG3D's orbit for latent ``seed``; resumes from existing frames."""
    import imageio.v3 as iio

    out = Path(out_dir)
    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    rk = G.rendering_kwargs
    radius, pivot = rk.get("avg_camera_radius", 2.7), rk.get("avg_camera_pivot", [0, 0, 0.2])
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).float()
    ws = G.mapping(z, frontal_label(radius=radius, pivot=pivot), truncation_psi=truncation_psi)
    planes = G.planes(ws)
    cams = orbit_labels(num_frames, radius=radius, pivot=pivot)
    near, far = float(rk["ray_start"]), float(rk["ray_end"])
    reused = 0
    for i in tqdm(range(num_frames), desc="orbit", disable=not progress):
        rgb_path, depth_path = frames_dir / f"rgb_{i:04d}.png", frames_dir / f"depth_{i:04d}.png"
        if rgb_path.exists() and depth_path.exists():
            reused += 1
            continue
        res = G.synthesis(ws, cams[i : i + 1], planes=planes, deterministic=True)
        depth = torch.nn.functional.interpolate(res["image_depth"], size=res["image"].shape[-2:], mode="nearest")
        iio.imwrite(depth_path, depth_to_uint8(depth[0], near, far))
        iio.imwrite(rgb_path, to_uint8_image(res["image"][0]))  # written last: marks the frame complete
    rgb = [iio.imread(frames_dir / f"rgb_{i:04d}.png") for i in range(num_frames)]
    depth = [iio.imread(frames_dir / f"depth_{i:04d}.png") for i in range(num_frames)]
    video, depth_video, sheet = out / "orbit.mp4", out / "orbit_depth.mp4", out / "sheet.png"
    iio.imwrite(video, np.stack(rgb), fps=fps, codec="libx264", macro_block_size=1)
    iio.imwrite(depth_video, np.stack(depth), fps=fps, codec="libx264", macro_block_size=1)
    picks = np.linspace(0, num_frames - 1, min(6, num_frames)).round().astype(int)
    iio.imwrite(sheet, np.concatenate([np.concatenate([rgb[i] for i in picks], 1), np.concatenate([depth[i] for i in picks], 1)], 0))
    return OrbitResult(video, depth_video, sheet, num_frames, reused)
