"""Fuzzing the photo loader and `e3dge align`: a one-line FaceError or a correct result, never a traceback or a stray write."""

from __future__ import annotations

import io
import json
import random
import struct
import zlib

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from e3dge.faces.errors import FaceError

FUZZ = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _png_bytes(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (120, 90, 60)).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg_bytes(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (60, 90, 120)).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def _jpeg_with_declared_size(w: int, h: int) -> bytes:
    """A small JPEG whose frame header (SOF0) claims ``w x h`` (up to 65535 each)."""
    data = bytearray(_jpeg_bytes(16, 16))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", h, w)
    return bytes(data)


def _flip(data: bytes, at: int) -> bytes:
    """``data`` with the byte at ``at`` (modulo its length) XOR-ed with 0x5A."""
    at %= len(data)
    return data[:at] + bytes([data[at] ^ 0x5A]) + data[at + 1 :]


def _png_with_declared_size(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims ``w x h`` (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = lambda tag, data: (
        struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    )
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


photo_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda n: _png_bytes(40, 30)[:n], st.integers(0, 120)),  # truncated PNGs
    st.builds(_png_with_declared_size, st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)),
    st.builds(lambda w, h: _png_bytes(w, h), st.integers(1, 64), st.integers(1, 64)),
    st.builds(lambda n: _jpeg_bytes(48, 40)[:n], st.integers(0, 700)),  # truncated JPEGs
    # a JPEG header claiming more pixels than its data: small (decoded, padded) or over MAX_PIXELS (refused from the header);
    # mid sizes (e.g. 5000x5000) decode to 25 MP of gray and are correctly "no face", but take seconds: left out for speed
    st.builds(_jpeg_with_declared_size, st.integers(1, 96), st.integers(1, 96)),
    st.builds(_jpeg_with_declared_size, st.integers(7100, 65535), st.integers(7100, 65535)),
    st.builds(
        _flip, st.sampled_from([_png_bytes(40, 30), _jpeg_bytes(48, 40)]), st.integers(0, 10**6)
    ),  # one corrupt byte
)


@FUZZ
@given(photo_bytes)
@example(_png_with_declared_size(100000, 100000))
@example(b"")
def test_align_face_on_any_bytes_is_a_face_error_or_a_face(data):
    pytest.importorskip("dlib")
    from e3dge.faces import align_face

    try:
        result = align_face(data)
    except FaceError as err:
        msg = str(err)
        assert msg and "\n" not in msg
        return
    assert result.image.shape == (512, 512, 3)  # pragma: no cover - random bytes hold no face


def _files(root) -> dict:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@FUZZ
@given(photo_bytes, st.sampled_from(["x.png", "x.jpg", "x.gif", "x"]))
@example(_jpeg_with_declared_size(65535, 65535), "x.jpg")
@example(_png_bytes(1, 3200), "x.png")  # found by this test: the detector's downscale made it 0 px wide
def test_align_face_on_any_file_writes_nothing(tmp_path_factory, monkeypatch, data, name):
    pytest.importorskip("dlib")
    from e3dge.faces import align_face

    root = tmp_path_factory.mktemp("lib")
    monkeypatch.chdir(root)
    (root / name).write_bytes(data)
    try:
        align_face(root / name, size=64)
    except FaceError as err:
        assert str(err) and "\n" not in str(err)
    assert _files(root) == {root / name: data}


@FUZZ
@given(photo_bytes, st.sampled_from(["x.png", "x.jpg", "x.webp", "x"]))
def test_align_cli_on_any_file_answers_in_one_line_and_writes_only_its_output(tmp_path_factory, capsys, data, name):
    pytest.importorskip("dlib")
    from e3dge.cli import main

    root = tmp_path_factory.mktemp("fuzz")
    src = root / "in" / name
    src.parent.mkdir()
    src.write_bytes(data)
    out = root / "out" / "aligned.png"
    code = main(["align", str(src), str(out), "--quiet"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 1, 2)
    if code:
        assert len(err.strip().splitlines()) == 1
    written = {p for p in root.rglob("*") if p.is_file()} - {src}
    assert written <= {out, out.with_suffix(".json")}
    assert src.read_bytes() == data  # the input is untouched


@FUZZ
@given(st.integers(-(2**40), 2**40), st.sampled_from(["--size", "--window", "--face-index", "--min-face"]))
def test_align_numeric_options_in_range_or_exit_2(tmp_path_factory, capsys, value, option):
    pytest.importorskip("dlib")
    from e3dge.cli import main

    root = tmp_path_factory.mktemp("opt")
    code = main(["align", str(root / "missing.png"), str(root / "o.png"), option, str(value)])
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0]
    bounds = {"--size": (16, 4096), "--window": (1, 301), "--face-index": (0, 999), "--min-face": (8, 10000)}[option]
    if bounds[0] <= value <= bounds[1]:
        assert code == 1 and "no such file" in err[0]  # the option passed; the (missing) photo is the problem
    else:
        assert code == 2 and option in err[0]


