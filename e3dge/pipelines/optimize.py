"""Optimisation baseline, no encoder needed: W then W+ optimisation, then PTI generator tuning.

As in EG3D's projector and Roich et al. 2021 (PTI): start from the mean latent, optimise one w
(then all W+ rows) and the camera against the aligned photo, then fine-tune a private copy of the
generator around that pivot. The shared generator is never changed; the tuned copy belongs to
the returned inversion.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from e3dge.backbones.eg3d import TriPlaneGenerator
from e3dge.cameras import label_from_yaw_pitch
from e3dge.pipelines.refine import Criteria, reconstruction_loss

__all__ = ["OptimizeResult", "optimize_inversion"]


@dataclass
class OptimizeResult:
    """The optimised latent and camera, the tuned generator (or None) and the loss curve."""

    ws: torch.Tensor  # [1, num_ws, w_dim]
    yaw: float
    pitch: float
    generator: TriPlaneGenerator | None
    curve: list[float] = field(default_factory=list)
    time_s: float = 0.0


def optimize_inversion(
    G: TriPlaneGenerator,
    target: torch.Tensor,
    yaw: float = 0.0,
    pitch: float = 0.0,
    w_steps: int = 200,
    pti_steps: int = 100,
    lr_w: float = 0.02,
    lr_pose: float = 0.01,
    lr_pti: float = 3e-4,
    optimize_pose: bool = True,
    resolution: int | None = None,
    criteria: Criteria | None = None,
    progress: bool = False,
) -> OptimizeResult:
    """Invert ``target`` ([1, 3, S, S] in [-1, 1]) by optimisation; ``pti_steps=0`` skips generator tuning.

    Steps render at ``resolution`` (default: half the model's neural resolution, at least 32), as refinement.
    """
    t0 = time.perf_counter()
    resolution = resolution or max(32, G.neural_rendering_resolution // 2)
    device = target.device
    w_avg = G.backbone.mapping.w_avg.detach().to(device)
    w = w_avg[None, None].clone().requires_grad_(True)  # one w for the first half (W), then W+ rows
    plus = torch.zeros(1, G.num_ws, G.w_dim, device=device)
    pose = torch.tensor([float(yaw), float(pitch)], device=device, requires_grad=optimize_pose)
    curve: list[float] = []
    switch = w_steps // 2

    def render(gen: TriPlaneGenerator, ws: torch.Tensor):
        return gen.synthesis(ws, label_from_yaw_pitch(pose[0:1], pose[1:2], device=device), neural_rendering_resolution=resolution, deterministic=True)

    params = [{"params": [w], "lr": lr_w}] + ([{"params": [pose], "lr": lr_pose}] if optimize_pose else [])
    opt = torch.optim.Adam(params)
    for step in tqdm(range(w_steps), desc="optimise W/W+", disable=not progress):
        if step == switch:  # W -> W+: every row gets its own offset
            plus = plus.requires_grad_(True)
            opt.add_param_group({"params": [plus], "lr": lr_w})
        loss = reconstruction_loss(render(G, w.expand(1, G.num_ws, -1) + plus), target, criteria)
        curve.append(float(loss.detach()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    ws = (w.expand(1, G.num_ws, -1) + plus).detach()
    pose = pose.detach()
    tuned = None
    if pti_steps > 0:
        tuned = copy.deepcopy(G).requires_grad_(True)  # a private copy: the shared G is untouched
        tuned.backbone.mapping.requires_grad_(False)
        opt = torch.optim.Adam([p for p in tuned.parameters() if p.requires_grad], lr=lr_pti)
        for _ in tqdm(range(pti_steps), desc="PTI tuning", disable=not progress):
            loss = reconstruction_loss(render(tuned, ws), target, criteria)
            curve.append(float(loss.detach()))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        tuned.eval().requires_grad_(False)
    with torch.no_grad():
        curve.append(float(reconstruction_loss(render(tuned or G, ws), target, criteria)))
    return OptimizeResult(ws, float(pose[0]), float(pose[1]), tuned, curve, time.perf_counter() - t0)
