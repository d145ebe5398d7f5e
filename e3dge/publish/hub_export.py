"""Hub-ready bundle folders: ``e3dge hub export BUNDLE OUT/`` (components, directions, model card) and ``e3dge hub push``.

:func:`export_bundle` loads a bundle (``toy``, a folder or a Hub id), writes it with
``InversionPipeline.save_pretrained`` into a temporary sibling of ``OUT``, adds a ``README.md`` model
card (huggingface_hub ``ModelCard`` YAML: library, pipeline tag, licence, base model, tags, and for
the shipped toy the benchmark numbers), checks that the folder loads back to the same weights, and
only then renames it to ``OUT``. Components a bundle names by reference (a known checkpoint or
another Hub repo) stay references: upstream weights are never re-hosted. :func:`push_bundle` uploads
such a folder with ``create_repo`` + ``upload_folder``.

Licence rule: the shipped toy generator is Apache-2.0 (e3dge's code, procedural data); any other
generator is taken to be EG3D-derived (the only real family e3dge loads), hence ``license: other``
with the NVIDIA Source Code License for EG3D, unless ``license=`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData, get_token
from huggingface_hub.errors import HTTPError
from huggingface_hub.utils import validate_repo_id
from safetensors import safe_open

from e3dge.backbones.eg3d.network import PRETRAINED_EG3D
from e3dge.core.errors import UserError, one_line
from e3dge.core.files import read_json
from e3dge.core.hub import confined_file, regular_files
from e3dge.inversion.bundle import PIPELINE_FILE, BundleSpec, read_bundle_spec, resolve_bundle
from e3dge.inversion.pipeline import InversionPipeline
from e3dge.toy import load_toy_encoder, load_toy_generator

__all__ = [
    "CARD_FILE",
    "Licence",
    "TOY_LICENCE",
    "EG3D_LICENCE",
    "BenchmarkMetric",
    "toy_metrics",
    "build_model_card",
    "export_bundle",
    "push_bundle",
    "add_hub_command",
]

CARD_FILE = "README.md"
PLACEHOLDER_REPO = "OWNER/NAME"
RESULTS_DIR = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
"""Benchmark results of a source checkout (absent from an installed wheel: the card then has no numbers)."""
_EXTRA_COMPONENT_FILES = ("README.md", "train_config.json")
"""Files copied next to a component's weights when its source folder has them (its own card, its training options)."""


@dataclass(frozen=True)
class Licence:
    """A Hub licence entry (``license``, ``license_name``, ``license_link``) and the card's sentence about it."""

    id: str
    name: str | None = None
    link: str | None = None
    text: str = ""


TOY_LICENCE = Licence(
    "apache-2.0",
    text="Apache-2.0, like e3dge: the toy weights were trained by e3dge's own code on procedural heads "
    "(no third-party data, code or weights).",
)
EG3D_LICENCE = Licence(
    "other",
    "nvidia-source-code-license-nc",
    "https://github.com/NVlabs/eg3d/blob/main/LICENSE.txt",
    "NVIDIA Source Code License for EG3D: the generator's weights are (or derive from) NVIDIA's EG3D FFHQ weights, which may be "
    "used non-commercially only (research or evaluation); redistributing them needs a complete copy of that licence. "
    "e3dge's code itself is Apache-2.0.",
)


@dataclass(frozen=True)
class BenchmarkMetric:
    """One number from ``benchmarks/results``: what was measured, on which held-out seed, and the command that reproduces it."""

    dataset: str
    split: str
    metric_type: str
    name: str
    value: float
    command: str


# ------------------------------------------------------------------ what the bundle is
def _same_weights(module: torch.nn.Module | None, reference: torch.nn.Module) -> bool:
    """``module`` has exactly ``reference``'s class, tensor names and values."""
    if module is None or type(module) is not type(reference):
        return False
    a, b = module.state_dict(), reference.state_dict()
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape and torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def toy_status(pipe) -> tuple[bool, bool]:
    """(the generator is the shipped toy EG3D, the generator and E0 are both the shipped toy ones)."""

    if not _same_weights(pipe.generator, load_toy_generator()):
        return False, False
    return True, _same_weights(pipe.encoder, load_toy_encoder())


