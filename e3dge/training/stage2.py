"""Stage II: train the local branch (E1, E_ADA, fusion) with E0 and the generator frozen, on any backbone.

Each step draws heads, shows one view to E0 and renders a query view (a novel view with
probability ``novel_view_prob``, else the input view) whose exact target is known: the paper's
novel-view cycle (a pair of samples sharing z, each with its own camera). Two data
sources: ``toy-photos`` (the toy lab's procedural photo-like heads, whose texture E0 cannot hold:
the domain gap the branch exists for) and ``synthetic`` (the official recipe: the frozen generator's
own samples at truncation ``truncation``, any backbone). The input camera is E0's estimate where E0 has a pose head
(as at inference), else the sample's own camera (StyleSDF, whose pose comes from the volume discriminator).
Renders go through the backbone's encoder flow (:meth:`e3dge.encoders.flows.EncoderFlow.branch_render`), the code
inference runs. ``supervise``: the losses read the raw volume render (``raw``) or the decoded image (``image``, the
official StyleSDF recipe: pooled to at most 256^2). Losses: MSE of the modulated render to the target (+ LPIPS /
ArcFace ID when their weights are installed) + ``residual_weight`` x L1 of E_ADA's residual to the query view's residual.

Two stages on one run, as the paper: stage 2.1 (the first ``stage21_steps``) trains E1 with the
2D alignment (E_ADA) alone; stage 2.2 switches to the configured alignment (hybrid: 3D projection
fused with the 2D branch), freezes E_ADA (official ``--fix_ada``) and adds the adversarial term: a
StyleGAN2-style discriminator on the query renders vs real images (``real_data``), non-saturating
loss x ``adv_weight`` on both sides, lazy R1 (gamma ``r1_gamma`` every ``r1_every`` steps, scaled by
the interval) on the real images. :class:`Stage2Trainer` is a task of the one training loop
(checkpoints, exact resume, logs); ``accelerate`` spreads it over processes (gradients averaged).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from accelerate import Accelerator

from e3dge.backbones.base import Backbone, View
from e3dge.core.cameras import Camera
from e3dge.core.errors import UserError
from e3dge.core.files import write_json
from e3dge.core.hub import meta_model
from e3dge.encoders.aligner import ResidualAligner
from e3dge.encoders.flows import FILM_TARGETS, BranchRender, LocalSlots, encoder_flow, film_channels
from e3dge.encoders.fusion import FeatureFusion
from e3dge.encoders.hybrid import ALIGNMENTS, Alignment, LocalBranch
from e3dge.encoders.local import LocalEncoder
from e3dge.encoders.pixel_aligned import VISIBILITY_MODES
from e3dge.metrics.loaders import make_identity, make_lpips
from e3dge.training.checkpoint import restore_optimizer
from e3dge.training.discriminator import Discriminator, d_logistic_loss, g_nonsaturating_loss, r1_penalty
from e3dge.training.grids import save_columns
from e3dge.training.loop import LoopOptions, TrainingLoop
from e3dge.training.sources import load_backbone, load_encoder, make_real_source, photo_pairs

__all__ = [
    "Stage2Config",
    "STAGE2_PRESETS",
    "load_stage2_config",
    "Stage2Batch",
    "Stage2Trainer",
    "train_stage2",
    "build_branch",
]

DATA_SOURCES = ("toy-photos", "synthetic")
Supervision = Literal["raw", "image"]
SUPERVISIONS: tuple[Supervision, ...] = ("raw", "image")
LOSS_IMAGE_SIZE = 256  # decoded images are pooled to at most this size for the losses (the official 1024 -> 256)
TERM_SWITCHES = {"lpips": ("off", "alex", "vgg"), "identity": ("off", "arcface")}


@dataclass
class Stage2Config:
    """Options of a Stage II run (``out_dir``, ``threads``, ``checkpoint_every`` and ``sample_every`` do not define the run)."""

    out_dir: str = "outputs/stage2-toy"
    generator: str = "toy"  # toy | tiny-random | tiny-random-stylesdf | a generator folder / Hub id (EG3D or StyleSDF)
    encoder: str = "toy"  # toy | tiny-random | a folder with an E0 of that generator (a Stage I run's final/)
    data: str = "toy-photos"  # toy-photos (toy lab) | synthetic (the generator's own samples, the official recipe)
    truncation: float = 0.55  # synthetic data only (official: 0.55)
    steps: int = 400
    batch_size: int = 4
    seed: int = 0
    alignment: str = "hybrid"
    visibility: str = "in_image"
    film_target: str = "colour"  # colour: the decoded colour features (official; density untouched) | features: EG3D's tri-plane features before the decoder
    supervise: str = "raw"  # raw: the losses read the raw volume render | image: the decoded image (official StyleSDF)
    render_resolution: int = 32  # raw render size during training (StyleSDF with supervise=image: the model's own)
    ray_samples: int | None = (
        12  # coarse and importance samples per ray during training (None: the model's own; StyleSDF: always)
    )
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
    lpips: str = "off"
    lpips_weight_21: float = 0.8  # official vgg_lambda in 2.1 / 2.2
    lpips_weight_22: float = 1.0
    identity: str = "off"
    id_weight: float = 0.1
    stage21_steps: int = 200  # steps of stage 2.1 (2D alignment only, no adversarial term); then stage 2.2
    freeze_aligner_in_22: bool = True
    adv_weight: float = 0.01  # 0 turns the discriminator off
    real_data: str = "toy-photos"  # the discriminator's real images: toy-photos or a folder of aligned crops
    lr_d: float = 2e-4  # scaled by r1_every / (r1_every + 1) as StyleGAN2's lazy regularisation
    r1_gamma: float = 10.0
    r1_every: int = 16
    d_width: int = 32
    d_max_width: int = 256
    novel_view_prob: float = 0.5
    yaw_range: float = 0.4
    pitch_range: float = 0.2
    query_yaw_range: float = 0.6
    checkpoint_every: int = 50
    sample_every: int = 100
    threads: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("steps", 1, 10**8),
            ("batch_size", 1, 256),
            ("render_resolution", 8, 512),
            ("local_resolution", 16, 1024),
            ("stem_width", 2, 512),
            ("width", 8, 2048),
            ("num_stack", 1, 8),
            ("depth", 1, 6),
            ("groups", 1, 256),
            ("checkpoint_every", 1, 10**8),
            ("sample_every", 1, 10**8),
            ("threads", 0, 256),
            ("seed", 0, 2**31 - 1),
            ("stage21_steps", 0, 10**8),
            ("r1_every", 1, 10**6),
            ("d_width", 1, 1024),
            ("d_max_width", 1, 2048),
        ]
        if self.ray_samples is not None:
            checks.append(("ray_samples", 2, 256))
        for name, lo, hi in checks:
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
                raise UserError(f"stage2 option {name} must be an integer in [{lo}, {hi}], got {v!r}")
        for name in (
            "lr_local",
            "lr_aligner",
            "lr_fusion",
            "residual_weight",
            "novel_view_prob",
            "yaw_range",
            "pitch_range",
            "query_yaw_range",
            "truncation",
            "lpips_weight_21",
            "lpips_weight_22",
            "id_weight",
            "adv_weight",
            "lr_d",
            "r1_gamma",
        ):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0 or v > 100:
                raise UserError(f"stage2 option {name} must be a number in [0, 100], got {v!r}")
        for name in ("novel_view_prob", "truncation"):
            if getattr(self, name) > 1:
                raise UserError(f"stage2 option {name} must be in [0, 1], got {getattr(self, name)}")
        if not isinstance(self.freeze_aligner_in_22, bool):
            raise UserError(
                f"stage2 option freeze_aligner_in_22 must be true or false, got {self.freeze_aligner_in_22!r}"
            )
        for name, allowed in (
            ("alignment", ALIGNMENTS),
            ("visibility", VISIBILITY_MODES),
            ("data", DATA_SOURCES),
            ("film_target", FILM_TARGETS),
            ("supervise", SUPERVISIONS),
            *TERM_SWITCHES.items(),
        ):
            if getattr(self, name) not in allowed:
                raise UserError(f"stage2 option {name} must be one of {allowed}, got {getattr(self, name)!r}")
        for name in ("generator", "encoder", "real_data", "out_dir"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise UserError(f"stage2 option {name} must be a non-empty string, got {getattr(self, name)!r}")
        if self.data == "toy-photos" and self.generator != "toy":
            raise UserError(
                f"stage2 data 'toy-photos' needs the toy generator (got generator {self.generator!r}); use --set data=synthetic"
            )
        if self.adv_weight > 0 and self.supervise == "raw" and (self.render_resolution & (self.render_resolution - 1)):
            raise UserError(
                f"stage2 option render_resolution must be a power of two with the adversarial term (adv_weight > 0), got {self.render_resolution}"
            )
        self.aligner_widths = tuple(self.aligner_widths)
        if len(self.aligner_widths) != 4 or not all(isinstance(v, int) and 1 <= v <= 1024 for v in self.aligner_widths):
            raise UserError(
                f"stage2 option aligner_widths must be 4 integers in [1, 1024], got {list(self.aligner_widths)}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["aligner_widths"] = list(self.aligner_widths)
        return d

    def stage_at(self, step: int) -> str:
        """``"2.1"`` or ``"2.2"`` for the optimisation step ``step`` (0-based)."""
        return "2.1" if step < self.stage21_steps else "2.2"

    def alignment_at(self, step: int) -> Alignment:
        """Stage 2.1 trains the hybrid's 2D branch alone; other alignments are the same in both stages."""
        return "2d" if self.alignment == "hybrid" and self.stage_at(step) == "2.1" else self.alignment


