"""Photo orientation (quarter turns), output locations that never touch inputs, distinct batch outputs, option ranges."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from e3dge.faces.detect import Face
from e3dge.faces.orientation import FaceRotatedError, detect_upright, face_tilt_degrees, quarter_turn_matrix


@pytest.fixture(scope="module")
def astronaut():
    pytest.importorskip("dlib")
    return np.asarray(pytest.importorskip("skimage.data").astronaut())


def test_quarter_turn_matrix_matches_numpy_rot90():
    img = np.arange(5 * 7).reshape(5, 7)  # height 5, width 7
    for k in range(4):
        m = quarter_turn_matrix(k, 7, 5)
        turned = np.rot90(img, k)
        for x, y in [(0, 0), (6, 0), (3, 4), (6, 4)]:
            tx, ty, _ = m @ [x, y, 1]
            assert turned[int(round(ty)), int(round(tx))] == img[y, x], (k, x, y)


@pytest.fixture(scope="module")
def upright(astronaut):
    from e3dge.faces import align_face

    return align_face(astronaut)


def test_the_upright_astronaut_is_not_turned(upright):
    assert upright.rotation_degrees == 0 and not any("turned" in n for n in upright.notes)
    assert upright.summary()["photo_turned_deg"] == 0
    np.testing.assert_allclose(upright.pose.degrees, (-0.26, -6.40, -3.07), atol=0.5)  # yaw, pitch, roll


def test_the_cnn_detector_turns_a_sideways_photo_upright_too(astronaut, upright):
    """dlib's CNN also finds the sideways face and the landmark fit pulls it upright, so the turn is chosen by HOG."""
    from e3dge.faces import align_face

    turned = align_face(np.ascontiguousarray(np.rot90(astronaut, 1)), detector="cnn")
    assert turned.rotation_degrees == 270
    np.testing.assert_allclose(turned.pose.degrees, upright.pose.degrees, atol=1.5)
    diff = np.abs(turned.image.astype(np.float32) - upright.image.astype(np.float32)).mean()
    assert diff < 8.0, (
        diff
    )  # the upright crop (the CNN box gives other landmarks than HOG's; the sideways crop of the CNN alone: 84)


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_turned_photo_gives_the_upright_crop_and_camera(astronaut, upright, turns):
    from e3dge.faces import align_face, paste_back

    turned_photo = np.ascontiguousarray(np.rot90(astronaut, turns))
    turned = align_face(turned_photo)
    assert turned.rotation_degrees == (360 - 90 * turns) % 360 == turned.summary()["photo_turned_deg"]
    assert any(f"is turned: the face is upright after a {turned.rotation_degrees} degree" in n for n in turned.notes)
    np.testing.assert_allclose(turned.pose.degrees, (-0.26, -6.40, -3.07), atol=0.5)  # not the turned roll (+-90, 180)
    np.testing.assert_allclose(turned.pose.degrees, upright.pose.degrees, atol=0.5)
    torch_label = turned.label - upright.label
    assert float(torch_label.abs().max()) < 0.02
    diff = np.abs(turned.image.astype(np.float32) - upright.image.astype(np.float32)).mean()
    assert diff < 2.0, diff  # the same crop, up to resampling
    # the transform refers to the turned photo as given: landmarks map into the crop, paste-back lands on the face
    np.testing.assert_allclose(turned.transform.apply(turned.face.landmarks68), turned.landmarks, atol=1e-6)
    back = paste_back(turned_photo, turned.image, turned.transform)
    assert back.shape == turned_photo.shape and np.abs(back.astype(int) - turned_photo.astype(int)).mean() < 3


def _face_with_tilt(deg: float) -> Face:
    lm = np.zeros((68, 2))
    rad = np.radians(deg)
    down = np.array([-np.sin(rad), np.cos(rad)])  # eyes -> mouth direction
    lm[36:48] = [100, 100]
    lm[48:68] = np.array([100, 100]) + 40 * down
    return Face(box=(60.0, 60.0, 140.0, 160.0), score=1.0, landmarks68=lm)


