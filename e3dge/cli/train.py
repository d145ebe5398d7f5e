"""``e3dge train stage1|stage2``: train E0 + pose head (resumable, accelerate-ready), or the Stage II local branch in the toy lab."""

from __future__ import annotations

import argparse
import json

from e3dge.core.errors import UserError
from e3dge.core.options import OptionError, int_in
from e3dge.encoders.hybrid import ALIGNMENTS
from e3dge.encoders.pixel_aligned import VISIBILITY_MODES
from e3dge.training.config import STAGE1_PRESETS, load_stage1_config
from e3dge.training.stage1 import config_summary, train_stage1
from e3dge.training.stage2 import STAGE2_PRESETS, load_stage2_config, train_stage2

__all__ = ["add_train_command", "add_resume_flags", "resume_mode", "parse_overrides"]


def parse_overrides(items: list[str]) -> dict:
    """``["steps=100", "weights.code=0.5", "real_data=toy-photos"]`` -> dict (values read as JSON when they parse)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise OptionError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def _cmd_stage1(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.set or [])
    for key in ("out_dir", "steps", "seed", "method"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    try:
        cfg = load_stage1_config(args.config, overrides)
    except (ValueError, FileNotFoundError) as err:
        raise UserError(str(err)) from None
    print(config_summary(cfg))
    try:
        train_stage1(cfg, progress=not args.quiet, resume=resume_mode(args))
    except FileNotFoundError as err:  # e.g. a real_data folder or a generator folder that does not exist
        raise UserError(str(err)) from None
    print(
        f"wrote {cfg.out_dir}/final (config.json + model.safetensors); log {cfg.out_dir}/log.jsonl; resume state {cfg.out_dir}/checkpoint.safetensors"
    )
    return 0


def _cmd_stage2(args: argparse.Namespace) -> int:
    overrides = parse_overrides(args.set or [])
    for key in ("out_dir", "steps", "seed", "alignment", "visibility"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    cfg = load_stage2_config(args.config, overrides)
    print(
        f"stage2 {cfg.alignment} ({cfg.visibility} visibility): {cfg.steps} steps, batch {cfg.batch_size}, E0 and the generator frozen"
    )
    train_stage2(cfg, progress=not args.quiet, resume=resume_mode(args))
    print(f"wrote {cfg.out_dir}/final (local_encoder, aligner_2d, fusion); log {cfg.out_dir}/log.jsonl")
    return 0


def add_resume_flags(parser: argparse.ArgumentParser) -> None:
    """``--restart`` / ``--override``: what to do when OUT holds a run made with other options."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--restart",
        action="store_true",
        help="set a previous run in OUT aside (moved to OUT/previous-N/) and start fresh",
    )
    group.add_argument("--override", action="store_true", help="continue the run in OUT with the options given now")


def resume_mode(args: argparse.Namespace) -> str:
    """The training loop's ``resume`` mode from the flags of :func:`add_resume_flags`."""
    return "restart" if args.restart else "override" if args.override else "auto"


def add_train_command(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` (with ``stage1``) on the e3dge sub-command parser."""
    train = subparsers.add_parser("train", help="self-supervised training stages")
    sub = train.add_subparsers(dest="stage", required=True)
    s1 = sub.add_parser(
        "stage1",
        help="train E0 + pose head on pseudo pairs (resumes from --out); multi-GPU: accelerate launch -m e3dge.cli train stage1 ...",
    )
    s1.add_argument("--config", default="toy", help=f"preset ({', '.join(STAGE1_PRESETS)}) or a .json/.yaml file")
    s1.add_argument("--out", dest="out_dir", default=None, help="output folder (default from the config)")
    s1.add_argument("--steps", type=int_in(1, 10**8), default=None)
    s1.add_argument("--seed", type=int_in(0, 2**31 - 1), default=None)
    s1.add_argument("--method", choices=["e3dge", "psp2d", "e4e"], default=None, help="e3dge (default), or a baseline")
    s1.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override any option, e.g. --set weights.geo_surface_depth=0",
    )
    s1.add_argument("--quiet", action="store_true", help="no progress bar")
    add_resume_flags(s1)
    s1.set_defaults(func=_cmd_stage1)
    s2 = sub.add_parser(
        "stage2",
        help="train the local branch (E1, E_ADA, fusion; stage 2.1 then 2.2 with the adversarial term), E0 frozen (resumes from --out); multi-GPU: accelerate launch -m e3dge.cli train stage2 ...",
    )
    s2.add_argument("--config", default="toy", help=f"preset ({', '.join(STAGE2_PRESETS)}) or a .json file")
    s2.add_argument("--out", dest="out_dir", default=None, help="output folder (default from the config)")
    s2.add_argument("--steps", type=int_in(1, 10**8), default=None)
    s2.add_argument("--seed", type=int_in(0, 2**31 - 1), default=None)
    s2.add_argument("--alignment", choices=ALIGNMENTS, default=None, help="local | 2d | 3d | hybrid (default)")
    s2.add_argument(
        "--visibility", choices=VISIBILITY_MODES, default=None, help="in_image (official) or occlusion (depth test)"
    )
    s2.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any option, e.g. --set batch_size=8")
    s2.add_argument("--quiet", action="store_true", help="no progress bar")
    add_resume_flags(s2)
    s2.set_defaults(func=_cmd_stage2)
    return train