batch_files = st.dictionaries(
    st.sampled_from(["a.png", "a.jpg", "A.PNG", "a_jpg.png", "b.gif", "dataset.png"]),
    photo_bytes,
    min_size=1,
    max_size=4,
)


@FUZZ
@given(batch_files)
def test_align_batch_on_any_folder_writes_one_row_per_success_and_never_into_inputs(
    tmp_path_factory, capsys, monkeypatch, files
):
    pytest.importorskip("dlib")
    from e3dge.cli import main

    root = tmp_path_factory.mktemp("batch")
    monkeypatch.chdir(root)
    src, out = root / "in", root / "out"
    src.mkdir()
    for name, data in files.items():
        (src / name).write_bytes(data)
    before = _files(src)
    code = main(["align", str(src), str(out), "--quiet", "--size", "32"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and code in (0, 1)
    failed = [line for line in captured.err.splitlines() if line.startswith("FAILED ")]
    assert len(failed) == len(captured.err.splitlines())  # one line per failed file, nothing else
    assert _files(src) == before  # inputs untouched, nothing new in the input folder
    assert {p.parent for p in _files(root)} <= {src, out}
    rows = json.loads((out / "dataset.json").read_text())["labels"]
    assert len(rows) + len(failed) == len(files)
    assert sorted(p.name for p in out.iterdir()) == sorted([name for name, _ in rows] + ["dataset.json"])


file_names = st.builds(
    lambda stem, ext: stem + ext,
    st.text(alphabet="aAbB_.-1", min_size=1, max_size=6).filter(lambda t: not t.startswith(".")),
    st.sampled_from([".png", ".PNG", ".jpg", ".JPG", ".jpeg", ".webp", ".gif"]),
)


@FUZZ
@given(st.lists(file_names, min_size=1, max_size=12, unique=True), st.randoms(use_true_random=False))
@example(["a.jpg", "a_jpg.png", "A.png", "a.PNG", "b.JPG", "b.jpg"], random.Random(0))
def test_batch_output_names_never_collide(names, rng):
    from pathlib import Path

    from e3dge.cli.align import output_names

    files = [Path(n) for n in names]
    out = output_names(files)
    assert set(out) == set(files)
    assert len({n.lower() for n in out.values()}) == len(files)  # distinct even on case-insensitive file systems
    assert all(n.endswith(".png") and n != "dataset.json" and "/" not in n for n in out.values())
    rng.shuffle(files)
    assert output_names(files) == out  # deterministic: the listing order does not matter


@FUZZ
@given(
    st.one_of(st.none(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.booleans(), st.text(max_size=4)),
    st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_align_face_arguments_are_checked_before_reading(tmp_path_factory, size, min_face):
    from e3dge.faces import align_face
    from e3dge.faces.errors import FaceOptionError, NotAnImageError

    root = tmp_path_factory.mktemp("args")
    try:
        align_face(root / "missing.png", size=size, min_face_size=min_face)
    except FaceOptionError as err:
        assert "\n" not in str(err) and ("size" in str(err) or "min_face_size" in str(err))
        valid_size = size is None or (type(size) is int and 16 <= size <= 4096)
        valid_min = type(min_face) in (int, float) and 0 <= min_face <= 10000
        assert not (valid_size and valid_min)
    except NotAnImageError as err:  # every argument passed: only then is the (missing) file looked at
        assert "no such file" in str(err)
        assert (size is None or (type(size) is int and 16 <= size <= 4096)) and 0 <= min_face <= 10000
    assert list(root.iterdir()) == []
