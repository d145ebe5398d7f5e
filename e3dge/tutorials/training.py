"""Notebook 01 (self-supervised training): pseudo pairs, the Stage I losses one by one, small runs, held-out depth error."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from e3dge.backbones.base import Backbone
from e3dge.toy.evaluate import DEPTH_RANGE as RAY_RANGE  # the unit of the depth error in %
from e3dge.toy.evaluate import InversionScores, depth_error_pct, evaluate_toy_inversion
from e3dge.training.config import load_stage1_config
from e3dge.training.loop import LOG, read_log
from e3dge.training.losses import Stage1LossWeights, code_loss, geometry_loss, pose_loss
from e3dge.training.pseudo_pairs import PosePrior, PseudoPairBatch, PseudoPairSampler
from e3dge.training.sources import load_backbone
from e3dge.training.stage1 import train_stage1
from e3dge.tutorials.checks import CheckResult, check_against

__all__ = [
    "Budget",
    "budget",
    "toy_sampler",
    "pair_figure",
    "loss_terms",
    "StageIRun",
    "train_stage1_variant",
    "curves_figure",
    "depth_error_table",
    "surface_depth_term_solution",
    "depth_error_pct_solution",
    "check_surface_depth_term",
    "check_depth_error_pct",
    "ffhq_eg3d_ready",
]


@dataclass(frozen=True)
class Budget:
    """How much notebook 01 trains and evaluates."""

    steps: int
    batch_size: int
    eval_heads: int


def budget(small: bool, steps: int | None = None, eval_heads: int | None = None) -> Budget:
    """The runtime's budget (GPU: the toy preset's 600 steps; CPU: 60), with the notebook's parameters on top."""
    return Budget(steps or (60 if small else 600), 8, eval_heads or (16 if small else 48))


def toy_sampler(resolution: int = 32, points: int = 256) -> PseudoPairSampler:
    """Pseudo 2D-3D pairs from the shipped toy EG3D (the Stage I data: image, camera, depth, surface and near-surface densities)."""
    return PseudoPairSampler(
        load_backbone("toy"),
        PosePrior(),
        truncation_psi=0.7,
        neural_rendering_resolution=resolution,
        num_surface_points=points,
        num_near_points=points,
    )


def pair_figure(batch: PseudoPairBatch, index: int = 0):
    """One pseudo pair in Plotly: the image, its depth map, and the surface (blue) / near-surface (orange) points in 3D."""

    img = ((batch.image[index].permute(1, 2, 0).cpu().numpy() + 1) * 127.5).clip(0, 255).astype("uint8")
    depth = torch.where(batch.mask[index, 0] > 0.5, batch.depth[index, 0], torch.nan).cpu().numpy()
    s, n = batch.surface_points[index].cpu().numpy(), batch.near_points[index].cpu().numpy()
    fig = make_subplots(
        1,
        3,
        specs=[[{"type": "xy"}, {"type": "xy"}, {"type": "scene"}]],
        subplot_titles=("image", "depth (ray distance)", "points"),
    )
    fig.add_trace(go.Image(z=img), 1, 1)
    fig.add_trace(go.Heatmap(z=depth[::-1], colorscale="Viridis", showscale=False), 1, 2)
    fig.add_trace(
        go.Scatter3d(
            x=s[:, 0], y=s[:, 1], z=s[:, 2], mode="markers", marker=dict(size=2, color="royalblue"), name="surface"
        ),
        1,
        3,
    )
    fig.add_trace(
        go.Scatter3d(
            x=n[:, 0],
            y=n[:, 1],
            z=n[:, 2],
            mode="markers",
            marker=dict(size=2, color="darkorange"),
            name="near surface",
        ),
        1,
        3,
    )
    yaw, pitch = batch.pose[index].tolist()
    fig.update_layout(
        height=360,
        width=1000,
        title=f"pseudo pair {index}: yaw {yaw:+.2f}, pitch {pitch:+.2f} rad",
        margin=dict(l=10, r=10, t=60, b=10),
    )
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    return fig


@torch.no_grad()
def loss_terms(E, backbone: Backbone, batch: PseudoPairBatch) -> dict[str, float]:
    """Each Stage I term for encoder ``E`` on ``batch`` (L_code, L_pose, L_rec as MSE of the raw render, the three L_geo parts)."""
    enc = E(batch.image)
    scene = backbone.scene(enc.ws)
    out = backbone.render(enc.ws, scene, batch.camera, "full", neural_resolution=batch.depth.shape[-1])
    s = backbone.field(enc.ws, scene, batch.surface_points).occupancy
    n = backbone.field(enc.ws, scene, batch.near_points).occupancy
    geo = geometry_loss(
        s, batch.surface_occupancy, out.depth, batch.depth, batch.mask, n, batch.near_occupancy, Stage1LossWeights()
    )
    terms = {
        "L_code": code_loss(enc.ws, batch.ws),
        "L_pose": pose_loss(enc.pose, batch.pose),
        "L_rec (MSE, raw)": torch.nn.functional.mse_loss(out.image_raw.clamp(-1, 1), batch.image_raw),
    }
    terms.update({f"L_{k}": v for k, v in geo.items() if k != "geo"})
    return {k: float(v) for k, v in terms.items()}


@dataclass
class StageIRun:
    """A finished Stage I run: its encoder and its log rows."""

    name: str
    encoder: torch.nn.Module
    log: list[dict]


