"""Stage II building blocks: official key names and shapes, output shapes, pixel-aligned projection, visibility, FiLM identity, save/load."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import torch

from e3dge.core.cameras import label_from_yaw_pitch, split_label
from e3dge.core.errors import UserError
from e3dge.encoders import (
    AlignerConfig,
    FeatureFusion,
    FilmHead,
    LocalEncoder,
    LocalEncoderConfig,
    ResidualAligner,
    ResnetBlockFC,
    apply_film,
    project,
    sample_features,
    visibility,
)
from e3dge.encoders.blocks import pe_dim, positional_encoding
from e3dge.rendering.volume import sample_rays

LISTING = Path(__file__).parent / "data" / "e3dge_official_stage2_keys.txt"


def official_listing(section: str) -> dict[str, tuple[int, ...]]:
    """Names and shapes of one section of the official state-dict listing (facts, not code)."""
    out, active = {}, False
    for line in LISTING.read_text().splitlines():
        if line.startswith("## "):
            active = line.startswith(f"## {section} ")
        elif active and line.strip():
            name, shape = line.split(" ", 1)
            out[name] = tuple(ast.literal_eval(shape))
    return out


# ---------------------------------------------------------------- (a) official key names and shapes
@pytest.mark.parametrize(
    "section, build, keys, numel",
    [
        ("netLocal_ResnetFC", lambda: LocalEncoderConfig.official().build(), 456, 15347606),
        ("ADA", lambda: AlignerConfig.official().build(), 295, 600295),
        ("Fuse", FeatureFusion, 13, 591872),
    ],
)
def test_official_configurations_have_the_official_state_dict(section, build, keys, numel):
    expected = official_listing(section)
    assert len(expected) == keys  # the listing itself is complete
    state = build().state_dict()
    assert set(state) == set(expected), (sorted(set(state) - set(expected))[:5], sorted(set(expected) - set(state))[:5])
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert sum(v.numel() for v in state.values()) == numel
    official = {k: torch.randn(s) if s else torch.zeros((), dtype=torch.long) for k, s in expected.items()}
    for k in [
        k for k in official if ".downsample.0." in k
    ]:  # one module under two names: the official tensors are equal
        official[k] = official[k.replace("downsample.0", "bn4")]
    module = build()
    module.load_state_dict(official, strict=True)
    assert all(torch.equal(module.state_dict()[k], v) for k, v in official.items())


def test_bn4_is_the_downsample_norm():
    conv2 = LocalEncoder().image_filter.conv2  # ConvBlock 64 -> 128: has a downsample
    conv3 = LocalEncoder().image_filter.conv3  # ConvBlock 128 -> 128: bn4 stored, no downsample
    assert conv2.downsample[0] is conv2.bn4 and conv3.downsample is None and conv3.bn4.num_channels == 128


# ---------------------------------------------------------------- (b) output shapes
def test_official_shapes():
    E1, ada, fuse = LocalEncoder().eval(), ResidualAligner().eval(), FeatureFusion().eval()
    head = E1.local_feat_to_tex_modulations_linear
    with torch.no_grad():
        fmap = E1(torch.randn(1, 3, 256, 256), torch.rand(1, 1, 256, 256))
        aligned = ada(torch.randn(1, 3, 256, 256), torch.randn(1, 3, 256, 256))
        f = torch.randn(1, 50, 256)
        fused = fuse(f, torch.ones(1, 50, 1), f)
        alpha, beta = E1.film(fused, torch.rand(1, 50, 3))
    assert fmap.shape == (1, 256, 64, 64) and torch.isfinite(fmap).all()
    assert aligned.shape == (1, 3, 256, 256) and fused.shape == (1, 50, 256)
    assert head.fc_0.in_features == 301 and alpha.shape == beta.shape == (1, 50, 256)


def test_tiny_shapes():
    E1, ada, fuse = (
        LocalEncoderConfig.tiny().build().eval(),
        AlignerConfig.tiny().build().eval(),
        FeatureFusion(channels=16),
    )
    res, depth, recon = torch.randn(2, 3, 64, 64), torch.rand(2, 1, 64, 64), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fmap = E1(res, depth)
        aligned = ada(res, recon)
        f = torch.randn(2, 100, 16)
        fused = fuse(f, torch.ones(2, 100, 1), f)
        alpha, beta = E1.film(fused, torch.rand(2, 100, 3))
    assert fmap.shape == (2, 16, 16, 16) and aligned.shape == (2, 3, 64, 64) and fused.shape == (2, 100, 16)
    assert alpha.shape == beta.shape == (2, 100, 16)
    assert sum(p.numel() for p in E1.parameters()) < 100_000 and sum(p.numel() for p in ada.parameters()) < 50_000


def test_config_checks_and_positional_encoding():
    assert pe_dim() == 45 and positional_encoding(torch.zeros(1, 3)).shape == (1, 45)
    x = torch.tensor([[0.3, -0.2, 0.7]])
    pe = positional_encoding(x)
    torch.testing.assert_close(pe[:, :3], x)
    torch.testing.assert_close(pe[:, 3 + 6 * 2 : 3 + 6 * 2 + 3], torch.sin(4 * x))  # k = 2: sin(2^2 x), then cos
    torch.testing.assert_close(pe[:, -3:], torch.cos(64 * x))  # k = 6: cos(2^6 x) last
    with pytest.raises(ValueError, match="groups"):
        LocalEncoderConfig(stem_width=5, width=32, groups=4)
    with pytest.raises(ValueError, match="multiple of 8"):
        LocalEncoder(width=20, groups=1)
    with pytest.raises(ValueError, match="input_size must be a multiple of 16"):
        LocalEncoderConfig(input_size=200)
    tiny = LocalEncoderConfig.tiny()
    E1 = tiny.build().eval()
    assert E1.sizes == tiny and tiny.feature_size == 16
    res, depth = torch.randn(1, 3, 128, 128), torch.rand(1, 1, 32, 32)
    with torch.no_grad():  # inputs of another size are brought to input_size first (average pool / nearest)
        depth_64 = depth.repeat_interleave(2, -1).repeat_interleave(2, -2)
        torch.testing.assert_close(E1(res, depth), E1(torch.nn.functional.avg_pool2d(res, 2), depth_64))


# ---------------------------------------------------------------- (c) projection and pixel-aligned sampling
def _pixel_ray(label: torch.Tensor, res: int, row: int, col: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Origin and unit direction of the renderer's ray through pixel (row, col)."""
    cam2world, intrinsics = split_label(label)
    origins, dirs = sample_rays(cam2world, intrinsics, res)
    return origins[0, row * res + col], dirs[0, row * res + col]


