"""Stage I: train the global encoder E0 (+ pose head) on pseudo pairs from a frozen 3D GAN, on any backbone.

Everything goes through the :class:`~e3dge.backbones.base.Backbone` protocol: pseudo pairs, renders, the field for
L_geo (EG3D density, StyleSDF SDF), cameras. E0 comes from :func:`e3dge.encoders.flows.trainable_encoder`: on EG3D it
predicts W+ and the pose; on StyleSDF the official offsets around the fixed means and no pose (the volume
discriminator's), so L_pose and reconstruction at the predicted pose apply where a pose head exists.
One loop for the paper's method and its baselines (``Stage1Config.method``), run through
``accelerate`` (one CPU, one GPU, or many processes / nodes). Each step draws fresh pseudo pairs
(or, with PREIM3D's alternation, a batch of unlabelled real images), encodes them, re-renders
``w_hat`` and applies the switchable losses. :class:`Stage1Trainer` is a task of the one training
loop (:mod:`e3dge.training.loop`): safe checkpoints, exact resume, logs and the progress bar live there.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from e3dge.backbones.base import Backbone, View
from e3dge.core.cameras import Camera
from e3dge.core.files import write_json
from e3dge.core.options import OptionError
from e3dge.encoders import EncoderOutput
from e3dge.encoders.flows import trainable_encoder
from e3dge.metrics.loaders import make_identity, make_lpips
from e3dge.training.checkpoint import restore_optimizer
from e3dge.training.config import RUN_ONLY_OPTIONS, Stage1Config
from e3dge.training.grids import sample_grid
from e3dge.training.loop import LoopOptions, TrainingLoop
from e3dge.training.losses import (
    ReconstructionLoss,
    code_loss,
    delta_regularization,
    geometry_loss,
    multiview_identity_loss,
    pose_loss,
)
from e3dge.training.pseudo_pairs import PosePrior, PseudoPairBatch, PseudoPairSampler
from e3dge.training.sources import load_backbone, make_real_source

__all__ = ["Stage1Trainer", "train_stage1", "build_encoder", "progressive_ws"]


def build_encoder(cfg: Stage1Config, backbone: Backbone) -> torch.nn.Module:
    """E0 of size ``cfg.encoder`` for ``backbone``, its offsets around the backbone's mean latent."""
    return trainable_encoder(backbone, cfg.encoder)


