"""Fuzzing the photo loader and `e3dge align`: a one-line FaceError or a correct result, never a traceback or a stray write."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
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


def _png_with_declared_size(w: int, h: int) -> bytes:
    """A tiny PNG whose header claims ``w x h`` (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = lambda tag, data: struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


photo_bytes = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda n: _png_bytes(40, 30)[:n], st.integers(0, 120)),  # truncated PNGs
    st.builds(_png_with_declared_size, st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)),
    st.builds(lambda w, h: _png_bytes(w, h), st.integers(1, 64), st.integers(1, 64)),
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