def test_a_point_on_a_pixel_ray_projects_onto_that_pixel_and_samples_its_feature():
    res = 16
    label = label_from_yaw_pitch(torch.tensor([0.3]), torch.tensor([-0.1]))
    forward = split_label(label)[0][0, :3, 2]
    fmap = torch.arange(res * res, dtype=torch.float32).view(1, 1, res, res)  # one value per pixel
    fmap = torch.cat([fmap, -fmap], 1)  # two channels, so [B, M, C] order is checked
    for row, col in ((0, 0), (5, 11), (15, 3), (8, 8)):
        origin, d = _pixel_ray(label, res, row, col)
        point = (origin + 2.5 * d).view(1, 1, 3)
        proj = project(point, label)
        expected = torch.tensor([(col + 0.5) / res * 2 - 1, (row + 0.5) / res * 2 - 1])
        torch.testing.assert_close(proj.grid[0, 0], expected, atol=1e-5, rtol=0)
        assert float(proj.distance) == pytest.approx(2.5, abs=1e-5)
        assert float(proj.depth) == pytest.approx(2.5 * float(d @ forward), abs=1e-5)  # camera z
        sampled = sample_features(fmap, point, label)
        assert sampled.shape == (1, 1, 2) and torch.equal(sampled, sample_features(fmap, proj))
        torch.testing.assert_close(sampled[0, 0], torch.tensor([1.0, -1.0]) * (row * res + col), atol=1e-3, rtol=0)


