"""StyleSDF backbone: official names and shapes, cameras, rendering parts, latents, hooks, safe official-file loading."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import pytest
import torch

from e3dge.backbones.official_torch import OfficialTorchFileError, read_torch_checkpoint
from e3dge.backbones.stylesdf.network import StyleSDFGenerator, StyleSDFLatents, stylesdf_config
from e3dge.backbones.stylesdf.official import load_official_stylesdf, stylesdf_config_from_state
from e3dge.core.cameras import sphere_camera, sphere_orbit
from e3dge.rendering.volume import RaySamples, composite_samples, pinhole_rays, sample_fixed_depths, sdf_density

DATA = Path(__file__).parent / "data"


def _listing(name: str) -> dict[str, tuple[int, ...]]:
    out = {}
    for line in (DATA / name).read_text().splitlines():
        if line and not line.startswith("#"):
            key, shape = line.split(" ", 1)
            out[key] = tuple(int(v) for v in shape.strip("()").split(",") if v.strip())
    return out


@pytest.fixture(scope="module")
def tiny() -> StyleSDFGenerator:
    torch.manual_seed(0)
    G = StyleSDFGenerator(**stylesdf_config("tiny")).eval()
    with torch.no_grad():  # zero-initialised tensors get values so every parameter matters
        for name, p in G.named_parameters():
            if name.endswith(("noise.weight", "activate.bias")) or (name.endswith("bias") and p.ndim == 4):
                p.normal_(0, 0.1)
    return G


def test_official_config_has_the_official_names_and_shapes():
    G = StyleSDFGenerator(**stylesdf_config("ffhq1024"))
    mine = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    assert mine == _listing("stylesdf_g_ema_keys.txt")
    assert sum(v.numel() for v in G.state_dict().values()) == 10_797_117
    assert (G.num_renderer_ws, G.num_decoder_ws) == (9, 10)
    vol = StyleSDFGenerator(**stylesdf_config("ffhq-vol")).state_dict()
    assert len(vol) == 65 and not any(k.startswith("decoder.") for k in vol)


def test_sphere_camera_matches_the_stylesdf_placement():
    cam = sphere_camera([0.0, 0.3], [0.0, -0.2])
    frontal = torch.eye(4)
    frontal[2, 3] = 1.0  # at (0, 0, 1), axes aligned with the world's
    assert torch.allclose(cam.cam2world[0], frontal, atol=1e-6)
    pos = torch.tensor([math.cos(-0.2) * math.sin(0.3), math.sin(-0.2), math.cos(-0.2) * math.cos(0.3)])
    assert torch.allclose(cam.cam2world[1, :3, 3], pos, atol=1e-6)
    assert torch.allclose(cam.cam2world[1, :3, 2], pos, atol=1e-6)  # +z points from the origin to the camera
    rot = cam.cam2world[1, :3, :3]
    assert torch.allclose(rot.T @ rot, torch.eye(3), atol=1e-6) and rot[1, 0].abs() < 1e-6  # x stays horizontal
    assert cam.focal[0].item() == pytest.approx(32 / math.tan(math.radians(6)), rel=1e-6)  # 304.46 px at 64
    assert cam.near[0].item() == pytest.approx(0.88) and cam.far[0].item() == pytest.approx(1.12)
    yaw, pitch = cam.yaw_pitch
    assert yaw.tolist() == pytest.approx([0.0, 0.3]) and pitch.tolist() == pytest.approx([0.0, 0.2])
    assert cam.at_resolution(128).focal[0].item() == pytest.approx(2 * cam.focal[0].item())
    orbit = sphere_orbit(4)
    assert orbit.azimuth.tolist() == pytest.approx([0.45, 0.0, -0.45, 0.0], abs=1e-6)
    assert orbit.elevation.tolist() == pytest.approx([0.0, 0.225, 0.0, -0.225], abs=1e-6)
    with pytest.raises(ValueError, match="finite"):
        sphere_camera(float("nan"), 0.0)


def test_sphere_camera_sits_at_the_official_unnormalised_location():
    """StyleSDF places the camera at ``dist * (cos e sin a, sin e, cos e cos a)`` (dist 1), not at the normalised axis (they can differ by an ulp)."""
    azim, elev = torch.linspace(-0.6, 0.6, 97), torch.linspace(-0.3, 0.4, 97)
    cam = sphere_camera(azim, elev)
    location = torch.stack(
        (torch.cos(elev) * torch.sin(azim), torch.sin(elev), torch.cos(elev) * torch.cos(azim)), dim=-1
    )
    assert torch.equal(cam.cam2world[:, :3, 3], location)
    assert not torch.equal(
        cam.cam2world[:, :3, 2], location
    )  # the normalised axis differs in the last bit for some of these poses


def test_rays_samples_and_compositing_by_hand():
    cam = sphere_camera(0.0, 0.0, resolution=4)
    origins, dirs, cam_dirs = pinhole_rays(cam.cam2world, cam.focal, 4)
    f = cam.focal[0].item()
    assert torch.allclose(cam_dirs[0, 0], torch.tensor([-1.5 / f, 1.5 / f, -1.0]))  # top-left pixel centre: left, up
    assert torch.allclose(dirs, cam_dirs) and torch.allclose(origins[0, 0], torch.tensor([0.0, 0.0, 1.0]))
    depths = sample_fixed_depths(cam.near, cam.far, 16, 24)
    assert depths.shape == (1, 16, 24, 1) and torch.allclose(
        depths[0, 0, :, 0], 0.88 + 0.01 * torch.arange(24.0), atol=1e-6
    )
    # two samples on one ray: alpha_0 = 1 - exp(-sigma_0 * dz * |d|), the forced background takes the rest
    samples = RaySamples(torch.zeros(1, 1, 3), torch.tensor([[[0.0, 0.0, -2.0]]]), torch.tensor([[[[0.5], [0.75]]]]))
    sdf = torch.tensor([[[[0.1], [-0.3]]]])
    beta = torch.tensor([0.2])
    comp = composite_samples(torch.tensor([[[[1.0], [3.0]]]]), sdf, samples, lambda s: sdf_density(s, beta))
    a0 = 1 - math.exp(-(torch.sigmoid(torch.tensor(-0.5)).item() / 0.2) * 0.25 * 2.0)
    assert comp.weights[0, 0, :, 0].tolist() == pytest.approx([a0, 1 - a0], rel=1e-6)
    assert comp.values.item() == pytest.approx(a0 + 3 * (1 - a0), rel=1e-6)
    assert comp.depth.item() == pytest.approx(0.5 * a0 + 0.75 * (1 - a0), rel=1e-6)


def test_truncation_and_latent_layouts(tiny):
    z = torch.randn(2, tiny.style_dim, generator=torch.Generator().manual_seed(1))
    mean = tiny.mean_latents(num_samples=64, seed=2)
    full = tiny.mapping(z)
    assert torch.allclose(full.decoder, tiny.decoder.style(full.renderer))
    zero = tiny.mapping(z, truncation=0.0, mean=mean)
    assert torch.allclose(zero.renderer, mean.renderer.expand(2, -1)) and torch.allclose(
        zero.decoder, mean.decoder.expand(2, -1)
    )
    half = tiny.mapping(z, truncation=0.5, mean=mean)
    w = mean.renderer + 0.5 * (full.renderer - mean.renderer)
    assert torch.allclose(half.renderer, w, atol=1e-6)
    assert torch.allclose(half.decoder, mean.decoder + 0.5 * (tiny.decoder.style(w) - mean.decoder), atol=1e-5)
    with pytest.raises(ValueError, match="mean latents"):
        tiny.mapping(z, truncation=0.7)
    with torch.no_grad():
        cam = tiny.camera([0.2, -0.1], [0.1, 0.0])
        a = tiny.synthesis(full, cam)
        b = tiny.synthesis(StyleSDFLatents(tiny.renderer_plus(full.renderer), tiny.decoder_plus(full.decoder)), cam)
    assert torch.equal(a.image, b.image) and a.image.shape == (2, 3, 32, 32) and a.features.shape == (2, 16, 8, 8)
    assert a.planes is None and a.xyz.shape == (2, 3, 8, 8) and ((a.mask >= 0) & (a.mask <= 1)).all()
    with pytest.raises(ValueError, match=r"\[N, 4, 16\]"):
        tiny.renderer_plus(torch.zeros(1, 3, 16))


def test_texture_hook_changes_colour_not_geometry_and_chunks_are_exact(tiny):
    lat = tiny.mapping(torch.randn(1, tiny.style_dim, generator=torch.Generator().manual_seed(3)))
    cam = tiny.camera(0.1, 0.05)
    with torch.no_grad():
        base = tiny.render_volume(lat.renderer, cam)
        chunked = tiny.render_volume(lat.renderer, cam, chunk_rays=5)
        hooked = tiny.render_volume(lat.renderer, cam, texture_hook=lambda h, p: 2 * h + p[..., :1])
    assert torch.allclose(base.features, chunked.features, atol=1e-6) and torch.allclose(
        base.depth, chunked.depth, atol=1e-6
    )
    assert torch.equal(hooked.depth, base.depth) and torch.equal(hooked.sdf, base.sdf)
    assert (hooked.features - base.features).abs().max() > 1e-3
    with torch.no_grad():  # the geometry layers computed once, re-textured: identical to a render from scratch
        kept = tiny.render_volume(lat.renderer, cam, keep_trunk=True)
        again = tiny.render_volume(lat.renderer, cam, texture_hook=lambda h, p: 2 * h + p[..., :1], trunk=kept.trunk)
    assert base.trunk is None and kept.trunk.h.shape == (1, 8 * 8 * 6, 16)
    assert (
        torch.equal(again.features, hooked.features)
        and torch.equal(again.rgb, hooked.rgb)
        and torch.equal(again.depth, hooked.depth)
    )
    with pytest.raises(ValueError, match="one chunk"):
        tiny.render_volume(lat.renderer, cam, keep_trunk=True, chunk_rays=5)


def test_sdf_normals_match_finite_differences(tiny):
    import copy

    G = copy.deepcopy(tiny).double()  # SIREN frequencies are high: central differences need float64
    lat = G.mapping(torch.randn(1, G.style_dim, generator=torch.Generator().manual_seed(4), dtype=torch.float64))
    pts = torch.rand(1, 5, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64) * 0.2 - 0.1
    q = G.query_sdf(lat.renderer, pts, normals=True)
    assert torch.allclose(q.normals.norm(dim=-1), torch.ones(1, 5, dtype=torch.float64), atol=1e-9)
    eps = 1e-6
    grad = torch.stack(
        [
            (G.query_sdf(lat.renderer, pts + eps * e).sdf - G.query_sdf(lat.renderer, pts - eps * e).sdf)[..., 0]
            / (2 * eps)
            for e in torch.eye(3, dtype=torch.float64)
        ],
        -1,
    ).detach()
    assert torch.allclose(q.normals, torch.nn.functional.normalize(grad, dim=-1), atol=1e-5)


def test_noise_modes(tiny):
    lat = tiny.mapping(torch.randn(1, tiny.style_dim, generator=torch.Generator().manual_seed(6)))
    feats = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        const = [tiny.decode(feats, lat.decoder) for _ in range(2)]
        r1 = tiny.decode(feats, lat.decoder, "random", torch.Generator().manual_seed(8))
        r2 = tiny.decode(feats, lat.decoder, "random", torch.Generator().manual_seed(8))
        none = tiny.decode(feats, lat.decoder, "none")
        stored = [getattr(tiny.decoder.noises, f"noise_{i}") for i in range(tiny.decoder.num_layers)]
        explicit = tiny.decode(feats, lat.decoder, noise=stored)
    assert torch.equal(const[0], const[1]) and torch.equal(r1, r2) and torch.equal(explicit, const[0])
    with pytest.raises(ValueError, match="noise must hold 5 maps"):
        tiny.decode(feats, lat.decoder, noise=stored[:2])
    assert (r1 - const[0]).abs().max() > 1e-4 and (none - const[0]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="noise_mode"):
        tiny.decode(feats, lat.decoder, "wild")


def test_save_and_from_pretrained_round_trip(tiny, tmp_path):
    tiny.save_pretrained(tmp_path / "g")
    again = StyleSDFGenerator.from_pretrained(tmp_path / "g")
    assert again.config == tiny.config
    for (k, a), (_, b) in zip(tiny.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), k


def _official_file(G: StyleSDFGenerator, path: Path, **extra) -> Path:
    sd = G.state_dict()
    torch.save({"g": sd, "d": {"convs.0.conv.weight": torch.zeros(2, 3, 1, 1)}, "g_ema": sd, **extra}, path)
    return path


def test_official_file_loads_strict_and_reports_what_it_ignored(tiny, tmp_path):
    path = _official_file(
        tiny, tmp_path / "ffhq_tiny.pt", g_optim={"state": {}, "param_groups": [{"lr": 0.002}]}, iter=1200
    )
    ckpt = read_torch_checkpoint(path, ["g_ema"])
    assert ckpt.ignored == ["d", "g", "g_optim", "iter"] and ckpt.scalars == {"iter": 1200}
    G = load_official_stylesdf(path, overrides={"n_samples": 6})  # the only option a state dict cannot tell
    assert G.config == tiny.config
    lat = tiny.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(9)))
    with torch.no_grad():
        cam = tiny.camera(0.0, 0.1)
        assert torch.equal(G.synthesis(lat, cam).image, tiny.synthesis(lat, cam).image)
    vol = {k: v for k, v in tiny.state_dict().items() if not k.startswith("decoder.")}
    assert stylesdf_config_from_state(vol, "vol")["full_pipeline"] is False


def test_hostile_and_wrong_official_files_are_refused_in_one_line(tiny, tmp_path):
    import os

    evil = tmp_path / "evil.pt"

    class Boom:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    torch.save({"g_ema": tiny.state_dict(), "payload": Boom()}, evil)
    with pytest.raises(OfficialTorchFileError, match="refused to load.*system") as err:
        load_official_stylesdf(evil)
    assert "\n" not in str(err.value) and not (tmp_path / "pwned").exists()
    torch.save({"g_ema": tiny.state_dict(), "args": argparse.Namespace(size=1024)}, tmp_path / "ns.pt")
    with pytest.raises(OfficialTorchFileError, match="Namespace"):
        load_official_stylesdf(tmp_path / "ns.pt")
    torch.save({"g": {}}, tmp_path / "no_ema.pt")
    with pytest.raises(OfficialTorchFileError, match="has no 'g_ema'.*holds g"):
        load_official_stylesdf(tmp_path / "no_ema.pt")
    torch.save({"g_ema": {"style.0.weight": 3}}, tmp_path / "bad.pt")
    with pytest.raises(OfficialTorchFileError, match="not tensors: style.0.weight"):
        load_official_stylesdf(tmp_path / "bad.pt")
    (tmp_path / "cut.pt").write_bytes(evil.read_bytes()[:200])
    with pytest.raises(OfficialTorchFileError, match="cut.pt: not a zip-format torch checkpoint .*damaged"):
        load_official_stylesdf(tmp_path / "cut.pt")
    # the legacy format allocates every storage at the size its pickle declares: never read
    torch.save({"g_ema": tiny.state_dict()}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    with pytest.raises(OfficialTorchFileError, match="legacy.pt: not a zip-format torch checkpoint .*legacy pre-1.6"):
        load_official_stylesdf(tmp_path / "legacy.pt")
    sd = dict(tiny.state_dict())
    sd["renderer.network.views_linears.weight"] = torch.zeros(16, 7)
    torch.save({"g_ema": sd}, tmp_path / "shape.pt")
    with pytest.raises(Exception, match="views_linears.weight"):
        load_official_stylesdf(tmp_path / "shape.pt")
    with pytest.raises(OfficialTorchFileError, match="no such file"):
        load_official_stylesdf(tmp_path / "missing.pt")
