"""Every bad input ends in one line that names the file or the argument and says what to do, never a raw traceback."""

from __future__ import annotations

import numpy as np
import pytest

from e3dge.cli import main
from e3dge.faces.align import AlignTransform, paste_back
from e3dge.faces.errors import FaceOptionError


def test_directions_fit_with_no_readable_image_says_so(tmp_path, capsys):
    images = tmp_path / "faces"
    images.mkdir()
    rows = ["file,smile"]
    for i in range(6):
        (images / f"f{i}.png").write_text("not an image")
        rows.append(f"f{i}.png,{i % 2}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    code = main(
        ["directions", "fit", str(tmp_path / "out"), "--images", str(images), "--labels", str(tmp_path / "labels.csv")]
        + ["--no-align", "--quiet"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("e3dge directions: error: no listed image could be inverted")
    assert all(line.startswith("skipped f") for line in err[:-1]) and len(err) == 7


@pytest.mark.parametrize(
    "photo, aligned, needle",
    [
        ("photo.png", np.zeros((8, 8, 3), np.uint8), "photo as RGB pixels .* got str"),
        (
            np.zeros((16, 16), np.uint8),
            np.zeros((8, 8, 3), np.uint8),
            r"photo as RGB pixels .* got array uint8 \[16, 16\]",
        ),
        (np.zeros((16, 16, 3), np.uint8), np.zeros((8, 8, 4), np.uint8), r"aligned as RGB pixels .*\[8, 8, 4\]"),
        (np.zeros((16, 16, 3), np.float32), np.zeros((8, 8, 3), np.uint8), "got array float32"),
        (np.zeros((16, 16, 3), np.uint8), np.zeros((8, 6, 3), np.uint8), "square aligned face, got 6x8"),
    ],
)
def test_paste_back_names_what_it_needs(photo, aligned, needle):
    transform = AlignTransform(np.eye(3), 8, "eg3d")
    with pytest.raises(FaceOptionError, match=needle) as err:
        paste_back(photo, aligned, transform)
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def bad_videos(tmp_path_factory):
    """Media that are not usable videos: text, audio only, cut short, and a frame larger than the pixel cap."""
    import subprocess

    import imageio.v2 as imageio
    import imageio_ffmpeg

    root = tmp_path_factory.mktemp("videos")
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    (root / "text.mp4").write_text("hello, not a video")
    subprocess.run(
        [
            ffmpeg,
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "anullsrc=r=8000",
            "-t",
            "1",
            str(root / "audio.mp4"),
        ],
        check=True,
    )
    with imageio.get_writer(str(root / "good.mp4"), fps=8, macro_block_size=2) as w:
        for i in range(8):
            w.append_data(np.full((64, 64, 3), 20 * i, np.uint8))
    data = (root / "good.mp4").read_bytes()
    (root / "cut.mp4").write_bytes(data[: len(data) // 2])
    huge = ["-f", "lavfi", "-i", "color=c=gray:s=9000x9000", "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "31"]
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", *huge, str(root / "huge.avi")], check=True)
    return root


@pytest.mark.parametrize(
    "name, needle",
    [
        ("text.mp4", "text.mp4: not a video ffmpeg can read (not a video file, or cut short)"),
        ("audio.mp4", "audio.mp4: not a video ffmpeg can read (it has no video stream)"),
        ("cut.mp4", "cut.mp4: not a video ffmpeg can read (not a video file, or cut short)"),
        ("huge.avi", "huge.avi: frames of 9000x9000 exceed 50 megapixels"),
    ],
)
def test_unusable_videos_are_one_line_without_ffmpegs_banner(bad_videos, tmp_path, monkeypatch, name, needle):
    from e3dge.faces import video
    from e3dge.faces.errors import FaceError
    from e3dge.faces.video import align_video

    monkeypatch.setattr(video, "_frames", lambda path: pytest.fail("a frame was decoded before the checks"))
    with pytest.raises(FaceError) as err:
        align_video(bad_videos / name, tmp_path / "aligned.mp4", progress=False)
    text = str(err.value)
    assert text == needle or text.startswith(needle), text
    assert "\n" not in text and "ffmpeg version" not in text and "configuration:" not in text
    assert not (tmp_path / "aligned.mp4").exists()
