"""``e3dge toy train-generator``: distil the toy EG3D from procedural heads (resumable)."""

from __future__ import annotations

import argparse
from dataclasses import fields

from e3dge.cli.train import add_resume_flags, resume_mode
from e3dge.core.errors import UserError
from e3dge.toy.distill import TOY_SIZES, DistillConfig, train_generator

__all__ = ["add_toy_command"]

_OPTIONS = (
    "steps",
    "batch_size",
    "lr",
    "seed",
    "threads",
    "train_resolution",
    "target_resolution",
    "checkpoint_every",
    "w_probe",
    "ray_subset_every",
    "points_per_head",
    "device",
    "warmup_steps",
    "average_from",
    "average_every",
)


def _cmd_train(args: argparse.Namespace) -> int:

    try:
        cfg = DistillConfig(
            out_dir=args.out, init_from=args.init_from, size=args.size, **{k: getattr(args, k) for k in _OPTIONS}
        )
        train_generator(cfg, progress=not args.quiet, resume=resume_mode(args))
    except (ValueError, FileNotFoundError) as err:  # a bad option, a missing --init-from, a checkpoint of another size
        raise UserError(str(err)) from None
    print(
        f"wrote {cfg.out_dir}/final (config.json + model.safetensors); resume state in {cfg.out_dir}/checkpoint.safetensors"
    )
    return 0


def add_toy_command(subparsers) -> argparse.ArgumentParser:
    """Register ``toy`` (with ``train-generator``) on the e3dge sub-command parser."""
    toy = subparsers.add_parser("toy", help="toy lab: procedural heads and a distilled tiny EG3D")
    sub = toy.add_subparsers(dest="toy_command", required=True)
    train = sub.add_parser("train-generator", help="distil the toy EG3D from procedural heads (resumes from OUT)")
    train.add_argument(
        "--out", default="outputs/toy-eg3d", help="output folder; a run already there is resumed (same options)"
    )
    defaults = {f.name: f.default for f in fields(DistillConfig)}
    for name in _OPTIONS:
        train.add_argument(f"--{name.replace('_', '-')}", type=type(defaults[name]), default=defaults[name])
    train.add_argument("--size", default="small", choices=sorted(TOY_SIZES), help="widths of the toy EG3D (TOY_SIZES)")
    train.add_argument(
        "--init-from", default=None, help="fine-tune from a saved generator folder, e.g. e3dge/toy/assets/toy-eg3d"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    add_resume_flags(train)
    train.set_defaults(func=_cmd_train)
    return toy
