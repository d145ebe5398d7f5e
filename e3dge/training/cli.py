"""``e3dge train stage1``: train the global encoder E0 + pose head (resumable, accelerate-ready)."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_train_command", "parse_overrides"]


def parse_overrides(items: list[str]) -> dict:
    """``["steps=100", "weights.code=0.5", "real_data=toy-photos"]`` -> dict (values read as JSON when they parse)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def _cmd_stage1(args: argparse.Namespace) -> int:
    from e3dge.training.config import load_stage1_config
    from e3dge.training.stage1 import config_summary, train_stage1

    overrides = parse_overrides(args.set or [])
    for key in ("out_dir", "steps", "seed", "method"):
        value = getattr(args, key)
        if value is not None:
            overrides[key] = value
    try:
        cfg = load_stage1_config(args.config, overrides)
    except (ValueError, FileNotFoundError) as err:
        from e3dge.errors import UserError

        raise UserError(str(err)) from None
    print(config_summary(cfg))
    train_stage1(cfg, progress=not args.quiet)
    print(f"wrote {cfg.out_dir}/final (config.json + model.safetensors); log {cfg.out_dir}/log.csv; resume state {cfg.out_dir}/checkpoint.pt")
    return 0


def add_train_command(subparsers) -> argparse.ArgumentParser:
    """Register ``train`` (with ``stage1``) on the e3dge sub-command parser."""
    train = subparsers.add_parser("train", help="self-supervised training stages")
    sub = train.add_subparsers(dest="stage", required=True)
    s1 = sub.add_parser("stage1", help="train E0 + pose head on pseudo pairs (resumes from --out); multi-GPU: accelerate launch -m e3dge.cli train stage1 ...")
    s1.add_argument("--config", default="toy", help="preset (toy, tiny-test, ffhq-eg3d) or a .json/.yaml file")
    s1.add_argument("--out", dest="out_dir", default=None, help="output folder (default from the config)")
    s1.add_argument("--steps", type=int, default=None)
    s1.add_argument("--seed", type=int, default=None)
    s1.add_argument("--method", choices=["e3dge", "psp2d", "e4e"], default=None, help="e3dge (default), or a baseline")
    s1.add_argument("--set", action="append", metavar="KEY=VALUE", help="override any option, e.g. --set weights.geo_surface_depth=0")
    s1.add_argument("--quiet", action="store_true", help="no progress bar")
    s1.set_defaults(func=_cmd_stage1)
    return train
