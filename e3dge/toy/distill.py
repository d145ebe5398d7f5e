"""Distil a tiny EG3D from the procedural heads: G(z) ~ head(z) at random cameras.

Regression, not a GAN: for fresh latents z and random cameras, the generator's raw render, its
super-resolved image, its depth, its opacity and its density at sampled points are pulled
towards the exact procedural answers. The mapping is conditioned the EG3D way but with
``c_gen_conditioning_zero=True``, so w depends on z only (a clean W space for editing).
:class:`DistillTask` is a task of the one training loop (:mod:`e3dge.training.loop`), which owns
checkpoints (safetensors + JSON), exact resume, logs and the progress bar.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from e3dge.backbones.eg3d.network import FFHQ_RENDERING_KWARGS, TriPlaneGenerator, estimate_w_avg
from e3dge.backbones.ops import device_generator, normalize_2nd_moment
from e3dge.backbones.output import GeneratorOutput
from e3dge.core.cameras import label_from_yaw_pitch, split_label
from e3dge.core.files import write_json
from e3dge.core.options import OptionError, check_range
from e3dge.rendering.volume import render_rays, sample_from_planes, sample_rays
from e3dge.toy.heads import HeadFactorMap, density_from_sdf, sdf_at
from e3dge.toy.render import render_heads
from e3dge.training.checkpoint import load_checkpoint, restore_optimizer
from e3dge.training.loop import LOG, LoopOptions, TrainingLoop, read_log, restored_threads

__all__ = [
    "TOY_SIZES",
    "toy_eg3d_config",
    "random_cameras",
    "render_for_training",
    "export_checkpoint",
    "DistillConfig",
    "DistillLoss",
    "LossTerms",
    "WeightAverage",
    "learning_rate",
    "parent_recipe",
    "training_recipe",
    "DistillTask",
    "train_generator",
]


TOY_SIZES = {
    # name: (w_dim, channel_max, decoder_hidden, mapping layers)
    "small": (64, 64, 32, 2),  # the v1/v2 shipped generator: ~1.9 it/s on 2 CPU threads
    "wide": (128, 128, 64, 4),  # ~18 % lower image error per step in a CPU pilot, ~1.5 it/s on 2 CPU threads
}
"""Widths of the toy EG3D; everything else (planes, rendering, SR) is shared."""


def toy_eg3d_config(z_dim: int = 32, size: str = "small") -> dict:
    """Constructor kwargs of the toy EG3D: 64x64x16 planes, neural rendering 64 (trained at 32), SR to 128."""
    if size not in TOY_SIZES:
        raise ValueError(f"unknown toy EG3D size {size!r}; choose one of {sorted(TOY_SIZES)}")
    w_dim, channel_max, decoder_hidden, mapping_layers = TOY_SIZES[size]
    rendering = dict(
        FFHQ_RENDERING_KWARGS,
        image_resolution=128,
        superresolution_module="SuperresolutionHybrid2X",
        c_gen_conditioning_zero=True,  # w depends on z only
        depth_resolution=24,
        depth_resolution_importance=24,
    )
    return {
        "z_dim": z_dim,
        "w_dim": w_dim,
        "c_dim": 25,
        "img_resolution": 128,
        "img_channels": 3,
        "mapping_kwargs": {
            "num_layers": mapping_layers,
            "lr_multiplier": 0.1,
        },  # EG3D: 0.01; regression tolerates faster
        "rendering_kwargs": rendering,
        "sr_kwargs": {"width": 16},
        "channel_base": 2048,
        "channel_max": channel_max,
        "neural_rendering_resolution": 64,
        "plane_projection": "orthogonal",
        "plane_resolution": 64,
        "plane_channels": 16,
        "decoder_hidden": decoder_hidden,
    }


def random_cameras(
    n: int, generator: torch.Generator, yaw_range: float = 0.7, pitch_range: float = 0.3
) -> torch.Tensor:
    """Labels ``[n, 25]`` with yaw ~ U(+-yaw_range), pitch ~ U(+-pitch_range) (radians)."""
    yaw = (torch.rand(n, generator=generator) * 2 - 1) * yaw_range
    pitch = (torch.rand(n, generator=generator) * 2 - 1) * pitch_range
    return label_from_yaw_pitch(yaw, pitch)


@dataclass
class DistillConfig:
    """Training options (units in comments)."""

    out_dir: str = "outputs/toy-eg3d"
    steps: int = 3000  # optimisation steps
    batch_size: int = 8  # heads per step (each at its own random camera)
    lr: float = 2e-3  # Adam learning rate (cosine decay to lr_final_ratio * lr)
    lr_final_ratio: float = 0.05
    seed: int = 0  # seeds the initial weights and the stream of z / cameras
    train_resolution: int = 32  # neural rendering resolution while training (pixels)
    target_resolution: int = 64  # procedural target size (pixels); SR output is average-pooled to it
    depth_samples: int = 16  # coarse samples per ray while training
    importance_samples: int = 16  # fine samples per ray while training
    points_per_head: int = 2048  # density supervision points per head
    w_image: float = 1.0  # L1 on image_raw (values in [-1, 1])
    w_sr: float = 0.5  # L1 on the super-resolved image pooled to target_resolution
    w_depth: float = 4.0  # L1 on depth (world units) where the head covers the pixel
    w_mask: float = 1.0  # L1 on accumulated opacity
    w_density: float = 0.2  # L1 on log(1 + density) at sampled points
    w_probe: float = 0.5  # MSE of a linear probe w -> factor scores (keeps W linear in the attributes)
    ray_subset_every: int = 2  # every k-th step: raw render at random rays of the target grid (full-res detail, no SR)
    sdf_beta: float = 0.01  # density target sigmoid(-sdf / beta) / beta (world units)
    yaw_range: float = 0.7  # radians
    pitch_range: float = 0.3  # radians
    checkpoint_every: int = 100  # steps
    threads: int = 2  # torch CPU threads
    z_dim: int = 32
    size: str = "small"  # a key of TOY_SIZES
    device: str = "cpu"  # "cpu", "cuda", "cuda:1", or "auto" (CUDA when available); random draws stay on a CPU stream
    average_from: int = (
        0  # > 0: the exported weights are the mean of the weights at steps >= this that are multiples of average_every
    )
    average_every: int = 100  # steps between averaged snapshots (weight averaging smooths the last steps' SGD noise)
    init_from: str | None = (
        None  # a saved generator folder (config.json + model.safetensors) to fine-tune; fresh optimizer, probe fitted to it
    )
    warmup_steps: int = 0  # linear learning-rate warm-up (a fresh Adam on trained weights takes full-size first steps)

    def __post_init__(self) -> None:
        if self.size not in TOY_SIZES:
            raise OptionError(f"unknown toy EG3D size {self.size!r}; choose one of {sorted(TOY_SIZES)}")
        if self.warmup_steps < 0:
            raise OptionError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.average_every < 1 or self.average_from < 0:
            raise OptionError(
                f"average_every must be >= 1 and average_from >= 0 (0 = no averaging), got {self.average_every} and {self.average_from}"
            )
        for f in fields(self):
            if f.name in DISTILL_RANGES:
                check_range(f.name, getattr(self, f.name), *DISTILL_RANGES[f.name], integer=f.type == "int")
        if self.target_resolution % self.train_resolution:
            raise OptionError(
                f"target_resolution ({self.target_resolution}) must be a multiple of train_resolution ({self.train_resolution})"
            )


DISTILL_RANGES: dict[str, tuple[float, float]] = {
    "steps": (1, 10**8),
    "batch_size": (1, 1024),
    "lr": (0.0, 1.0),
    "lr_final_ratio": (0.0, 1.0),
    "seed": (0, 2**31 - 1),
    "train_resolution": (4, 256),
    "target_resolution": (4, 512),
    "depth_samples": (1, 256),
    "importance_samples": (0, 256),
    "points_per_head": (2, 10**6),
    "w_image": (0.0, 1e6),
    "w_sr": (0.0, 1e6),
    "w_depth": (0.0, 1e6),
    "w_mask": (0.0, 1e6),
    "w_density": (0.0, 1e6),
    "w_probe": (0.0, 1e6),
    "ray_subset_every": (0, 10**6),
    "sdf_beta": (1e-6, 1.0),
    "yaw_range": (0.0, 3.2),
    "pitch_range": (0.0, 1.6),
    "checkpoint_every": (1, 10**8),
    "threads": (0, 1024),
    "z_dim": (1, 4096),
    "average_from": (0, 10**8),
    "average_every": (1, 10**8),
    "warmup_steps": (0, 10**8),
}
"""Accepted ranges of the distillation's numeric options (inclusive)."""

