import imageio.v3 as iio
import numpy as np
import torch

from e3dge.backbones.eg3d import TriPlaneGenerator, eg3d_config
from e3dge.cli import main as cli_main
from e3dge.demo import depth_to_uint8, render_orbit, to_uint8_image


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


def test_demo_cli_runs_offline(tmp_path, capsys):
    assert cli_main(["demo", "--out", str(tmp_path), "--frames", "3"]) == 0
    out = capsys.readouterr().out
    assert "generator:" in out and "orbit.mp4" in out
    assert iio.imread(tmp_path / "orbit.mp4").shape[0] == 3
