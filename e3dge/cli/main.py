"""Command line: ``e3dge demo`` (the main job), ``e3dge invert``, ``e3dge orbit``, ``e3dge convert eg3d IN.pkl OUT_DIR``, ...

Errors a user can fix (bad options, missing or corrupt files) are printed as one line,
``e3dge <command>: error: ...``, with exit code 2; anything else is reported in one line as an
internal error (exit 1), and Ctrl-C as ``interrupted`` (exit 130). ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

from e3dge.backbones.eg3d.network import load_official_pkl
from e3dge.cli.directions import add_directions_command
from e3dge.cli.invert import add_invert_command
from e3dge.cli.train import add_train_command
from e3dge.core.errors import UserError, one_line
from e3dge.core.files import check_destination
from e3dge.core.options import int_in
from e3dge.demo import MAX_FPS, MAX_FRAMES, MAX_SEED, default_offline_generator, render_orbit
from e3dge.inversion.convert_official import convert_e3dge, convert_stylesdf
from e3dge.inversion.examples import TOY_NOTICE, run_demo
from e3dge.publish.hub_export import add_hub_command

__all__ = ["main", "build_parser"]

EXIT_USER_ERROR, EXIT_INTERNAL_ERROR, EXIT_INTERRUPTED = 2, 1, 130
USER_ERRORS = (UserError, OSError, ValueError, pickle.UnpicklingError)
"""Exceptions that describe the user's input or files (``OSError`` covers missing files and permissions)."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, ``e3dge demo: error: ... (see e3dge demo --help)``, exit 2."""

    def error(self, message: str):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")

    def _get_values(self, action: argparse.Action, arg_strings: list[str]):
        # Python 3.11's argparse drops a lone '--' given as ``--opt=--`` and keeps an empty list, unchecked by type=.
        if arg_strings == ["--"] and action.nargs is None and action.option_strings:
            self.error(f"argument {'/'.join(action.option_strings)}: expected a value, got '--'")
        return super()._get_values(action, arg_strings)


def _cmd_demo(args: argparse.Namespace) -> int:

    if args.model == "toy":
        print(TOY_NOTICE)
    result = run_demo(
        args.out,
        model=args.model,
        refine=None if args.refine == "none" else args.refine,
        steps=args.steps,
        frames=args.frames,
        views=args.views,
        num_toy=args.toy_heads,
        progress=not args.quiet,
    )
    for name, folder in result.folders.items():
        state = (
            "failed: " + result.failed[name]
            if name in result.failed
            else "already done (resumed)"
            if name in result.skipped
            else "done"
        )
        print(f"{name}: {folder}/ {state}")
    print(f"wrote {result.sheet} (rows: aligned input | reconstruction | depth | novel views)")
    return 1 if result.failed and len(result.failed) == len(result.folders) else 0


def _cmd_orbit(args: argparse.Namespace) -> int:

    G, description = default_offline_generator(seed=args.seed)
    print(f"generator: {description}")
    result = render_orbit(G, args.out, seed=args.seed, num_frames=args.frames, fps=args.fps)
    if result.note:
        print(result.note)
    if result.frames_reused:
        print(f"resumed: reused {result.frames_reused} of {result.num_frames} frames already on disk")
    print(f"wrote {result.video}\nwrote {result.depth_video}\nwrote {result.sheet}")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:

    src = Path(args.input)
    if not src.is_file():
        raise UserError(f"{src}: no such file; give the path of an official EG3D .pkl snapshot")
    check_destination(args.output, args.overwrite, "folder for the converted generator")
    try:  # unsafe, corrupt or mismatched files raise one-line UserErrors; anything else readable is still the file's fault
        G = load_official_pkl(src)
    except UserError:
        raise
    except (ValueError, EOFError, OSError, pickle.UnpicklingError, RuntimeError) as err:
        raise UserError(f"{src}: cannot read it as an official EG3D snapshot ({one_line(err)[:200]})") from err
    out = G.save_pretrained(args.output)
    n = sum(p.numel() for p in G.parameters())
    print(f"converted {src} -> {out}/ ({n / 1e6:.1f} M parameters, neural rendering {G.neural_rendering_resolution})")
    return 0


def _print_report(title: str, lines: list[str]) -> None:
    print(title)
    for line in lines:
        print(f"  {line}")


def _cmd_convert_stylesdf(args: argparse.Namespace) -> int:

    report = convert_stylesdf(
        args.full, args.vol, args.output, mean_samples=args.mean_samples, seed=args.seed, overwrite=args.overwrite
    )
    _print_report(f"converted {Path(args.full).name} + {Path(args.vol).name} -> {report.out}/", report.lines())
    print(
        f"next: e3dge convert e3dge E3DGE_Full_Runner.pt {report.out}  (weights under CC BY-NC-SA 4.0: non-commercial; do not re-host)"
    )
    return 0


def _cmd_convert_e3dge(args: argparse.Namespace) -> int:

    report = convert_e3dge(
        args.runner,
        args.bundle,
        boundaries=args.boundaries,
        toonify=args.toonify,
        toonify_encoder=args.toonify_encoder,
        mean_samples=args.mean_samples,
    )
    _print_report(f"converted {Path(args.runner).name} into {report.out}/", report.lines())
    print(f"use it: e3dge invert PHOTO OUT --model {report.out}  (or E3DGE_MODEL={report.out} python spaces_app.py)")
    return 0


