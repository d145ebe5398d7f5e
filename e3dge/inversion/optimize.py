"""Optimisation baseline, no encoder needed: W then W+ optimisation, then PTI generator tuning.

As in EG3D's projector and Roich et al. 2021 (PTI): start from the mean latent, optimise one w
(then all W+ rows) and the camera against the aligned photo, then fine-tune a private copy of the
generator around that pivot. The shared generator is never changed; the tuned copy belongs to
the returned inversion.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from e3dge.backbones.base import Backbone
from e3dge.inversion.refine import Criteria, reconstruction_loss

__all__ = ["OptimizeResult", "optimize_inversion"]


@dataclass
class OptimizeResult:
    """The optimised latent and camera, the tuned backbone (or None) and the loss curve."""

    ws: torch.Tensor  # [1, num_ws, w_dim]
    yaw: float
    pitch: float
    backbone: Backbone | None  # the PTI-tuned private copy
    curve: list[float] = field(default_factory=list)
    time_s: float = 0.0


def optimize_inversion(
    backbone: Backbone,
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

    Steps render at ``resolution`` (default: the backbone's ``refine_resolution``), as refinement.
    """
    t0 = time.perf_counter()
    resolution = resolution or backbone.refine_resolution
    device = target.device
    num_ws = backbone.layout.num_ws
    w = (
        backbone.mean_latent().to(device)[:, :1].clone().requires_grad_(True)
    )  # one w for the first half (W), then W+ rows
    plus = torch.zeros(1, num_ws, backbone.layout.w_dim, device=device)
    pose = torch.tensor([float(yaw), float(pitch)], device=device, requires_grad=optimize_pose)
    curve: list[float] = []
    switch = w_steps // 2

    def loss_of(model: Backbone, ws: torch.Tensor) -> torch.Tensor:
        view = model.render(ws, None, model.camera(pose[0:1], pose[1:2]), "full", neural_resolution=resolution)
        return reconstruction_loss(view, target, criteria)

    params = [{"params": [w], "lr": lr_w}] + ([{"params": [pose], "lr": lr_pose}] if optimize_pose else [])
    opt = torch.optim.Adam(params)
    for step in tqdm(range(w_steps), desc="optimise W/W+", disable=not progress):
        if step == switch:  # W -> W+: every row gets its own offset
            plus = plus.requires_grad_(True)
            opt.add_param_group({"params": [plus], "lr": lr_w})
        loss = loss_of(backbone, w.expand(1, num_ws, -1) + plus)
        curve.append(float(loss.detach()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    ws = (w.expand(1, num_ws, -1) + plus).detach()
    pose = pose.detach()
    tuned = None
    if pti_steps > 0:
        tuned, tunable = backbone.tunable_copy()  # a private copy: the shared generator is untouched
        opt = torch.optim.Adam(tunable, lr=lr_pti)
        for _ in tqdm(range(pti_steps), desc="PTI tuning", disable=not progress):
            loss = loss_of(tuned, ws)
            curve.append(float(loss.detach()))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        tuned = tuned.frozen()
    with torch.no_grad():
        curve.append(float(loss_of(tuned or backbone, ws)))
    return OptimizeResult(ws, float(pose[0]), float(pose[1]), tuned, curve, time.perf_counter() - t0)
