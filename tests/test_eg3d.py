import copy
import json
from pathlib import Path

import pytest
import torch

from e3dge.backbones.eg3d.network import CONFIG_NAMES, TriPlaneGenerator, eg3d_config
from e3dge.core.cameras import frontal_label, label_from_yaw_pitch
from e3dge.core.options import OptionError
from e3dge.rendering.volume import PLANE_PROJECTIONS, plane_axes, project_onto_planes

STATE_DICT_LIST = Path(__file__).resolve().parents[2] / "shared" / "notes" / "eg3d-state-dict.json"


def _cams(n=2):
    return label_from_yaw_pitch(torch.linspace(-0.3, 0.3, n), torch.zeros(n))


def test_output_shapes_and_ranges(tiny_generator):
    G = tiny_generator
    c = _cams()
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, G.z_dim), c, truncation_psi=0.7)
        out = G.synthesis(ws, c, deterministic=True)
    assert ws.shape == (2, G.num_ws, G.w_dim) == (2, 6, 16)
    assert out.image.shape == (2, 3, 128, 128)
    assert out.image_raw.shape == (2, 3, 32, 32)
    assert out.depth.shape == (2, 1, 32, 32)
    assert out.features.shape == (2, 4, 32, 32)
    assert out.planes.shape == (2, 3, 4, 16, 16)
    rk = G.rendering_kwargs
    assert out.depth.min() >= rk["ray_start"] and out.depth.max() <= rk["ray_end"]
    assert out.image_raw.min() >= -1.003 and out.image_raw.max() <= 1.003  # sigmoid*(1+2e-3)-1e-3, composited
    assert ((out.mask >= 0) & (out.mask <= 1 + 1e-5)).all()
    assert torch.isfinite(out.image).all()


def test_deterministic_mode_is_bit_exact_and_random_mode_is_seeded(tiny_generator):
    G = tiny_generator
    c = _cams()
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, G.z_dim), c)
        a = G.synthesis(ws, c, deterministic=True)
        b = G.synthesis(ws, c, deterministic=True)
        r1 = G.synthesis(ws, c, generator=torch.Generator().manual_seed(3))
        r2 = G.synthesis(ws, c, generator=torch.Generator().manual_seed(3))
        r3 = G.synthesis(ws, c, generator=torch.Generator().manual_seed(4))
    for key in ("image", "image_raw", "depth"):
        assert torch.equal(getattr(a, key), getattr(b, key))
        assert torch.equal(getattr(r1, key), getattr(r2, key))
    assert not torch.equal(r1.depth, r3.depth)
    assert not torch.equal(a.depth, r1.depth)


def test_chunked_rendering_equals_full(tiny_generator):
    G = tiny_generator
    c = _cams()
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, G.z_dim), c)
        full = G.synthesis(ws, c, deterministic=True)
        chunked = G.synthesis(ws, c, deterministic=True, ray_chunk_size=97)
    for key in ("image", "image_raw", "depth"):
        torch.testing.assert_close(getattr(chunked, key), getattr(full, key), atol=1e-6, rtol=0)


def test_gradients_reach_ws_and_camera(tiny_generator):
    G = tiny_generator
    c = _cams(1).requires_grad_(True)
    ws = G.mapping(torch.randn(1, G.z_dim), c.detach()).detach().requires_grad_(True)
    out = G.synthesis(ws, c, deterministic=True)
    (out.image.square().mean() + out.depth.mean()).backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
    assert c.grad is not None and c.grad[:, :16].abs().sum() > 0  # through the rays


def test_feature_hook_modulates_points(tiny_generator):
    G = tiny_generator
    c = _cams(1)
    seen = {}

    def film(features, points):
        seen["shape"] = (tuple(features.shape), tuple(points.shape))
        return features * 2.0 + 0.5

    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim), c)
        base = G.synthesis(ws, c, deterministic=True)
        ident = G.synthesis(ws, c, deterministic=True, feature_hook=lambda f, p: f)
        mod = G.synthesis(ws, c, deterministic=True, feature_hook=film)
    torch.testing.assert_close(ident.image_raw, base.image_raw, atol=0, rtol=0)
    assert (mod.image_raw - base.image_raw).abs().max() > 1e-3
    (f_shape, p_shape) = seen["shape"]
    assert f_shape[-1] == G.plane_channels and p_shape[-1] == 3 and f_shape[:2] == p_shape[:2]


def test_colour_hook_changes_colour_but_not_geometry(tiny_generator):
    G = tiny_generator
    c = _cams(1)
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim), c)
        base = G.synthesis(ws, c, deterministic=True)
        ident = G.synthesis(ws, c, deterministic=True, colour_hook=lambda f, p: f)
        mod = G.synthesis(
            ws, c, deterministic=True, colour_hook=lambda f, p: 1.5 * f + 0.1 * torch.tanh(p.sum(-1, keepdim=True))
        )
        pts = torch.rand(1, 50, 3) - 0.5
        q0, q1 = G.query_points(ws, pts), G.query_points(ws, pts, colour_hook=lambda f, p: f + 1.0)
    torch.testing.assert_close(ident.image_raw, base.image_raw, atol=0, rtol=0)
    assert (mod.image_raw - base.image_raw).abs().max() > 1e-3
    torch.testing.assert_close(mod.depth, base.depth, atol=0, rtol=0)  # density untouched: same surface
    torch.testing.assert_close(mod.mask, base.mask, atol=0, rtol=0)
    torch.testing.assert_close(q1.sigma, q0.sigma, atol=0, rtol=0)
    torch.testing.assert_close(q1.features, q0.features + 1.0)


