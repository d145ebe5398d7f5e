"""StyleSDF-based E3DGE encoders: E0 (StyleSDFGlobalEncoder) and the volume-discriminator pose estimator.

Official key names/shapes come from tests/data listings (facts for interoperability). Numerical parity
with the official classes was checked outside the repository (random weights, max abs diff 0).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from e3dge.core.errors import UserError
from e3dge.encoders import StyleSDFGlobalEncoder, VolumePoseEstimator
from e3dge.encoders.stylesdf_encoder import StyleSDFEncoderConfig
from e3dge.encoders.volume_pose import VolumePoseConfig, add_coords

DATA = Path(__file__).parent / "data"


def listing(filename: str) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, shape)`` lines of a listing, in order (the header and ``##`` lines skipped)."""
    out = []
    for line in (DATA / filename).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, shape = line.split(" ", 1)
            out.append((name, tuple(ast.literal_eval(shape))))
    return out


def _images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BatchNorm statistics / biases so every tensor matters; eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if "running_var" in name:
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif t.ndim == 1:
                t.add_(0.1 * torch.randn(t.shape, generator=g))
    return model.eval()


@pytest.fixture(scope="module")
def tiny_e0() -> StyleSDFGlobalEncoder:
    torch.manual_seed(0)
    return _randomise(StyleSDFEncoderConfig.tiny().build())


@pytest.fixture(scope="module")
def tiny_pose() -> VolumePoseEstimator:
    torch.manual_seed(0)
    return _randomise(VolumePoseConfig.tiny().build())


# ---------------------------------------------------------------- official key names and shapes
@pytest.mark.parametrize(
    "filename, build, keys, numel",
    [
        ("e3dge_official_e0_keys.txt", lambda: StyleSDFEncoderConfig.official().build(), 709, 258_612_724),
        ("stylesdf_vol_d_keys.txt", lambda: VolumePoseConfig.official().build(), 28, 12_098_003),
    ],
)
def test_official_configs_have_the_official_state_dict(filename, build, keys, numel):
    expected = listing(filename)
    assert len(expected) == keys  # the listing itself is complete
    with torch.device("meta"):  # no 1 GB allocation
        state = build().state_dict()
    assert [(k, tuple(v.shape)) for k, v in state.items()] == expected  # same names, shapes and order
    assert sum(v.numel() for v in state.values()) == numel


def test_official_e0_head_layout_on_meta():
    with torch.device("meta"):
        E = StyleSDFEncoderConfig.official().build()
    convs = lambda head: sum(1 for m in head.convs if isinstance(m, torch.nn.Conv2d))  # noqa: E731
    assert [convs(h) for h in E.styles_pigan] == [7] * 9  # built for 128 px, run on the 32 px p32
    assert [convs(h) for h in E.styles_stylegan] == [7, 7, 7] + [8] * 7
    assert E.taps == {2: "c128", 6: "c64", 20: "c32", 23: "c16"}
    out = E(torch.empty(2, 3, 512, 512, device="meta"))  # shapes only
    assert out.renderer_offsets.shape == (2, 9, 256) and out.decoder_offsets.shape == (2, 10, 512)
    assert out.features["p32"].shape == (2, 512, 32, 32) and out.features["p128"].shape == (2, 512, 128, 128)


# ---------------------------------------------------------------- E0 behaviour
def test_tiny_e0_shapes_and_decoder_rows(tiny_e0):
    with torch.no_grad():
        out = tiny_e0(_images(3, 32))
    assert out.renderer_offsets.shape == (3, 9, 4) and out.decoder_offsets.shape == (3, 10, 4)
    f = out.features
    assert f["c128"].shape == (3, 4, 16, 16) and f["c64"].shape == (3, 8, 8, 8)
    assert f["c32"].shape == (3, 8, 4, 4) and f["c16"].shape == (3, 16, 2, 2)
    assert f["p32"].shape == (3, 16, 4, 4) and f["p64"].shape == (3, 16, 8, 8) and f["p128"].shape == (3, 16, 16, 16)
    d = out.decoder_offsets
    assert torch.equal(d, d[:, :1].expand_as(d))  # one head, repeated x10
    assert not torch.equal(d[0], d[1])  # but it depends on the image
    r = out.renderer_offsets[0]
    assert torch.cdist(r, r)[torch.triu_indices(9, 9, 1).unbind()].min() > 0  # nine different heads


