"""Stage II in the toy lab: train the local branch (E1, E_ADA, fusion) with E0 and the generator frozen.

Each step draws procedural photo-like heads (the toy lab's domain gap: E0 cannot hold their
texture), shows one view to E0, and renders a query view — a novel view with probability
``novel_view_prob``, else the input view — whose exact target is the procedural render of the same
head there (the paper's novel-view cycle, with ground truth instead of a partner sample). The input
camera is E0's estimate, as at inference. Losses: MSE of the modulated raw render to the target +
``residual_weight`` x L1 of E_ADA's residual to the target's residual at the query view (paper's
res loss). :class:`Stage2Trainer` is a task of the one training loop (checkpoints, resume, logs).
The adversarial term of stage 2.2 and LPIPS/ID are not used in the toy preset (see the README).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from e3dge.cameras import label_from_yaw_pitch
from e3dge.encoders.aligner import ResidualAligner
from e3dge.encoders.fusion import FeatureFusion
from e3dge.encoders.hybrid import ALIGNMENTS, LocalBranch, ViewRender
from e3dge.encoders.local import LocalEncoder
from e3dge.encoders.pixel_aligned import VISIBILITY_MODES
from e3dge.errors import UserError
from e3dge.training.loop import LoopOptions, TrainingLoop

__all__ = ["Stage2Config", "STAGE2_PRESETS", "load_stage2_config", "Stage2Trainer", "train_stage2", "build_branch"]


@dataclass
class Stage2Config:
    """Options of a Stage II run (``out_dir``, ``threads``, ``checkpoint_every`` and ``sample_every`` do not define the run)."""

    out_dir: str = "outputs/stage2-toy"
    steps: int = 400
    batch_size: int = 4
    seed: int = 0
    alignment: str = "hybrid"
    visibility: str = "in_image"
    render_resolution: int = 32  # raw render size during training
    ray_samples: int = 12  # coarse and importance samples per ray during training
    local_resolution: int = 64  # E1 / E_ADA input size
    stem_width: int = 8
    width: int = 32
    num_stack: int = 1
    depth: int = 2
    groups: int = 4
    aligner_widths: tuple[int, ...] = (8, 16, 16, 16)
    lr_local: float = 5e-4
    lr_aligner: float = 1e-3
    lr_fusion: float = 1e-3
    residual_weight: float = 1.0
    novel_view_prob: float = 0.5
    yaw_range: float = 0.4
    pitch_range: float = 0.2
    query_yaw_range: float = 0.6
    checkpoint_every: int = 50
    sample_every: int = 100
    threads: int = 0

    def __post_init__(self) -> None:
        checks = [("steps", 1, 10**8), ("batch_size", 1, 256), ("render_resolution", 8, 512), ("ray_samples", 2, 256), ("local_resolution", 16, 1024),
                  ("stem_width", 2, 512), ("width", 8, 2048), ("num_stack", 1, 8), ("depth", 1, 6), ("groups", 1, 256), ("checkpoint_every", 1, 10**8),
                  ("sample_every", 1, 10**8), ("threads", 0, 256), ("seed", 0, 2**31 - 1)]  # fmt: skip
        for name, lo, hi in checks:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise UserError(f"stage2 option {name} must be an integer in [{lo}, {hi}], got {v!r}")
        for name in ("lr_local", "lr_aligner", "lr_fusion", "residual_weight", "novel_view_prob", "yaw_range", "pitch_range", "query_yaw_range"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0 or v > 10:
                raise UserError(f"stage2 option {name} must be a number in [0, 10], got {v!r}")
        if self.novel_view_prob > 1:
            raise UserError(f"stage2 option novel_view_prob must be in [0, 1], got {self.novel_view_prob}")
        if self.alignment not in ALIGNMENTS:
            raise UserError(f"stage2 option alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        if self.visibility not in VISIBILITY_MODES:
            raise UserError(f"stage2 option visibility must be one of {VISIBILITY_MODES}, got {self.visibility!r}")
        self.aligner_widths = tuple(self.aligner_widths)
        if len(self.aligner_widths) != 4 or not all(isinstance(v, int) and 1 <= v <= 1024 for v in self.aligner_widths):
            raise UserError(f"stage2 option aligner_widths must be 4 integers in [1, 1024], got {list(self.aligner_widths)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["aligner_widths"] = list(self.aligner_widths)
        return d


RUN_ONLY = ("out_dir", "threads", "checkpoint_every", "sample_every")
STAGE2_PRESETS: dict[str, dict[str, Any]] = {
    "toy": {},
    "tiny-test": {"out_dir": "outputs/stage2-tiny", "steps": 4, "batch_size": 2, "render_resolution": 16, "ray_samples": 6, "local_resolution": 32,
                  "checkpoint_every": 2, "sample_every": 1000},
}  # fmt: skip


def load_stage2_config(name_or_path: str, overrides: dict[str, Any] | None = None) -> Stage2Config:
    """A preset (``toy``, ``tiny-test``) or a JSON file, then ``overrides``; unknown keys are one-line errors with the valid names."""
    if name_or_path in STAGE2_PRESETS:
        base = dict(STAGE2_PRESETS[name_or_path])
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(f"{name_or_path}: not a preset ({', '.join(STAGE2_PRESETS)}) nor a JSON file")
        try:
            base = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise UserError(f"{path}: not valid JSON ({err})") from None
        if not isinstance(base, dict):
            raise UserError(f"{path}: must hold a JSON object of stage2 options")
    base.update(overrides or {})
    valid = {f.name for f in fields(Stage2Config)}
    unknown = sorted(set(base) - valid)
    if unknown:
        raise UserError(f"unknown stage2 option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}")
    return Stage2Config(**base)


def build_branch(cfg: Stage2Config, film_channels: int) -> LocalBranch:
    """The toy-sized E1 (FiLM width = the generator's colour features), E_ADA and fusion the alignment needs."""
    E1 = LocalEncoder(stem_width=cfg.stem_width, width=cfg.width, num_stack=cfg.num_stack, depth=cfg.depth, groups=cfg.groups, film_channels=film_channels,
                       input_size=cfg.local_resolution)
    head = E1.local_feat_to_tex_modulations_linear
    for layer in (head.fc_1, head.shortcut):  # start as the identity: E0's render, then learn the residual
        torch.nn.init.zeros_(layer.weight)
        if layer.bias is not None:
            torch.nn.init.zeros_(layer.bias)
    aligner = ResidualAligner(widths=cfg.aligner_widths) if cfg.alignment in ("2d", "hybrid") else None
    fusion = FeatureFusion(channels=cfg.width) if cfg.alignment == "hybrid" else None
    return LocalBranch(E1, aligner, fusion)


class Stage2Trainer:
    """Stage II as a :class:`~e3dge.training.loop.TrainingTask` (toy lab: procedural heads, exact novel-view targets)."""

    def __init__(self, cfg: Stage2Config, resume: str = "auto", generator=None, encoder=None) -> None:
        from e3dge.toy import HeadFactorMap, load_toy_encoder, load_toy_generator

        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.G = (generator or load_toy_generator()).eval().requires_grad_(False)
            self.E0 = (encoder or load_toy_encoder()).eval().requires_grad_(False)
            film = self.G.decoder.net[-1].weight.shape[0] - 1  # the decoder's colour features
            self.branch = build_branch(cfg, film)
        self.factors = HeadFactorMap(self.G.z_dim)
        groups = [{"params": self.branch.local_encoder.parameters(), "lr": cfg.lr_local}]
        if self.branch.aligner is not None:
            groups.append({"params": self.branch.aligner.parameters(), "lr": cfg.lr_aligner})
        if self.branch.fusion is not None:
            groups.append({"params": self.branch.fusion.parameters(), "lr": cfg.lr_fusion})
        self.opt = torch.optim.Adam(groups)
        self.gen = torch.Generator().manual_seed(cfg.seed * 1000 + 2)
        self.step = 0
        options = {k: v for k, v in cfg.to_dict().items() if k not in RUN_ONLY}
        self.loop = TrainingLoop(self, LoopOptions(cfg.out_dir, cfg.steps, options, seed=cfg.seed, checkpoint_every=cfg.checkpoint_every, resume=resume,
                                                   desc=f"stage2 {cfg.alignment}", postfix=("total", "mse"), threads=cfg.threads))  # fmt: skip
        self.loop.resume()
        (self.out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))

    # ------------------------------------------------------------------ data and renders
    def sample(self, n: int) -> dict[str, torch.Tensor]:
        """Heads, an input view and a query view (novel or the same), their photo renders."""
        from e3dge.toy import render_heads

        cfg, g = self.cfg, self.gen
        f = self.factors.factors(torch.randn(n, self.G.z_dim, generator=g))
        yaw = (torch.rand(n, generator=g) * 2 - 1) * cfg.yaw_range
        pitch = (torch.rand(n, generator=g) * 2 - 1) * cfg.pitch_range
        novel = torch.rand(n, generator=g) < cfg.novel_view_prob
        q_yaw = torch.where(novel, (torch.rand(n, generator=g) * 2 - 1) * cfg.query_yaw_range, yaw)
        q_pitch = torch.where(novel, (torch.rand(n, generator=g) * 2 - 1) * cfg.pitch_range, pitch)
        q_label = label_from_yaw_pitch(q_yaw, q_pitch)
        photo = render_heads(f, label_from_yaw_pitch(yaw, pitch), self.G.img_resolution, photo=True).image
        target = render_heads(f, q_label, cfg.render_resolution, photo=True).image
        return {"photo": photo, "target": target, "query_label": q_label, "novel": novel}

    def render(self, ws: torch.Tensor, label: torch.Tensor, planes: torch.Tensor, colour_hook=None):
        s = self.cfg.ray_samples
        return self.G.synthesis(ws, label, planes=planes, neural_rendering_resolution=self.cfg.render_resolution, deterministic=True,
                                superresolution=False, colour_hook=colour_hook, rendering_overrides={"depth_resolution": s, "depth_resolution_importance": s})  # fmt: skip

    def views(self, photo: torch.Tensor, query_label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, ViewRender, ViewRender]:
        """E0's code and planes, and its renders at the estimated input camera and at the query camera (no gradients)."""
        with torch.no_grad():
            enc = self.E0(photo)
            ref_label = label_from_yaw_pitch(enc.pose[:, 0], enc.pose[:, 1])
            planes = self.G.planes(enc.ws)
            ref, q = self.render(enc.ws, ref_label, planes), self.render(enc.ws, query_label, planes)
        return enc.ws, planes, ViewRender(ref.image_raw, ref.depth, ref_label), ViewRender(q.image_raw, q.depth, query_label)

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """MSE of the modulated query render + E_ADA's residual L1."""
        cfg = self.cfg
        ws, planes, ref, q = self.views(batch["photo"], batch["query_label"])
        maps = self.branch.prepare(batch["photo"], ref, q, cfg.alignment)
        out = self.render(ws, q.label, planes, self.branch.hook(maps, ref, q, cfg.visibility))
        terms = {"mse": F.mse_loss(out.image_raw, batch["target"]), "mse_e0": F.mse_loss(q.image, batch["target"])}
        total = terms["mse"]
        if maps.aligned_residual is not None:
            res = cfg.local_resolution
            up = lambda x: F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False)  # noqa: E731
            terms["residual"] = F.l1_loss(maps.aligned_residual, up(batch["target"]) - up(q.image))
            total = total + cfg.residual_weight * terms["residual"]
        terms["total"] = total
        return terms

    def train_step(self) -> dict[str, Any]:
        self.branch.train()
        terms = self.losses(self.sample(self.cfg.batch_size))
        self.opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.opt.step()
        self.step += 1
        return {"step": self.step, **{k: float(v.detach()) for k, v in terms.items()}}

    # ------------------------------------------------------------------ the loop's task interface
    def fit(self, progress: bool = True, stop_at: int | None = None) -> LocalBranch:
        self.loop.opts.progress = progress
        self.loop.run(stop_at=stop_at)
        return self.branch.eval()

    def state_dict(self) -> dict[str, Any]:
        return {"branch": self.branch.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.branch.load_state_dict(state["branch"])
        self.opt.load_state_dict(state["optimizer"])
        self.step = int(state["step"])

    def rng_state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}

    def load_rng_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])

    def after_step(self, is_main: bool) -> None:
        return None

    def finish(self, out_dir: Path) -> None:
        """``final/local_encoder``, ``final/aligner_2d``, ``final/fusion`` (the pipeline's Stage II slots)."""
        b = self.branch.eval()
        for name, module in (("local_encoder", b.local_encoder), ("aligner_2d", b.aligner), ("fusion", b.fusion)):
            if module is not None:
                module.save_pretrained(out_dir / "final" / name)
        (out_dir / "final" / "branch.json").write_text(json.dumps({"alignment": self.cfg.alignment, "visibility": self.cfg.visibility,
                                                                   "local_resolution": self.cfg.local_resolution}, indent=2))  # fmt: skip


def train_stage2(cfg: Stage2Config, progress: bool = True, stop_at: int | None = None, resume: str = "auto") -> LocalBranch:
    """Train (or resume from ``out_dir``) and write ``out_dir/final``."""
    return Stage2Trainer(cfg, resume=resume).fit(progress=progress, stop_at=stop_at)
