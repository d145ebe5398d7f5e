"""Outputs appear whole or not at all, damaged earlier outputs are named and redone, nothing given is overwritten."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest

from e3dge.cli import main
from e3dge.core.errors import UserError
from e3dge.core.files import atomic_path, check_destination, write_json
from e3dge.demo import render_orbit


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = write_json(tmp_path / "result.json", {"ok": 1})
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(path) as tmp:
            tmp.write_text('{"half')
            raise KeyboardInterrupt
    assert path.read_text() == '{\n  "ok": 1\n}' and sorted(os.listdir(tmp_path)) == ["result.json"]


def test_a_destination_with_files_is_refused_unless_overwrite(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="mine: is not empty; choose a new bundle folder .* --overwrite"):
        check_destination(tmp_path / "mine", overwrite=False, what="bundle folder")
    assert check_destination(tmp_path / "mine", overwrite=True) == tmp_path / "mine"
    assert check_destination(tmp_path / "new", overwrite=False) == tmp_path / "new"


def test_convert_eg3d_leaves_a_folder_with_files_alone(tmp_path, capsys):
    src = tmp_path / "G.pkl"
    src.write_bytes(b"not read: the destination is checked first")
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}')
    assert main(["convert", "eg3d", str(src), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "is not empty" in err and "--overwrite" in err
    assert (out / "config.json").read_text() == '{"mine": true}'


def test_orbit_resume_redoes_a_damaged_frame_and_names_it(tiny_generator, tmp_path):
    first = render_orbit(tiny_generator, tmp_path, seed=1, num_frames=3, progress=False)
    frames = tmp_path / "frames"
    good = iio.imread(frames / "rgb_0001.png")
    data = (frames / "rgb_0001.png").read_bytes()
    (frames / "rgb_0001.png").write_bytes(data[: len(data) // 3])  # a kill in the middle of an old, non-atomic write
    again = render_orbit(tiny_generator, tmp_path, seed=1, num_frames=3, progress=False)
    assert again.frames_reused == 2 and "unreadable frames" in again.note and "rgb_0001.png" in again.note
    assert np.array_equal(iio.imread(frames / "rgb_0001.png"), good) and first.video == again.video
    assert not [p for p in frames.iterdir() if ".tmp" in p.name]


DEEP = "[" * 100_000 + "]" * 100_000  # deeper than Python's JSON decoder can go


def test_deeply_nested_json_is_a_one_line_error_naming_the_file(tmp_path):
    from e3dge.core.options import OptionError
    from e3dge.inversion import BundleError, InversionPipeline
    from e3dge.training.config import load_stage1_config

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "pipeline.json").write_text(DEEP)
    with pytest.raises(BundleError, match="pipeline.json: nested too deeply") as err:
        InversionPipeline.from_pretrained(bundle)
    assert "\n" not in str(err.value)
    (tmp_path / "cfg.json").write_text(DEEP)
    with pytest.raises(OptionError, match="cfg.json: nested too deeply"):
        load_stage1_config(str(tmp_path / "cfg.json"))


@pytest.mark.parametrize(
    "cls_path, huge",
    [
        (
            "e3dge.encoders.local.LocalEncoder",
            {"stem_width": 1024, "width": 2048, "num_stack": 8, "depth": 6, "groups": 256, "input_size": 2048},
        ),
        ("e3dge.encoders.volume_pose.VolumePoseEstimator", {"input_size": 1024, "widths": [4096] * 10}),
    ],
)
def test_a_config_describing_a_giant_model_is_refused_before_anything_is_built(tmp_path, cls_path, huge):
    import importlib
    import json
    import resource
    import time

    from e3dge.core.options import OptionError
    from e3dge.encoders.local import LocalEncoderConfig
    from e3dge.encoders.volume_pose import VolumePoseConfig

    module, name = cls_path.rsplit(".", 1)
    small = (LocalEncoderConfig.tiny() if name == "LocalEncoder" else VolumePoseConfig.tiny()).build()
    folder = small.save_pretrained(tmp_path / name)
    config = json.loads((folder / "config.json").read_text())
    config.update(huge)
    (folder / "config.json").write_text(json.dumps(config))
    cls = getattr(importlib.import_module(module), name)
    before, start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter()
    with pytest.raises(
        OptionError, match="config.json: describes a model of .* billion values; at most 1 billion"
    ) as err:
        cls.from_pretrained(folder)
    assert "\n" not in str(err.value) and time.perf_counter() - start < 5
    assert (
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000
    )  # KiB: nothing near the model was allocated


def test_batch_invert_redoes_a_photo_replaced_under_the_same_name(tmp_path, capsys):
    import json

    from PIL import Image

    from e3dge.inversion.examples import toy_photo_examples

    src, out = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    first, second = toy_photo_examples(2, seed=11)
    Image.fromarray(first.pixels).save(src / "a.png")
    args = ["--no-align", "--views", "0", "--frames", "0", "--quiet"]
    assert main(["invert", str(src), str(out), *args]) == 0
    assert main(["invert", str(src), str(out), *args]) == 0 and "(1 already done)" in capsys.readouterr().out
    recon = (out / "a" / "reconstruction.png").read_bytes()
    Image.fromarray(second.pixels).save(src / "a.png")  # another face, same file name
    assert main(["invert", str(src), str(out), *args]) == 0
    assert "already done" not in capsys.readouterr().out and (out / "a" / "reconstruction.png").read_bytes() != recon
    options = json.loads((out / "a" / "inversion.json").read_text())["options"]
    assert len(options["input_sha256"]) == 64 and len(options["model_sha"]) == 32


def test_stage2_options_describing_a_giant_branch_are_refused_before_building(tmp_path):
    import time

    from e3dge.core.options import OptionError
    from e3dge.training.stage2 import Stage2Trainer, load_stage2_config

    huge = {"stem_width": 512, "width": 2048, "num_stack": 8, "depth": 6, "groups": 256, "local_resolution": 1024}
    start = time.perf_counter()
    with pytest.raises(OptionError, match="stage2 options: describes a model of .* billion values"):
        Stage2Trainer(load_stage2_config("tiny-test", {"out_dir": str(tmp_path / "s2"), **huge}))
    assert time.perf_counter() - start < 10
