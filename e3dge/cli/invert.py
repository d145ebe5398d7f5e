"""``e3dge invert PHOTO|FOLDER|VIDEO OUT/``: photo(s) -> aligned crop, reconstruction, views, depth, orbit video, JSON.

Folders are inverted one image at a time into ``OUT/<name>/`` (two inputs with the same stem get
``<stem>_<ext>`` names); a folder already finished with the same options is skipped, so an
interrupted batch resumes. ``OUT`` may never be an input, or inside the input folder.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from tqdm.auto import tqdm

from e3dge.cli.align import check_output, output_names
from e3dge.core.errors import UserError
from e3dge.core.files import file_digest
from e3dge.core.options import int_in
from e3dge.core.precision import PRECISIONS
from e3dge.editing.direction import MAX_EDIT_STRENGTH
from e3dge.export import MeshOptions
from e3dge.faces.errors import FaceError
from e3dge.inversion import InversionPipeline
from e3dge.inversion.outputs import done_with, write_inversion
from e3dge.inversion.video import invert_video

__all__ = ["add_invert_command", "unique_output_names", "check_output_location"]

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}


def unique_output_names(paths: list[Path]) -> dict[Path, str]:
    """Each input's output folder name: the same rule as ``e3dge align`` (stem, stem_ext on shared stems, then _2...)."""

    return {p: name[: -len(".png")] for p, name in output_names(paths).items()}


def check_output_location(inp: Path, out: Path) -> None:
    """Refuse an output that is the input, or lies inside the input folder (``e3dge align``'s rule), as a one-line error."""

    try:
        check_output(inp, out)
    except FaceError as err:
        raise UserError(str(err)) from None
    if out.exists() and not out.is_dir():
        raise UserError(f"OUT ({out}) is a file; give a folder")


def _options(args: argparse.Namespace) -> dict:
    return {
        "model": args.model,
        "refine": args.refine,
        "steps": args.steps,
        "optimize": args.optimize,
        "align": not args.no_align,
        "views": args.views,
        "frames": args.frames,
        "edits": parse_edits(args.edit),
        "mesh": args.mesh,
        "mesh_resolution": args.mesh_resolution,
        "plot": args.plot,
    }


def parse_edits(items: list[str] | None) -> dict[str, float]:
    """``["smile=1.5", "glasses=-1"]`` -> ``{"smile": 1.5, "glasses": -1.0}``; anything else is a one-line error."""

    edits: dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            strength = float(value)
        except ValueError:
            strength = float("nan")
        if not sep or not name or not math.isfinite(strength) or abs(strength) > MAX_EDIT_STRENGTH:
            raise UserError(
                f"--edit expects NAME=STRENGTH with a number between -{MAX_EDIT_STRENGTH:g} and {MAX_EDIT_STRENGTH:g} "
                f"(e.g. smile=1.5), got {item!r}"
            )
        edits[name.strip()] = strength
    return edits


def _invert_one(pipe, path: Path, folder: Path, args: argparse.Namespace, options: dict | None = None) -> str:

    extra = {} if args.generator == "default" else {"generator": args.generator}
    if args.generator not in pipe.generators:
        raise UserError(
            f"--generator {args.generator} needs a bundle with the Toonify pair (e3dge convert e3dge --toonify ...); this one has "
            f"{', '.join(pipe.generators)}"
        )
    inv = pipe.invert(
        path,
        align=not args.no_align,
        refine=args.refine,
        steps=args.steps,
        optimize=args.optimize,
        progress=not args.quiet,
        **extra,
    )
    edits = parse_edits(args.edit)
    unknown = sorted(set(edits) - set(pipe.directions or {}))
    if unknown:  # one line listing the bundle's directions, before any file is written
        raise UserError(
            f"unknown editing direction(s) {unknown}; available: {', '.join(sorted(pipe.directions or {})) or 'none'}"
        )

    write_inversion(
        pipe,
        inv,
        folder,
        views=args.views,
        orbit_frames=args.frames,
        fps=args.fps,
        options=options or _options(args),
        edits=edits,
        mesh=args.mesh,
        mesh_options=MeshOptions(resolution=args.mesh_resolution),
        plots=args.plot == "html",
    )
    yaw, pitch = inv.degrees
    return f"{inv.method}, yaw {yaw:+.1f} deg, pitch {pitch:+.1f} deg ({inv.camera_source} camera), {sum(inv.timings.values()):.2f} s"


