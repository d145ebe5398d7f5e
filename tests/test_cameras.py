import math

import pytest
import torch

from e3dge.core import cameras as C


def test_frontal_label_matches_eg3d_reference():
    c = C.frontal_label()
    assert c.shape == (1, 25)
    expected = torch.tensor([[1, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 2.7], [0, 0, 0, 1]], dtype=torch.float32)
    torch.testing.assert_close(c[0, :16].reshape(4, 4), expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(c[0, 16:], torch.tensor([4.2647, 0, 0.5, 0, 4.2647, 0.5, 0, 0, 1]))


def test_lookat_matches_eg3d_sampler_formula():
    # LookAtPoseSampler: theta = h, phi = arccos(1 - 2 v / pi), origin = r (sin phi cos(pi - theta), cos phi, sin phi sin(pi - theta))
    h, v, r = math.pi / 2 + 0.3, math.pi / 2 - 0.1, 2.7
    phi = math.acos(1 - 2 * v / math.pi)
    origin = torch.tensor(
        [r * math.sin(phi) * math.cos(math.pi - h), r * math.cos(phi), r * math.sin(phi) * math.sin(math.pi - h)]
    )
    cam2world = C.cam2world_from_yaw_pitch(0.3, -0.1)[0]
    torch.testing.assert_close(cam2world[:3, 3], origin, atol=1e-5, rtol=0)
    forward = torch.tensor(C.FFHQ_PIVOT) - origin
    torch.testing.assert_close(cam2world[:3, 2], forward / forward.norm(), atol=1e-5, rtol=0)
    R = cam2world[:3, :3]
    torch.testing.assert_close(R @ R.T, torch.eye(3), atol=1e-5, rtol=0)
    assert torch.det(R) > 0.99  # right-handed OpenCV frame
    assert cam2world[0, 3] > 0  # positive yaw moves the camera to +x
    assert cam2world[1, 3] > 0  # negative pitch lifts it above the face (y up)


@pytest.mark.parametrize("pivot", [(0, 0, 0.2), (0, 0, -0.06)])
def test_yaw_pitch_round_trip(pivot):
    yaw = torch.tensor([0.0, 0.5, -0.8, 0.1])
    pitch = torch.tensor([0.0, -0.3, 0.2, 0.6])
    labels = C.label_from_yaw_pitch(yaw, pitch, pivot=pivot)
    y2, p2 = C.yaw_pitch_from_label(labels)
    torch.testing.assert_close(y2, yaw, atol=1e-5, rtol=0)
    torch.testing.assert_close(p2, pitch, atol=1e-5, rtol=0)


def test_orbit_follows_gen_videos_trajectory():
    labels = C.orbit_labels(8)
    yaw, pitch = C.yaw_pitch_from_label(labels)
    t = torch.arange(8) * (2 * math.pi / 8)
    torch.testing.assert_close(yaw, 0.35 * torch.sin(t), atol=1e-5, rtol=0)
    torch.testing.assert_close(pitch, -0.05 + 0.25 * torch.cos(t), atol=1e-5, rtol=0)
    radius = labels[:, :16].reshape(-1, 4, 4)[:, :3, 3].norm(dim=-1)
    torch.testing.assert_close(radius, torch.full((8,), 2.7), atol=1e-5, rtol=0)


def test_fov_to_intrinsics_gives_ffhq_focal():
    assert C.fov_to_intrinsics(18.837)[0, 0].item() == pytest.approx(C.FFHQ_FOCAL, abs=5e-3)


def test_bad_labels_raise_clear_errors():
    with pytest.raises(ValueError, match=r"\[N, 25\]"):
        C.check_label(torch.zeros(2, 16))
    with pytest.raises(TypeError, match="torch.Tensor"):
        C.check_label([0.0] * 25)
    with pytest.raises(ValueError, match="num_frames"):
        C.orbit_labels(0)