def test_tilt_and_refusing_a_face_that_leans_in_every_turn():
    assert face_tilt_degrees(_face_with_tilt(0)) == pytest.approx(0, abs=1e-6)
    assert face_tilt_degrees(_face_with_tilt(70)) == pytest.approx(70)
    photo = np.zeros((200, 200, 3), np.uint8)
    calls = []

    def detect(px):
        calls.append(1)
        return [_face_with_tilt(70)] if len(calls) == 1 else []

    with pytest.raises(FaceRotatedError, match="rotated by about 70 degrees.*rotate the photo so the face is upright"):
        detect_upright(photo, detect, "p.jpg")
    assert len(calls) == 4  # as is, then three quarter turns
    assert detect_upright(photo, lambda px: [], "p.jpg").faces == []


def test_align_output_never_overwrites_inputs_and_same_stems_stay_apart(astronaut, tmp_path, capsys):
    from e3dge.cli import main

    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "a.png")
    Image.fromarray(astronaut).save(src / "a.jpg", quality=95)
    Image.fromarray(np.ascontiguousarray(np.rot90(astronaut))).save(src / "b.png")
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    assert main(["align", str(src), str(src), "--quiet"]) == 1
    assert "is the input itself" in capsys.readouterr().err
    assert main(["align", str(src), str(src / "aligned"), "--quiet"]) == 1
    assert "inside the input folder" in capsys.readouterr().err
    assert main(["align", str(src / "a.png"), str(src / "a.png")]) == 1
    assert "is the input itself" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before
    out = tmp_path / "aligned"
    assert main(["align", str(src), str(out)]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["a_jpg.png", "a_png.png", "b.png", "dataset.json"]
    rows = dict(json.loads((out / "dataset.json").read_text())["labels"])
    assert sorted(rows) == ["a_jpg.png", "a_png.png", "b.png"]
    np.testing.assert_allclose(rows["b.png"], rows["a_png.png"], atol=0.02)  # the turned photo: same camera
    assert "photo turned 270 deg" in printed
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--size", "100000", "argument --size: must be between 16 and 4096, got '100000'"),
        ("--size", "0", "argument --size: must be between 16 and 4096, got '0'"),
        ("--window", "0", "argument --window: must be between 1 and 301, got '0'"),
        ("--min-face", "-5", "argument --min-face: must be between 8 and 10000, got '-5'"),
        ("--min-face", "nan", "argument --min-face: must be between 8 and 10000, got 'nan'"),
        ("--face-index", "-1", "argument --face-index: must be between 0 and 999, got '-1'"),
    ],
)
def test_align_options_are_range_checked(tmp_path, capsys, option, value, message):
    from e3dge.cli import main

    assert main(["align", str(tmp_path / "x.png"), str(tmp_path / "y.png"), option, value]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_align_face_refuses_huge_sizes_before_reading_anything(tmp_path):
    from e3dge.faces import align_face
    from e3dge.faces.api import OutputSizeError

    for size in (100000, 0, 15, 2.5, True):
        with pytest.raises(OutputSizeError, match="between 16 and 4096"):
            align_face(tmp_path / "does-not-exist.png", size=size)  # refused before the file is even opened


def test_output_names_are_distinct_and_deterministic():
    from pathlib import Path

    from e3dge.cli.align import output_names

    files = [
        Path(n) for n in ("a.jpg", "a.png", "a_jpg.png", "B.png", "b.PNG", "c.JPG", "c.jpg", "dataset.png", "solo.webp")
    ]
    names = output_names(files)
    assert names == {
        Path("a.jpg"): "a_jpg.png",
        Path("a.png"): "a_png.png",
        Path("a_jpg.png"): "a_jpg_2.png",  # its plain name was taken by a.jpg (sorted order)
        Path("B.png"): "B_png.png",
        Path("b.PNG"): "b_png_2.png",  # differs from B_png.png only by case
        Path("c.JPG"): "c_jpg.png",
        Path("c.jpg"): "c_jpg_2.png",
        Path("dataset.png"): "dataset.png",
        Path("solo.webp"): "solo.png",
    }
    assert len({n.lower() for n in names.values()}) == len(files)
    assert output_names(list(reversed(files))) == names  # the order of the listing does not matter


def _photo_bytes(path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


def test_json_next_to_output_may_not_be_the_input(tmp_path, capsys):
    from e3dge.cli import main

    src = tmp_path / "x.json"  # a PNG with an odd name: the loader reads it by content
    Image.new("RGB", (32, 32), (200, 10, 10)).save(src, format="PNG")
    before = src.read_bytes()
    assert main(["align", str(src), str(tmp_path / "x.png"), "--json"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "x.json is the input itself" in err[0] and "choose another output path" in err[0]
    assert src.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["x.json"]


def test_single_photo_output_folder_holding_the_input_and_hard_links_are_refused(tmp_path, capsys):
    import os

    from e3dge.cli import main

    src = tmp_path / "a.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(src)
    os.link(src, tmp_path / "link.png")
    before = _photo_bytes(tmp_path)
    assert main(["align", str(src), str(tmp_path)]) == 1  # OUT is a folder: the crop would be tmp/a.png, the input
    assert "is the input itself" in capsys.readouterr().err
    assert main(["align", str(src), str(tmp_path / "link.png")]) == 1  # a hard link to the input
    assert "is the input itself" in capsys.readouterr().err
    assert _photo_bytes(tmp_path) == before


def test_batch_refuses_an_input_that_links_to_an_output_file(tmp_path, capsys):
    from e3dge.cli import main

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    Image.new("RGB", (32, 32), (9, 9, 9)).save(out / "a.png")
    (src / "a.png").symlink_to(out / "a.png")  # aligning it would write over its own target
    before = (out / "a.png").read_bytes()
    assert main(["align", str(src), str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the input" in err[0] and "(a link)" in err[0]
    assert (out / "a.png").read_bytes() == before and sorted(p.name for p in out.iterdir()) == ["a.png"]


@pytest.mark.parametrize("out_name", ["clip.mp4", "clip"])
def test_video_output_equal_to_the_input_is_refused_before_reading(tmp_path, capsys, out_name):
    from e3dge.cli import main

    src = tmp_path / "clip.mp4"
    src.write_bytes(b"not decoded: refused first")
    assert main(["align", str(src), str(tmp_path / out_name)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the input itself" in err[0]
    assert src.read_bytes() == b"not decoded: refused first" and sorted(p.name for p in tmp_path.iterdir()) == [
        "clip.mp4"
    ]


def test_rerun_into_the_same_output_replaces_that_runs_files_only(astronaut, tmp_path, capsys):
    from e3dge.cli import main

    src, out = tmp_path / "photos", tmp_path / "aligned"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "a.png")
    Image.new("RGB", (64, 64), (128, 128, 128)).save(src / "gray.png")  # no face: FAILED, no row
    out.mkdir()
    (out / "dataset.json").write_text('{"labels": [["old.png", [0]]]}')  # left by an earlier run
    (out / "keep.txt").write_text("mine")
    before = _photo_bytes(src)
    assert main(["align", str(src), str(out), "--quiet"]) == 1
    first = _photo_bytes(out)
    assert main(["align", str(src), str(out), "--quiet"]) == 1
    capsys.readouterr()
    assert _photo_bytes(out) == first  # a rerun gives the same files, no leftovers
    assert sorted(first) == ["a.png", "dataset.json", "keep.txt"] and first["keep.txt"] == b"mine"
    rows = json.loads(first["dataset.json"])["labels"]
    assert [name for name, _ in rows] == ["a.png"] and len(rows[0][1]) == 25
    assert _photo_bytes(src) == before


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--size", "4097", "argument --size: must be between 16 and 4096, got '4097'"),
        ("--size", "512.5", "argument --size: expected an integer between 16 and 4096, got '512.5'"),
        ("--size", "1e9", "argument --size: expected an integer between 16 and 4096, got '1e9'"),
        ("--window", "302", "argument --window: must be between 1 and 301, got '302'"),
        ("--window", "-3", "argument --window: must be between 1 and 301, got '-3'"),
        ("--min-face", "0", "argument --min-face: must be between 8 and 10000, got '0'"),
        ("--min-face", "inf", "argument --min-face: must be between 8 and 10000, got 'inf'"),
        ("--min-face", "1e300", "argument --min-face: must be between 8 and 10000, got '1e300'"),
        ("--face-index", "1000", "argument --face-index: must be between 0 and 999, got '1000'"),
        ("--face-index", "first", "argument --face-index: expected an integer between 0 and 999, got 'first'"),
    ],
)
def test_more_align_option_ranges_exit_2_in_one_line(tmp_path, capsys, option, value, message):
    from e3dge.cli import build_parser, main

    argv = ["align", str(tmp_path / "x.png"), str(tmp_path / "y.png"), option, value]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("e3dge align: error: ")
    assert "Traceback" not in err and list(tmp_path.iterdir()) == []
    with pytest.raises(SystemExit) as stop:  # the parser itself exits 2, as argparse does
        build_parser().parse_args(argv)
    assert stop.value.code == 2
    capsys.readouterr()


def test_module_entry_point_checks_ranges_too(tmp_path, capsys):
    from e3dge.faces.__main__ import main

    with pytest.raises(SystemExit) as stop:
        main([str(tmp_path / "x.png"), str(tmp_path / "y.png"), "--size", "100000"])
    err = capsys.readouterr().err
    assert (
        stop.value.code == 2
        and "argument --size: must be between 16 and 4096, got '100000'" in err
        and "Traceback" not in err
    )


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"convention": "bfm"}, "convention must be one of eg3d, ffhq, got 'bfm'"),
        ({"detector": "mtcnn"}, "detector must be one of hog, cnn, got 'mtcnn'"),
        ({"face_index": 1.5}, "face_index must be an integer (0 = the largest central face) or None, got 1.5"),
        ({"min_face_size": -1}, "min_face_size (pixels) must be between 0 and 10000, got -1; the default is 64"),
        (
            {"min_face_size": float("nan")},
            "min_face_size (pixels) must be a finite number between 0 and 10000, got nan",
        ),
        ({"size": 100000}, "the aligned size (pixels) must be between 16 and 4096, got 100000; use e.g. 512"),
        ({"max_pixels": 0}, "max_pixels must be >= 1, got 0"),
    ],
)
def test_align_face_refuses_bad_arguments_before_opening_the_file(tmp_path, kwargs, message):
    from e3dge.core.options import OptionError
    from e3dge.faces import FaceOptionError, align_face

    with pytest.raises(FaceOptionError) as err:
        align_face(tmp_path / "does-not-exist.png", **kwargs)  # the missing file would say "no such file"
    assert message in str(err.value) and "\n" not in str(err.value)
    assert isinstance(err.value, OptionError)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"size": 100000}, "the aligned size (pixels) must be between 16 and 4096, got 100000"),
        ({"window": 0}, "window (frames) must be between 1 and 301, got 0"),
        ({"window": 2.5}, "window (frames) must be an integer between 1 and 301, got 2.5"),
        ({"quality": 11}, "quality must be between 0 and 10, got 11"),
        (
            {"min_face_size": float("inf")},
            "min_face_size (pixels) must be a finite number between 0 and 10000, got inf",
        ),
    ],
)
def test_align_video_refuses_bad_arguments_before_reading(tmp_path, kwargs, message):
    from e3dge.faces import FaceOptionError, align_video

    with pytest.raises(FaceOptionError) as err:
        align_video(tmp_path / "missing.mp4", tmp_path / "out.mp4", progress=False, **kwargs)
    assert message in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_cli_reports_a_turned_photo_and_its_upright_camera(astronaut, upright, tmp_path, capsys):
    from e3dge.cli import main

    src = tmp_path / "sideways.png"
    Image.fromarray(np.ascontiguousarray(np.rot90(astronaut, 3))).save(src)  # turned clockwise, no EXIF tag
    assert main(["align", str(src), str(tmp_path / "out" / "face.png"), "--json"]) == 0
    out = capsys.readouterr().out
    assert "note: sideways.png is turned: the face is upright after a 90 degree counter-clockwise turn" in out
    assert "pose: yaw -0.3 deg, pitch -6.4 deg, roll -3.1 deg" in out
    info = json.loads((tmp_path / "out" / "face.json").read_text())
    assert info["photo_turned_deg"] == 90 and abs(info["roll_deg"] - upright.pose.degrees[2]) < 0.5
    np.testing.assert_allclose(info["label"], upright.label[0].numpy(), atol=0.02)


@pytest.mark.parametrize("shape", [(3200, 1, 3), (1, 3200, 3), (1, 1, 3)])
def test_strips_and_single_pixels_are_no_face_not_a_crash(shape):
    pytest.importorskip("dlib")
    from e3dge.faces import NoFaceError, align_face

    with pytest.raises(NoFaceError, match="no face found in <array>"):
        align_face(np.full(shape, 128, np.uint8))