def test_projection_batches_and_orientation():
    labels = label_from_yaw_pitch(torch.tensor([0.0, 0.4]), torch.tensor([0.0, 0.2]))
    pivot = torch.tensor([0.0, 0.0, 0.2])  # every FFHQ camera looks at the pivot: it projects to the centre
    right, up = torch.tensor([0.1, 0.0, 0.2]), torch.tensor([0.0, 0.1, 0.2])
    proj = project(torch.stack([pivot, right, up])[None].expand(2, 3, 3), labels)
    torch.testing.assert_close(proj.grid[:, 0], torch.zeros(2, 2), atol=1e-5, rtol=0)
    frontal = proj.grid[0]
    assert frontal[1, 0] > 0 and abs(float(frontal[1, 1])) < 1e-5  # camera on +z looking at -z: world +x is image right
    assert frontal[2, 1] < 0 and abs(float(frontal[2, 0])) < 1e-5  # world up (+y) is image up (OpenCV y down)
    single = project(torch.stack([pivot, right, up])[None].expand(2, 3, 3), labels[:1])  # one label for the batch
    torch.testing.assert_close(single.grid[1], frontal)


# ---------------------------------------------------------------- (d) FiLM identity
def test_film_with_zero_modulations_is_the_identity():
    f = torch.randn(3, 7, 5)
    assert torch.equal(apply_film(f, torch.zeros_like(f), torch.zeros_like(f)), f)
    head = FilmHead(feature_channels=8, channels=5)
    (
        torch.nn.init.zeros_(head.fc_1.weight),
        torch.nn.init.zeros_(head.fc_1.bias),
        torch.nn.init.zeros_(head.shortcut.weight),
    )
    assert torch.equal(head.modulate(f, torch.randn(3, 7, 8), torch.randn(3, 7, 3)), f)
    with (
        torch.no_grad()
    ):  # out = shortcut(x) = [0, features[:5]]: alpha (first half) = 0, beta (second half) = features
        head.shortcut.weight[5:, :5] = torch.eye(5)
    features = torch.randn(3, 7, 8)
    torch.testing.assert_close(head.modulate(f, features, torch.randn(3, 7, 3)), f + features[..., :5])


def test_resnet_block_and_fusion_formulas():
    block = ResnetBlockFC(6, 4)
    x = torch.randn(5, 6)
    manual = block.shortcut(x) + block.fc_1(torch.relu(block.fc_0(torch.relu(x))))
    torch.testing.assert_close(block(x), manual)
    assert block.shortcut.bias is None and block.fc_0.out_features == 4
    fuse = FeatureFusion(channels=4)
    f2d, f3d, mask = torch.randn(2, 3, 4), torch.randn(2, 3, 4), torch.ones(2, 3, 1)
    with torch.no_grad():
        for mlp, bias in ((fuse.scale, 1.0), (fuse.shift, 0.5)):  # constant scale(h) = 1, shift(h) = 0.5
            mlp[2].weight.zero_(), mlp[2].bias.fill_(bias)
        torch.testing.assert_close(fuse(f2d, mask, f3d), f3d + f3d * 1.0 + 0.5)


def test_zero_film_is_the_identity_through_the_generator(tiny_generator):
    G = tiny_generator
    c = label_from_yaw_pitch(torch.tensor([0.2]), torch.tensor([0.0]))
    E1 = LocalEncoder(**{**LocalEncoderConfig.tiny().__dict__, "film_channels": 3})
    head = E1.local_feat_to_tex_modulations_linear
    for layer in (head.fc_1, head.shortcut):  # a zero-initialised last layer: the branch starts as the identity
        torch.nn.init.zeros_(layer.weight)
        if layer.bias is not None:
            torch.nn.init.zeros_(layer.bias)

    def hook(rgb: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        fused = torch.randn(*points.shape[:2], E1.config["width"])
        return torch.cat([head.modulate(rgb[..., :3], fused, points), rgb[..., 3:]], -1)

    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim), c)
        base, hooked = G.synthesis(ws, c, deterministic=True), G.synthesis(ws, c, deterministic=True, colour_hook=hook)
    torch.testing.assert_close(hooked.image_raw, base.image_raw, atol=0, rtol=0)