RUN_ONLY = ("out_dir", "threads", "checkpoint_every", "sample_every")
_TINY_TEST: dict[str, Any] = {
    "out_dir": "outputs/stage2-tiny",
    "steps": 4,
    "batch_size": 2,
    "render_resolution": 16,
    "ray_samples": 6,
    "local_resolution": 32,
    "stage21_steps": 2,
    "r1_every": 2,
    "d_width": 8,
    "d_max_width": 16,
    "checkpoint_every": 2,
    "sample_every": 1000,
}
_OFFICIAL: dict[str, Any] = {
    # The official recipe on a GPU: synthetic pairs at truncation 0.55 (the default), LPIPS + ID, the official learning
    # rates (netLocal 5e-5, ADA 1e-4, Fuse 1e-4, D 5e-5) and the paper's E1 / E_ADA sizes; E0 from a Stage I run.
    "data": "synthetic",
    "real_data": "data/ffhq-aligned",
    "steps": 20000,
    "stage21_steps": 10000,
    "batch_size": 4,
    "render_resolution": 64,
    "local_resolution": 256,
    "stem_width": 32,
    "width": 256,
    "num_stack": 4,
    "depth": 2,
    "groups": 32,
    "aligner_widths": [16, 32, 48, 64],
    "lr_local": 5e-5,
    "lr_aligner": 1e-4,
    "lr_fusion": 1e-4,
    "lr_d": 5e-5,
    "lpips": "alex",
    "identity": "arcface",
    "d_width": 64,
    "d_max_width": 512,
    "yaw_range": 0.6,
    "pitch_range": 0.3,
    "query_yaw_range": 0.8,
    "checkpoint_every": 500,
    "sample_every": 500,
}
STAGE2_PRESETS: dict[str, dict[str, Any]] = {
    # Toy lab on a 2-core CPU: about 20 minutes (200 steps of 2.1, 200 of 2.2).
    "toy": {},
    # Tests: a handful of steps on tiny renders.
    "tiny-test": _TINY_TEST,
    # Tests: a random tiny StyleSDF and a fresh tiny E0 (no pose head: the sample's own camera is the input view), the
    # decoded image supervised as the official StyleSDF recipe, at the tiny model's own 8^2 volume render.
    "tiny-test-stylesdf": {
        **_TINY_TEST,
        "out_dir": "outputs/stage2-tiny-stylesdf",
        "generator": "tiny-random-stylesdf",
        "encoder": "tiny-random",
        "data": "synthetic",
        "real_data": "toy-photos",
        "supervise": "image",
        "render_resolution": 8,
        "ray_samples": None,
    },
    # The released FFHQ StyleSDF (``e3dge convert stylesdf`` -> models/e3dge-stylesdf): the official recipe on its own
    # backbone, its 64^2 volume render with its 24 samples per ray and the 1024^2 decoded image pooled to 256.
    "stylesdf": {
        **_OFFICIAL,
        "out_dir": "outputs/stage2-stylesdf",
        "generator": "models/e3dge-stylesdf/generator",
        "encoder": "outputs/stage1-stylesdf/final",
        "supervise": "image",
        "ray_samples": None,
    },
    # FFHQ EG3D (raw renders at 64^2 with 48 samples per ray).
    "ffhq-eg3d": {
        **_OFFICIAL,
        "out_dir": "outputs/stage2-ffhq-eg3d",
        "generator": "eg3d-ffhqrebalanced512-128",
        "encoder": "outputs/stage1-ffhq-eg3d/final",
        "ray_samples": 48,
    },
}


