"""Nothing leaves its place: bundle files, links and component references stay inside the bundle or the Hub."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from e3dge.core.errors import UserError
from e3dge.inversion import BundleError, InversionPipeline
from e3dge.publish.hub_export import export_bundle, push_bundle

SECRET = "not for the Hub: a private key\n"


@pytest.fixture(scope="module")
def toy_bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "toy"
    InversionPipeline.from_pretrained("toy").save_pretrained(out)
    return out


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "bundle"
    shutil.copytree(bundle, dst)
    return dst


def test_a_weights_file_linked_from_outside_the_bundle_is_refused(toy_bundle, tmp_path):
    bundle = _copy(toy_bundle, tmp_path)
    outside = tmp_path / "elsewhere.safetensors"
    shutil.move(bundle / "generator" / "model.safetensors", outside)
    (bundle / "generator" / "model.safetensors").symlink_to(outside)
    with pytest.raises(UserError, match="model.safetensors: leads outside .*bundle") as err:
        InversionPipeline.from_pretrained(bundle)
    assert "\n" not in str(err.value)


def test_a_linked_file_never_reaches_the_export(toy_bundle, tmp_path):
    bundle = _copy(toy_bundle, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    (bundle / "encoder" / "README.md").symlink_to(secret)
    out = tmp_path / "export"
    with pytest.raises(UserError, match="README.md: leads outside"):
        export_bundle(bundle, out)
    assert not out.exists() or not any(SECRET in p.read_text(errors="ignore") for p in out.rglob("*") if p.is_file())


def test_push_refuses_a_link_before_any_upload(toy_bundle, tmp_path, monkeypatch):
    out = export_bundle(toy_bundle, tmp_path / "export")
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    (out / "LICENSE.txt").symlink_to(secret)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with pytest.raises(UserError, match="LICENSE.txt: a symbolic link"):
        push_bundle(out, "me/e3dge-toy", token="hf_never_used")


@pytest.mark.parametrize(
    "reference",
    [
        {"source": "/etc/e3dge/generator"},
        {"source": "./generator"},
        {"source": "generator"},
        {"repo": "./generator"},
        {"repo": "/abs/path"},
        {"repo": "../up/one"},
        {"repo": "a/b/c"},
    ],
)
def test_component_references_are_hub_ids_or_known_names_never_paths(toy_bundle, tmp_path, reference):
    bundle = _copy(toy_bundle, tmp_path)
    spec = json.loads((bundle / "pipeline.json").read_text())
    spec["components"]["generator"] = {"class": "TriPlaneGenerator", **reference}
    (bundle / "pipeline.json").write_text(json.dumps(spec))
    with pytest.raises(
        BundleError, match="must (name a known checkpoint|be a Hub id 'owner/name').*subfolder of the bundle"
    ):
        InversionPipeline.from_pretrained(bundle)


def test_a_hub_repo_reference_is_not_read_from_a_local_folder_of_that_name(toy_bundle, tmp_path, monkeypatch):
    bundle = _copy(toy_bundle, tmp_path)
    spec = json.loads((bundle / "pipeline.json").read_text())
    spec["components"]["generator"] = {"class": "TriPlaneGenerator", "repo": "owner/generator"}
    (bundle / "pipeline.json").write_text(json.dumps(spec))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(bundle / "generator", tmp_path / "owner" / "generator")  # a folder that looks like the repo id
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match="owner/generator is not in the local Hub cache"):
        InversionPipeline.from_pretrained(bundle, local_files_only=True)