def progressive_ws(ws: torch.Tensor, step: int, every: int) -> torch.Tensor:
    """e4e's progressive training: rows beyond ``1 + step // every`` collapse onto row 0 (``every=0``: all rows)."""
    if every <= 0:
        return ws
    active = min(ws.shape[1], 1 + step // every)
    keep = (torch.arange(ws.shape[1], device=ws.device) < active).to(ws.dtype)[None, :, None]
    return ws[:, :1] + keep * (ws - ws[:, :1])


class Stage1Trainer:
    """Stage I as a :class:`~e3dge.training.loop.TrainingTask`: models, optimizer, RNG streams and losses of one run.

    ``resume``: ``"auto"`` continues a run folder made with the same options (and refuses other
    options), ``"override"`` continues it with the new options, ``"restart"`` sets it aside.
    """

    def __init__(self, cfg: Stage1Config, accelerator=None, resume: str = "auto") -> None:

        self.cfg = cfg
        self.acc = accelerator or Accelerator(cpu=not torch.cuda.is_available(), mixed_precision=cfg.mixed_precision)
        self.device = self.acc.device
        self.out = Path(cfg.out_dir)
        with torch.random.fork_rng(devices=[]):  # identical initial E0 on every process; the caller's RNG is untouched
            torch.manual_seed(cfg.seed)
            self.backbone = load_backbone(cfg.generator, self.device)
            self.sampler = PseudoPairSampler(
                self.backbone,
                PosePrior(cfg.yaw_std, cfg.pitch_std, cfg.yaw_max, cfg.pitch_max),
                cfg.truncation_psi,
                cfg.neural_rendering_resolution,
                cfg.num_surface_points,
                cfg.num_near_points,
                cfg.near_std,
            )
            self.weights = cfg.effective_weights()
            self.lpips = make_lpips(cfg.lpips, self.device) if (self.weights.lpips > 0) else None
            self.identity = (
                make_identity(cfg.identity, self.device)
                if (self.weights.id > 0 or self.weights.multiview_id > 0)
                else None
            )
            self.rec_loss = ReconstructionLoss(self.weights, self.lpips, self.identity)
            self.real = make_real_source(cfg.real_data, self.backbone.image_resolution, cfg)
            E = build_encoder(cfg, self.backbone)
        if not E.predicts_pose and (
            cfg.real_data is not None or cfg.render_with_predicted_pose or self.weights.multiview_id > 0
        ):
            raise OptionError(
                f"the {self.backbone.name} E0 predicts no pose (its bundle's pose estimator does), so real_data, "
                "render_with_predicted_pose and multiview_id are not available; leave them off"
            )
        opt = torch.optim.Adam(E.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
        self.E, self.opt = self.acc.prepare(E, opt)
        # Each process draws its own stream; seeds differ by rank so processes see different pairs.
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + 1 + self.acc.process_index)
        self.step = 0
        options = {k: v for k, v in cfg.to_dict().items() if k not in RUN_ONLY_OPTIONS}
        self.loop = TrainingLoop(
            self,
            LoopOptions(
                cfg.out_dir,
                cfg.steps,
                options,
                seed=cfg.seed,
                checkpoint_every=cfg.checkpoint_every,
                resume=resume,
                desc=f"stage1 {cfg.method}",
                postfix=("total", "code", "geo"),
                tensorboard=cfg.tensorboard,
                threads=cfg.threads,
                device=self.device,
            ),
            self.acc,
        )
        self.loop.resume()
        if self.acc.is_main_process:
            write_json(self.out / "config.json", cfg.to_dict())

    # ------------------------------------------------------------------ one step
    def encode(self, images: torch.Tensor) -> EncoderOutput:
        out = self.E(images)
        if self.cfg.method == "e4e":
            out.ws = progressive_ws(out.ws, self.step, self.cfg.e4e_progressive_every)
        return out

    def render(self, ws: torch.Tensor, camera: Camera, scene) -> View:
        """A training render of ``ws`` (whose scene is ``scene``) at ``camera``, with random ray jitter from the run's stream."""
        gen = torch.Generator(device=self.device).manual_seed(int(torch.randint(0, 2**62, (1,), generator=self.gen)))
        return self.backbone.render(
            ws, scene, camera, "full", neural_resolution=self.cfg.neural_rendering_resolution, jitter=gen
        )

    def pose_camera(self, pose: torch.Tensor) -> Camera:
        return self.backbone.camera(pose[:, 0], pose[:, 1])

    def synthetic_losses(self, batch: PseudoPairBatch) -> dict[str, torch.Tensor]:
        """All terms for a pseudo-pair batch (E3DGE Eq. 3-6 + L_code + L_pose + L_rec)."""
        w, cfg = self.weights, self.cfg
        enc = self.encode(batch.image)
        use_pred = cfg.render_with_predicted_pose and cfg.method == "e3dge"
        scene = self.backbone.scene(enc.ws)
        out = self.render(enc.ws, self.pose_camera(enc.pose) if use_pred else batch.camera, scene)
        terms = self._rec_terms(out, batch.image, batch.image_raw)
        terms["code"] = code_loss(enc.ws, batch.ws)
        total = terms["rec"] + w.raw * terms["rec_raw"] + w.code * terms["code"]
        if enc.pose is not None:
            terms["pose"] = pose_loss(enc.pose, batch.pose)
            total = total + w.pose * terms["pose"]
        if w.geo_surface_density > 0 or w.geo_surface_depth > 0 or w.geo_near_density > 0:
            depth = self.render(enc.ws, batch.camera, scene).depth if use_pred else out.depth
            s = self.backbone.field(enc.ws, scene, batch.surface_points, colour=False).occupancy
            n = self.backbone.field(enc.ws, scene, batch.near_points, colour=False).occupancy
            terms.update(
                geometry_loss(s, batch.surface_occupancy, depth, batch.depth, batch.mask, n, batch.near_occupancy, w)
            )
            total = total + terms["geo"]
        if w.delta_reg > 0:
            terms["delta_reg"] = delta_regularization(enc.ws)
            total = total + w.delta_reg * terms["delta_reg"]
        total = total + self._multiview_id(enc, scene, batch.image, terms)
        terms["total"] = total + (
            0.0 * enc.pose.sum() if enc.pose is not None else 0.0
        )  # every parameter takes part (DDP)
        return terms

    def real_losses(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """PREIM3D's real batch: no labels, so reconstruct at the predicted pose (L_rec + multi-view ID)."""
        enc = self.encode(images)
        scene = self.backbone.scene(enc.ws)
        out = self.render(enc.ws, self.pose_camera(enc.pose), scene)
        raw_target = torch.nn.functional.interpolate(
            images, size=out.image_raw.shape[-2:], mode="bilinear", align_corners=False, antialias=True
        )
        terms = self._rec_terms(out, images, raw_target)
        total = terms["rec"] + self.weights.raw * terms["rec_raw"] + self._multiview_id(enc, scene, images, terms)
        terms["total"] = total + 0.0 * enc.ws.sum()
        return terms

    def _rec_terms(self, out: View, image: torch.Tensor, image_raw: torch.Tensor) -> dict[str, torch.Tensor]:
        sr = self.rec_loss(out.image, image)
        raw = self.rec_loss(out.image_raw, image_raw)
        return {**sr, "rec_raw": raw["rec"]}

    def _multiview_id(self, enc: EncoderOutput, scene, images: torch.Tensor, terms: dict) -> torch.Tensor:
        if self.weights.multiview_id <= 0 or self.identity is None:
            return torch.zeros((), device=self.device)
        n = images.shape[0]
        d = (torch.rand(n, 2, generator=self.gen) * 2 - 1) * torch.tensor(
            [self.cfg.multiview_yaw, self.cfg.multiview_yaw / 2]
        )
        near = enc.pose.detach().cpu() + d
        terms["multiview_id"] = multiview_identity_loss(
            lambda cam: self.render(enc.ws, cam, scene).image, images, self.pose_camera(near), self.identity
        )
        return self.weights.multiview_id * terms["multiview_id"]

    def train_step(self) -> dict[str, float]:
        """One optimisation step; returns the logged floats."""
        real_step = self.real is not None and self.step % self.cfg.real_every == self.cfg.real_every - 1
        self.E.train()
        if real_step:
            terms = self.real_losses(self.real.sample(self.cfg.batch_size, self.gen).to(self.device))
        else:
            terms = self.synthetic_losses(self.sampler.sample(self.cfg.batch_size, self.gen))
        self.opt.zero_grad(set_to_none=True)
        self.acc.backward(terms["total"])
        self.opt.step()
        self.step += 1
        row = {k: float(v.detach()) for k, v in terms.items()}
        return {"step": self.step, "kind": "real" if real_step else "synthetic", **row}

    # ------------------------------------------------------------------ the loop's task interface
    def fit(self, progress: bool = True, stop_at: int | None = None) -> torch.nn.Module:
        """Train to ``cfg.steps`` (or ``stop_at``), checkpointing and logging; returns the unwrapped encoder."""
        self.loop.opts.progress = progress
        self.loop.run(stop_at=stop_at)
        return self.acc.unwrap_model(self.E)

    def state_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.acc.unwrap_model(self.E).state_dict(),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.acc.unwrap_model(self.E).load_state_dict(state["encoder"])
        restore_optimizer(self.opt, state["optimizer"])
        self.step = int(state["step"])

    def rng_state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}

    def load_rng_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])

    def after_step(self, is_main: bool) -> None:
        if is_main and self.step % self.cfg.sample_every == 0:
            self.save_samples()

    def finish(self, out_dir: Path) -> None:
        E = self.acc.unwrap_model(self.E).eval()
        E.save_pretrained(out_dir / "final")

    @torch.no_grad()
    def save_samples(self, num: int = 4) -> Path:
        """Grid: input | reconstruction | depth (pred) | depth (pseudo GT) | novel view, for fixed held-out pairs."""
        E = self.acc.unwrap_model(self.E)
        was_training = E.training
        batch = self.sampler.sample(num, torch.Generator().manual_seed(987654))
        path = self.out / "samples" / f"step_{self.step:06d}.png"
        sample_grid(E.eval(), self.backbone, batch, path, self.cfg.neural_rendering_resolution)
        E.train(was_training)
        return path


def train_stage1(
    cfg: Stage1Config, progress: bool = True, stop_at: int | None = None, resume: str = "auto"
) -> torch.nn.Module:
    """Train (or resume from ``out_dir/checkpoint.safetensors``) and write ``out_dir/final`` (config.json + safetensors)."""
    return Stage1Trainer(cfg, resume=resume).fit(progress=progress, stop_at=stop_at)


def config_summary(cfg: Stage1Config) -> str:
    """One line for logs: method and the active loss weights."""
    w = asdict(cfg.effective_weights())
    return f"{cfg.method}: " + ", ".join(f"{k}={v:g}" for k, v in w.items() if v)
