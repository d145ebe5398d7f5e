"""Video smoothing (mean filter over transforms), align_video end to end, and the align CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from e3dge.faces.video import jitter, smooth_series, smooth_transforms


def _similarity(scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, tx], [s, c, ty], [0.0, 0.0, 1.0]])


def test_smooth_series_basics():
    const = np.full((9, 2), 3.0)
    np.testing.assert_allclose(smooth_series(const, 5), const)
    ramp = np.arange(10.0)[:, None]
    np.testing.assert_allclose(smooth_series(ramp, 5)[2:-2], ramp[2:-2])  # a linear path is kept
    np.testing.assert_allclose(smooth_series(ramp, 1), ramp)
    np.testing.assert_allclose(smooth_series(ramp, 3)[0], [0.5])  # window shrinks at the ends
    with pytest.raises(ValueError):
        smooth_series(ramp, 0)


def test_smoothing_reduces_jitter_of_a_shaky_sequence():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 90)
    truth = np.stack(
        [_similarity(2.0 + 0.2 * np.sin(3 * x), 0.1 * np.sin(2 * x), 40 * x - 500, -300 + 20 * x) for x in t]
    )
    noise = np.zeros_like(truth)
    noise[:, :2, :2] = rng.normal(0, 0.01, (90, 2, 2))
    noise[:, :2, 2] = rng.normal(0, 2.0, (90, 2))
    shaky = truth + noise
    smooth = smooth_transforms(shaky, window=7)
    assert smooth.shape == shaky.shape and np.all(smooth[:, 2] == [0, 0, 1])
    ratio = jitter(smooth[:, :2]) / jitter(shaky[:, :2])
    assert ratio < 0.2, ratio
    err_before = np.abs(shaky - truth)[:, :2, 2].mean()
    err_after = np.abs(smooth - truth)[:, :2, 2].mean()
    assert err_after < 0.5 * err_before


@pytest.fixture(scope="module")
def astronaut_video(tmp_path_factory):
    pytest.importorskip("dlib")
    skdata = pytest.importorskip("skimage.data")
    imageio = pytest.importorskip("imageio.v2")
    path = tmp_path_factory.mktemp("video") / "moving.mp4"
    photo = Image.fromarray(skdata.astronaut())
    with imageio.get_writer(str(path), fps=10, quality=9, macro_block_size=2) as writer:
        for i in range(12):  # slow, smooth camera motion: any shake in the crop comes from landmark noise
            frame = photo.rotate(0.4 * i, resample=Image.BICUBIC, translate=(2 * i, i)).resize(
                (384, 384), Image.LANCZOS
            )
            writer.append_data(np.asarray(frame))
    return path


def test_align_video_smooths_and_writes(astronaut_video, tmp_path):
    import imageio.v2 as imageio

    from e3dge.faces import align_video

    out = tmp_path / "aligned.mp4"
    result = align_video(astronaut_video, out, window=5, progress=False)
    assert result.num_frames == 12 and result.missing == [] and result.fps == 10
    assert result.labels.shape == (12, 25)
    frames = imageio.mimread(str(out))
    assert len(frames) == 12 and frames[0].shape == (512, 512, 3)
    point = np.array([192.0, 130.0, 1.0])  # a fixed photo point: where it lands in the crop, frame by frame
    raw, smooth = jitter((result.raw_transforms @ point)[:, :2]), jitter((result.transforms @ point)[:, :2])
    assert smooth < 0.5 * raw, (raw, smooth)
    cams = json.loads(result.cameras_path.read_text())
    assert len(cams["frames"]) == 12 and len(cams["frames"][0]["label"]) == 25
    assert np.all(np.abs(result.poses_deg[:, :2]) < 15)


def test_video_without_faces(tmp_path):
    imageio = pytest.importorskip("imageio.v2")
    pytest.importorskip("dlib")
    from e3dge.faces import NoFaceError, align_video

    path = tmp_path / "gray.mp4"
    with imageio.get_writer(str(path), fps=5, macro_block_size=2) as writer:
        for _ in range(3):
            writer.append_data(np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(NoFaceError, match="no face found in any of the 3 frames"):
        align_video(path, tmp_path / "out.mp4", progress=False)


def test_cli_single_batch_and_errors(tmp_path, capsys):
    pytest.importorskip("dlib")
    skdata = pytest.importorskip("skimage.data")
    from e3dge.faces.__main__ import main

    photo = tmp_path / "astronaut.jpg"
    Image.fromarray(skdata.astronaut()).save(photo, quality=92)
    assert main([str(photo), str(tmp_path / "out" / "a.png"), "--json"]) == 0
    out = capsys.readouterr().out
    label_line = [line for line in out.splitlines() if line.startswith("label: ")]
    assert len(label_line) == 1 and len(json.loads(label_line[0][7:])) == 25
    assert (tmp_path / "out" / "a.png").exists() and (tmp_path / "out" / "a.json").exists()
    assert Image.open(tmp_path / "out" / "a.png").size == (512, 512)

    folder = tmp_path / "batch"
    folder.mkdir()
    Image.fromarray(skdata.astronaut()).save(folder / "one.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    Image.fromarray(skdata.coffee()).save(folder / "cup.png")
    code = main([str(folder), str(tmp_path / "aligned"), "--convention", "ffhq", "--size", "256"])
    captured = capsys.readouterr()
    assert code == 1
    assert "FAILED broken.jpg" in captured.err and "FAILED cup.png: no face found" in captured.err
    assert "aligned 1/3 images" in captured.out and "Traceback" not in captured.err
    labels = json.loads((tmp_path / "aligned" / "dataset.json").read_text())["labels"]
    assert [name for name, _ in labels] == ["one.png"] and len(labels[0][1]) == 25
    assert Image.open(tmp_path / "aligned" / "one.png").size == (256, 256)

    assert main([str(tmp_path / "nope.jpg"), str(tmp_path / "x.png")]) == 1
    assert "error: " in capsys.readouterr().err


def test_add_align_command_registers_subcommand():
    import argparse

    from e3dge.cli.align import add_align_command, run_align

    parser = argparse.ArgumentParser(prog="e3dge")
    add_align_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["align", "in.jpg", "out.png", "--convention", "ffhq", "--detector", "cnn"])
    assert args.func is run_align and args.convention == "ffhq" and args.detector == "cnn"
    with pytest.raises(SystemExit):
        parser.parse_args(["align", "in.jpg", "out.png", "--convention", "bfm"])


def test_a_sideways_video_is_aligned_upright(astronaut_video, tmp_path):
    import imageio.v2 as imageio

    from e3dge.faces import align_video

    sideways = tmp_path / "sideways.mp4"
    with imageio.get_writer(str(sideways), fps=10, quality=9, macro_block_size=2) as writer:
        for frame in imageio.mimread(str(astronaut_video))[:6]:
            writer.append_data(np.ascontiguousarray(np.rot90(frame)))  # a phone video whose rotation tag was lost
    upright = align_video(astronaut_video, tmp_path / "upright.mp4", window=1, progress=False)
    turned = align_video(sideways, tmp_path / "turned.mp4", window=1, progress=False)
    assert (upright.rotation_degrees, turned.rotation_degrees, turned.missing) == (0, 270, [])
    np.testing.assert_allclose(
        turned.poses_deg, upright.poses_deg[:6], atol=3
    )  # re-encoded frames: landmark noise; roll not +-90
    assert np.all(np.abs(turned.poses_deg[:, 2]) < 10)
    assert json.loads(turned.cameras_path.read_text())["frames_turned_deg"] == 270
    a, b = imageio.mimread(str(tmp_path / "upright.mp4"))[:6], imageio.mimread(str(tmp_path / "turned.mp4"))
    assert len(b) == 6 and np.abs(np.float32(a[3]) - np.float32(b[3])).mean() < 6  # the same upright crop
