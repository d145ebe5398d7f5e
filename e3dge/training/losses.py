"""Stage I losses (E3DGE Sec. 4.1 and 6): geometry (Eq. 4-6), code, pose, reconstruction, multi-view ID.

Every term is a plain function or module returning a scalar (batch mean), zero on identical
inputs. Weights live in :class:`Stage1LossWeights`; a weight of 0 switches a term off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "Stage1LossWeights",
    "geometry_loss",
    "code_loss",
    "pose_loss",
    "delta_regularization",
    "ReconstructionLoss",
    "multiview_identity_loss",
]

ImageDistance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (pred, target) -> scalar


@dataclass
class Stage1LossWeights:
    """Loss weights; defaults are the paper's / official E3DGE's (reference facts)."""

    l2: float = 1.0  # lambda_1, pixel MSE
    lpips: float = 0.8  # lambda_2 (AlexNet LPIPS as official E3DGE)
    id: float = 0.1  # lambda_3, ArcFace identity
    raw: float = 1.0  # multiplies L_rec on the neural (raw) render; the SR image has weight 1
    geo_surface_density: float = 1.0  # lambda_g1 (Eq. 4): the field (EG3D density, StyleSDF -sdf) at surface points
    geo_surface_depth: float = 1.0  # lambda_g2 (Eq. 4)
    geo_near_density: float = 0.2  # lambda_g3 (Eq. 5; official "uniform" weight 0.2)
    code: float = 1.0  # L_code = ||w_hat - w||_2
    pose: float = 1.0  # L_pose = ||xi_hat - xi||_2
    multiview_id: float = 0.0  # PREIM3D multi-view identity (needs an identity network)
    delta_reg: float = 0.0  # e4e: ||w_i - w_0||_2 summed over rows i > 0


def geometry_loss(
    pred_surface: torch.Tensor,  # [N, P] field at the surface points, from w_hat
    surface: torch.Tensor,  # [N, P] from the pseudo pair's w
    pred_depth: torch.Tensor,  # [N, 1, r, r] depth rendered from w_hat at the pair's camera
    depth: torch.Tensor,  # [N, 1, r, r]
    mask: torch.Tensor,  # [N, 1, r, r] pair's opacity: depth is supervised where mask > threshold
    pred_near: torch.Tensor,  # [N, Q]
    near: torch.Tensor,  # [N, Q]
    weights: Stage1LossWeights,
    opacity_threshold: float = 0.5,
) -> dict[str, torch.Tensor]:
    """L_geo = L_geo^O (field + depth L1 on surface points) + L_geo^F (field L1 near the surface).

    The field is the backbone's occupancy (:class:`~e3dge.backbones.base.FieldSample`): EG3D's raw decoder
    density ``sigma`` (what ``G_0(w, x)`` returns; compositing applies ``softplus(sigma - 1)``), StyleSDF's
    ``-sdf``; depth is the expected distance along the ray at the surface pixels.
    """
    surface_l1 = (pred_surface - surface).abs().mean()
    near_l1 = (pred_near - near).abs().mean()
    on = (mask > opacity_threshold).to(depth.dtype)
    depth_l1 = ((pred_depth - depth).abs() * on).sum() / on.sum().clamp_min(1.0)
    total = (
        weights.geo_surface_density * surface_l1
        + weights.geo_surface_depth * depth_l1
        + weights.geo_near_density * near_l1
    )
    return {"geo": total, "geo_surface_density": surface_l1, "geo_surface_depth": depth_l1, "geo_near_density": near_l1}


def code_loss(ws_hat: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    """``||w_hat - w||_2`` per W+ row, averaged over rows and batch (``[N, num_ws, w_dim]``)."""
    if ws_hat.shape != ws.shape:
        raise ValueError(f"code_loss: shapes differ, {list(ws_hat.shape)} vs {list(ws.shape)}")
    return _safe_norm(ws_hat - ws).mean()


def pose_loss(pose_hat: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """``||xi_hat - xi||_2`` on (yaw, pitch) in radians, averaged over the batch."""
    if pose_hat.shape != pose.shape:
        raise ValueError(f"pose_loss: shapes differ, {list(pose_hat.shape)} vs {list(pose.shape)}")
    return _safe_norm(pose_hat - pose).mean()


def delta_regularization(ws: torch.Tensor) -> torch.Tensor:
    """e4e's delta regulariser: sum over rows i > 0 of ``||w_i - w_0||_2``, batch mean."""
    return _safe_norm(ws[:, 1:] - ws[:, :1]).sum(1).mean()


def _safe_norm(x: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """L2 norm over the last dim with a finite gradient at 0 (the identical-input case)."""
    return (x.pow(2).sum(-1) + eps).sqrt() - eps**0.5


class ReconstructionLoss(nn.Module):
    """``L_rec = l2 * MSE + lpips * LPIPS + id * (1 - cos ArcFace)`` (Eq. 16-19; pSp's recipe).

    ``lpips`` / ``identity`` may be None (term off). LPIPS and ID see the images resized to 256
    as in pSp. Returns the total and each term (detached floats are the caller's business).
    """

    def __init__(
        self, weights: Stage1LossWeights, lpips: nn.Module | None = None, identity: ImageDistance | None = None
    ) -> None:
        super().__init__()
        self.weights = weights
        self.lpips = lpips
        self.identity = identity

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        if pred.shape != target.shape:
            target = F.interpolate(target, size=pred.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        w = self.weights
        terms = {"l2": F.mse_loss(pred, target)}
        total = w.l2 * terms["l2"]
        if self.lpips is not None and w.lpips > 0:
            terms["lpips"] = self.lpips(_to_256(pred), _to_256(target)).mean()
            total = total + w.lpips * terms["lpips"]
        if self.identity is not None and w.id > 0:
            terms["id"] = self.identity(_to_256(pred), _to_256(target))
            total = total + w.id * terms["id"]
        terms["rec"] = total
        return terms


def _to_256(x: torch.Tensor) -> torch.Tensor:
    if x.shape[-1] == 256:
        return x
    return F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False, antialias=x.shape[-1] > 256)


def multiview_identity_loss(
    render: Callable[[torch.Tensor], torch.Tensor],  # camera labels [N, 25] -> images [N, 3, S, S] from w_hat
    source: torch.Tensor,  # [N, 3, S, S] the input view
    cameras: torch.Tensor,  # [N, 25] nearby views
    identity: ImageDistance,
) -> torch.Tensor:
    """PREIM3D's multi-view identity loss: ``1 - cos(R(input), R(G(w_hat, xi')))`` at nearby views ``xi'``."""
    return identity(_to_256(render(cameras)), _to_256(source))