def _cmd_invert(args: argparse.Namespace) -> int:

    inp, out = Path(args.input), Path(args.output)
    if not inp.exists():
        raise UserError(f"{inp}: no such file or folder")
    check_output_location(inp, out)
    parse_edits(args.edit)  # malformed edits fail before any work
    unused = [flag for flag, value in (("--edit", args.edit), ("--mesh", args.mesh), ("--plot", args.plot)) if value]
    if inp.suffix.lower() in VIDEO_SUFFIXES and inp.is_file() and unused:
        raise UserError(
            f"{' and '.join(unused)} apply to photos and folders of photos, not to a video; invert the video without them"
        )
    pipe = InversionPipeline.from_pretrained(args.model, precision=args.precision)
    if inp.is_dir():
        return _batch(pipe, inp, out, args)
    if inp.suffix.lower() in VIDEO_SUFFIXES:
        result = invert_video(
            pipe, inp, out, refine=args.refine, steps=args.steps, fps=args.fps, progress=not args.quiet
        )
        print(
            f"wrote {result.video} ({result.num_frames} frames; resumed {result.frames_reused}); per-frame results in {result.frames_dir}"
        )
        return 0
    print(f"{inp.name}: {_invert_one(pipe, inp, out, args)}")
    extras = (
        (", orbit.mp4" if args.frames else "")
        + (f", mesh.{args.mesh}" if args.mesh else "")
        + (", view3d.html" if args.plot else "")
    )
    print(f"wrote {out}/ (aligned.png, reconstruction.png, depth.png, view_*.png{extras}, inversion.json)")
    return 0


def _batch(pipe, inp: Path, out: Path, args: argparse.Namespace) -> int:

    files = sorted(p for p in inp.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{inp}: no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    names, common, failed, skipped = unique_output_names(files), _options(args), [], 0
    for path in tqdm(files, desc="invert", disable=args.quiet):
        folder = out / names[path]
        options = {
            **common,
            "input_sha256": file_digest(path),
            "model_sha": pipe.identity,
        }  # what a result is reused for
        if done_with(folder, options):
            skipped += 1
            continue
        try:
            print(f"{path.name} -> {folder}: {_invert_one(pipe, path, folder, args, options)}")
        except (FaceError, UserError) as err:
            failed.append(path.name)
            print(f"FAILED {path.name}: {err}", file=sys.stderr)
    done = len(files) - len(failed)
    print(
        f"inverted {done}/{len(files)} images into {out}"
        + (f" ({skipped} already done)" if skipped else "")
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


def add_invert_command(subparsers) -> argparse.ArgumentParser:
    """Register ``invert`` on the e3dge sub-command parser."""
    p = subparsers.add_parser(
        "invert", help="invert a photo, a folder of photos or a video into 3D (aligned crop, views, depth, orbit, JSON)"
    )
    p.add_argument("input", help="photo, folder of photos, or video")
    p.add_argument("output", help="output folder (must not be the input or inside the input folder)")
    p.add_argument(
        "--model",
        default="toy",
        help="bundle: toy (offline, default), eg3d-ffhq, a bundle folder (e.g. one 'e3dge convert stylesdf/e3dge' made) or a Hub id",
    )
    p.add_argument(
        "--refine",
        choices=["pose", "pose+code"],
        default=None,
        help="test-time refinement: camera (P) or camera + code (P+C)",
    )
    p.add_argument(
        "--steps", type=int_in(1, 10000), default=None, help="refinement / optimisation steps (default 50 / 200)"
    )
    p.add_argument(
        "--optimize", action="store_true", help="optimisation baseline (W/W+ then PTI) instead of the encoder"
    )
    p.add_argument(
        "--generator",
        choices=["default", "toonify"],
        default="default",
        help="StyleSDF bundles: invert with the Toonify pair",
    )
    p.add_argument(
        "--no-align", action="store_true", help="the input is already an aligned square crop (e.g. toy-lab renders)"
    )
    p.add_argument("--views", type=int_in(0, 32), default=3, help="novel views to write (0-32)")
    p.add_argument("--frames", type=int_in(0, 1000), default=48, help="orbit video frames (0 = no video)")
    p.add_argument("--fps", type=int_in(1, 120), default=24)
    p.add_argument(
        "--edit",
        action="append",
        metavar="NAME=STRENGTH",
        help="edit the views and orbit along a bundle direction, e.g. --edit smile=1.5 (repeatable)",
    )
    p.add_argument(
        "--mesh",
        choices=["glb", "ply", "obj"],
        default=None,
        help="also write mesh.<fmt> of the (edited) face (vertex colours, normals)",
    )
    p.add_argument(
        "--mesh-resolution", type=int_in(16, 512), default=128, help="marching-cubes grid points per side (16-512)"
    )
    p.add_argument(
        "--plot",
        choices=["html"],
        default=None,
        help="also write view3d.html: depth surface, mesh and point cloud (Plotly, offline)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32 (default, as the official code) or bf16 autocast: faster on CPUs with AVX512-BF16/AMX and recent GPUs, slightly different results",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_invert)
    return p