# ---------------------------------------------------------------- (e) visibility
def test_visibility_in_image_and_occlusion_aware():
    res = 16
    label = label_from_yaw_pitch(torch.tensor([0.0]), torch.tensor([0.0]))
    origin, d = _pixel_ray(label, res, 3, 12)  # off-centre: distance and z differ
    surface = torch.full((1, 1, res, res), 2.6)  # the view sees a surface at distance 2.6 everywhere
    front, behind = origin + 2.5 * d, origin + 2.8 * d
    cam2world = split_label(label)[0][0]
    outside = origin + 2.5 * (d + 2.0 * cam2world[:3, 0])  # far to the right: outside the image
    back = origin - 1.0 * d  # behind the camera
    points = torch.stack([front, behind, outside, back])[None]
    assert visibility(points, label=label)[0, :, 0].tolist() == [1, 1, 0, 0]
    assert visibility(points, "occlusion", surface, label=label)[0, :, 0].tolist() == [1, 0, 0, 0]
    assert visibility(points, "occlusion", surface, tolerance=0.5, label=label)[0, :, 0].tolist() == [1, 1, 0, 0]
    z_surface = surface * float(d @ cam2world[:3, 2])  # the same surface as a camera-z map
    assert visibility(points, "occlusion", z_surface, label=label, depth_kind="z")[0, :, 0].tolist() == [1, 0, 0, 0]
    proj = project(points, label)  # a Projection computed once gives the same masks
    assert torch.equal(
        visibility(proj, "occlusion", depth=surface), visibility(points, "occlusion", depth=surface, label=label)
    )
    assert visibility(proj).shape == (1, 4, 1)
    with pytest.raises(ValueError, match="needs the reference view's depth"):
        visibility(proj, "occlusion")
    with pytest.raises(ValueError, match="visibility mode"):
        visibility(proj, "depth")
    with pytest.raises(ValueError, match="need the reference camera's label"):
        visibility(points)


# ---------------------------------------------------------------- (f) save / load
def test_modules_save_and_load(tmp_path):
    torch.manual_seed(0)
    cases = [
        (LocalEncoderConfig.tiny().build(), (torch.randn(1, 3, 32, 32), torch.rand(1, 1, 32, 32))),
        (AlignerConfig.tiny().build(), (torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32))),
        (FeatureFusion(channels=8), (torch.randn(1, 4, 8), torch.ones(1, 4, 1), torch.randn(1, 4, 8))),
    ]
    for module, args in cases:
        module.eval()
        for p in module.parameters():  # non-default values everywhere, so a missed tensor would show
            torch.nn.init.normal_(p, std=0.1)
        folder = module.save_pretrained(tmp_path / type(module).__name__)
        assert (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()
        again = type(module).from_pretrained(folder)
        assert again.config == module.config
        with torch.no_grad():
            torch.testing.assert_close(again(*args), module(*args), atol=0, rtol=0)


def test_official_local_encoder_round_trip_keeps_the_shared_norm(tmp_path):
    official = LocalEncoder()
    torch.nn.init.normal_(official.image_filter.conv2.bn4.weight)
    folder = official.save_pretrained(tmp_path / "official-e1")  # bn4 is also downsample.0: stored under both names
    again = LocalEncoder.from_pretrained(folder)
    assert again.image_filter.conv2.downsample[0] is again.image_filter.conv2.bn4
    torch.testing.assert_close(again.image_filter.conv2.bn4.weight, official.image_filter.conv2.bn4.weight)


@pytest.mark.parametrize(
    "cls, config, message",
    [
        (LocalEncoder, {"widht": 16}, "unknown config key 'widht'; did you mean 'width'"),
        (LocalEncoder, {"groups": 3}, r"groups \(3\) must divide"),
        (ResidualAligner, {"widths": [4, 8, 8]}, "widths must be a list of 4 items"),
        (FeatureFusion, {"chanels": 8}, "unknown config key 'chanels'; did you mean 'channels'"),
    ],
)
def test_a_wrong_config_is_a_one_line_error(tmp_path, cls, config, message):
    builders = {LocalEncoder: LocalEncoderConfig.tiny().build, ResidualAligner: AlignerConfig.tiny().build}
    small = builders.get(cls, lambda: FeatureFusion(8))()
    folder = small.save_pretrained(tmp_path / "m")
    saved = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**saved, **config}))
    with pytest.raises(UserError, match=message) as err:
        cls.from_pretrained(folder)
    assert "\n" not in str(err.value) and "config.json" in str(err.value)