RUN_ONLY_OPTIONS = ("out_dir", "threads", "checkpoint_every", "device")
"""Options that change how a run is carried out, not what it computes: free to differ on resume."""


@dataclass
class LossTerms:
    """One step's losses (floats)."""

    total: float
    image: float
    sr: float
    depth: float
    mask: float
    density: float
    probe: float


class DistillLoss:
    """Regression of a generator's renders and density onto the procedural heads."""

    def __init__(self, cfg: DistillConfig, factor_map: HeadFactorMap, w_dim: int):
        self.cfg, self.factor_map = cfg, factor_map
        self.probe = torch.nn.Linear(w_dim, factor_map.rows.shape[0])  # trained with G; not part of it

    def __call__(
        self,
        G: TriPlaneGenerator,
        z: torch.Tensor,
        c: torch.Tensor,
        gen: torch.Generator,
        step: int = 0,
        render_gen: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, LossTerms]:
        """Loss for latents ``z`` at cameras ``c`` (both on G's device).

        ``gen`` is a CPU generator for the sampled rays and points; ``render_gen`` (on G's device,
        default ``gen``) drives the renderer's stratified samples and the SR noise.
        """
        cfg = self.cfg
        dev = z.device
        render_gen = gen if render_gen is None else render_gen
        factors = self.factor_map.factors(z)
        target = render_heads(factors, c, cfg.target_resolution)
        ws = G.mapping(z, c)
        n = z.shape[0]
        zero = torch.zeros((), device=dev)
        if cfg.ray_subset_every > 0 and step % cfg.ray_subset_every == cfg.ray_subset_every - 1:
            # As many rays as a train_resolution render, drawn from the full target grid.
            rays = (
                torch.rand(n, cfg.target_resolution**2, generator=gen).argsort(1)[:, : cfg.train_resolution**2].to(dev)
            )
            out = render_for_training(
                G, ws, c, cfg.target_resolution, render_gen, rays=rays, rendering_kwargs=self.rendering_kwargs(G)
            )

            def pick(x: torch.Tensor) -> torch.Tensor:
                flat = x.flatten(2)
                return torch.gather(flat, 2, rays[:, None].expand(-1, flat.shape[1], -1))

            tgt_img, tgt_mask, tgt_depth = pick(target.image), pick(target.mask), pick(target.depth)
            full = tgt_mask
            l_sr = zero
        else:
            k = cfg.target_resolution // cfg.train_resolution
            tgt_img = F.avg_pool2d(target.image, k)
            tgt_mask = F.avg_pool2d(target.mask, k)
            full = -F.max_pool2d(-target.mask, k)  # 1 where the head covers the whole pixel
            tgt_depth = F.avg_pool2d(target.depth, k)
            out = render_for_training(
                G, ws, c, cfg.train_resolution, render_gen, rendering_kwargs=self.rendering_kwargs(G)
            )
            l_sr = (F.adaptive_avg_pool2d(out.image, cfg.target_resolution) - target.image).abs().mean()
        l_img = (out.image_raw - tgt_img).abs().mean()
        l_depth = ((out.depth - tgt_depth).abs() * full).sum() / full.sum().clamp_min(1)
        l_mask = (out.mask - tgt_mask).abs().mean()
        # The factors before the normal CDF, computed from z as the mapping sees it (scaled to unit
        # second moment): the sign of each score (e.g. glasses on/off) is unchanged, and the
        # target becomes exactly linear in the mapping's input.
        l_probe = F.mse_loss(self.probe(ws[:, 0]), self.probe_targets(z))

        pts = self._points(target, c, gen)
        with torch.no_grad():
            tgt_density = density_from_sdf(sdf_at(factors, pts), cfg.sdf_beta)
        sigma = G.query_points(None, pts, planes=out.planes).sigma[..., 0]
        l_dens = (torch.log1p(F.softplus(sigma - 1)) - torch.log1p(tgt_density)).abs().mean()

        total = (
            cfg.w_image * l_img
            + cfg.w_sr * l_sr
            + cfg.w_depth * l_depth
            + cfg.w_mask * l_mask
            + cfg.w_density * l_dens
            + cfg.w_probe * l_probe
        )
        terms = LossTerms(*(float(v.detach()) for v in (total, l_img, l_sr, l_depth, l_mask, l_dens, l_probe)))
        return total, terms

    def rendering_kwargs(self, G: TriPlaneGenerator) -> dict:
        """G's rendering options with the training sample counts (a copy: G is left as it is)."""
        return {
            **G.rendering_kwargs,
            "depth_resolution": self.cfg.depth_samples,
            "depth_resolution_importance": self.cfg.importance_samples,
        }

    def probe_targets(self, z: torch.Tensor) -> torch.Tensor:
        """The factor scores before the normal CDF, from z as the mapping sees it: ``[N, factors]``."""
        return normalize_2nd_moment(z.float()) @ self.factor_map.rows.T.to(z.device)

    @torch.no_grad()
    def fit_probe(self, G: TriPlaneGenerator, n: int = 4096, seed: int = 0) -> float:
        """Least-squares fit of the probe to a trained G's W (fine-tunes start from it, not from noise); returns the MSE."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, G.z_dim, generator=gen)
        dev = next(G.parameters()).device
        w = G.mapping(z.to(dev), torch.zeros(n, G.c_dim, device=dev))[:, 0].cpu().double()
        scores = self.probe_targets(z).double()
        design = torch.cat([w, torch.ones(n, 1, dtype=w.dtype)], 1)
        coef = torch.linalg.lstsq(design, scores).solution  # [w_dim + 1, factors]
        self.probe.weight.copy_(coef[:-1].T.float())
        self.probe.bias.copy_(coef[-1].float())
        return float(((design @ coef - scores) ** 2).mean())

    def _points(self, target, c: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Half uniform in the box, half jittered around visible surface points: ``[N, M, 3]``."""

        n, m, dev = c.shape[0], self.cfg.points_per_head, c.device
        uniform = (torch.rand(n, m // 2, 3, generator=gen) - 0.5).to(dev)
        cam2world, intr = split_label(c)
        o, d = sample_rays(cam2world, intr, self.cfg.target_resolution)
        surf = o + target.depth.reshape(n, -1, 1).clamp(max=3.3) * d  # background points lie at ray_end
        weights = target.mask.reshape(n, -1).cpu() + 0.02  # drawn on the CPU stream, so CPU and GPU runs share it
        idx = torch.multinomial(weights, m - m // 2, replacement=True, generator=gen).to(dev)
        jitter = 0.02 * torch.randn(n, m - m // 2, 3, generator=gen).to(dev)
        near = torch.gather(surf, 1, idx[..., None].expand(-1, -1, 3)) + jitter
        return torch.cat([uniform, near], 1).clamp(-0.5, 0.5)


def render_for_training(
    G: TriPlaneGenerator,
    ws: torch.Tensor,
    c: torch.Tensor,
    res: int,
    gen: torch.Generator,
    sigma_floor: float = -10.0,
    rays: torch.Tensor | None = None,  # [N, R] pixel indices into the res x res grid: render only those, no SR
    rendering_kwargs: dict | None = None,  # G.rendering_kwargs with training overrides (G itself is not changed)
) -> GeneratorOutput:
    """``G.synthesis`` with the raw density floored at ``sigma_floor`` (a density of about 1.7e-5).

    Same cameras, sampler and compositing as synthesis; the floor keeps every ray's total weight
    above zero, because EG3D's expected depth ``sum(w d) / sum(w)`` has a NaN gradient where the
    total weight underflows to 0 (empty background rays late in training).
    """
    cam2world, intrinsics = c[:, :16].view(-1, 4, 4), c[:, 16:25].view(-1, 3, 3)
    origins, directions = sample_rays(cam2world, intrinsics, res)
    if rays is not None:
        origins = torch.gather(origins, 1, rays[..., None].expand(-1, -1, 3))
        directions = torch.gather(directions, 1, rays[..., None].expand(-1, -1, 3))
    planes = G.planes(ws)
    box_warp = G.rendering_kwargs["box_warp"]

    def field(points: torch.Tensor, _dirs: torch.Tensor):
        feats = sample_from_planes(G._plane_axes, planes, points, box_warp).mean(1)
        rgb, sigma = G.decoder(feats)
        return rgb, sigma.clamp_min(sigma_floor)

    r = render_rays(
        field, origins, directions, rendering_kwargs or G.rendering_kwargs, deterministic=False, generator=gen
    )
    n = origins.shape[0]
    if rays is not None:  # per-ray results as [N, C, R]; no SR, so image is the raw colour
        features = r.features.permute(0, 2, 1)
        return GeneratorOutput(
            image=features[:, :3],
            image_raw=features[:, :3],
            depth=r.depth.permute(0, 2, 1),
            mask=r.weight_total.permute(0, 2, 1),
            features=features,
            planes=planes,
        )
    feature_image = r.features.permute(0, 2, 1).reshape(n, -1, res, res)
    image = G.superresolution(
        feature_image[:, :3],
        feature_image,
        ws,
        noise_mode=G.rendering_kwargs["superresolution_noise_mode"],
        generator=gen,
    )
    return GeneratorOutput(
        image=image,
        image_raw=feature_image[:, :3],
        depth=r.depth.permute(0, 2, 1).reshape(n, 1, res, res),
        mask=r.weight_total.permute(0, 2, 1).reshape(n, 1, res, res),
        features=feature_image,
        planes=planes,
    )


class WeightAverage:
    """Uniform average of a model's floating-point weights over snapshots (sum kept in float64, resumable)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            if v.is_floating_point():
                v = v.detach().cpu().double()
                self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1

    def mean(self) -> dict[str, torch.Tensor]:
        """The averaged floating-point entries as float32 (merge into a full state dict to load)."""
        return {k: (v / self.count).float() for k, v in self.sums.items()}

    def state_dict(self) -> dict:
        return {"sums": self.sums, "count": self.count}

    def load_state_dict(self, state: dict | None) -> None:
        self.sums, self.count = ({}, 0) if state is None else (state["sums"], state["count"])


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other names must be usable here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} asked but this torch has no CUDA device; use --device cpu (or auto)")
    return device


def _cpu(state: dict) -> dict:
    """A state dict with every tensor on the CPU (checkpoints resume on any device)."""
    return {k: v.detach().cpu() if isinstance(v, torch.Tensor) else v for k, v in state.items()}


def parent_recipe(init_from: str | None) -> dict | None:
    """The train_config.json saved next to the generator a run fine-tunes, if there is one (a mapping, else an error)."""
    path = Path(init_from) / "train_config.json" if init_from else None
    if path is None or not path.is_file():
        return None
    try:
        recipe = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise OptionError(f"{path}: not valid JSON ({str(err).splitlines()[0]}); fix or remove it") from None
    if not isinstance(recipe, dict):
        raise OptionError(f"{path}: a training recipe must be a mapping, got {type(recipe).__name__}; fix or remove it")
    return recipe


def training_recipe(cfg: DistillConfig) -> dict:
    """``cfg`` as a dict, with the recipe of the generator it fine-tunes as ``parent``."""
    parent = parent_recipe(cfg.init_from)
    return {**asdict(cfg), **({"parent": parent} if parent else {})}


def learning_rate(cfg: DistillConfig, step: int) -> float:
    """Cosine decay from ``lr`` to ``lr * lr_final_ratio`` over the run, after an optional linear warm-up."""
    lr = cfg.lr * (cfg.lr_final_ratio + (1 - cfg.lr_final_ratio) * 0.5 * (1 + math.cos(math.pi * step / cfg.steps)))
    return lr * min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else lr


class DistillTask:
    """The toy distillation as a :class:`~e3dge.training.loop.TrainingTask`: G, its probe, Adam and the z/camera stream."""

    def __init__(self, cfg: DistillConfig) -> None:
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        with torch.random.fork_rng(devices=[]):  # seeded initial weights; the caller's RNG is untouched
            torch.manual_seed(cfg.seed)
            G = TriPlaneGenerator(**toy_eg3d_config(cfg.z_dim, cfg.size)).train()
            if cfg.init_from is not None:  # fine-tune: start from saved weights (a resumed checkpoint still wins)
                G.load_state_dict(TriPlaneGenerator.from_pretrained(cfg.init_from, local_files_only=True).state_dict())
                G.requires_grad_(True)
            self.loss = DistillLoss(cfg, HeadFactorMap(cfg.z_dim), G.w_dim)
        self.G = G.to(self.device)
        self.loss.probe.to(self.device)
        self.opt = torch.optim.Adam([*self.G.parameters(), *self.loss.probe.parameters()], lr=cfg.lr, betas=(0.9, 0.99))
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.average = WeightAverage()
        self.step = 0

    def start_fresh(self) -> None:
        """A fresh fine-tune: the probe starts fitted to the loaded G's W, not from noise."""
        if self.cfg.init_from is not None:
            self.loss.fit_probe(self.G, seed=self.cfg.seed + 2)

    def train_step(self) -> dict[str, Any]:
        cfg, device = self.cfg, self.device
        for group in self.opt.param_groups:
            group["lr"] = learning_rate(cfg, self.step)
        z = torch.randn(cfg.batch_size, cfg.z_dim, generator=self.gen).to(device)
        c = random_cameras(cfg.batch_size, self.gen, cfg.yaw_range, cfg.pitch_range).to(device)
        render_gen = self.gen if device.type == "cpu" else device_generator(self.gen, device)
        loss, terms = self.loss(self.G, z, c, self.gen, self.step, render_gen)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return {"step": self.step, **asdict(terms)}

    def after_step(self, is_main: bool) -> None:
        if 0 < self.cfg.average_from <= self.step and self.step % self.cfg.average_every == 0:
            self.average.add(self.G.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": _cpu(self.G.state_dict()),
            "probe": _cpu(self.loss.probe.state_dict()),
            "optimizer": self.opt.state_dict(),
            "step": self.step,
            "size": self.cfg.size,
            "z_dim": self.cfg.z_dim,
            "average": self.average.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("size", "small") != self.cfg.size:
            raise OptionError(
                f"{self.cfg.out_dir} holds a {state.get('size')!r} generator but size={self.cfg.size!r} was asked; "
                "use the same --size or another --out folder"
            )
        self.G.load_state_dict(state["model"])
        self.loss.probe.load_state_dict(state["probe"])
        restore_optimizer(self.opt, state["optimizer"])
        self.average.load_state_dict(state["average"])
        self.step = int(state["step"])

    def rng_state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}

    def load_rng_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])

    def finish(self, out_dir: Path) -> None:
        recipe = training_recipe(self.cfg)
        self.G = _finish(self.G, self.average)
        self.G.cpu().save_pretrained(out_dir / "final")
        write_json(out_dir / "final" / "train_config.json", recipe)  # travels with the weights
        write_json(out_dir / "history.json", read_log(out_dir / LOG), indent=None)


def train_generator(
    cfg: DistillConfig, progress: bool = True, stop_at: int | None = None, resume: str = "auto"
) -> TriPlaneGenerator:
    """Train (or resume from ``out_dir/checkpoint.safetensors``) and save ``out_dir/final`` as config.json + safetensors.

    ``stop_at`` ends the session early at that step (checkpointed, schedule unchanged); rerun to resume.
    ``resume``: ``"auto"`` (same options only), ``"override"`` or ``"restart"`` (see :class:`~e3dge.training.loop.LoopOptions`).
    """
    with restored_threads(cfg.threads):
        task = DistillTask(cfg)
        options = {k: v for k, v in asdict(cfg).items() if k not in RUN_ONLY_OPTIONS}
        loop = TrainingLoop(
            task,
            LoopOptions(
                cfg.out_dir,
                cfg.steps,
                options,
                seed=cfg.seed,
                checkpoint_every=cfg.checkpoint_every,
                resume=resume,
                progress=progress,
                desc="toy distill",
                postfix=("image", "depth", "density"),
                threads=cfg.threads,
                device=task.device,
            ),
        )
        if loop.resume() == 0:
            task.start_fresh()
        write_json(Path(cfg.out_dir) / "train_config.json", training_recipe(cfg))
        loop.run(stop_at=stop_at)
    return task.G.eval()


def export_checkpoint(checkpoint: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write a training checkpoint's generator as config.json + model.safetensors (inference settings)."""
    state = load_checkpoint(checkpoint)["task"]
    G = TriPlaneGenerator(**toy_eg3d_config(int(state["z_dim"]), str(state["size"])))
    G.load_state_dict(state["model"])
    average = WeightAverage()
    average.load_state_dict(state["average"])
    return _finish(G, average).save_pretrained(out_dir)


def _finish(G: TriPlaneGenerator, average: WeightAverage) -> TriPlaneGenerator:
    """Inference-ready weights: the run's weight average when it kept one, then the mean latent.

    Regression never tracks ``w_avg``; truncation and encoders need it, so it is estimated here.
    """
    if average.count:
        G.load_state_dict({**G.state_dict(), **average.mean()})
    G.eval().requires_grad_(False)
    G.backbone.mapping.w_avg.copy_(estimate_w_avg(G))
    return G