def load_stage2_config(name_or_path: str, overrides: dict[str, Any] | None = None) -> Stage2Config:
    """A preset (see :data:`STAGE2_PRESETS`) or a JSON file, then ``overrides``; unknown keys are one-line errors with the valid names."""
    if name_or_path in STAGE2_PRESETS:
        base = dict(STAGE2_PRESETS[name_or_path])
    else:
        path = Path(name_or_path)
        if not path.is_file():
            raise UserError(f"{name_or_path}: not a preset ({', '.join(STAGE2_PRESETS)}) nor a JSON file")
        try:
            base = json.loads(path.read_text())
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
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
    """E1 (FiLM width ``film_channels``, zero-initialised head), E_ADA and the fusion the alignment needs, at the config's sizes."""
    E1 = LocalEncoder(
        stem_width=cfg.stem_width,
        width=cfg.width,
        num_stack=cfg.num_stack,
        depth=cfg.depth,
        groups=cfg.groups,
        film_channels=film_channels,
        input_size=cfg.local_resolution,
    )
    head = E1.local_feat_to_tex_modulations_linear
    for layer in (head.fc_1, head.shortcut):  # start as the identity: E0's render, then learn the residual
        torch.nn.init.zeros_(layer.weight)
        if layer.bias is not None:
            torch.nn.init.zeros_(layer.bias)
    aligner = ResidualAligner(widths=cfg.aligner_widths) if cfg.alignment in ("2d", "hybrid") else None
    fusion = FeatureFusion(channels=cfg.width) if cfg.alignment == "hybrid" else None
    return LocalBranch(E1, aligner, fusion)


