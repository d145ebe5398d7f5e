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
