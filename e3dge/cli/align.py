"""``e3dge align IN OUT``: align a photo, a folder of photos or a video and print the camera label.

``add_align_command(subparsers)`` registers the command on the main ``e3dge`` parser;
``python -m e3dge.faces IN OUT ...`` runs the same command on its own.

Inputs are never overwritten. Before anything is read or written, ``align`` refuses (one line,
exit 1) an OUT that is IN itself (also through a symlink or a hard link), an OUT folder inside the
input folder, and a single photo's ``--json`` file or a video's label file that would be the input.

Batch output names are deterministic: ``stem.png``; inputs sharing a stem (``a.jpg``, ``a.png``)
get ``stem_ext.png`` (``a_jpg.png``, ``a_png.png``); a name that is still taken, compared without
case, gets ``_2``, ``_3``, ... in sorted input order (``a_jpg.png`` next to ``a.jpg`` gives
``a_jpg_2.png``). Every aligned input has its own row in ``OUT/dataset.json``.

Rerunning into the same OUT replaces that run's outputs and rewrites ``dataset.json`` with the rows
of the new run; other files in OUT are left alone. Every file is written under a temporary name and
renamed, so an interrupted run never leaves half an image or half a ``dataset.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image

from e3dge.core.options import float_in, int_in
from e3dge.faces.align import CONVENTIONS
from e3dge.faces.api import MAX_MIN_FACE_SIZE, MAX_OUTPUT_SIZE, MIN_OUTPUT_SIZE, align_face
from e3dge.faces.detect import MIN_FACE_SIZE
from e3dge.faces.errors import FaceError
from e3dge.faces.video import MAX_WINDOW, align_video

__all__ = [
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "MAX_FACE_INDEX",
    "configure_align_parser",
    "add_align_command",
    "run_align",
    "output_names",
    "check_output",
]

MAX_FACE_INDEX = 999
"""Largest ``--face-index`` (faces are numbered from 0, largest central first)."""

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif"}
VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v"}

_DESCRIPTION = (
    "Detect the main face, crop it as EG3D's in-the-wild preprocessing (--convention eg3d) or FFHQ "
    "(--convention ffhq), estimate the head pose and print the 25-value EG3D camera label. IN may be a photo, "
    "a folder (batch: OUT is a folder, labels go to OUT/dataset.json) or a video (OUT is a video; labels go "
    "next to it as .json)."
)


def configure_align_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``align`` arguments to ``parser`` and set ``func``."""
    parser.add_argument("input", type=Path, help="photo, folder of photos, or video")
    parser.add_argument("output", type=Path, help="aligned image (folder in batch mode, video for a video)")
    parser.add_argument("--convention", choices=CONVENTIONS, default="eg3d", help="crop convention (default eg3d)")
    parser.add_argument(
        "--size",
        type=int_in(MIN_OUTPUT_SIZE, MAX_OUTPUT_SIZE),
        default=None,
        help=f"output size in pixels, {MIN_OUTPUT_SIZE}..{MAX_OUTPUT_SIZE} (default 512)",
    )
    parser.add_argument(
        "--detector", choices=("hog", "cnn"), default="hog", help="dlib detector (cnn: slower, handles pose)"
    )
    parser.add_argument(
        "--face-index",
        type=int_in(0, MAX_FACE_INDEX),
        default=None,
        help=f"face to use when several are found, 0..{MAX_FACE_INDEX} (0 = largest central)",
    )
    parser.add_argument(
        "--min-face",
        type=float_in(8, MAX_MIN_FACE_SIZE),
        default=MIN_FACE_SIZE,
        help=f"smallest face accepted, in pixels (8..{MAX_MIN_FACE_SIZE}, default {MIN_FACE_SIZE})",
    )
    parser.add_argument(
        "--window",
        type=int_in(1, MAX_WINDOW),
        default=5,
        help=f"video: frames in the smoothing mean filter, 1..{MAX_WINDOW} (1 = off, default 5)",
    )
    parser.add_argument("--no-roll", action="store_true", help="leave head roll out of the camera label")
    parser.add_argument(
        "--json", action="store_true", help="single photo: also write OUT.json (label, pose, transform)"
    )
    parser.add_argument("--quiet", action="store_true", help="print only labels and errors")
    parser.set_defaults(func=run_align)