def _base_models(spec: BundleSpec) -> list[str]:
    """Hub repos the bundle's referenced components come from."""

    found = [
        PRETRAINED_EG3D[c.source].repo_id if c.source in PRETRAINED_EG3D else c.repo for c in spec.components.values()
    ]
    return sorted({r for r in found if r and r.count("/") == 1})


# ------------------------------------------------------------------ benchmark numbers


def toy_metrics(results_dir: str | os.PathLike | None = None) -> list[BenchmarkMetric]:
    """The shipped toy bundle's held-out numbers (E0 / E0 + P + C source MAE and depth %, mesh Chamfer), rounded to 4 decimals."""
    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    out: list[BenchmarkMetric] = []
    for path in sorted(folder.glob("toy_inversion_seed*.json")):
        data = read_json(path)
        if isinstance(data, dict):
            out += _inversion_metrics(data)
    data = read_json(folder / "export.json")
    for run in data if isinstance(data, list) else []:
        out += _chamfer_metrics(run)
    return out


_INVERSION_KEYS = (
    ("source_mae", "mae", "source-view MAE"),
    ("source_depth_pct", "depth_error_pct", "source-view depth error %"),
)


def _inversion_metrics(data: dict) -> list[BenchmarkMetric]:
    seed, methods = data.get("seed"), data.get("methods") or {}
    command = f"PYTHONPATH=. python benchmarks/toy_inversion.py --seed {seed} --heads {data.get('heads')} --steps {data.get('refine_steps')}"
    out = []
    for method in ("E0", "E0 + P + C"):
        row = methods.get(method) or {}
        for key, metric_type, what in _INVERSION_KEYS:
            if isinstance(row.get(key), (int, float)):
                out.append(
                    BenchmarkMetric(
                        f"toy photo-like heads ({row.get('heads')} held-out)",
                        f"seed {seed}",
                        metric_type,
                        f"{method}: {what}",
                        round(float(row[key]), 4),
                        command,
                    )
                )
    return out


def _chamfer_metrics(run: Any) -> list[BenchmarkMetric]:
    if not isinstance(run, dict):
        return []
    seed, rows = run.get("seed"), run.get("rows") or {}
    command = (
        f"PYTHONPATH=. python benchmarks/export.py --seeds {seed} --heads {run.get('heads')} --grid {run.get('grid')} "
        f"--steps {run.get('refine_steps')}"
    )
    out = []
    for method in ("E0", "E0 + P + C"):
        value = (rows.get(method) or {}).get("chamfer")
        if isinstance(value, (int, float)):
            out.append(
                BenchmarkMetric(
                    f"toy photo-like heads ({run.get('heads')} held-out)",
                    f"seed {seed}",
                    "chamfer_distance",
                    f"{method}: mesh Chamfer distance (world units)",
                    round(float(value), 4),
                    command,
                )
            )
    return out