def test_e0_fpn_and_heads_by_hand(tiny_e0):
    with torch.no_grad():
        out = tiny_e0(_images(2, 32, seed=1))
        f = out.features
        up = lambda a, b: F.interpolate(a, size=b.shape[-2:], mode="bilinear", align_corners=True)  # noqa: E731
        torch.testing.assert_close(f["p32"], up(f["c16"], f["c32"]) + tiny_e0.latlayer256(f["c32"]), rtol=0, atol=0)
        torch.testing.assert_close(f["p64"], up(f["p32"], f["c64"]) + tiny_e0.latlayer128(f["c64"]), rtol=0, atol=0)
        torch.testing.assert_close(f["p128"], up(f["p64"], f["c128"]) + tiny_e0.latlayer64(f["c128"]), rtol=0, atol=0)
        for j, head in enumerate(tiny_e0.styles_pigan):  # every renderer head reads p32
            torch.testing.assert_close(out.renderer_offsets[:, j], head(f["p32"]), rtol=0, atol=0)
        torch.testing.assert_close(out.decoder_offsets[:, 3], tiny_e0.styles_stylegan[0](f["p128"]), rtol=0, atol=0)
        # EqualLinear with lr multiplier 1: x @ (W / sqrt(in)).T + b
        lin = tiny_e0.styles_pigan[0].linear
        x = torch.randn(5, 4)
        torch.testing.assert_close(lin(x), x @ (lin.weight / 2).T + lin.bias)


def test_e0_only_decoder_head_0_is_used(tiny_e0):
    E = StyleSDFEncoderConfig.tiny().build().eval()
    E.load_state_dict(tiny_e0.state_dict())
    x = _images(2, 32, seed=2)
    with torch.no_grad():
        before = E(x)
        for head in E.styles_stylegan[1:]:
            head.linear.bias.add_(1.0)
        torch.testing.assert_close(E(x).decoder_offsets, before.decoder_offsets, rtol=0, atol=0)
        E.styles_stylegan[0].linear.bias.add_(1.0)
        torch.testing.assert_close(E(x).decoder_offsets, before.decoder_offsets + 1.0)
        skipped = E(x, decoder=False)
    assert skipped.decoder_offsets is None and "p128" not in skipped.features
    torch.testing.assert_close(skipped.renderer_offsets, before.renderer_offsets, rtol=0, atol=0)


def test_e0_average_pools_other_sizes(tiny_e0):
    x = _images(2, 64, seed=3)
    with torch.no_grad():
        big, small = tiny_e0(x), tiny_e0(F.avg_pool2d(x, 2))
    torch.testing.assert_close(big.renderer_offsets, small.renderer_offsets, rtol=0, atol=1e-6)
    torch.testing.assert_close(big.decoder_offsets, small.decoder_offsets, rtol=0, atol=1e-6)


def test_e0_config_round_trip(tiny_e0, tmp_path):
    tiny_e0.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["_class_name"] == "StyleSDFGlobalEncoder" and config["decoder_spatials"] == [16] * 3 + [32] * 7
    loaded = StyleSDFGlobalEncoder.from_pretrained(tmp_path)
    assert loaded.config == tiny_e0.config and loaded.sizes == StyleSDFEncoderConfig.tiny()
    for (k, a), (k2, b) in zip(tiny_e0.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = _images(2, 32, seed=4)
    with torch.no_grad():
        a, b = tiny_e0(x), loaded(x)
    assert torch.equal(a.renderer_offsets, b.renderer_offsets) and torch.equal(a.decoder_offsets, b.decoder_offsets)
    assert sum(p.numel() for p in loaded.parameters()) < 30_000


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(3, 32, 32), r"\[B, 3, H, W\].*got \[3, 32, 32\]"),
        (torch.zeros(1, 1, 32, 32), r"got \[1, 1, 32, 32\]"),
        (torch.zeros(0, 3, 32, 32), r"got \[0, 3, 32, 32\]"),
        ("image.png", r"got str"),
    ],
)
def test_wrong_inputs_give_one_line_errors(tiny_e0, tiny_pose, bad, match):
    for model in (tiny_e0, tiny_pose):
        with pytest.raises(ValueError, match=match) as info:
            model(bad)
        assert "\n" not in str(info.value) and type(model).__name__ in str(info.value)


