"""Stage II building blocks: official key names and shapes, shapes, pixel-aligned projection, visibility, FiLM identity, save/load."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

from e3dge.backbones.rendering import sample_rays
from e3dge.cameras import label_from_yaw_pitch, split_label
from e3dge.encoders import FeatureFusion, LocalEncoder, ResidualAligner, project, sample_features, visibility
from e3dge.encoders.blocks import apply_film, pe_dim, positional_encoding
from e3dge.errors import UserError

LISTING = Path(__file__).parent / "data" / "e3dge_official_stage2_keys.txt"
TINY_LOCAL = dict(stem_width=8, width=32, num_stack=2, depth=2, groups=4, film_channels=32, num_frequencies=7)
TINY_ALIGNER = dict(widths=[4, 8, 8, 8], blocks=2)


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


@pytest.mark.parametrize("section, build, numel", [("netLocal_ResnetFC", LocalEncoder, 15347606), ("ADA", ResidualAligner, 600295),
                                                   ("Fuse", FeatureFusion, 591872)])  # fmt: skip
def test_official_configurations_have_the_official_state_dict(section, build, numel):
    expected = official_listing(section)
    state = build().state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert sum(v.numel() for v in state.values()) == numel
    build().load_state_dict({k: torch.zeros(s) if s else torch.zeros((), dtype=torch.long) for k, s in expected.items()}, strict=True)


def test_official_local_encoder_map_is_a_quarter_of_its_input():
    E1 = LocalEncoder().eval()
    with torch.no_grad():
        out = E1(torch.randn(1, 3, 128, 128), torch.randn(1, 1, 128, 128))
    assert out.shape == (1, 256, 32, 32) and torch.isfinite(out).all()


def test_tiny_shapes_and_film_head():
    E1, ada, fuse = LocalEncoder(**TINY_LOCAL).eval(), ResidualAligner(**TINY_ALIGNER).eval(), FeatureFusion(channels=32)
    res, depth, recon = torch.randn(2, 3, 64, 64), torch.rand(2, 1, 64, 64), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fmap = E1(res, depth)
        aligned = ada(res, recon)
        f = torch.randn(2, 100, 32)
        fused = fuse(f, torch.ones(2, 100, 1), f)
        alpha, beta = E1.film(fused, torch.rand(2, 100, 3))
    assert fmap.shape == (2, 32, 16, 16) and aligned.shape == (2, 3, 64, 64) and fused.shape == (2, 100, 32)
    assert alpha.shape == beta.shape == (2, 100, 32)
    assert pe_dim() == 45 and positional_encoding(torch.zeros(1, 3)).shape == (1, 45)
    with pytest.raises(ValueError, match="groups"):
        LocalEncoder(stem_width=5, width=32, groups=4)


def _pixel_ray(label: torch.Tensor, res: int, row: int, col: int) -> tuple[torch.Tensor, torch.Tensor]:
    cam2world, intrinsics = split_label(label)
    origins, dirs = sample_rays(cam2world, intrinsics, res)
    return origins[0, row * res + col], dirs[0, row * res + col]


def test_a_point_on_a_pixel_ray_projects_onto_that_pixel_and_samples_its_feature():
    res = 16
    label = label_from_yaw_pitch(torch.tensor([0.3]), torch.tensor([-0.1]))
    fmap = torch.arange(res * res, dtype=torch.float32).view(1, 1, res, res)  # one value per pixel
    for row, col in ((0, 0), (5, 11), (15, 3)):
        origin, d = _pixel_ray(label, res, row, col)
        point = (origin + 2.5 * d).view(1, 1, 3)
        proj = project(point, label)
        expected = torch.tensor([(col + 0.5) / res * 2 - 1, (row + 0.5) / res * 2 - 1])
        torch.testing.assert_close(proj.grid[0, 0], expected, atol=1e-5, rtol=0)
        assert float(proj.distance) == pytest.approx(2.5, abs=1e-5)
        assert float(sample_features(fmap, proj)) == pytest.approx(row * res + col, abs=1e-3)


def test_visibility_in_image_and_occlusion_aware():
    res = 16
    label = label_from_yaw_pitch(torch.tensor([0.0]), torch.tensor([0.0]))
    origin, d = _pixel_ray(label, res, 8, 8)
    surface = torch.full((1, 1, res, res), 2.6)  # the view sees a surface at distance 2.6 everywhere
    front, behind = origin + 2.5 * d, origin + 2.8 * d
    cam2world = split_label(label)[0][0]
    outside = origin + 2.5 * (d + 2.0 * cam2world[:3, 0])  # far to the right: outside the image
    back = origin - 1.0 * d  # behind the camera
    proj = project(torch.stack([front, behind, outside, back])[None], label)
    assert visibility(proj, "in_image")[0, :, 0].tolist() == [1, 1, 0, 0]
    assert visibility(proj, "occlusion", depth=surface)[0, :, 0].tolist() == [1, 0, 0, 0]
    with pytest.raises(ValueError, match="needs the view's depth"):
        visibility(proj, "occlusion")


def test_zero_film_is_the_identity_through_the_generator(tiny_generator):
    G = tiny_generator
    c = label_from_yaw_pitch(torch.tensor([0.2]), torch.tensor([0.0]))
    f = torch.randn(3, 7, 5)
    assert torch.equal(apply_film(f, torch.zeros_like(f), torch.zeros_like(f)), f)
    E1 = LocalEncoder(**{**TINY_LOCAL, "film_channels": 3})
    head = E1.local_feat_to_tex_modulations_linear
    for layer in (head.fc_1, head.shortcut):  # a zero-initialised last layer: the branch starts as the identity
        torch.nn.init.zeros_(layer.weight)
        if layer.bias is not None:
            torch.nn.init.zeros_(layer.bias)

    def hook(rgb, points):
        alpha, beta = E1.film(torch.randn(*points.shape[:2], TINY_LOCAL["width"]), points)
        return torch.cat([apply_film(rgb[..., :3], alpha, beta), rgb[..., 3:]], -1)

    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim), c)
        base, hooked = G.synthesis(ws, c, deterministic=True), G.synthesis(ws, c, deterministic=True, colour_hook=hook)
    torch.testing.assert_close(hooked.image_raw, base.image_raw, atol=0, rtol=0)


def test_modules_save_and_load(tmp_path):
    torch.manual_seed(0)
    for module, args in ((LocalEncoder(**TINY_LOCAL), (torch.randn(1, 3, 32, 32), torch.rand(1, 1, 32, 32))),
                         (ResidualAligner(**TINY_ALIGNER), (torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32))),
                         (FeatureFusion(channels=8), (torch.randn(1, 4, 8), torch.ones(1, 4, 1), torch.randn(1, 4, 8)))):  # fmt: skip
        module.eval()
        folder = module.save_pretrained(tmp_path / type(module).__name__)
        again = type(module).from_pretrained(folder)
        with torch.no_grad():
            torch.testing.assert_close(again(*args), module(*args), atol=0, rtol=0)
    official = LocalEncoder()
    folder = official.save_pretrained(tmp_path / "official-e1")  # bn4 is also downsample.0: stored under both names
    again = LocalEncoder.from_pretrained(folder)
    assert again.image_filter.conv2.downsample[0] is again.image_filter.conv2.bn4
    torch.testing.assert_close(again.image_filter.conv2.bn4.weight, official.image_filter.conv2.bn4.weight)
    (folder / "config.json").write_text('{"_class_name": "LocalEncoder", "widht": 256}')
    with pytest.raises(UserError, match="widht"):
        LocalEncoder.from_pretrained(folder)