# ------------------------------------------------------------------ the card
def build_model_card(
    pipe, spec: BundleSpec, *, repo_id: str | None, licence: Licence, toy: bool, metrics: list[BenchmarkMetric]
):
    """A ``huggingface_hub.ModelCard``: YAML metadata + what it is, how to use it, numbers, limitations, licence."""

    name = repo_id or PLACEHOLDER_REPO
    tags = ["e3dge", "3d", "gan-inversion", "eg3d", "3d-gan", "nerf"] + (
        ["toy", "procedural-heads"] if toy else ["face", "ffhq"]
    )
    evals = [
        EvalResult(
            task_type="image-to-3d",
            dataset_type="e3dge-toy-procedural-heads",
            dataset_name=m.dataset,
            dataset_split=m.split,
            metric_type=m.metric_type,
            metric_name=m.name,
            metric_value=m.value,
        )
        for m in metrics
    ]
    base = _base_models(spec)
    data = ModelCardData(
        library_name="e3dge",
        pipeline_tag="image-to-3d",
        license=licence.id,
        license_name=licence.name,
        license_link=licence.link,
        base_model=(base[0] if len(base) == 1 else base) or None,
        tags=tags,
        model_name=name,
        metrics=sorted({m.metric_type for m in metrics}) or None,
        eval_results=evals or None,
    )
    parts = [
        _intro(pipe, spec, name, toy),
        _usage(name, pipe),
        _metrics_section(metrics, toy),
        _limitations(toy),
        _licence_section(licence),
    ]
    body = "\n".join(parts)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _intro(pipe, spec: BundleSpec, name: str, toy: bool) -> str:
    rows = [f"| `{slot}` | {c.cls} | {_where(c)} |" for slot, c in spec.components.items()]
    lines = [
        f"# {name}",
        "",
        pipe.description or "An e3dge inversion bundle.",
        "",
        "An e3dge `InversionPipeline` bundle: one face photo in, an editable 3D face (EG3D tri-planes) out, "
        "after E3DGE (Lan et al., CVPR 2023) with ideas from PREIM3D (CVPR 2023). `pipeline.json` names each component:",
        "",
        "| slot | class | weights |",
        "|---|---|---|",
        *rows,
        "",
    ]
    if pipe.directions:
        names = ", ".join(
            f"`{n}` ({d.strength_range[0]:+.2f}..{d.strength_range[1]:+.2f})"
            for n, d in sorted(pipe.directions.items())
        )
        lines += [f"Editing directions (`directions/`, validated strength range): {names}.", ""]
    if toy:
        lines += [
            "Training data and budgets of each component (procedural heads only, CPU budgets, reproduce commands): "
            "`generator/README.md` and `encoder/README.md`.",
            "",
        ]
    return "\n".join(lines)


def _where(c) -> str:
    if c.subfolder is not None:
        return f"`{c.subfolder}/` (config.json + model.safetensors)"
    ref = c.source or c.repo
    return (
        f"reference `{ref}`"
        + (f" @ `{c.revision}`" if c.revision else "")
        + " (downloaded by the user, not re-hosted here)"
    )


def _usage(name: str, pipe) -> str:
    opt = ", optimize=True" if pipe.encoder is None else ', refine="pose+code", steps=50'
    flag = " --optimize" if pipe.encoder is None else " --refine pose+code"
    return "\n".join(
        [
            "## How to use",
            "",
            "```bash",
            "pip install -e .   # in an e3dge checkout (Python >= 3.10)",
            "```",
            "",
            "```python",
            "from e3dge.inversion import InversionPipeline",
            "",
            f'pipe = InversionPipeline.from_pretrained("{name}")',
            f'inv = pipe.invert("photo.jpg"{opt})   # align -> encode/optimise -> render',
            "view = pipe.render(inv, yaw=0.4)",
            "```",
            "",
            "```bash",
            f"e3dge invert photo.jpg out/ --model {name}{flag}",
            "```",
            "",
        ]
    )


