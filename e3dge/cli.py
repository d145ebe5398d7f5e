"""Command line: ``e3dge demo``, ``e3dge convert eg3d IN.pkl OUT_DIR``.

Errors a user can fix are printed as one line (no traceback) with a non-zero exit code.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


from e3dge.errors import UserError


def _cmd_demo(args: argparse.Namespace) -> int:
    from e3dge.demo import default_offline_generator, render_orbit

    G, description = default_offline_generator(seed=args.seed)
    print(f"generator: {description}")
    result = render_orbit(G, args.out, seed=args.seed, num_frames=args.frames, fps=args.fps)
    if result.frames_reused:
        print(f"resumed: reused {result.frames_reused} of {result.num_frames} frames already on disk")
    print(f"wrote {result.video}\nwrote {result.depth_video}\nwrote {result.sheet}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from e3dge.backbones.eg3d import load_official_pkl
    from e3dge.backbones.official_pickle import UnsafePickleError

    src = Path(args.input)
    if not src.is_file():
        raise UserError(f"{src}: no such file; give the path of an official EG3D .pkl snapshot")
    try:
        G = load_official_pkl(src)
    except UnsafePickleError as err:
        raise UserError(str(err)) from err
    except (ValueError, EOFError, OSError, pickle.UnpicklingError) as err:
        raise UserError(f"{src}: cannot read it as an official EG3D snapshot ({err})") from err
    out = G.save_pretrained(args.output)
    n = sum(p.numel() for p in G.parameters())
    print(f"converted {src} -> {out}/ ({n / 1e6:.1f} M parameters, neural rendering {G.neural_rendering_resolution})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="e3dge", description="3D GAN inversion and editing (E3DGE) tools.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="render an orbit video and depth maps offline")
    demo.add_argument("--out", default="outputs/demo", help="output folder (resumes if frames exist)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--frames", type=int, default=48)
    demo.add_argument("--fps", type=int, default=24)
    demo.set_defaults(func=_cmd_demo)

    convert = sub.add_parser("convert", help="convert an official checkpoint to config.json + model.safetensors")
    convert.add_argument("family", choices=["eg3d"], help="checkpoint family")
    convert.add_argument("input", help="official .pkl snapshot (loaded without executing it)")
    convert.add_argument("output", help="output folder")
    convert.set_defaults(func=_cmd_convert)

    try:
        from e3dge.faces.cli import add_align_command
    except ImportError:
        pass
    else:
        add_align_command(sub)
    try:
        from e3dge.toy.cli import add_toy_command
    except ImportError:
        pass
    else:
        add_toy_command(sub)
    from e3dge.training.cli import add_train_command

    add_train_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"e3dge {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