def test_e0_config_errors_are_one_line(tmp_path):
    with pytest.raises(ValueError, match=r"renderer_spatial \(2\) must be >= the p32 map side \(4\)"):
        StyleSDFEncoderConfig(input_size=32, renderer_spatial=2)
    with pytest.raises(ValueError, match="decoder_spatials\\[0\\]"):
        StyleSDFEncoderConfig(input_size=256, decoder_spatials=(64,))
    StyleSDFEncoderConfig.tiny().build().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "decoder_spatials": [4]}))
    with pytest.raises(
        UserError, match=r"config.json: decoder_spatials\[0\] \(4\) must be >= the p128 map side \(16\)"
    ) as info:
        StyleSDFGlobalEncoder.from_pretrained(tmp_path)
    assert "\n" not in str(info.value)
    (tmp_path / "config.json").write_text(json.dumps({**config, "widths": [2048] * 4, "units": [8] * 4}))
    with pytest.raises(UserError, match="more than the"):
        StyleSDFGlobalEncoder.from_pretrained(tmp_path)


# ---------------------------------------------------------------- pose estimator
def test_add_coords_by_hand():
    x = torch.zeros(2, 1, 3, 5)
    out = add_coords(x)
    assert out.shape == (2, 3, 3, 5)
    rows = torch.tensor([-1.0, 0.0, 1.0]).view(3, 1).expand(3, 5)  # channel C: row coordinate
    cols = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]).view(1, 5).expand(3, 5)  # channel C+1: column coordinate
    assert torch.equal(out[1, 1], rows) and torch.equal(out[1, 2], cols) and torch.equal(out[:, :1], x)
    with torch.device("meta"):
        D = VolumePoseConfig.official().build()
    assert D.convs[1].conv1.conv.conv.in_channels == 128 + 2 and D.convs[3].skip is None


def test_pose_is_outputs_1_and_2(tiny_pose):
    x = _images(3, 16, seed=5)
    with torch.no_grad():
        out, raw = tiny_pose(x), tiny_pose.raw(x)
    assert out.logit.shape == (3, 1) and out.azim.shape == (3,) and out.elev.shape == (3,)
    assert torch.equal(out.logit, raw[:, 0:1]) and torch.equal(out.azim, raw[:, 1]) and torch.equal(out.elev, raw[:, 2])
    assert torch.equal(out.viewpoint, raw[:, 1:3])
    D = VolumePoseConfig.tiny().build().eval()
    with torch.no_grad():  # a constant head: the outputs are its bias, in channel order (logit, azim, elev)
        D.final_conv.conv.weight.zero_()
        D.final_conv.conv.bias.copy_(torch.tensor([0.5, 0.3, -0.15]))
        const = D(x)
    assert torch.equal(const.azim, torch.full((3,), 0.3)) and torch.equal(const.elev, torch.full((3,), -0.15))
    assert torch.equal(const.logit, torch.full((3, 1), 0.5))


def test_pose_residual_block_by_hand(tiny_pose):
    block = tiny_pose.convs[1]  # 4 -> 8 channels: has a skip conv
    x = torch.randn(2, 4, 16, 16)
    lrelu = lambda t, b: F.leaky_relu(t + b.view(1, -1, 1, 1), 0.2)  # noqa: E731
    with torch.no_grad():
        h = lrelu(F.conv2d(add_coords(x), block.conv1.conv.conv.weight, padding=1), block.conv1.activation.bias)
        h = lrelu(F.conv2d(add_coords(h), block.conv2.conv.conv.weight, padding=1), block.conv2.activation.bias)
        skip = F.conv2d(F.avg_pool2d(x, 2), block.skip.conv.weight, block.skip.conv.bias)
        torch.testing.assert_close(block(x), (F.avg_pool2d(h, 2) + skip) / 2**0.5)


def test_pose_pools_to_input_size_and_round_trips(tiny_pose, tmp_path):
    x = _images(2, 64, seed=6)
    with torch.no_grad():
        torch.testing.assert_close(tiny_pose(x).viewpoint, tiny_pose(F.avg_pool2d(x, 4)).viewpoint, rtol=0, atol=1e-6)
    tiny_pose.save_pretrained(tmp_path)
    loaded = VolumePoseEstimator.from_pretrained(tmp_path)
    assert loaded.config == {"input_size": 16, "widths": [4, 8, 8, 8]}
    assert all(torch.equal(a, b) for a, b in zip(tiny_pose.state_dict().values(), loaded.state_dict().values()))
    with torch.no_grad():
        assert torch.equal(loaded(x).viewpoint, tiny_pose(x).viewpoint)
    (tmp_path / "config.json").write_text(
        json.dumps({"_class_name": "VolumePoseEstimator", "input_size": 16, "widths": [4, 8]})
    )
    with pytest.raises(UserError, match=r"widths needs log2\(input_size\) = 4 values") as info:
        VolumePoseEstimator.from_pretrained(tmp_path)
    assert "\n" not in str(info.value)
