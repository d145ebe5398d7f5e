"""Global encoder E0 (pSp-style IR-SE + FPN) and pose head: shapes, pSp key names, round trip, gradients, errors."""

from __future__ import annotations

import math

import pytest
import torch

from e3dge.core.cameras import label_from_yaw_pitch, yaw_pitch_from_label
from e3dge.encoders import GlobalEncoder, GradualStyleBlock, encoder_config, pose_to_label, resize_to


@pytest.fixture(scope="module")
def tiny_encoder():
    torch.manual_seed(0)
    E = GlobalEncoder(**encoder_config("tiny", num_ws=14, w_dim=16)).eval()
    with torch.no_grad():  # non-trivial pose head and w_avg so every output path is exercised
        E.pose_head.net[2].weight.normal_(0, 0.1)
        E.w_avg.normal_()
    return E


def _images(n=2, size=64, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_tiny_output_shapes_and_w_avg(tiny_encoder):
    out = tiny_encoder(_images(2))
    assert out.ws_offset.shape == (2, 14, 16) and out.ws.shape == (2, 14, 16) and out.pose.shape == (2, 2)
    torch.testing.assert_close(out.ws, out.ws_offset + tiny_encoder.w_avg)
    f = out.features
    assert f["c1"].shape == (2, 32, 16, 16) and f["c2"].shape == (2, 64, 8, 8) and f["c3"].shape == (2, 128, 4, 4)
    assert f["p2"].shape == (2, 128, 8, 8) and f["p1"].shape == (2, 128, 16, 16) and f["pooled"].shape == (2, 128)
    # rows come from different heads: no two rows are equal
    iu = torch.triu_indices(14, 14, 1)
    assert torch.cdist(out.ws_offset[0], out.ws_offset[0])[iu[0], iu[1]].min() > 0


def test_ir_se50_psp_key_names_and_shapes():
    """Names/shapes of pSp's GradualStyleEncoder(50, 'ir_se') state dict (models/encoders/psp_encoders.py)."""
    E = GlobalEncoder(**encoder_config("ir_se50"))
    sd = E.state_dict()
    expected = {
        "input_layer.0.weight": (64, 3, 3, 3),
        "input_layer.1.running_var": (64,),
        "input_layer.2.weight": (64,),  # PReLU
        "body.0.res_layer.0.weight": (64,),  # BN(in)
        "body.0.res_layer.1.weight": (64, 64, 3, 3),
        "body.0.res_layer.2.weight": (64,),
        "body.0.res_layer.3.weight": (64, 64, 3, 3),
        "body.0.res_layer.5.fc1.weight": (4, 64, 1, 1),  # SE reduction 16
        "body.0.res_layer.5.fc2.weight": (64, 4, 1, 1),
        "body.3.shortcut_layer.0.weight": (128, 64, 1, 1),  # first unit of stage 2
        "body.3.shortcut_layer.1.running_mean": (128,),
        "body.7.res_layer.1.weight": (256, 128, 3, 3),  # first unit of stage 3
        "body.21.res_layer.3.weight": (512, 512, 3, 3),  # first unit of stage 4
        "body.23.res_layer.5.fc1.weight": (32, 512, 1, 1),
        "styles.0.convs.0.weight": (512, 512, 3, 3),
        "styles.0.convs.6.bias": (512,),  # 16x16 -> 4 stride-2 convs (indices 0, 2, 4, 6)
        "styles.3.convs.8.weight": (512, 512, 3, 3),  # 32x32 -> 5 convs
        "styles.13.convs.10.weight": (512, 512, 3, 3),  # 64x64 -> 6 convs
        "styles.13.linear.weight": (512, 512),
        "styles.13.linear.bias": (512,),
        "latlayer1.weight": (512, 256, 1, 1),
        "latlayer1.bias": (512,),
        "latlayer2.weight": (512, 128, 1, 1),
    }
    for key, shape in expected.items():
        assert key in sd, key
        assert tuple(sd[key].shape) == shape, (key, tuple(sd[key].shape))
    assert "body.0.shortcut_layer.0.weight" not in sd  # 64 -> 64: parameter-free subsampling shortcut
    assert "body.24.res_layer.0.weight" not in sd and "body.23.res_layer.0.weight" in sd  # 3 + 4 + 14 + 3 units
    assert "styles.14.linear.weight" not in sd and "styles.8.convs.12.weight" not in sd
    assert E.tap_index == {6: "c1", 20: "c2", 23: "c3"}
    n_params = sum(p.numel() for p in E.parameters())
    assert 200e6 < n_params < 220e6, n_params
    # pSp's own keys (all but the E3DGE additions) load back strictly
    psp = {f"encoder.{k}": v for k, v in sd.items() if not k.startswith("pose_head.") and k != "w_avg"}
    assert set(E.load_psp_weights(psp)) == {k for k in sd if k.startswith("pose_head.")} | {"w_avg"}
    psp["encoder.latlayer2.weight"] = torch.zeros(512, 64, 1, 1)
    with pytest.raises(ValueError, match="shape mismatches"):
        E.load_psp_weights(psp)


def test_ir_se50_forward_small_input():
    E = GlobalEncoder(**dict(encoder_config("ir_se50"), input_size=64, num_ws=14)).eval()
    with torch.no_grad():
        out = E(_images(1, 64))
    assert out.ws.shape == (1, 14, 512) and out.pose.shape == (1, 2)
    assert out.features["c3"].shape == (1, 512, 4, 4) and out.features["p1"].shape == (1, 512, 16, 16)
    assert torch.equal(out.pose, torch.zeros(1, 2))  # untrained pose head predicts the frontal pose


def test_input_resizing(tiny_encoder):
    x = _images(1, 128)
    torch.testing.assert_close(resize_to(x, 64), torch.nn.functional.avg_pool2d(x, 2))
    assert resize_to(_images(1, 100), 64).shape == (1, 3, 64, 64)
    assert resize_to(_images(1, 48), 64).shape == (1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(tiny_encoder(x).ws, tiny_encoder(resize_to(x, 64)).ws)


def test_save_load_round_trip(tmp_path, tiny_encoder):
    path = tiny_encoder.save_pretrained(tmp_path / "e0")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    loaded = GlobalEncoder.from_pretrained(path)
    assert loaded.config == tiny_encoder.config
    x = _images(2)
    with torch.no_grad():
        a, b = tiny_encoder(x), loaded(x)
    for name in ("ws_offset", "ws", "pose"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=0)


def test_half_precision_file_loads_back_as_float32(tmp_path, tiny_encoder):
    full = tiny_encoder.save_pretrained(tmp_path / "fp32")
    half = tiny_encoder.save_pretrained(tmp_path / "fp16", dtype=torch.float16)
    ratio = (half / "model.safetensors").stat().st_size / (full / "model.safetensors").stat().st_size
    assert 0.49 < ratio < 0.56  # half the bytes (plus the same header)
    loaded = GlobalEncoder.from_pretrained(half)
    params = dict(tiny_encoder.named_parameters())
    buffers = 0
    for (name, p), q in zip(tiny_encoder.state_dict().items(), loaded.state_dict().values()):
        assert q.dtype == p.dtype, name  # cast back to the model's own dtype
        exact = name not in params  # buffers (w_avg, norm statistics) are stored as they are
        buffers += exact
        torch.testing.assert_close(q, p if exact else p.half().to(p.dtype), rtol=0, atol=0)
    assert buffers >= 1 and "w_avg" in dict(tiny_encoder.named_buffers())


def test_gradients_reach_input_and_every_head():
    torch.manual_seed(1)
    E = GlobalEncoder(**encoder_config("tiny", num_ws=6, w_dim=8), coarse_ws=2, medium_ws=2).train()
    with torch.no_grad():
        E.pose_head.net[2].weight.normal_(0, 0.1)
    x = _images(2).requires_grad_(True)
    out = E(x)
    (out.ws.square().sum() + pose_to_label(out.pose).square().sum()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in E.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_pose_to_label_matches_cameras():
    pose = torch.tensor([[0.3, -0.2], [0.0, 0.0]])
    label = pose_to_label(pose)
    assert label.shape == (2, 25)
    torch.testing.assert_close(label, label_from_yaw_pitch(pose[:, 0], pose[:, 1]))
    yaw, pitch = yaw_pitch_from_label(label)
    torch.testing.assert_close(torch.stack((yaw, pitch), 1), pose, atol=1e-5, rtol=0)
    assert math.isclose(label[1, 16].item(), 4.2647, rel_tol=1e-6)  # focal
    other = pose_to_label(pose, radius=1.7, pivot=(0, 0, 0), focal=2.0)
    assert math.isclose(other[1, 16].item(), 2.0) and not torch.allclose(other[:, :16], label[:, :16])
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        pose_to_label(torch.zeros(2, 3))


def test_bad_inputs_and_configs(tiny_encoder):
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        tiny_encoder(torch.zeros(3, 64, 64))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        tiny_encoder(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="square"):
        tiny_encoder(torch.zeros(1, 3, 64, 48))
    with pytest.raises(ValueError, match="empty batch"):
        tiny_encoder(torch.zeros(0, 3, 64, 64))
    with pytest.raises(ValueError, match="power of two"):
        GlobalEncoder(**dict(encoder_config("tiny"), input_size=96))
    with pytest.raises(ValueError, match="coarse_ws"):
        GlobalEncoder(**encoder_config("tiny", num_ws=5), coarse_ws=3, medium_ws=4)
    with pytest.raises(ValueError, match="4 stages"):
        GlobalEncoder(**dict(encoder_config("tiny"), widths=(16, 32, 64), units=(1, 1, 1)))
    with pytest.raises(ValueError, match="unknown encoder config"):
        encoder_config("ir_se18")
    with pytest.raises(ValueError, match=r"w_avg must have shape \[16\]"):
        tiny_encoder.set_w_avg(torch.zeros(512))
    with pytest.raises(ValueError, match="8x8"):
        GradualStyleBlock(4, 4, 8)(torch.zeros(1, 4, 16, 16))


def test_validate_config_refuses_before_building():
    from e3dge.core.options import OptionError

    base = encoder_config("tiny", num_ws=8, w_dim=8)
    cases = [
        (dict(base, coarse_ws=3, medium_ws=6), r"coarse_ws \+ medium_ws \(3 \+ 6\) must be <= num_ws \(8\)"),
        (dict(base, widths=[16, 32, 64]), r"widths must be a list of 4 items, got \[16, 32, 64\]"),
        (dict(base, units=[1, 1, 0, 1]), r"units\[2\] must be between 1 and 64, got 0"),
        (dict(base, input_size=96), "input_size must be a power of two between 32 and 1024, got 96"),
        (dict(base, use_se="yes"), "use_se must be true or false, got 'yes'"),
        (dict(base, units=[64, 64, 64, 64], widths=[1024] * 4), r"about \d+ M parameters"),
        (dict(base, num_wss=6), "unknown config key 'num_wss'; did you mean 'num_ws'"),
    ]
    for config, message in cases:
        with pytest.raises(OptionError, match=message):
            GlobalEncoder.validate_config(config, "e0/config.json")
    assert GlobalEncoder.validate_config(dict(base, coarse_ws=2, medium_ws=4)) == dict(base, coarse_ws=2, medium_ws=4)
