"""Hub bundles: ``e3dge hub export`` (folder, model card, metrics, reload) and ``e3dge hub push`` (offline errors, mocked upload)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, ModelCard

from e3dge.cli import main
from e3dge.core.errors import UserError
from e3dge.inversion import InversionPipeline
from e3dge.publish import hub_export
from e3dge.publish.hub_export import EG3D_LICENCE, RESULTS_DIR, export_bundle, push_bundle


@pytest.fixture(scope="module")
def toy_export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hub") / "toy-bundle"
    assert main(["hub", "export", "toy", str(out), "--repo-id", "me/e3dge-toy"]) == 0
    return out


@pytest.fixture
def online(monkeypatch):
    """Pretend to be online with a token; every Hub call is recorded instead of sent."""
    calls: dict[str, dict] = {}
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub_export, "get_token", lambda: "hf_test_token")
    monkeypatch.setattr(
        HfApi, "create_repo", lambda self, repo_id, **kw: calls.setdefault("create_repo", {"repo_id": repo_id, **kw})
    )
    monkeypatch.setattr(
        HfApi,
        "create_branch",
        lambda self, repo_id, **kw: calls.setdefault("create_branch", {"repo_id": repo_id, **kw}),
    )
    monkeypatch.setattr(
        HfApi, "upload_folder", lambda self, **kw: calls.setdefault("upload_folder", kw) and "https://hub.test/commit/1"
    )
    return calls


def _expected_metrics() -> set[tuple[str, str, float]]:
    """(split, name, value) of every number the toy card should quote, read from the benchmark JSON."""
    out = set()
    for path in sorted(RESULTS_DIR.glob("toy_inversion_seed*.json")):
        data = json.loads(path.read_text())
        for method in ("E0", "E0 + P + C"):
            row = data["methods"][method]
            out.add((f"seed {data['seed']}", f"{method}: source-view MAE", round(row["source_mae"], 4)))
            out.add((f"seed {data['seed']}", f"{method}: source-view depth error %", round(row["source_depth_pct"], 4)))
    for run in json.loads((RESULTS_DIR / "export.json").read_text()):
        for method in ("E0", "E0 + P + C"):
            out.add(
                (
                    f"seed {run['seed']}",
                    f"{method}: mesh Chamfer distance (world units)",
                    round(run["rows"][method]["chamfer"], 4),
                )
            )
    return out


def _one_line_error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and err.startswith("e3dge hub: error:"), err
    assert all(n in err for n in needles), err
    return err


# ------------------------------------------------------------------ export
def test_toy_export_is_a_hub_ready_folder(toy_export):
    spec = json.loads((toy_export / "pipeline.json").read_text())
    assert spec["components"] == {
        "generator": {"class": "TriPlaneGenerator", "subfolder": "generator"},
        "encoder": {"class": "GlobalEncoder", "subfolder": "encoder"},
        "local_encoder": {"class": "LocalEncoder", "subfolder": "local_encoder"},
        "aligner_2d": {"class": "ResidualAligner", "subfolder": "aligner_2d"},
        "fusion": {"class": "FeatureFusion", "subfolder": "fusion"},
    }
    assert spec["directions"] == "directions"
    for name in (
        "generator/config.json",
        "generator/model.safetensors",
        "generator/README.md",
        "encoder/model.safetensors",
        "directions/directions.json",
        "directions/directions.safetensors",
        "README.md",
    ):
        assert (toy_export / name).is_file(), name
    from e3dge.toy import TOY_ENCODER_DIR

    shipped = (TOY_ENCODER_DIR / "model.safetensors").stat().st_size  # float16 on disk stays float16 (not doubled)
    assert abs((toy_export / "encoder" / "model.safetensors").stat().st_size - shipped) < 0.01 * shipped
    assert not list(toy_export.parent.glob(".toy-bundle.*")), "no temporary folder is left behind"


def test_toy_card_metadata_and_numbers_match_the_benchmarks(toy_export):
    card = ModelCard.load(toy_export / "README.md")
    data = card.data
    assert data.pipeline_tag == "image-to-3d" and data.library_name == "e3dge" and data.license == "apache-2.0"
    assert data.base_model is None and {"e3dge", "3d", "gan-inversion", "eg3d", "toy"} <= set(data.tags)
    assert data.model_name == "me/e3dge-toy"
    quoted = {(r.dataset_split, r.metric_name, r.metric_value) for r in data.eval_results}
    assert quoted == _expected_metrics() and len(quoted) == 12
    assert all(r.task_type == "image-to-3d" for r in data.eval_results)
    text = card.text
    assert (
        'InversionPipeline.from_pretrained("me/e3dge-toy")' in text
        and "e3dge invert photo.jpg out/ --model me/e3dge-toy" in text
    )
    assert "cannot look like a real person" in text and "benchmarks/toy_inversion.py --seed 5150" in text
    assert "`generator/`" in text and "toy-eg3d/" not in text  # the table names the exported folders


def test_exported_folder_loads_offline_and_inverts_identically(toy_export):
    from e3dge.inversion.examples import toy_photo_examples

    original = InversionPipeline.from_pretrained("toy")
    again = InversionPipeline.from_pretrained(toy_export, local_files_only=True)
    assert sorted(again.directions) == sorted(original.directions)
    pixels = toy_photo_examples(num=1, seed=777)[0].pixels
    a, b = original.invert(pixels, align=False), again.invert(pixels, align=False)
    assert torch.equal(a.ws, b.ws) and (a.yaw, a.pitch) == (b.yaw, b.pitch)


def test_export_refuses_non_empty_folders_and_overwrite_replaces_a_bundle(toy_export, tmp_path, capsys):
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    _one_line_error(capsys, main(["hub", "export", "toy", str(stray)]), "not empty", "--overwrite")
    _one_line_error(capsys, main(["hub", "export", "toy", str(stray), "--overwrite"]), "holds no pipeline.json")
    assert (stray / "notes.txt").read_text() == "mine"

    out = tmp_path / "again"
    assert main(["hub", "export", str(toy_export), str(out)]) == 0
    _one_line_error(capsys, main(["hub", "export", str(toy_export), str(out)]), "not empty")
    (out / "leftover.bin").write_bytes(b"x")
    assert main(["hub", "export", str(toy_export), str(out), "--overwrite"]) == 0
    assert not (out / "leftover.bin").exists() and (out / "pipeline.json").is_file()
    assert ModelCard.load(out / "README.md").data.model_name == "OWNER/NAME"  # no --repo-id: a placeholder
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_never_writes_inside_the_source(toy_export, tmp_path, capsys):
    _one_line_error(
        capsys, main(["hub", "export", str(toy_export), str(toy_export / "copy")]), "overlaps the source bundle"
    )
    _one_line_error(
        capsys,
        main(["hub", "export", str(toy_export), str(toy_export.parent), "--overwrite"]),
        "overlaps the source bundle",
    )
    assert not (toy_export / "copy").exists()
    _one_line_error(capsys, main(["hub", "export", "toy", str(tmp_path / "x"), "--license", "other"]), "Hub licence id")


def test_a_non_toy_generator_is_carded_as_eg3d_non_commercial(tiny_generator, tmp_path, online):
    src = InversionPipeline(tiny_generator, description="converted EG3D").save_pretrained(tmp_path / "src")
    out = export_bundle(src, tmp_path / "out", repo_id="me/eg3d-bundle")
    data = ModelCard.load(out / "README.md").data
    assert (data.license, data.license_name, data.license_link) == (
        "other",
        "nvidia-source-code-license-nc",
        EG3D_LICENCE.link,
    )
    assert data.pipeline_tag == "image-to-3d" and "face" in data.tags and not data.eval_results
    with pytest.raises(UserError, match="LICENSE.txt before pushing"):  # EG3D weights travel only with their licence
        push_bundle(out, "me/eg3d-bundle")
    assert not online
    (out / "LICENSE.txt").write_text("NVIDIA Source Code License for EG3D (copy)")
    push_bundle(out, "me/eg3d-bundle")
    assert online["upload_folder"]["repo_id"] == "me/eg3d-bundle"
    own = export_bundle(src, tmp_path / "own", license="mit")
    assert ModelCard.load(own / "README.md").data.license == "mit"


# ------------------------------------------------------------------ push
def test_push_offline_is_one_line_exit_2(toy_export, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _one_line_error(capsys, main(["hub", "push", str(toy_export), "me/e3dge-toy"]), "HF_HUB_OFFLINE")


def test_push_without_token_says_how_to_log_in(toy_export, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub_export, "get_token", lambda: None)
    _one_line_error(capsys, main(["hub", "push", str(toy_export), "me/e3dge-toy"]), "hf auth login", "--token")


def test_push_uploads_the_folder_to_the_repo(toy_export, online, capsys):
    assert main(["hub", "push", str(toy_export), "me/e3dge-toy", "--private", "--revision", "v1"]) == 0
    assert online["create_repo"] == {"repo_id": "me/e3dge-toy", "private": True, "exist_ok": True, "repo_type": "model"}
    assert online["create_branch"]["repo_id"] == "me/e3dge-toy" and online["create_branch"]["branch"] == "v1"
    up = online["upload_folder"]
    assert (up["repo_id"], Path(up["folder_path"]), up["revision"], up["repo_type"]) == (
        "me/e3dge-toy",
        toy_export,
        "v1",
        "model",
    )
    assert "https://huggingface.co/me/e3dge-toy" in capsys.readouterr().out


def test_push_refusals_are_one_line(toy_export, tmp_path, online, capsys):
    _one_line_error(
        capsys, main(["hub", "push", str(toy_export), "someone/else"]), "re-export with --repo-id someone/else"
    )
    _one_line_error(capsys, main(["hub", "push", str(tmp_path), "me/e3dge-toy"]), "not an exported bundle")
    _one_line_error(capsys, main(["hub", "push", str(toy_export), "not a repo"]), "not valid")
    assert not online


def test_referenced_upstream_weights_stay_references(tiny_generator, tmp_path, monkeypatch, online):
    from e3dge.backbones.eg3d.network import PRETRAINED_EG3D, TriPlaneGenerator

    real = TriPlaneGenerator.from_pretrained.__func__
    monkeypatch.setattr(
        TriPlaneGenerator,
        "from_pretrained",
        classmethod(  # the official weights, without the download
            lambda cls, name, **kw: tiny_generator if name == "eg3d-ffhqrebalanced512-128" else real(cls, name, **kw)
        ),
    )
    src = tmp_path / "src"
    src.mkdir()
    generator = {"class": "TriPlaneGenerator", "source": "eg3d-ffhqrebalanced512-128"}
    (src / "pipeline.json").write_text(json.dumps({"components": {"generator": generator}, "needs": ["network once"]}))
    out = export_bundle(src, tmp_path / "out", repo_id="me/eg3d-ref")
    spec = json.loads((out / "pipeline.json").read_text())
    assert spec["components"] == {"generator": {"class": "TriPlaneGenerator", "source": "eg3d-ffhqrebalanced512-128"}}
    assert spec["needs"] == ["network once"] and not (out / "generator").exists()  # NVIDIA's weights are not re-hosted
    data = ModelCard.load(out / "README.md").data
    assert (
        data.license_name == "nvidia-source-code-license-nc"
        and data.base_model == PRETRAINED_EG3D["eg3d-ffhqrebalanced512-128"].repo_id
    )
    push_bundle(out, "me/eg3d-ref")  # nothing NC is uploaded, so no licence file is needed
    assert online["upload_folder"]["repo_id"] == "me/eg3d-ref"
