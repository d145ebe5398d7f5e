import json
import re

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from e3dge.backbones.base import module_hash
from e3dge.backbones.eg3d.network import TriPlaneGenerator, eg3d_config
from e3dge.cli import main as cli_main
from e3dge.core.options import OptionError
from e3dge.demo import depth_to_uint8, orbit_options, render_orbit, to_uint8_image


def test_orbit_video_and_resume(tiny_generator, tmp_path):
    res = render_orbit(tiny_generator, tmp_path, seed=1, num_frames=4, progress=False)
    frames = iio.imread(res.video)
    assert frames.shape == (4, 128, 128, 3)
    assert iio.imread(res.depth_video).shape == (4, 128, 128, 3)
    first = iio.imread(tmp_path / "frames" / "rgb_0000.png")
    # resume: delete one frame; only it is rendered again, and identically (deterministic rendering)
    (tmp_path / "frames" / "rgb_0002.png").unlink()
    before = iio.imread(tmp_path / "frames" / "depth_0002.png")
    res2 = render_orbit(tiny_generator, tmp_path, seed=1, num_frames=4, progress=False)
    assert res2.frames_reused == 3
    assert np.array_equal(iio.imread(tmp_path / "frames" / "depth_0002.png"), before)
    assert np.array_equal(iio.imread(tmp_path / "frames" / "rgb_0000.png"), first)
    sheet = iio.imread(res2.sheet)
    assert sheet.shape == (256, 4 * 128, 3)


def test_image_conversions():
    img = torch.tensor([-1.0, 0.0, 1.0]).reshape(3, 1, 1)
    assert to_uint8_image(img).tolist() == [[[0, 128, 255]]]
    d = depth_to_uint8(torch.tensor([[[2.0, 3.0, 4.0]]]), near=2.0, far=4.0)
    assert d[..., 0].tolist() == [[255, 128, 0]]


def test_orbit_cli_runs_offline(tmp_path, capsys):
    assert cli_main(["orbit", "--out", str(tmp_path), "--frames", "3"]) == 0
    out = capsys.readouterr().out
    assert "generator:" in out and "orbit.mp4" in out
    assert iio.imread(tmp_path / "orbit.mp4").shape[0] == 3


def _frames(folder):
    return {p.name: iio.imread(p) for p in sorted((folder / "frames").glob("*.png"))}


def test_other_options_render_again_and_never_reuse_frames(tiny_generator, tmp_path):
    fresh = render_orbit(tiny_generator, tmp_path / "fresh", seed=2, num_frames=3, progress=False)
    assert fresh.note == "" and fresh.frames_reused == 0
    render_orbit(tiny_generator, tmp_path / "run", seed=1, num_frames=5, progress=False)
    (tmp_path / "run" / "frames" / "notes.txt").write_text("mine")  # not the tool's: must survive
    res = render_orbit(tiny_generator, tmp_path / "run", seed=2, num_frames=3, progress=False)
    assert res.frames_reused == 0
    assert "were made with other options (seed: 1 -> 2; num_frames: 5 -> 3); rendered them again" in res.note
    got, want = _frames(tmp_path / "run"), _frames(tmp_path / "fresh")
    assert (
        sorted(got)
        == sorted(want)
        == ["depth_0000.png", "depth_0001.png", "depth_0002.png", "rgb_0000.png", "rgb_0001.png", "rgb_0002.png"]
    )
    assert all(np.array_equal(got[k], want[k]) for k in want)
    assert (tmp_path / "run" / "frames" / "notes.txt").read_text() == "mine"
    manifest = json.loads((tmp_path / "run" / "frames" / "options.json").read_text())
    assert manifest == {**orbit_options(tiny_generator, 2, 3, 0.7)} and manifest["seed"] == 2
    again = render_orbit(tiny_generator, tmp_path / "run", seed=2, num_frames=3, progress=False)
    assert again.frames_reused == 3 and again.note == ""


def test_another_generator_or_truncation_renders_again(tiny_generator, tmp_path):
    render_orbit(tiny_generator, tmp_path, seed=0, num_frames=2, progress=False)
    assert (
        render_orbit(tiny_generator, tmp_path, seed=0, num_frames=2, truncation_psi=0.5, progress=False).frames_reused
        == 0
    )
    torch.manual_seed(5)
    other = TriPlaneGenerator(**eg3d_config("tiny")).eval()
    assert module_hash(other) != module_hash(tiny_generator)
    res = render_orbit(other, tmp_path, seed=0, num_frames=2, truncation_psi=0.5, progress=False)
    assert res.frames_reused == 0 and "generator: " in res.note
    with torch.no_grad():
        other.decoder.net[0].weight[0, 0] += 1  # one weight changes the fingerprint
    assert module_hash(other) != json.loads((tmp_path / "frames" / "options.json").read_text())["generator"]


def test_frames_without_a_manifest_are_overwritten_not_deleted(tiny_generator, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("rgb_0000.png", "depth_0000.png", "rgb_0007.png"):
        iio.imwrite(frames / name, np.zeros((8, 8, 3), np.uint8))  # e.g. from an older e3dge: cannot vouch for them
    res = render_orbit(tiny_generator, tmp_path, seed=3, num_frames=2, progress=False)
    assert res.frames_reused == 0 and "have no readable options.json" in res.note
    assert iio.imread(frames / "rgb_0000.png").shape == (128, 128, 3) and (frames / "rgb_0007.png").exists()
    assert json.loads((frames / "options.json").read_text())["seed"] == 3


def test_render_orbit_range_checks(tiny_generator, tmp_path):
    for kwargs, message in [
        ({"num_frames": 0}, "num_frames must be between 1 and 10000, got 0"),
        ({"seed": -1}, "seed must be between 0 and 4294967295, got -1"),
        ({"fps": 241}, "fps must be between 1 and 240, got 241"),
        ({"truncation_psi": float("nan")}, "truncation_psi must be a finite number"),
    ]:
        with pytest.raises(OptionError, match=re.escape(message)):
            render_orbit(tiny_generator, tmp_path, progress=False, **kwargs)
    assert not (tmp_path / "frames").exists()
