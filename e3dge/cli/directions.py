"""``e3dge directions fit OUT/``: editing directions from your photos + a labels CSV, or (toy lab) from ground truth.

Photos mode (PREIM3D's inversion manifold): every image named in the CSV is inverted by the bundle
(``--model``), its W+ code is cached in ``OUT/codes.safetensors`` as it is made (a killed run resumes
where it stopped), and one linear SVM per label column is fitted on the codes; its unit normal is
the direction, one offset per W+ row. Binary columns (0/1) are used as they are; other numbers are
split into their lowest and highest ``--tail`` fractions. ``--condition smile:age,glasses``
projects the other directions out (InterfaceGAN's conditional manipulation).

Toy mode (``--toy``): the toy lab's ground-truth labels, both ways (sampled W codes and E0-inverted
photo-like heads) — what ships in the toy bundle.

``OUT/directions.{safetensors,json}`` loads with :func:`e3dge.editing.load_directions`;
``--bundle-out DIR`` also writes the model bundle with these directions added, ready for
``e3dge invert --model DIR --edit NAME=S`` and the app.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from e3dge.core.errors import UserError
from e3dge.core.files import atomic_path, write_json
from e3dge.core.options import float_in, int_in
from e3dge.editing.direction import Direction
from e3dge.editing.files import DIRECTIONS_INFO, DIRECTIONS_WEIGHTS, save_directions
from e3dge.editing.fit import FitResult, binarize, fit_direction, project_out
from e3dge.editing.toy import fit_toy_directions
from e3dge.faces.errors import FaceError
from e3dge.inversion import InversionPipeline

__all__ = ["LabelTable", "read_labels", "parse_conditions", "fit_from_codes", "add_directions_command"]

FILE_COLUMN = "file"
CODES_WEIGHTS, CODES_INFO = "codes.safetensors", "codes.json"
MAX_LABEL_ROWS = 100_000
MAX_CSV_BYTES = 20 * 1024 * 1024
MIN_PER_CLASS = 2
SAVE_EVERY = 8
"""Codes are written to the cache after this many new inversions (a kill loses at most this many)."""


@dataclass(frozen=True)
class LabelTable:
    """A labels CSV: image paths (inside the images folder) and one float column per attribute (NaN = no label)."""

    files: list[Path]
    names: list[str]  # each file's name as written in the CSV (the cache key)
    columns: dict[str, np.ndarray]


def _float(value: str, where: str) -> float:
    value = value.strip()
    if value == "":
        return math.nan
    try:
        number = float(value)
    except ValueError:
        raise UserError(
            f"{where}: {value!r} is not a number; labels are 0/1 or numbers (leave a cell empty for no label)"
        ) from None
    if not math.isfinite(number):
        raise UserError(f"{where}: {value!r} is not a finite number")
    return number


def read_labels(csv_path: str | os.PathLike, images: str | os.PathLike) -> LabelTable:
    """Read ``file,attr1,attr2,...``; every file must lie inside ``images`` and exist; each row checked, one line per problem."""
    path, folder = Path(csv_path), Path(images)
    if not path.is_file():
        raise UserError(
            f"{path}: no such labels file (a CSV with a '{FILE_COLUMN}' column and one column per attribute)"
        )
    if path.stat().st_size > MAX_CSV_BYTES:
        raise UserError(f"{path}: larger than {MAX_CSV_BYTES // 2**20} MB; a labels CSV is one short line per image")
    if not folder.is_dir():
        raise UserError(f"{folder}: no such images folder")
    root = folder.resolve()
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{path}: not a readable UTF-8 CSV ({err})") from None
    if not rows or FILE_COLUMN not in [h.strip() for h in rows[0]]:
        raise UserError(f"{path}: the first line must be a header with a '{FILE_COLUMN}' column, e.g. 'file,smile,age'")
    header = [h.strip() for h in rows[0]]
    attrs = [h for h in header if h != FILE_COLUMN]
    if not attrs or any(not h for h in attrs) or len(set(header)) != len(header):
        raise UserError(
            f"{path}: the header needs one named, distinct column per attribute besides '{FILE_COLUMN}', got {header}"
        )
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if len(body) > MAX_LABEL_ROWS:
        raise UserError(f"{path}: more than {MAX_LABEL_ROWS} rows")
    fi = header.index(FILE_COLUMN)
    files, names, seen, values = [], [], set(), {a: [] for a in attrs}
    for n, row in enumerate(body, start=2):
        where = f"{path.name} line {n}"
        if len(row) != len(header):
            raise UserError(f"{where}: {len(row)} cells, the header has {len(header)}")
        name = row[fi].strip()
        target = (folder / name).resolve()
        if not name or Path(name).is_absolute() or root not in target.parents:
            raise UserError(f"{where}: {name!r} must be a file name inside {folder} (no absolute paths or '..')")
        if not target.is_file():
            raise UserError(f"{where}: {name} is not in {folder}")
        if target in seen:
            raise UserError(f"{where}: {name} is listed twice")
        seen.add(target)
        files.append(target)
        names.append(name)
        for a in attrs:
            values[a].append(_float(row[header.index(a)], f"{where}, column {a}"))
    if not files:
        raise UserError(f"{path}: no rows under the header")
    return LabelTable(files, names, {a: np.asarray(v, dtype=np.float64) for a, v in values.items()})


def parse_conditions(items: list[str] | None, names: list[str]) -> dict[str, list[str]]:
    """``["smile:age,glasses"]`` -> ``{"smile": ["age", "glasses"]}``; every name must be a fitted attribute."""
    out: dict[str, list[str]] = {}
    for item in items or []:
        name, sep, rest = item.partition(":")
        others = [o.strip() for o in rest.split(",") if o.strip()]
        if not sep or not name.strip() or not others:
            raise UserError(f"--condition expects NAME:OTHER[,OTHER...] (e.g. smile:age,glasses), got {item!r}")
        unknown = [n for n in (name.strip(), *others) if n not in names]
        if unknown:
            raise UserError(
                f"--condition {item!r}: {', '.join(unknown)} not among the fitted attributes ({', '.join(names)})"
            )
        if name.strip() in others:
            raise UserError(f"--condition {item!r}: a direction cannot be conditioned on itself")
        out[name.strip()] = others
    return out


def _labels_for_fit(values: np.ndarray, tail: float) -> tuple[np.ndarray, np.ndarray, str]:
    """(row indices used, 0/1 labels, how they were made) from one column (NaN rows dropped)."""
    rows = np.flatnonzero(~np.isnan(values))
    v = values[rows]
    if set(np.unique(v).tolist()) <= {0.0, 1.0}:
        return rows, v.astype(np.int64), "binary"
    idx, y = binarize(v, tail)
    return rows[idx], y, f"lowest / highest {tail:g} of the values"


def fit_from_codes(
    codes: torch.Tensor,
    columns: dict[str, np.ndarray],
    tail: float = 0.5,
    C: float = 0.01,
    seed: int = 0,
    conditions: dict[str, list[str]] | None = None,
    source: str = "inversion manifold",
) -> dict[str, FitResult]:
    """One direction per label column on codes ``[N, num_ws, w_dim]`` (or ``[N, w_dim]``); conditional ones project others out."""
    out: dict[str, FitResult] = {}
    for name, values in columns.items():
        rows, y, how = _labels_for_fit(values, tail)
        counts = np.bincount(y, minlength=2)
        if counts.min() < MIN_PER_CLASS:
            raise UserError(
                f"attribute {name!r}: {counts[0]} negative and {counts[1]} positive examples; each class needs at least {MIN_PER_CLASS}"
            )
        res = fit_direction(name, codes[rows], y, source=source, C=C, seed=seed)
        proj = (codes.flatten(1).double() @ res.direction.vector.flatten().double()).numpy()
        spread = max(3 * float(proj.std()), 1e-3)
        d = res.direction
        res.direction = Direction(
            d.name, d.vector, d.rows, d.source, (-spread, spread), {**d.info, "label": how, "used": int(len(rows))}
        )
        out[name] = res
    for name, others in (conditions or {}).items():
        base = out[name].direction
        vector = project_out(base.vector, [out[o].direction.vector for o in others])
        out[name].direction = Direction(
            base.name,
            vector,
            base.rows,
            base.source + " (conditional)",
            base.strength_range,
            {**base.info, "conditions": others},
        )
    return out


# ------------------------------------------------------------------ the code cache (resumable inversions)
def _cache_key(args: argparse.Namespace) -> dict:
    return {"model": args.model, "align": not args.no_align, "images": str(Path(args.images).resolve())}


def _load_cache(out: Path, key: dict, discard_other: bool = False) -> dict[str, torch.Tensor]:
    """Codes already inverted for this (model, align, images); a cache made otherwise is refused in one line (or dropped with ``discard_other``)."""

    info_path, weights_path = out / CODES_INFO, out / CODES_WEIGHTS
    if not info_path.exists():
        return {}
    try:
        info = json.loads(info_path.read_text())
        tensors = load_file(str(weights_path))
    except (OSError, ValueError, RuntimeError, SafetensorError):
        if discard_other:
            return {}
        raise UserError(
            f"{out}: the code cache ({CODES_INFO}, {CODES_WEIGHTS}) is unreadable; delete both files or pass --overwrite"
        ) from None
    if (
        not isinstance(info, dict)
        or info.get("key") != key
        or not isinstance(info.get("names"), list)
        or "codes" not in tensors
    ):
        if discard_other:
            return {}
        raise UserError(
            f"{out}: its cached codes were made with other options ({json.dumps(info.get('key') if isinstance(info, dict) else None)}); "
            "use a new OUT folder or pass --overwrite"
        )
    codes = tensors["codes"]
    if codes.ndim != 3 or codes.shape[0] != len(info["names"]):
        if discard_other:
            return {}
        raise UserError(
            f"{out}: the code cache does not match its index; delete {CODES_INFO} and {CODES_WEIGHTS} or pass --overwrite"
        )
    return {str(n): codes[i] for i, n in enumerate(info["names"])}


def _save_cache(out: Path, key: dict, cache: dict[str, torch.Tensor], failed: dict[str, str]) -> None:
    """Write the codes (safetensors) then their index (JSON), each atomically; the index is what marks a code as done."""

    names = list(cache)
    with atomic_path(out / CODES_WEIGHTS) as tmp:
        save_file({"codes": torch.stack([cache[n] for n in names]).float().contiguous()}, str(tmp))
    write_json(out / CODES_INFO, {"key": key, "names": names, "failed": failed}, indent=1)


def invert_codes(
    pipe, table: LabelTable, out: Path, key: dict, align: bool, progress: bool = True, discard_other: bool = False
) -> tuple[torch.Tensor, list[int], dict[str, str]]:
    """W+ codes of every listed image (cached, resumable): (codes ``[M, num_ws, w_dim]``, their rows in ``table``, failures by name)."""

    cache = _load_cache(out, key, discard_other)
    failed: dict[str, str] = {}
    new = 0
    todo = [n for n in table.names if n not in cache]
    if len(todo) < len(table.names):
        print(f"reusing {len(table.names) - len(todo)} cached codes from {out / CODES_WEIGHTS}")
    for name in tqdm(todo, desc="invert", disable=not progress):
        try:
            inv = pipe.invert(table.files[table.names.index(name)], align=align)
        except (FaceError, UserError) as err:
            failed[name] = str(err)
            print(f"skipped {name}: {err}", file=sys.stderr)
            continue
        cache[name] = inv.ws[0].detach().float().cpu()
        new += 1
        if new % SAVE_EVERY == 0:
            _save_cache(out, key, cache, failed)
    if (new or failed) and cache:  # nothing to keep when no image could be inverted
        _save_cache(out, key, cache, failed)
    rows = [i for i, n in enumerate(table.names) if n in cache]
    if not rows:
        raise UserError("no listed image could be inverted (see the skipped lines above)")
    return torch.stack([cache[table.names[i]] for i in rows]), rows, failed


# ------------------------------------------------------------------ output
def _write_directions(out: Path, directions: dict[str, Direction]) -> None:
    """``OUT/directions.{safetensors,json}``, written in a private folder then moved in (never half-written)."""
    tmp = out / f".directions-{uuid.uuid4().hex}"
    try:
        save_directions(tmp, directions)
        for name in (DIRECTIONS_WEIGHTS, DIRECTIONS_INFO):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_bundle(pipe, directions: dict[str, Direction], bundle_out: Path) -> None:
    """The model bundle with these directions added (a same-named bundle direction is replaced)."""

    merged = {**pipe.directions, **directions}
    InversionPipeline(
        **pipe.components, aligner=pipe.aligner, directions=merged, description=pipe.description
    ).save_pretrained(bundle_out)


def _check_out(out: Path, overwrite: bool, protected: list[Path]) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"OUT ({out}) is a file; give a folder")
    for p in protected:
        p = p.resolve()
        o = out.resolve()
        if o == p or (p.is_dir() and p in o.parents):
            raise UserError(f"OUT ({out}) must not be {p} or inside it; choose another folder")
    outputs = {(out / n).resolve() for n in (DIRECTIONS_INFO, DIRECTIONS_WEIGHTS, CODES_INFO, CODES_WEIGHTS)}
    if any(p.resolve() in outputs for p in protected):
        raise UserError(f"OUT ({out}) would overwrite an input file; choose another folder")
    if (out / DIRECTIONS_INFO).exists() and not overwrite:
        raise UserError(
            f"{out} already holds directions; pass --overwrite to replace them (cached codes are reused when the options match)"
        )


def _report(results: dict[str, FitResult]) -> None:
    for name, r in results.items():
        lo, hi = r.direction.strength_range
        cond = (
            f", conditioned on {', '.join(r.direction.info['conditions'])}"
            if r.direction.info.get("conditions")
            else ""
        )
        val = "n/a" if math.isnan(r.val_accuracy) else f"{r.val_accuracy:.3f}"
        print(
            f"{name:24s} {r.direction.info.get('used', r.num_samples):5d} codes  train acc {r.train_accuracy:.3f}  held-out acc {val}  range [{lo:.2f}, {hi:.2f}]{cond}"
        )


def _cmd_fit(args: argparse.Namespace) -> int:

    out = Path(args.output)
    protected = [Path(args.images)] if args.images else []
    if args.labels:
        protected.append(Path(args.labels))
    _check_out(out, args.overwrite, protected)
    if args.bundle_out:
        b = Path(args.bundle_out)
        if b.exists() and (not b.is_dir() or any(b.iterdir())):
            raise UserError(
                f"--bundle-out {b} exists and is not an empty folder; choose a new folder (bundles are never overwritten)"
            )
    if args.toy:
        if args.images or args.labels:
            raise UserError(
                "--toy fits on the toy lab's ground truth; drop --images/--labels (or drop --toy to fit on your photos)"
            )
        if args.model != "toy":
            raise UserError("--toy needs --model toy (the procedural heads' labels only describe the toy generator)")
    elif not (args.images and args.labels):
        raise UserError(
            "give --images FOLDER and --labels CSV (a 'file' column + one column per attribute), or --toy for the toy lab"
        )
    table = None if args.toy else read_labels(args.labels, args.images)
    if table is not None:
        parse_conditions(args.condition, list(table.columns))  # bad conditions fail before any inversion
    pipe = InversionPipeline.from_pretrained(args.model)
    out.mkdir(parents=True, exist_ok=True)
    if args.toy:
        if pipe.encoder is None:
            raise UserError("this toy bundle has no encoder; the inversion-manifold fits need E0")
        results = fit_toy_directions(
            pipe.generator, pipe.encoder, num=args.sampled, num_inverted=args.inverted, seed=args.seed
        )
        from e3dge.editing.toy import TOY_ATTRIBUTES

        for name, others in parse_conditions(args.condition, list(TOY_ATTRIBUTES)).items():
            for suffix in ("", "_preim3d"):  # each kind is conditioned on the same kind's directions
                base = results[name + suffix].direction
                vector = project_out(base.vector, [results[o + suffix].direction.vector for o in others])
                results[name + suffix].direction = Direction(
                    base.name,
                    vector,
                    base.rows,
                    base.source + " (conditional)",
                    base.strength_range,
                    {**base.info, "conditions": [o + suffix for o in others]},
                )
    else:
        key = _cache_key(args)
        codes, rows, failed = invert_codes(
            pipe, table, out, key, align=not args.no_align, progress=not args.quiet, discard_other=args.overwrite
        )
        columns = {a: v[rows] for a, v in table.columns.items()}
        results = fit_from_codes(
            codes,
            columns,
            tail=args.tail,
            C=args.C,
            seed=args.seed,
            conditions=parse_conditions(args.condition, list(columns)),
            source=f"inversion manifold: {len(rows)} photos inverted by {args.model}",
        )
        if failed:
            print(
                f"{len(failed)} of {len(table.names)} images could not be inverted and were left out: {', '.join(list(failed)[:5])}"
                + (" ..." if len(failed) > 5 else ""),
                file=sys.stderr,
            )
    directions = {n: r.direction for n, r in results.items()}
    _report(results)
    _write_directions(out, directions)
    print(f"wrote {out / DIRECTIONS_WEIGHTS} and {out / DIRECTIONS_INFO} ({len(directions)} directions)")
    if args.bundle_out:
        _write_bundle(pipe, directions, Path(args.bundle_out))
        print(
            f"wrote the bundle {args.bundle_out} with them: e3dge invert PHOTO OUT/ --model {args.bundle_out} --edit {next(iter(directions))}=1.5"
        )
    return 0


def add_directions_command(subparsers) -> argparse.ArgumentParser:
    """Register ``directions fit`` on the e3dge sub-command parser."""
    p = subparsers.add_parser(
        "directions", help="editing directions: fit them from photos + labels (or the toy lab's ground truth)"
    )
    sub = p.add_subparsers(dest="directions_command", required=True)
    f = sub.add_parser(
        "fit",
        help="fit one direction per label column (InterfaceGAN SVM on inverted W+ codes, PREIM3D's inversion manifold)",
    )
    f.add_argument("output", help="folder for directions.{safetensors,json} and the resumable code cache")
    f.add_argument("--images", help="folder of face photos")
    f.add_argument(
        "--labels",
        help="CSV: a 'file' column (names inside --images) and one column per attribute (0/1 or numbers; empty = unknown)",
    )
    f.add_argument(
        "--toy",
        action="store_true",
        help="toy lab: fit every toy attribute from ground truth, on sampled W and on inverted heads",
    )
    f.add_argument(
        "--model", default="toy", help="bundle that inverts the photos (toy, eg3d-ffhq, a folder or a Hub id)"
    )
    f.add_argument("--no-align", action="store_true", help="the photos are already aligned square crops")
    f.add_argument(
        "--condition",
        action="append",
        metavar="NAME:OTHER[,OTHER]",
        help="project the others' directions out of NAME's (repeatable)",
    )
    f.add_argument(
        "--tail",
        type=float_in(0.001, 0.5),
        default=0.5,
        help="numeric labels: fit on the lowest and highest fraction (0.5 = median split)",
    )
    f.add_argument(
        "--C",
        type=float_in(1e-6, 1e6),
        default=0.01,
        help="SVM regularisation (smaller = smoother; W+ codes have many dimensions)",
    )
    f.add_argument("--seed", type=int_in(0, 2**31 - 1), default=0)
    f.add_argument("--sampled", type=int_in(10, 100_000), default=4000, help="--toy: sampled W codes")
    f.add_argument("--inverted", type=int_in(10, 100_000), default=1500, help="--toy: inverted photo-like heads")
    f.add_argument(
        "--bundle-out",
        help="also write the model bundle with these directions added (for e3dge invert --edit and the app)",
    )
    f.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the directions already in OUT (its code cache is kept when model, alignment and images match, else started afresh)",
    )
    f.add_argument("--quiet", action="store_true", help="no progress bars")
    f.set_defaults(func=_cmd_fit)
    return p