def _metrics_section(metrics: list[BenchmarkMetric], toy: bool) -> str:
    if not metrics:
        text = (
            "The numbers of the shipped toy bundle are in e3dge's `model_card.md`."
            if toy
            else "No benchmark numbers were recorded for these weights with e3dge; see e3dge's `model_card.md` for how to measure them."
        )
        return f"## Evaluation\n\n{text}\n"
    rows = [f"| {m.name} | {m.split} | {m.value:g} | `{m.command}` |" for m in metrics]
    return "\n".join(
        [
            "## Evaluation",
            "",
            "Held-out toy heads with exact ground truth (images on [0, 1], raw render at 64 px, depth error on the "
            "head as % of the ray range, mesh distances in world units with the head about 0.4 wide). Run from an e3dge checkout.",
            "",
            "| metric | held-out | value | reproduce |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )


def _limitations(toy: bool) -> str:
    common = [
        "- Out of scope: identity verification or recognition, and edits of people without their consent (deepfakes, "
        "impersonation, harassment). Reconstructions are the generator's guess, not a measurement of a person."
    ]
    if toy:
        lines = [
            "- A toy: trained on procedural heads only, it cannot look like a real person; a real photo comes out as the nearest toy head.",
            "- Meant for offline demos, tests and teaching; its numbers say nothing about real faces.",
        ]
    else:
        lines = [
            "- FFHQ-trained face models inherit FFHQ's demographics (uneven in age, skin tone and accessories) and reconstruct "
            "under-represented groups worse.",
            "- Profile views, steep pitch, occlusions and faces the aligner misses (small, blurred, turned) reconstruct worse or fail; "
            "the unseen side is invented; check the aligned crop.",
            "- Editing directions are correlated with other attributes (e.g. age with glasses) and can change identity "
            "at large strengths.",
        ]
    return "\n".join(["## Limitations and intended use", "", *lines, *common, ""])


def _licence_section(licence: Licence) -> str:
    link = f" ({licence.link})" if licence.link else ""
    return f"## Licence\n\n{licence.text}{link}\n"


# ------------------------------------------------------------------ export
def _check_out(out: Path, root: Path | None, overwrite: bool) -> None:
    """Refuse a non-empty OUT without overwrite, a file, and any OUT inside (or holding) the source bundle."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; give a folder for the exported bundle")
    if root is not None:
        a, b = out.resolve(), root.resolve()
        if a == b or b in a.parents or a in b.parents:
            raise UserError(f"{out} overlaps the source bundle {root}; export to a folder outside it")
    if out.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
        raise UserError(f"{out} is the current folder or holds it; export to a new folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(
                f"{out} exists and is not empty; pass --overwrite (overwrite=True) to replace it, or choose a new folder"
            )
        if not (out / PIPELINE_FILE).is_file():
            raise UserError(
                f"{out} holds no {PIPELINE_FILE}: e3dge replaces only bundle folders; remove it yourself or choose a new folder"
            )


def _stored_dtype(weights: Path) -> torch.dtype | None:
    """float16 / bfloat16 when the source file stores parameters that way (re-saved the same, so nothing doubles in size)."""

    names = {"F16": torch.float16, "BF16": torch.bfloat16}
    try:
        with safe_open(str(weights), "pt") as f:
            kinds = {f.get_slice(k).get_dtype() for k in f.keys()}
    except (OSError, ValueError, RuntimeError):
        return None
    return next((names[k] for k in names if k in kinds), None)


def _finish_components(pipe, spec: BundleSpec, root: Path | None, tmp: Path) -> BundleSpec:
    """Keep referenced components as references (drop their copies), half-precision files half, component cards; the final spec."""
    saved = read_bundle_spec(tmp / PIPELINE_FILE)
    for slot, comp in spec.components.items():
        if comp.subfolder is None:
            shutil.rmtree(tmp / slot, ignore_errors=True)
            saved.components[slot] = comp
            continue
        src = root / comp.subfolder if root is not None else None
        if src is None:
            continue
        dtype = _stored_dtype(src / "model.safetensors")
        if dtype is not None:
            pipe.components[slot].save_pretrained(tmp / slot, dtype=dtype)
        for name in _EXTRA_COMPONENT_FILES:
            if (src / name).is_file() or (src / name).is_symlink():
                shutil.copyfile(confined_file(src / name, root), tmp / slot / name)
    saved.needs = list(spec.needs)
    (tmp / PIPELINE_FILE).write_text(json.dumps(saved.to_dict(), indent=2))
    return saved


def _check_reloads(pipe, folder: Path) -> None:
    """The folder loads offline to the same weights and directions (else the export is not kept)."""

    again = InversionPipeline.from_pretrained(folder, local_files_only=True)
    for slot, module in pipe.components.items():
        if not _same_weights(again.components.get(slot), module):
            raise UserError(
                f"export check failed: component {slot!r} did not load back to the same weights from {folder}"
            )
    if sorted(again.directions) != sorted(pipe.directions):
        raise UserError(f"export check failed: the directions did not load back from {folder}")


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished temporary folder to OUT (an old OUT is moved aside first, then deleted)."""
    old = None
    if out.is_dir():
        old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        out.rename(old)
    tmp.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _given_licence(licence_id: str) -> Licence:
    """The exporter's own licence id (a Hub id such as ``apache-2.0`` or ``mit``; ``other`` needs a name and link, so it is refused)."""
    if not licence_id.replace("-", "").replace(".", "").isalnum() or licence_id == "other":
        raise UserError(
            f"--license {licence_id!r}: give a Hub licence id such as apache-2.0, mit or cc-by-4.0 ('other' needs a name and link)"
        )
    return Licence(
        licence_id,
        text=f"{licence_id}, as declared by whoever exported this bundle (they trained or own these weights).",
    )


def export_bundle(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    repo_id: str | None = None,
    overwrite: bool = False,
    license: str | None = None,
    results_dir: str | os.PathLike | None = None,
) -> Path:
    """Write a Hub-ready copy of bundle ``source`` (``toy``, a folder, a Hub id) to ``out_dir``: components, directions, ``README.md``."""

    if repo_id is not None:
        _check_repo_id(repo_id)
    out = Path(out_dir).expanduser().resolve()
    spec, root = resolve_bundle(source)
    _refuse_official_stylesdf(spec, str(source))
    _check_out(out, root, overwrite)
    pipe = InversionPipeline.from_pretrained(source)
    gen_is_toy, all_toy = toy_status(pipe)
    licence = _given_licence(license) if license else TOY_LICENCE if gen_is_toy else EG3D_LICENCE
    metrics = toy_metrics(results_dir) if all_toy else []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        pipe.save_pretrained(tmp)
        final = _finish_components(pipe, spec, root, tmp)
        build_model_card(pipe, final, repo_id=repo_id, licence=licence, toy=gen_is_toy, metrics=metrics).save(
            tmp / CARD_FILE
        )
        _check_reloads(pipe, tmp)
        _move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _refuse_official_stylesdf(spec, where: str) -> None:
    """StyleSDF bundles hold converted official StyleSDF / E3DGE weights (CC BY-NC-SA 4.0, S-Lab 1.0): never re-hosted."""
    if any(c.cls == "StyleSDFGenerator" for c in spec.components.values()):
        raise UserError(
            f"{where}: a StyleSDF bundle converted from the official StyleSDF / E3DGE weights (non-commercial licences); e3dge does not "
            "export or upload it: share the conversion commands instead (README: Using the official E3DGE weights)"
        )


# ------------------------------------------------------------------ push
def _check_repo_id(repo_id: str) -> None:

    try:
        validate_repo_id(repo_id)
    except ValueError as err:
        raise UserError(f"repo id {repo_id!r} is not valid ({one_line(err)[:160]})") from None
    if repo_id.count("/") != 1:
        raise UserError(f"repo id {repo_id!r} must be 'owner/name'")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("1", "true", "yes", "on")


def _check_push_folder(folder: Path, repo_id: str):
    """A bundle folder with a model card naming this repo (or none); EG3D-licensed weights need the licence file beside them."""

    if not (folder / PIPELINE_FILE).is_file() or not (folder / CARD_FILE).is_file():
        raise UserError(
            f"{folder}: not an exported bundle (needs {PIPELINE_FILE} and {CARD_FILE}); make one with 'e3dge hub export BUNDLE {folder}'"
        )
    regular_files(folder)  # no link or special file is ever uploaded
    spec = read_bundle_spec(folder / PIPELINE_FILE)
    _refuse_official_stylesdf(spec, str(folder))
    try:
        card = ModelCard.load(folder / CARD_FILE)
    except (OSError, ValueError) as err:
        raise UserError(f"{folder / CARD_FILE}: not a readable model card ({one_line(err)[:160]})") from None
    named = card.data.model_name
    if named not in (None, PLACEHOLDER_REPO, repo_id):
        raise UserError(
            f"{folder / CARD_FILE} was written for {named!r}; re-export with --repo-id {repo_id} so its usage lines name this repo"
        )
    hosted = any(c.subfolder is not None for c in spec.components.values())
    if card.data.license_name == EG3D_LICENCE.name and hosted and not any(folder.glob("LICENSE*")):
        raise UserError(
            f"{folder} holds EG3D-derived weights: add a complete copy of the NVIDIA Source Code License for EG3D "
            f"({EG3D_LICENCE.link}) as {folder}/LICENSE.txt before pushing (its section 3.1)"
        )
    return card


def push_bundle(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    revision: str | None = None,
) -> str:
    """Upload an exported bundle folder to Hub repo ``repo_id`` (created if missing); returns the commit URL."""

    folder = Path(folder).expanduser()
    _check_repo_id(repo_id)
    _check_push_folder(folder, repo_id)
    if _offline():
        raise UserError(
            "pushing needs the network but HF_HUB_OFFLINE is set: run 'unset HF_HUB_OFFLINE', log in with 'hf auth login' "
            "(or pass --token), then rerun"
        )
    token = token or get_token()
    if not token:
        raise UserError(
            "no Hugging Face token: log in with 'hf auth login' (a write token), set HF_TOKEN, or pass --token"
        )
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        info = api.upload_folder(
            repo_id=repo_id,
            folder_path=str(folder),
            repo_type="model",
            revision=revision,
            commit_message=f"e3dge hub push: {folder.name}",
        )
    except (HTTPError, OSError) as err:
        raise UserError(f"push to {repo_id} failed ({type(err).__name__}: {one_line(err)[:200]})") from None
    return str(getattr(info, "commit_url", info))


# ------------------------------------------------------------------ command line
def _cmd_export(args: argparse.Namespace) -> int:
    out = export_bundle(args.bundle, args.out, repo_id=args.repo_id, overwrite=args.overwrite, license=args.license)
    card = out / CARD_FILE
    print(
        f"exported {args.bundle} -> {out}/ (pipeline.json, components, {CARD_FILE}); checked: it loads back to the same weights"
    )
    print(
        f"push it with: e3dge hub push {out} {args.repo_id or PLACEHOLDER_REPO}"
        + ("" if args.repo_id else f"  (then edit {card}'s usage lines)")
    )

    if ModelCard.load(card).data.license_name == EG3D_LICENCE.name:
        print(
            f"licence: NVIDIA Source Code License for EG3D (non-commercial); add a complete copy as {out}/LICENSE.txt before pushing weights "
            f"derived from EG3D ({EG3D_LICENCE.link})"
        )
    return 0


def _cmd_push(args: argparse.Namespace) -> int:
    url = push_bundle(args.folder, args.repo_id, token=args.token, private=args.private, revision=args.revision)
    print(f"pushed {args.folder} -> https://huggingface.co/{args.repo_id} ({url})")
    return 0


def add_hub_command(sub: argparse._SubParsersAction) -> None:
    """Register ``e3dge hub export`` and ``e3dge hub push``."""
    hub = sub.add_parser("hub", help="Hugging Face Hub bundles: export a Hub-ready folder with a model card, push it")
    cmds = hub.add_subparsers(dest="hub_command", required=True, metavar="{export,push}")
    export = cmds.add_parser(
        "export",
        help="write BUNDLE (toy, a folder or a Hub id) to OUT/: pipeline.json, components, directions, README.md card",
    )
    export.add_argument("bundle", help="bundle to export: toy, a bundle folder or a Hub id")
    export.add_argument("out", help="output folder (refused if not empty, unless --overwrite)")
    export.add_argument("--repo-id", default=None, help="Hub repo id 'owner/name' the card's usage lines should name")
    export.add_argument("--overwrite", action="store_true", help="replace a non-empty OUT")
    export.add_argument(
        "--license",
        default=None,
        help="licence id for weights you trained yourself (default: apache-2.0 for the toy, "
        "NVIDIA EG3D non-commercial for anything else)",
    )
    export.set_defaults(func=_cmd_export)
    push = cmds.add_parser(
        "push", help="upload an exported folder to a Hub model repo (needs the network and a write token)"
    )
    push.add_argument("folder", help="a folder written by 'e3dge hub export'")
    push.add_argument("repo_id", help="Hub repo id 'owner/name' (created if missing)")
    push.add_argument(
        "--token", default=None, help="Hub write token (default: HF_TOKEN or the one saved by 'hf auth login')"
    )
    push.add_argument("--private", action="store_true", help="create the repo private")
    push.add_argument("--revision", default=None, help="branch to push to (created if missing)")
    push.set_defaults(func=_cmd_push)