def _add_demo_command(sub: argparse._SubParsersAction) -> None:

    demo = sub.add_parser(
        "demo",
        help="the main job, offline: invert the bundled example photos into 3D (views, depth, orbit video, sheet)",
    )
    demo.add_argument(
        "--out",
        default="outputs/demo",
        help="output folder (finished examples are kept when rerun with the same options)",
    )
    demo.add_argument("--model", default="toy", help="bundle: toy (offline, default), a bundle folder or a Hub id")
    demo.add_argument(
        "--refine",
        choices=["none", "pose", "pose+code"],
        default="pose+code",
        help="test-time refinement (default P+C)",
    )
    demo.add_argument("--steps", type=int_in(1, 10000), default=30, help="refinement steps")
    demo.add_argument("--frames", type=int_in(0, 1000), default=24, help="orbit video frames per example (0 = none)")
    demo.add_argument("--views", type=int_in(0, 32), default=3, help="novel views per example")
    demo.add_argument("--toy-heads", type=int_in(0, 16), default=3, help="photo-like toy heads among the examples")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_cmd_demo)

    orbit = sub.add_parser("orbit", help="render a seeded random face's orbit video and depth maps offline")
    orbit.add_argument(
        "--out", default="outputs/orbit", help="output folder (resumes if its frames were made with the same options)"
    )
    orbit.add_argument("--seed", type=int_in(0, MAX_SEED), default=0, help=f"latent seed, 0..{MAX_SEED}")
    orbit.add_argument("--frames", type=int_in(1, MAX_FRAMES), default=48, help=f"orbit frames, 1..{MAX_FRAMES}")
    orbit.add_argument("--fps", type=int_in(1, MAX_FPS), default=24, help=f"video frame rate, 1..{MAX_FPS}")
    orbit.set_defaults(func=_cmd_orbit)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="e3dge", description="3D GAN inversion and editing (E3DGE) tools.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo_command(sub)

    convert = sub.add_parser(
        "convert",
        help="convert official checkpoints (EG3D .pkl, StyleSDF / E3DGE .pt) to safetensors, loading nothing unsafely",
    )
    families = convert.add_subparsers(dest="family", required=True, parser_class=OneLineParser)
    eg3d = families.add_parser(
        "eg3d", help="an official EG3D .pkl -> a generator folder (config.json + model.safetensors)"
    )
    eg3d.add_argument("input", help="official .pkl snapshot (loaded without executing it)")
    eg3d.add_argument("output", help="output folder (must be new or empty)")
    eg3d.add_argument("--overwrite", action="store_true", help="replace a previous conversion in OUTPUT")
    eg3d.set_defaults(func=_cmd_convert)
    sdf = families.add_parser(
        "stylesdf",
        help="StyleSDF ffhq1024x1024.pt + ffhq_vol_renderer.pt -> a new pipeline bundle (generator, pose, mean latents)",
    )
    sdf.add_argument("full", help="ffhq1024x1024.pt (the full StyleSDF model)")
    sdf.add_argument("vol", help="ffhq_vol_renderer.pt (its volume renderer; its discriminator estimates the pose)")
    sdf.add_argument("output", help="bundle folder to create (must be new or empty)")
    sdf.add_argument(
        "--mean-samples",
        type=int_in(100, 1_000_000),
        default=10000,
        help="z samples for the fixed mean latents (official: 10000)",
    )
    sdf.add_argument("--seed", type=int_in(0, 2**31 - 1), default=2, help="seed of those samples")
    sdf.add_argument("--overwrite", action="store_true", help="replace a previous conversion in OUTPUT")
    sdf.set_defaults(func=_cmd_convert_stylesdf)
    e3 = families.add_parser(
        "e3dge", help="an official E3DGE runner (E3DGE_Full_Runner.pt, ...) into a bundle made by 'convert stylesdf'"
    )
    e3.add_argument("runner", help="E3DGE_Full_Runner.pt or E3DGE_2DAlignOnly_Runner.pt")
    e3.add_argument("bundle", help="the bundle folder 'e3dge convert stylesdf' wrote")
    e3.add_argument(
        "--boundaries",
        help="the official editing boundaries folder (assets/editing_boundaries/stylesdf in the E3DGE repo)",
    )
    e3.add_argument("--toonify", help="Toonify400_1024x1024.pt (a second StyleSDF generator)")
    e3.add_argument("--toonify-encoder", help="no_local_basic_trainer.pt (the Toonify encoder)")
    e3.add_argument(
        "--mean-samples",
        type=int_in(100, 1_000_000),
        default=10000,
        help="z samples for the Toonify generator's mean latents",
    )
    e3.set_defaults(func=_cmd_convert_e3dge)

    try:
        from e3dge.cli.align import add_align_command
    except ImportError:
        pass
    else:
        add_align_command(sub)

    add_invert_command(sub)
    try:
        from e3dge.cli.toy import add_toy_command
    except ImportError:
        pass
    else:
        add_toy_command(sub)

    add_train_command(sub)

    add_hub_command(sub)

    add_directions_command(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    """Run the chosen command; one line on stderr and an exit code instead of a traceback."""
    name = f"e3dge {args.command}"
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as err:
        print(f"{name}: error: {one_line(err) or type(err).__name__}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Exception as err:  # a bug: say so in one line and how to see more
        print(
            f"{name}: internal error ({type(err).__name__}: {one_line(err)[:200]}); this is a bug in e3dge, "
            f"please report it; rerun as 'e3dge --debug {args.command} ...' to see the traceback",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``e3dge`` command; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a one-line usage error already printed
        return stop.code if isinstance(stop.code, int) else EXIT_USER_ERROR
    if args.debug:
        return int(args.func(args) or 0)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
