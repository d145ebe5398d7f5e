"""``e3dge directions fit``: photos + labels CSV -> inversion-manifold directions (cached, resumable), toy mode, bundle out, refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from e3dge.cli import main
from e3dge.editing import load_directions

NUM = 24


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(a @ b / (a.norm() * b.norm()))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """Photo-like toy heads (aligned crops) and a labels CSV: skin tone (numbers), glasses (0/1, one cell left empty)."""
    from e3dge.core.cameras import label_from_yaw_pitch
    from e3dge.toy import FACTOR_NAMES, HeadFactorMap, render_heads

    root = tmp_path_factory.mktemp("directions")
    folder = root / "faces"
    folder.mkdir()
    fm = HeadFactorMap()
    f = fm.factors(fm.sample_z(NUM, 4242))
    imgs = render_heads(f, label_from_yaw_pitch(torch.zeros(NUM), torch.zeros(NUM)), 128, photo=True).image
    pixels = ((imgs.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    skin, glasses = f[:, FACTOR_NAMES.index("skin_tone")].numpy(), HeadFactorMap.labels(f).glasses.long().numpy()
    rows = [["file", "skin_tone", "glasses"]]
    for i in range(NUM):
        Image.fromarray(pixels[i]).save(folder / f"head{i:02d}.png")
        rows.append([f"head{i:02d}.png", f"{skin[i]:.4f}", "" if i == 3 else str(int(glasses[i]))])
    labels = root / "labels.csv"
    with labels.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return folder, labels, rows


def _fit(out: Path, folder: Path, labels: Path, *extra: str) -> int:
    return main(
        [
            "directions",
            "fit",
            str(out),
            "--images",
            str(folder),
            "--labels",
            str(labels),
            "--no-align",
            "--quiet",
            *extra,
        ]
    )


def _error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and err.startswith("e3dge directions: error:"), err
    assert all(n in err for n in needles), err
    return err


def test_fit_from_photos_finds_the_skin_tone_direction_and_resumes(photos, tmp_path, monkeypatch, capsys):
    from e3dge.inversion import InversionPipeline

    folder, labels, rows = photos
    calls = []
    real = InversionPipeline.invert
    monkeypatch.setattr(
        InversionPipeline, "invert", lambda self, image, **kw: calls.append(Path(image).name) or real(self, image, **kw)
    )
    half = tmp_path / "half.csv"
    half.write_text("\n".join(",".join(r) for r in rows[: 1 + NUM // 2]) + "\n")
    out = tmp_path / "out"
    assert _fit(out, folder, half) == 0  # the first half (as if the run had been cut there)
    assert len(calls) == NUM // 2
    calls.clear()
    assert (
        _fit(out, folder, labels, "--condition", "skin_tone:glasses") == 2
    )  # directions exist: refused, nothing inverted
    _error(capsys, 2, "already holds directions", "--overwrite")
    assert _fit(out, folder, labels, "--condition", "skin_tone:glasses", "--overwrite") == 0
    assert sorted(calls) == [f"head{i:02d}.png" for i in range(NUM // 2, NUM)]  # only the new images are inverted
    assert "reusing 12 cached codes" in capsys.readouterr().out
    dirs = load_directions(out)
    assert set(dirs) == {"skin_tone", "glasses"}
    assert dirs["skin_tone"].vector.shape == (10, 128) and dirs["skin_tone"].rows is None
    assert dirs["glasses"].info["used"] == NUM - 1  # the empty cell is no label, not a 0
    assert dirs["skin_tone"].info["conditions"] == ["glasses"]
    assert (
        abs(_cos(dirs["skin_tone"].vector, dirs["glasses"].vector)) < 1e-5
    )  # conditional: the other direction projected out
    shipped = InversionPipeline.from_pretrained("toy").directions["skin_tone_preim3d"]
    assert _cos(dirs["skin_tone"].vector, shipped.vector) > 0.5  # 24 photos agree with the shipped 1500-head fit
    lo, hi = dirs["skin_tone"].strength_range
    assert lo == -hi and hi > 0


def test_bundle_out_carries_the_new_directions(photos, tmp_path):
    from e3dge.inversion import InversionPipeline

    folder, labels, _ = photos
    out, bundle = tmp_path / "out", tmp_path / "bundle"
    assert _fit(out, folder, labels, "--bundle-out", str(bundle)) == 0
    pipe = InversionPipeline.from_pretrained(bundle)
    toy = InversionPipeline.from_pretrained("toy")
    assert set(pipe.directions) == set(toy.directions) | {"skin_tone", "glasses"}  # the bundle's own ones are kept
    assert torch.equal(pipe.directions["skin_tone"].vector, load_directions(out)["skin_tone"].vector)
    assert torch.equal(pipe.directions["skin_tone_preim3d"].vector, toy.directions["skin_tone_preim3d"].vector)
    assert (
        main(
            [
                "invert",
                str(folder / "head00.png"),
                str(tmp_path / "inv"),
                "--model",
                str(bundle),
                "--no-align",
                "--views",
                "0",
                "--frames",
                "0",
                "--edit",
                "skin_tone=1",
                "--quiet",
            ]
        )
        == 0
    )
    assert (tmp_path / "inv" / "edited.png").is_file()


def test_toy_mode_fits_both_ways_with_conditions(tmp_path):
    out = tmp_path / "toy"
    assert (
        main(
            [
                "directions",
                "fit",
                str(out),
                "--toy",
                "--sampled",
                "300",
                "--inverted",
                "120",
                "--condition",
                "smile:glasses",
                "--quiet",
            ]
        )
        == 0
    )
    dirs = load_directions(out)
    names = ("smile", "glasses", "hair_colour", "skin_tone", "head_size")
    assert set(dirs) == {*names, *(n + "_preim3d" for n in names)}
    assert dirs["smile"].vector.shape == (128,) and dirs["smile_preim3d"].vector.shape == (10, 128)
    assert abs(_cos(dirs["smile"].vector, dirs["glasses"].vector)) < 1e-5
    assert abs(_cos(dirs["smile_preim3d"].vector, dirs["glasses_preim3d"].vector)) < 1e-5
    assert dirs["smile_preim3d"].info["conditions"] == ["glasses_preim3d"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_refusals_are_one_line_and_write_nothing(photos, tmp_path, capsys):
    folder, labels, rows = photos
    out = tmp_path / "out"
    good = "\n".join(",".join(r) for r in rows) + "\n"
    cases = [
        (tmp_path / "missing.csv", ("no such labels file",)),
        (_write(tmp_path / "nofile.csv", "name,smile\nhead00.png,1\n"), ("'file' column",)),
        (_write(tmp_path / "escape.csv", "file,smile\n../labels.csv,1\n"), ("inside", "no absolute paths")),
        (_write(tmp_path / "absent.csv", "file,smile\nnope.png,1\n"), ("nope.png is not in",)),
        (
            _write(tmp_path / "text.csv", "file,smile\nhead00.png,yes\n"),
            ("'yes' is not a number", "line 2, column smile"),
        ),
        (_write(tmp_path / "twice.csv", "file,smile\nhead00.png,1\nhead00.png,0\n"), ("listed twice",)),
        (_write(tmp_path / "short.csv", "file,smile\nhead00.png\n"), ("1 cells, the header has 2",)),
        (_write(tmp_path / "inf.csv", "file,smile\nhead00.png,inf\n"), ("not a finite number",)),
    ]
    for csv_path, needles in cases:
        _error(capsys, _fit(out, folder, csv_path), *needles)
    _error(capsys, _fit(out, folder, labels, "--condition", "skin_tone:age"), "age not among the fitted attributes")
    _error(capsys, _fit(out, folder, labels, "--condition", "skin_tone"), "NAME:OTHER")
    _error(capsys, _fit(folder / "sub", folder, labels), "must not be", "inside it")
    _error(capsys, main(["directions", "fit", str(out), "--toy", "--images", str(folder)]), "drop --images")
    _error(capsys, main(["directions", "fit", str(out)]), "--images FOLDER and --labels CSV")
    one_class = _write(
        tmp_path / "one.csv", "file,smile\n" + "".join(f"head{i:02d}.png,{int(i == 0)}\n" for i in range(6))
    )
    _error(capsys, _fit(out, folder, one_class), "'smile': 5 negative and 1 positive", "at least 2")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    _error(capsys, _fit(out, folder, labels, "--bundle-out", str(tmp_path / "full")), "never overwritten")
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert not (out / "directions.json").exists()
    assert sorted(p.name for p in folder.iterdir()) == [
        f"head{i:02d}.png" for i in range(NUM)
    ]  # the inputs are untouched
    assert labels.read_text() == good


def test_a_cache_made_with_other_options_is_refused_then_replaced(photos, tmp_path, capsys):
    folder, labels, _ = photos
    out = tmp_path / "out"
    out.mkdir()
    (out / "codes.json").write_text(json.dumps({"key": {"model": "eg3d-ffhq"}, "names": []}))
    (out / "codes.safetensors").write_bytes(b"junk")
    _error(capsys, _fit(out, folder, labels), "code cache", "--overwrite")
    assert _fit(out, folder, labels, "--overwrite") == 0
    assert json.loads((out / "codes.json").read_text())["key"]["model"] == "toy"
    assert (
        len(json.loads((out / "codes.json").read_text())["names"]) == NUM
        and np.isfinite(load_directions(out)["glasses"].vector.numpy()).all()
    )