@dataclass(frozen=True, kw_only=True)
class Stage2Batch:
    """One Stage II batch: the input photos, the exact targets at the query views, and both cameras."""

    photo: torch.Tensor  # [N, 3, S, S] in [-1, 1] at the generator's image size
    target: torch.Tensor  # [N, 3, s, s] the query view at the loss size
    camera: Camera  # the input view (the sample's own camera)
    query: Camera  # the query view (a novel view or the input view)
    novel: torch.Tensor  # [N] bool: the query view differs from the input view


class Stage2Trainer:
    """Stage II as a :class:`~e3dge.training.loop.TrainingTask`: frozen backbone and E0, trainable local branch (+ discriminator).

    ``backbone`` / ``encoder`` replace ``cfg.generator`` / ``cfg.encoder`` (an E0 module, as :func:`load_encoder` gives).
    """

    def __init__(
        self,
        cfg: Stage2Config,
        resume: str = "auto",
        backbone: Backbone | None = None,
        encoder: torch.nn.Module | None = None,
        accelerator=None,
    ) -> None:

        self.cfg = cfg
        self.out = Path(cfg.out_dir)
        self.acc = accelerator or Accelerator(cpu=not torch.cuda.is_available())
        self.device = self.acc.device
        with torch.random.fork_rng(
            devices=[]
        ):  # identical initial weights on every process; the caller's RNG is untouched
            torch.manual_seed(cfg.seed)
            self.backbone = backbone if backbone is not None else load_backbone(cfg.generator, self.device)
            self.E0 = encoder if encoder is not None else load_encoder(cfg.encoder, self.backbone)
            channels = film_channels(self.backbone, cfg.film_target)
            meta_model(lambda: build_branch(cfg, channels), "stage2 options")  # sizes first, in one line
            self.branch = build_branch(cfg, channels).to(self.device)
            self.loss_size = (
                cfg.render_resolution
                if cfg.supervise == "raw"
                else min(LOSS_IMAGE_SIZE, self.backbone.image_resolution)
            )
            self.D = (
                Discriminator(self.loss_size, cfg.d_width, cfg.d_max_width).to(self.device)
                if cfg.adv_weight > 0
                else None
            )
        self.flow = encoder_flow(
            self.backbone, None, None, LocalSlots(self.branch.local_encoder, self.branch.aligner, self.branch.fusion)
        )
        self._check_encoder()
        self.lpips = make_lpips(cfg.lpips, self.device)
        self.identity = make_identity(cfg.identity, self.device)
        self.real = make_real_source(cfg.real_data, self.loss_size) if self.D is not None else None
        groups = [{"params": self.branch.local_encoder.parameters(), "lr": cfg.lr_local}]
        if self.branch.aligner is not None:
            groups.append({"params": self.branch.aligner.parameters(), "lr": cfg.lr_aligner})
        if self.branch.fusion is not None:
            groups.append({"params": self.branch.fusion.parameters(), "lr": cfg.lr_fusion})
        self.opt = torch.optim.Adam(groups)
        if self.D is not None:
            c = cfg.r1_every / (cfg.r1_every + 1)  # StyleGAN2's lazy-regularisation correction
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d * c, betas=(0.0, 0.99**c))
        self.gen = torch.Generator().manual_seed(
            cfg.seed * 1000 + 2 + self.acc.process_index
        )  # each process its own draw
        self.step = 0
        options = {k: v for k, v in cfg.to_dict().items() if k not in RUN_ONLY}
        self.loop = TrainingLoop(
            self,
            LoopOptions(
                cfg.out_dir,
                cfg.steps,
                options,
                seed=cfg.seed,
                checkpoint_every=cfg.checkpoint_every,
                resume=resume,
                desc=f"stage2 {cfg.alignment}",
                postfix=("total", "mse"),
                threads=cfg.threads,
                device=self.device,
            ),
            self.acc,
        )
        self.loop.resume()
        if self.acc.is_main_process:
            write_json(self.out / "config.json", cfg.to_dict())

    def _check_encoder(self) -> None:
        """One-line errors for an E0 of another generator and for a discriminator size that is not a power of two."""
        if self.cfg.adv_weight > 0 and self.loss_size & (self.loss_size - 1):
            raise UserError(
                f"the adversarial term needs a power-of-two loss size, got {self.loss_size}; set adv_weight=0 or another size"
            )
        r = self.backbone.image_resolution
        with torch.no_grad():
            ws = self.E0(torch.zeros(1, 3, r, r, device=self.device)).ws
        try:
            self.backbone.layout.check(ws, "E0's latent")
        except ValueError as err:
            raise UserError(
                f"{err}: E0 and the generator do not belong together (cfg encoder={self.cfg.encoder!r})"
            ) from None

    # ------------------------------------------------------------------ data and renders
    def sample(self, n: int, generator: torch.Generator | None = None) -> Stage2Batch:
        """Heads, an input view and a query view (novel with probability ``novel_view_prob``, else the same), the input photo and the query target."""
        cfg, g, b = self.cfg, generator or self.gen, self.backbone
        yaw = (torch.rand(n, generator=g) * 2 - 1) * cfg.yaw_range
        pitch = (torch.rand(n, generator=g) * 2 - 1) * cfg.pitch_range
        novel = torch.rand(n, generator=g) < cfg.novel_view_prob
        q_yaw = torch.where(novel, (torch.rand(n, generator=g) * 2 - 1) * cfg.query_yaw_range, yaw)
        q_pitch = torch.where(novel, (torch.rand(n, generator=g) * 2 - 1) * cfg.pitch_range, pitch)
        camera, query = b.camera(yaw, pitch), b.camera(q_yaw, q_pitch)
        z = torch.randn(n, b.z_dim, generator=g)
        if cfg.data != "synthetic":
            pairs = photo_pairs(cfg.data)
            photo, target = pairs(z, camera.label.cpu(), query.label.cpu(), b.image_resolution, self.loss_size)
        else:  # the generator's own sample: its image at the input view, the supervised render at the query view
            with torch.no_grad():
                ws = b.sample_latent(z, camera, truncation=cfg.truncation)
                scene = b.scene(ws)
                photo = b.render(ws, scene, camera, "full").image.clamp(-1, 1)
                view = b.render(
                    ws,
                    scene,
                    query,
                    decode=cfg.supervise == "image",
                    neural_resolution=cfg.render_resolution,
                    ray_samples=cfg.ray_samples,
                )
                target = self.supervised(view).clamp(-1, 1)
        return Stage2Batch(
            photo=photo.to(self.device), target=target.to(self.device), camera=camera, query=query, novel=novel
        )

    def supervised(self, view: View) -> torch.Tensor:
        """What the losses read of a render: the raw volume render, or the decoded image pooled to the loss size."""
        if self.cfg.supervise == "raw":
            return view.image_raw
        image = view.image
        return F.adaptive_avg_pool2d(image, self.loss_size) if image.shape[-1] > self.loss_size else image

    def branch_render(self, batch: Stage2Batch, alignment: Alignment) -> BranchRender:
        """E0's code of the photo and the query view rendered with and without the branch (through the backbone's flow)."""
        cfg = self.cfg
        with torch.no_grad():
            enc = self.E0(batch.photo)
        reference = (
            self.backbone.camera(enc.pose[:, 0], enc.pose[:, 1]) if enc.pose is not None else batch.camera
        )  # E0's estimate where it has a pose head, as at inference; else the sample's camera
        return self.flow.branch_render(
            batch.photo,
            enc.ws,
            reference,
            batch.query,
            alignment,
            resolution=cfg.render_resolution,
            decode=cfg.supervise == "image",
            ray_samples=cfg.ray_samples,
            visibility=cfg.visibility,
            film_target=cfg.film_target,
        )

    def losses(self, batch: Stage2Batch, step: int | None = None) -> dict[str, torch.Tensor]:
        """All of the branch's terms at ``step`` (default: the current one); ``fake`` holds the render for D (detached)."""
        cfg = self.cfg
        step = self.step if step is None else step
        stage = cfg.stage_at(step)
        out = self.branch_render(batch, cfg.alignment_at(step))
        image, plain, target = self.supervised(out.view), self.supervised(out.plain), batch.target
        terms = {"mse": F.mse_loss(image, target), "mse_e0": F.mse_loss(plain, target)}
        total = terms["mse"]
        up256 = lambda x: F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False)  # noqa: E731  (LPIPS / ID at pSp's size)
        lpips_weight = cfg.lpips_weight_21 if stage == "2.1" else cfg.lpips_weight_22
        if self.lpips is not None and lpips_weight > 0:
            terms["lpips"] = self.lpips(up256(image), up256(target)).mean()
            total = total + lpips_weight * terms["lpips"]
        if self.identity is not None and cfg.id_weight > 0:
            terms["id"] = self.identity(up256(image), up256(target))
            total = total + cfg.id_weight * terms["id"]
        if out.aligned_residual is not None and self.aligner_trains(step):
            terms["residual"] = F.l1_loss(out.aligned_residual, self.flow.residual(target, out.plain.image_raw))
            total = total + cfg.residual_weight * terms["residual"]
        if self.D is not None and stage == "2.2":
            self.D.requires_grad_(False)
            terms["adv"] = g_nonsaturating_loss(self.D(image))
            total = total + cfg.adv_weight * terms["adv"]
        terms["total"] = total
        terms["fake"] = image.detach()
        return terms

    def aligner_trains(self, step: int) -> bool:
        """E_ADA learns in stage 2.1, and in 2.2 unless ``freeze_aligner_in_22`` (official ``--fix_ada``)."""
        return self.cfg.stage_at(step) == "2.1" or not self.cfg.freeze_aligner_in_22

    def discriminator_step(self, fake: torch.Tensor) -> dict[str, float]:
        """One D update: ``adv_weight`` x logistic loss, + lazy R1 every ``r1_every`` steps (x the interval)."""
        cfg, D = self.cfg, self.D
        D.requires_grad_(True)
        real = self.real.sample(len(fake), self.gen).to(self.device)
        logistic = d_logistic_loss(D(real), D(fake))
        loss = cfg.adv_weight * logistic
        row = {"d_logistic": float(logistic.detach())}
        if self.step % cfg.r1_every == 0:
            r1 = r1_penalty(D, real)
            loss = loss + cfg.r1_gamma / 2 * r1 * cfg.r1_every
            row["r1"] = float(r1.detach())
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self._average_gradients(D.parameters())
        self.opt_d.step()
        D.requires_grad_(False)
        return row

    def _average_gradients(self, params) -> None:
        """Mean of the gradients over processes (the branch is driven through its methods, so no DDP wrapper does it)."""
        if self.acc.num_processes > 1:
            for p in params:
                if p.grad is not None:
                    p.grad = self.acc.reduce(p.grad, reduction="mean")

    def train_step(self) -> dict[str, Any]:
        self.branch.train()
        if self.branch.aligner is not None:
            self.branch.aligner.requires_grad_(self.aligner_trains(self.step))
        terms = self.losses(self.sample(self.cfg.batch_size))
        fake = terms.pop("fake")
        self.opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        self._average_gradients(self.branch.parameters())
        self.opt.step()
        row: dict[str, Any] = {
            "stage": self.cfg.stage_at(self.step),
            **{k: float(v.detach()) for k, v in terms.items()},
        }
        if self.D is not None and row["stage"] == "2.2":
            row.update(self.discriminator_step(fake))
        self.step += 1
        return {"step": self.step, **row}

    # ------------------------------------------------------------------ the loop's task interface
    def fit(self, progress: bool = True, stop_at: int | None = None) -> LocalBranch:
        self.loop.opts.progress = progress
        self.loop.run(stop_at=stop_at)
        return self.branch.eval()

    def state_dict(self) -> dict[str, Any]:
        state = {"branch": self.branch.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step}
        if self.D is not None:
            state.update(discriminator=self.D.state_dict(), optimizer_d=self.opt_d.state_dict())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.branch.load_state_dict(state["branch"])
        restore_optimizer(self.opt, state["optimizer"])
        if self.D is not None:
            self.D.load_state_dict(state["discriminator"])
            restore_optimizer(self.opt_d, state["optimizer_d"])
        self.step = int(state["step"])

    def rng_state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}

    def load_rng_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])

    def after_step(self, is_main: bool) -> None:
        if is_main and self.step % self.cfg.sample_every == 0:
            self.save_samples()

    @torch.no_grad()
    def save_samples(self, num: int = 4) -> Path:
        """Grid for fixed heads: input photo | E0 at the query view | with the local branch | target."""
        was_training = self.branch.training
        self.branch.eval()
        batch = self.sample(num, torch.Generator().manual_seed(987654))
        out = self.branch_render(batch, self.cfg.alignment_at(max(self.step - 1, 0)))
        self.branch.train(was_training)
        r = self.loss_size
        photo = F.interpolate(batch.photo, size=(r, r), mode="bilinear", align_corners=False, antialias=True)
        cols = [photo, self.supervised(out.plain).clamp(-1, 1), self.supervised(out.view).clamp(-1, 1), batch.target]
        return save_columns(cols, self.out / "samples" / f"step_{self.step:06d}.png")

    def finish(self, out_dir: Path) -> None:
        """``final/local_encoder``, ``final/aligner_2d``, ``final/fusion`` (the pipeline's Stage II slots)."""
        b = self.branch.eval()
        for name, module in (("local_encoder", b.local_encoder), ("aligner_2d", b.aligner), ("fusion", b.fusion)):
            if module is not None:
                module.save_pretrained(out_dir / "final" / name)
        write_json(
            out_dir / "final" / "branch.json",
            {
                "alignment": self.cfg.alignment,
                "visibility": self.cfg.visibility,
                "film_target": self.cfg.film_target,
                "local_resolution": self.cfg.local_resolution,
                "backbone": self.backbone.name,
            },
        )


def train_stage2(
    cfg: Stage2Config, progress: bool = True, stop_at: int | None = None, resume: str = "auto"
) -> LocalBranch:
    """Train (or resume from ``out_dir``) and write ``out_dir/final``."""
    return Stage2Trainer(cfg, resume=resume).fit(progress=progress, stop_at=stop_at)
