"""Notebook 02 (inversion): every inversion method on toy heads with exact ground truth, side by side; views and orbits."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from e3dge.core.cameras import label_from_yaw_pitch
from e3dge.inversion.outputs import orbit_angles, write_video
from e3dge.metrics.image import mae
from e3dge.toy import render_heads
from e3dge.toy.evaluate import depth_error_pct
from e3dge.tutorials.checks import CheckResult, check_against
from e3dge.tutorials.editing import ToyHeads

__all__ = [
    "METHODS",
    "MethodScore",
    "invert_with",
    "score_inversion",
    "compare_methods",
    "table_text",
    "side_by_side",
    "view",
    "orbit_video",
    "psnr_solution",
    "check_psnr",
    "camera_label_solution",
    "check_camera_label",
]

METHODS = ("E0", "E0 + P", "E0 + P+C", "optimisation (W+ then PTI)")


@dataclass
class MethodScore:
    """Mean scores of one inversion method over toy heads ([0, 1] image scale; depth error in % of the ray range)."""

    method: str
    source_mae: float
    novel_mae: float
    source_depth_pct: float
    seconds: float


def invert_with(pipe, pixels: np.ndarray, method: str, refine_steps: int, opt_steps: int):
    """One inversion with ``method`` (E0 alone, + pose refinement, + pose and code, or the optimisation baseline); toy crops need no alignment."""
    kw = {
        "E0": {},
        "E0 + P": {"refine": "pose", "steps": refine_steps},
        "E0 + P+C": {"refine": "pose+code", "steps": refine_steps},
        "optimisation (W+ then PTI)": {"optimize": True, "steps": opt_steps},
    }[method]
    return pipe.invert(pixels, align=False, local=False, **kw)


@torch.no_grad()
def score_inversion(pipe, inv, heads: ToyHeads, i: int, turn: float = 0.5) -> tuple[float, float, float]:
    """(source MAE, novel-view MAE, source depth %) of inversion ``inv`` of head ``i`` against the procedural ground truth (raw renders)."""

    G = inv.tuned.generator if inv.tuned else pipe.generator  # PTI tunes a private copy
    res = heads.resolution
    yaw, pitch = float(heads.yaw[i]), float(heads.pitch[i])
    yaw2 = yaw - turn * math.copysign(1.0, yaw + 1e-6)
    kw = dict(deterministic=True, superresolution=False, neural_rendering_resolution=res)
    src = G.synthesis(inv.ws, inv.camera, **kw)
    novel = G.synthesis(inv.ws, label_from_yaw_pitch(yaw2, pitch), **kw)
    t_src = render_heads(heads.factors[i : i + 1], label_from_yaw_pitch(yaw, pitch), res, photo=True)
    t_novel = render_heads(heads.factors[i : i + 1], label_from_yaw_pitch(yaw2, pitch), res, photo=True)
    depth = float(depth_error_pct(src.depth, t_src.depth, t_src.mask).mean())
    return (
        float(mae(src.image_raw.clamp(-1, 1), t_src.image)),
        float(mae(novel.image_raw.clamp(-1, 1), t_novel.image)),
        depth,
    )


def compare_methods(
    pipe, heads: ToyHeads, refine_steps: int, opt_steps: int, methods: tuple[str, ...] = METHODS
) -> list[MethodScore]:
    """Every method on every head: mean scores and seconds per head."""
    out = []
    for method in methods:
        sums, seconds = np.zeros(3), 0.0
        for i in range(len(heads.z)):
            t = time.perf_counter()
            inv = invert_with(pipe, heads.pixels[i], method, refine_steps, opt_steps)
            seconds += time.perf_counter() - t
            sums += score_inversion(pipe, inv, heads, i)
        m = sums / len(heads.z)
        out.append(MethodScore(method, float(m[0]), float(m[1]), float(m[2]), seconds / len(heads.z)))
    return out


def table_text(scores: list[MethodScore]) -> str:
    """The scores as an aligned text table."""
    lines = [f"{'method':28s}{'source MAE':>12s}{'novel MAE':>12s}{'depth %':>10s}{'s / head':>10s}"]
    lines += [
        f"{s.method:28s}{s.source_mae:12.4f}{s.novel_mae:12.4f}{s.source_depth_pct:10.2f}{s.seconds:10.2f}"
        for s in scores
    ]
    return "\n".join(lines)


def side_by_side(*images: np.ndarray, size: int = 192) -> np.ndarray:
    """uint8 images of any sizes, each resized to ``size`` x ``size`` and stacked ``[K, size, size, 3]`` (for ``px.imshow(..., facet_col=0)``)."""

    return np.stack(
        [
            np.asarray(Image.fromarray(np.ascontiguousarray(im)).convert("RGB").resize((size, size), Image.LANCZOS))
            for im in images
        ]
    )


def view(pipe, inv, yaw: float, pitch: float, local: bool = True) -> np.ndarray:
    """What the sliders show: the inversion turned to (yaw, pitch), full quality (uint8 ``[H, W, 3]``)."""
    return pipe.render(inv, yaw=yaw, pitch=pitch, quality="full", local=local).image


def orbit_video(pipe, inv, path: str | Path, frames: int, fps: int = 12, size: int = 128) -> Path:
    """An mp4 of the inversion circling its input view (e3dge's orbit path), previews at ``size`` px."""

    imgs = [
        pipe.render(inv, yaw=inv.yaw + y, pitch=inv.pitch + p, resolution=size).image for y, p in orbit_angles(frames)
    ]
    return write_video(Path(path), imgs, fps)


# ----------------------------------------------------------------------------- exercises
def psnr_solution(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of images in [-1, 1] on the [0, 1] scale, one value per image: ``10 log10(1 / MSE)``."""
    mse = (((a - b) / 2) ** 2).flatten(1).mean(1)
    return 10 * torch.log10(1 / mse.clamp_min(1e-12))


def check_psnr(fn, seed: int = 0) -> CheckResult:
    """Compare the learner's PSNR with the reference on random image pairs."""
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(3, 3, 16, 16, generator=g) * 2 - 1
    b = (a + 0.1 * torch.randn(3, 3, 16, 16, generator=g)).clamp(-1, 1)
    return check_against(
        "exercise 1 (PSNR)",
        fn,
        psnr_solution,
        a,
        b,
        atol=1e-3,
        hint="images are in [-1, 1]: bring them to [0, 1] first; one value per image",
    )


def camera_label_solution(yaw: float, pitch: float) -> torch.Tensor:
    """The EG3D camera label ``[1, 25]`` (flattened cam2world 4x4 + intrinsics 3x3) of a head turned (yaw, pitch) radians."""
    return label_from_yaw_pitch(yaw, pitch)


def check_camera_label(fn) -> CheckResult:
    """The learner's label for E0's estimated pose must render the same view as e3dge's."""
    return check_against(
        "exercise 2 (yaw/pitch -> EG3D camera label)",
        fn,
        camera_label_solution,
        0.3,
        -0.1,
        atol=1e-4,
        hint="look at e3dge.core.cameras: a look-at camera on the FFHQ radius, 25 values = 16 (cam2world) + 9 (intrinsics)",
    )
