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


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_a_turned_photo_gives_the_upright_crop_and_camera(astronaut, turns):
    from e3dge.faces import align_face, paste_back

    upright = align_face(astronaut)
    turned_photo = np.ascontiguousarray(np.rot90(astronaut, turns))
    turned = align_face(turned_photo)
    assert turned.rotation_degrees == (360 - 90 * turns) % 360
    assert any("is turned" in n for n in turned.notes)
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


@pytest.mark.parametrize("option,value,message", [
    ("--size", "100000", "argument --size: must be between 16 and 4096, got '100000'"),
    ("--size", "0", "argument --size: must be between 16 and 4096, got '0'"),
    ("--window", "0", "argument --window: must be between 1 and 301, got '0'"),
    ("--min-face", "-5", "argument --min-face: must be between 8 and 10000, got '-5'"),
    ("--min-face", "nan", "argument --min-face: must be between 8 and 10000, got 'nan'"),
    ("--face-index", "-1", "argument --face-index: must be between 0 and 999, got '-1'"),
])  # fmt: skip
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