def add_align_command(subparsers) -> None:
    """Register ``align`` on an argparse ``subparsers`` object (from ``parser.add_subparsers()``)."""
    parser = subparsers.add_parser(
        "align",
        help="crop a face photo/folder/video for EG3D or FFHQ and print its camera label",
        description=_DESCRIPTION,
    )
    configure_align_parser(parser)


def _label(result, no_roll: bool) -> list[float]:
    return [round(float(v), 6) for v in result.pose.label(include_roll=not no_roll)[0]]


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file next to ``path``, then rename it over ``path`` (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _save(image: np.ndarray, path: Path) -> None:
    _write_atomic(path, lambda tmp: Image.fromarray(image).save(tmp))


def _save_text(text: str, path: Path) -> None:
    _write_atomic(path, lambda tmp: tmp.write_text(text))


def _out_image_path(path: Path, source: Path) -> Path:
    if path.is_dir():
        return path / (source.stem + ".png")
    return path if path.suffix.lower() in IMAGE_EXTS else path.with_name(path.name + ".png")


def _unique(name: str, taken: set[str]) -> str:
    """``name``, or ``name`` with ``_2``, ``_3``, ... before its extension, whichever is not yet in ``taken`` (no case)."""
    stem, ext = os.path.splitext(name)
    candidate, n = name, 1
    while candidate.lower() in taken:
        n += 1
        candidate = f"{stem}_{n}{ext}"
    return candidate


def output_names(files: list[Path]) -> dict[Path, str]:
    """Distinct batch output names (see the module docstring): ``stem.png``, ``stem_ext.png`` on shared stems, then ``_2``..."""
    counts: dict[str, int] = {}
    for p in files:
        counts[p.stem.lower()] = counts.get(p.stem.lower(), 0) + 1
    names, taken = {}, {"dataset.json"}
    for p in sorted(files, key=lambda f: f.name):
        plain = f"{p.stem}.png" if counts[p.stem.lower()] == 1 else f"{p.stem}_{p.suffix.lstrip('.').lower()}.png"
        names[p] = _unique(plain, taken)
        taken.add(names[p].lower())
    return names


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file: the same path after symlinks, or the same inode (a hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return False


def check_output(inp: Path, out: Path) -> None:
    """Refuse an output that is the input, or a folder inside the input folder (inputs are never overwritten)."""
    i, o = inp.resolve(), out.resolve()
    if _same_file(inp, out):
        raise FaceError(
            f"the output {out} is the input itself; choose another output path (inputs are never overwritten)"
        )
    if inp.is_dir() and (i in o.parents):
        raise FaceError(
            f"the output folder {out} is inside the input folder {inp}; choose a folder outside it (inputs are never overwritten)"
        )
    if inp.is_dir() and o.exists() and not o.is_dir():
        raise FaceError(f"the output {out} is a file; a folder input needs an output folder")


def check_not_inputs(outputs: Iterable[Path], inputs: Iterable[Path]) -> None:
    """Refuse when an output file would be one of the inputs (e.g. an input that is a link to a file in OUT)."""
    ids = {}
    for p in inputs:
        try:
            st = p.stat()
        except OSError:
            continue
        ids[(st.st_dev, st.st_ino)] = p
    for out in outputs:
        try:
            st = out.stat()
        except OSError:  # not written yet: it cannot be an existing input
            continue
        if (st.st_dev, st.st_ino) in ids:
            raise FaceError(
                f"the output {out} is the input {ids[(st.st_dev, st.st_ino)]} (a link); choose another output folder "
                "(inputs are never overwritten)"
            )


def _align_one(args, path: Path):

    return align_face(path, args.convention, args.size, args.detector, args.face_index, args.min_face)


def _run_single(args) -> int:
    out = _out_image_path(args.output, args.input)
    for path in (out, out.with_suffix(".json")) if args.json else (out,):
        check_output(args.input, path)
    result = _align_one(args, args.input)
    _save(result.image, out)
    label = _label(result, args.no_roll)
    if not args.quiet:
        for note in result.notes:
            print(f"note: {note}")
        yaw, pitch, roll = result.pose.degrees
        print(f"saved {out} ({args.convention}, {result.transform.size}x{result.transform.size})")
        print(f"pose: yaw {yaw:+.1f} deg, pitch {pitch:+.1f} deg, roll {roll:+.1f} deg")
    print("label: " + json.dumps(label))
    if args.json:
        info = result.summary()
        info["label"] = label
        _save_text(json.dumps(info, indent=1), out.with_suffix(".json"))
    return 0


def _run_batch(args) -> int:
    files = sorted(p for p in args.input.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
    if not files:
        print(f"error: no images ({', '.join(sorted(IMAGE_EXTS))}) in folder {args.input}", file=sys.stderr)
        return 1
    check_output(args.input, args.output)
    names = output_names(files)
    check_not_inputs([args.output / n for n in (*names.values(), "dataset.json")], files)
    args.output.mkdir(parents=True, exist_ok=True)
    labels, failures = [], []
    for path in files:
        try:
            result = _align_one(args, path)
        except FaceError as exc:
            failures.append((path.name, str(exc)))
            print(f"FAILED {path.name}: {exc}", file=sys.stderr)
            continue
        except Exception as exc:  # one odd file must not stop a batch; report it and go on
            failures.append((path.name, repr(exc)))
            print(f"FAILED {path.name}: unexpected error, please report it: {exc!r}", file=sys.stderr)
            continue
        name = names[path]
        _save(result.image, args.output / name)
        label = _label(result, args.no_roll)
        labels.append([name, label])
        if not args.quiet:
            yaw, pitch, roll = result.pose.degrees
            extra = f" ({len(result.faces)} faces, used #{result.index})" if len(result.faces) > 1 else ""
            extra += (
                f" (photo turned {result.rotation_degrees} deg to make the face upright)"
                if result.rotation_degrees
                else ""
            )
            print(f"ok {path.name} -> {name}: yaw {yaw:+.1f}, pitch {pitch:+.1f}, roll {roll:+.1f}{extra}")
    _save_text(json.dumps({"labels": labels}), args.output / "dataset.json")
    print(
        f"aligned {len(labels)}/{len(files)} images into {args.output} (labels in dataset.json)"
        + (f"; {len(failures)} failed: " + ", ".join(n for n, _ in failures) if failures else "")
    )
    return 1 if failures else 0


def _run_video(args) -> int:

    out = args.output if args.output.suffix else args.output.with_suffix(".mp4")
    for path in (out, out.with_suffix(".json")):
        check_output(args.input, path)
    result = align_video(
        args.input, out, args.convention, args.size, args.window, args.detector, args.min_face, progress=not args.quiet
    )
    missing = f"; no face in {len(result.missing)} frame(s), interpolated" if result.missing else ""
    if result.rotation_degrees:
        turn = result.rotation_degrees
        print(
            f"note: {args.input.name} is turned: every frame is turned {turn} degrees counter-clockwise to make the face upright"
        )
    print(f"saved {out} ({result.num_frames} frames at {result.fps:g} fps{missing}); labels in {result.cameras_path}")
    return 0


def run_align(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status (0 ok, 1 a file could not be aligned, 130 interrupted)."""
    try:
        if args.input.is_dir():
            return _run_batch(args)
        if args.input.suffix.lower() in VIDEO_EXTS:
            return _run_video(args)
        return _run_single(args)
    except FaceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # e.g. output folder not writable, disk full
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