def test_query_points_matches_plane_features(tiny_generator):
    G = tiny_generator
    c = _cams(1)
    with torch.no_grad():
        ws = G.mapping(torch.randn(1, G.z_dim), c)
        pts = torch.rand(1, 50, 3) - 0.5
        q = G.query_points(ws, pts)
        planes = G.planes(ws)
        q2 = G.query_points(None, pts, planes=planes)
    assert q.sigma.shape == (1, 50, 1) and q.features.shape == (1, 50, G.plane_channels)
    torch.testing.assert_close(q.sigma, q2.sigma)
    far = G.query_points(None, torch.full((1, 4, 3), 5.0), planes=planes)  # outside the box: zero features
    torch.testing.assert_close(far.features, G.decoder(torch.zeros(1, 4, G.plane_channels))[0])


def test_plane_projection_option():
    pts = torch.tensor([[[1.0, 2.0, 3.0]]])
    released = project_onto_planes(plane_axes("eg3d_released"), pts)[0, :, 0]
    torch.testing.assert_close(released, torch.tensor([[1.0, 2.0], [1.0, 3.0], [3.0, 1.0]]))
    ortho = project_onto_planes(plane_axes("orthogonal"), pts)[0, :, 0]
    torch.testing.assert_close(ortho, torch.tensor([[1.0, 2.0], [1.0, 3.0], [3.0, 2.0]]))
    assert set(PLANE_PROJECTIONS) == {"eg3d_released", "orthogonal"}
    with pytest.raises(ValueError, match="eg3d_released"):
        plane_axes("xyz")


@pytest.mark.skipif(not STATE_DICT_LIST.exists(), reason="shared/notes/eg3d-state-dict.json not present")
@pytest.mark.parametrize("key,config", [("ffhq512", "ffhq512-128"), ("small128", "shapenet128-64")])
def test_state_dict_names_and_shapes_equal_official(key, config):
    ref = json.loads(STATE_DICT_LIST.read_text())[key]
    kwargs = eg3d_config(config)
    if key == "small128":
        kwargs.update(channel_base=2048, channel_max=64)
    G = TriPlaneGenerator(**kwargs)
    assert {k: list(v.shape) for k, v in G.state_dict().items()} == ref["state_dict"]
    assert sum(p.numel() for p in G.parameters()) == ref["num_parameter_elements"]
    assert sorted(name for name, _ in G.named_buffers() if name in ref["state_dict"]) == sorted(ref["buffers"])


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_configs_build_with_expected_sizes(name):
    kwargs = eg3d_config(name)
    G = TriPlaneGenerator(**kwargs)
    assert G.num_ws == (14 if name != "tiny" else 6)
    assert G.img_resolution == kwargs["rendering_kwargs"]["image_resolution"]


def test_bad_inputs_raise_clear_errors(tiny_generator):
    G = tiny_generator
    with pytest.raises(ValueError, match=r"z must have shape"):
        G.mapping(torch.randn(1, 3), frontal_label())
    ws = G.mapping(torch.randn(1, G.z_dim), frontal_label())
    with pytest.raises(ValueError, match=r"\[N, 25\]"):
        G.synthesis(ws, torch.zeros(1, 16))
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, frontal_label(), noise_mode="loud")
    with pytest.raises(ValueError, match="unknown EG3D config"):
        eg3d_config("ffhq1024")


def test_superresolution_module_names_e3dge_classes_and_accepts_official_ones():
    config = eg3d_config("tiny")
    assert config["rendering_kwargs"]["superresolution_module"] == "SuperresolutionHybrid2X"
    legacy = copy.deepcopy(config)
    legacy["rendering_kwargs"]["superresolution_module"] = (
        "training.superresolution.SuperresolutionHybrid2X"  # old folders, toy distill
    )
    torch.manual_seed(0)
    G = TriPlaneGenerator(**legacy)
    torch.manual_seed(0)
    H = TriPlaneGenerator(**config)
    assert G.config == H.config and G.rendering_kwargs["superresolution_module"] == "SuperresolutionHybrid2X"
    assert type(G.superresolution).__name__ == "SuperresolutionHybrid2X"
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), H.state_dict().values()))
    with pytest.raises(ValueError, match="unknown superresolution_module 'training.superresolution.Nope'"):
        TriPlaneGenerator(
            **dict(
                config,
                rendering_kwargs=dict(
                    config["rendering_kwargs"], superresolution_module="training.superresolution.Nope"
                ),
            )
        )


def test_validate_config_is_cheap_and_names_the_source():
    config = eg3d_config("ffhq512-128")
    config["rendering_kwargs"]["depth_resolution_importance"] = -1
    with pytest.raises(
        OptionError,
        match=r"^model.json: rendering_kwargs.depth_resolution_importance must be between 0 and 512, got -1$",
    ):
        TriPlaneGenerator.validate_config(config, "model.json")
    config = eg3d_config("ffhq512-128")
    config["mapping_kwargs"]["activation"] = "relu"
    with pytest.raises(OptionError, match=r"mapping_kwargs.activation must be one of 'lrelu', 'linear', got 'relu'"):
        TriPlaneGenerator.validate_config(config)


def test_a_misspelt_synthesis_option_is_refused(tiny_generator):
    ws = tiny_generator.mapping(torch.randn(1, tiny_generator.z_dim), frontal_label())
    with pytest.raises(TypeError, match="determinstic"):
        tiny_generator.synthesis(ws, frontal_label(), determinstic=True)