def train_stage1_variant(
    out_dir: str | Path, steps: int, with_geo: bool = True, batch_size: int = 8, progress: bool = True
) -> StageIRun:
    """The toy preset of ``e3dge train stage1`` (resumes when ``out_dir`` holds the same run), with or without L_geo."""

    off = (
        {}
        if with_geo
        else {"weights.geo_surface_density": 0, "weights.geo_surface_depth": 0, "weights.geo_near_density": 0}
    )
    cfg = load_stage1_config(
        "toy", {"out_dir": str(out_dir), "steps": steps, "batch_size": batch_size, "sample_every": max(steps, 1), **off}
    )
    E = train_stage1(cfg, progress=progress).eval()
    return StageIRun("with L_geo" if with_geo else "without L_geo", E, read_log(Path(out_dir) / LOG))


def curves_figure(runs: list[StageIRun], keys: tuple[str, ...] = ("code", "geo_surface_depth", "rec")):
    """Training curves of each run (one panel per loss term)."""

    fig = make_subplots(1, len(keys), subplot_titles=keys)
    for k, key in enumerate(keys, start=1):
        for run, colour in zip(runs, ("royalblue", "darkorange", "seagreen")):
            rows = [r for r in run.log if key in r]
            fig.add_trace(
                go.Scatter(
                    x=[r["step"] for r in rows],
                    y=[r[key] for r in rows],
                    name=run.name,
                    line=dict(color=colour),
                    showlegend=k == 1,
                ),
                1,
                k,
            )
    fig.update_layout(height=300, width=1000, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def depth_error_table(encoders: dict[str, torch.nn.Module], G, heads: int) -> dict[str, dict[str, float]]:
    """Held-out scores (toy photo-like heads, exact SDF depth) per encoder: image MAE, depth error in % of the ray range, pose error."""
    keep = ("source_mae", "source_depth_pct", "novel_depth_pct", "pose_error_deg")
    out = {}
    for name, E in encoders.items():
        scores: InversionScores = evaluate_toy_inversion(E, G, kind="photo", num=heads, batch=min(8, heads))
        out[name] = {k: v for k, v in asdict(scores).items() if k in keep}
    return out


# ----------------------------------------------------------------------------- exercises
def surface_depth_term_solution(
    pred_depth: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor, threshold: float = 0.5
) -> torch.Tensor:
    """L_geo's surface-depth part: mean |pred - pseudo-GT depth| over pixels whose pseudo-GT opacity exceeds ``threshold``."""
    on = (mask > threshold).to(depth.dtype)
    return ((pred_depth - depth).abs() * on).sum() / on.sum().clamp_min(1.0)


def depth_error_pct_solution(pred: torch.Tensor, ref: torch.Tensor, ref_mask: torch.Tensor) -> torch.Tensor:
    """Per-image mean |depth error| on the reference's opaque pixels, in % of the ray range (errors capped at the range)."""
    on = (ref_mask > 0.5).to(pred.dtype)
    err = ((pred - ref).abs().clamp(max=RAY_RANGE) * on).flatten(1).sum(1) / on.flatten(1).sum(1).clamp_min(1)
    return 100 * err / RAY_RANGE


def _geo_reference(pred_depth, depth, mask):
    z = torch.zeros(1, 1)
    return geometry_loss(z, z, pred_depth, depth, mask, z, z, Stage1LossWeights())["geo_surface_depth"]


def check_surface_depth_term(fn, seed: int = 0) -> CheckResult:
    """Compare the learner's surface-depth term with e3dge's ``geometry_loss`` on random depth maps."""
    g = torch.Generator().manual_seed(seed)
    depth, pred, mask = (
        2 + torch.rand(3, 1, 16, 16, generator=g),
        2 + torch.rand(3, 1, 16, 16, generator=g),
        torch.rand(3, 1, 16, 16, generator=g),
    )
    return check_against(
        "exercise 1 (L_geo surface depth)",
        fn,
        _geo_reference,
        pred,
        depth,
        mask,
        hint="average |difference| over the pixels with mask > 0.5 only, over the whole batch",
    )


def check_depth_error_pct(fn, seed: int = 1) -> CheckResult:
    """Compare the learner's depth error metric with the one the benchmarks use."""

    g = torch.Generator().manual_seed(seed)
    ref, pred, mask = (
        2 + torch.rand(4, 1, 16, 16, generator=g),
        2 + 2 * torch.rand(4, 1, 16, 16, generator=g),
        torch.rand(4, 1, 16, 16, generator=g),
    )
    return check_against(
        "exercise 2 (depth error in % of the ray range)",
        fn,
        depth_error_pct,
        pred,
        ref,
        mask,
        atol=1e-4,
        hint="one value per image; cap each |error| at the ray range 1.05 before averaging over mask > 0.5",
    )


def ffhq_eg3d_ready(small: bool) -> str | None:
    """None when the FFHQ EG3D section can run (GPU runtime + weights in the Hub cache), else why not."""
    if small:
        return "needs a GPU runtime (Colab: Runtime > Change runtime type > GPU)"
    try:
        from e3dge.training.sources import load_generator

        load_generator("eg3d-ffhqrebalanced512-128", "cpu")
    except Exception as err:  # noqa: BLE001 - report why, in one line
        return f"needs the EG3D FFHQ weights ({str(err).splitlines()[0]})"
    return None
