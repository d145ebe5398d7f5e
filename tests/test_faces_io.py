"""Bad and unusual image inputs for e3dge.faces.io: each is converted correctly or refused clearly."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageFile

from e3dge.faces import errors
from e3dge.faces.io import load_image


def _png_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=kw.pop("format", "PNG"), **kw)
    return buf.getvalue()


def _photo(w: int = 64, h: int = 48) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_rgb_roundtrip_from_path(tmp_path):
    arr = _photo()
    path = tmp_path / "p.png"
    Image.fromarray(arr).save(path)
    loaded = load_image(path)
    assert loaded.pixels.dtype == np.uint8 and loaded.pixels.shape == (48, 64, 3)
    np.testing.assert_array_equal(loaded.pixels, arr)
    assert loaded.name == "p.png" and loaded.size == (64, 48) and not loaded.exif_rotated


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a photo")
    with pytest.raises(errors.NotAnImageError, match="notes.jpg is not an image Pillow can read"):
        load_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(errors.NotAnImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(errors.NotAnImageError, match="is a folder"):
        load_image(tmp_path)


def test_truncated_jpeg():
    data = _png_bytes(Image.fromarray(_photo(256, 256)), format="JPEG", quality=95)
    with pytest.raises(errors.TruncatedImageError, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_over_limit_refused_before_decoding(monkeypatch):
    data = _png_bytes(Image.new("1", (10_000, 6_000)))  # 60 MP, a few KB on disk

    def must_not_decode(self, *a, **k):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", must_not_decode)
    with pytest.raises(errors.ImageTooLargeError, match=r"10000x6000 \(60.0 megapixels\), over the limit of 50"):
        load_image(data)


def test_decompression_bomb_beyond_pillow_limit():
    data = _png_bytes(Image.new("1", (20_000, 10_000)))  # 200 MP: Pillow itself refuses at open()
    with pytest.raises(errors.ImageTooLargeError, match="too large|over the limit"):
        load_image(data)


def test_custom_pixel_limit_for_arrays():
    with pytest.raises(errors.ImageTooLargeError):
        load_image(np.zeros((100, 100, 3), np.uint8), max_pixels=5_000)


def test_grayscale_becomes_rgb():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = load_image(_png_bytes(Image.fromarray(gray, "L"))).pixels
    assert out.shape == (16, 16, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], gray)


def test_16bit_grayscale_scaled_to_8bit():
    values = np.linspace(0, 65535, 64 * 4).astype(np.uint16).reshape(16, 16)
    img = Image.fromarray(values)  # mode I;16
    assert img.mode.startswith("I;16")
    loaded = load_image(_png_bytes(img))
    expected = np.rint(values / 257.0).astype(np.uint8)
    assert np.abs(loaded.pixels[:, :, 0].astype(int) - expected).max() <= 1
    assert loaded.pixels[-1, -1, 0] == 255 and loaded.pixels[0, 0, 0] == 0
    assert any("8 bits" in n for n in loaded.notes)


def test_cmyk_jpeg():
    cmyk = Image.new("CMYK", (32, 16), (0, 0, 0, 0))
    cmyk.paste((255, 0, 0, 0), (0, 0, 16, 16))  # left half: full cyan
    out = load_image(_png_bytes(cmyk, format="JPEG", quality=100)).pixels
    assert np.abs(out[8, 24].astype(int) - [255, 255, 255]).max() <= 3
    assert np.abs(out[8, 4].astype(int) - [0, 255, 255]).max() <= 3


def test_rgba_composited_on_white():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (200, 10, 10, 255)  # opaque red left, transparent right
    out = load_image(_png_bytes(Image.fromarray(rgba, "RGBA"))).pixels
    np.testing.assert_array_equal(out[0, 0], [200, 10, 10])
    np.testing.assert_array_equal(out[0, 7], [255, 255, 255])
    out_black = load_image(_png_bytes(Image.fromarray(rgba, "RGBA")), background=(0, 0, 0)).pixels
    np.testing.assert_array_equal(out_black[0, 7], [0, 0, 0])


def test_palette_with_transparency():
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 255] + [0, 255, 0] + [0, 0, 0] * 254)
    pal.paste(1, (0, 0, 4, 8))
    pal.info["transparency"] = 0
    data = _png_bytes(pal, transparency=0)
    out = load_image(data).pixels
    np.testing.assert_array_equal(out[0, 0], [0, 255, 0])  # opaque green
    np.testing.assert_array_equal(out[0, 7], [255, 255, 255])  # transparent blue -> white


def test_exif_rotation_applied():
    arr = _photo(60, 40)
    stored = Image.fromarray(arr).transpose(Image.Transpose.ROTATE_90)  # how a camera stores a turned shot
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    loaded = load_image(_png_bytes(stored, format="PNG", exif=exif))
    assert loaded.exif_rotated and loaded.size == (60, 40)
    np.testing.assert_array_equal(loaded.pixels, arr)


def test_float_and_rgba_arrays():
    out = load_image(np.full((4, 4), 0.5, dtype=np.float32)).pixels
    assert out.shape == (4, 4, 3) and int(out[0, 0, 0]) == 128
    with pytest.raises(errors.NotAnImageError, match="shape"):
        load_image(np.zeros((4, 4, 5), np.uint8))


def test_errors_are_value_errors():
    assert issubclass(errors.FaceError, ValueError)
    for cls in (errors.NoFaceError, errors.FaceTooSmallError, errors.ImageTooLargeError, errors.TruncatedImageError):
        assert issubclass(cls, errors.FaceError)
