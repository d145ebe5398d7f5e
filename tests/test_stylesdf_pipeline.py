"""Official-format StyleSDF + E3DGE files (tiny, made here) -> e3dge convert -> a bundle -> invert, render, edit, export."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from e3dge.backbones.stylesdf.network import StyleSDFGenerator, StyleSDFLatents, stylesdf_config
from e3dge.core.errors import UserError
from e3dge.encoders.aligner import AlignerConfig
from e3dge.encoders.fusion import FeatureFusion
from e3dge.encoders.local import LocalEncoderConfig
from e3dge.encoders.stylesdf_encoder import StyleSDFEncoderConfig
from e3dge.encoders.stylesdf_flow import encode_face, reference_view, render_query
from e3dge.encoders.volume_pose import VolumePoseConfig
from e3dge.inversion import InversionPipeline
from e3dge.inversion.convert_official import LICENCE_NOTE, convert_e3dge, convert_stylesdf

E0_TINY = dataclasses.replace(
    StyleSDFEncoderConfig.tiny(), renderer_ws=4, renderer_dim=16, decoder_dim=32, decoder_spatials=(16,) * 6
)
"""E0 sized for the tiny StyleSDF: 3 SIREN layers + the view layer, 16-d renderer w, 6 decoder rows of 32."""
TINY = {
    "generator": {"n_samples": 6},
    "pose_estimator": VolumePoseConfig.tiny(),
    "encoder": E0_TINY,
    "local_encoder": LocalEncoderConfig.tiny(),
    "aligner_2d": AlignerConfig.tiny(),
    "fusion": 16,
    "toonify_generator": {"n_samples": 6},
}


def _perturbed(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Random weights with every zero-initialised tensor and BN statistic moved, so each one matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # in place, so tensors the official layout stores under two names stay equal
        for k, v in list(module.named_parameters()) + list(module.named_buffers()):
            if v.is_floating_point():
                v.add_(0.05 * torch.randn(v.shape, generator=gen))
                if k.endswith("running_var"):
                    v.abs_().add_(0.5)
    return {k: v.clone() for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def official(tmp_path_factory) -> dict[str, Path]:
    """Tiny files in the official formats: StyleSDF full + volume renderer, an E3DGE runner, a Toonify pair, boundaries."""
    root = tmp_path_factory.mktemp("official")
    torch.manual_seed(0)
    G = StyleSDFGenerator(**stylesdf_config("tiny"))
    g = _perturbed(G, 1)
    g_base = {k: v.clone() for k, v in g.items()}
    g["renderer.sigmoid_beta"] = torch.tensor([0.05])
    vol_d = _perturbed(VolumePoseConfig.tiny().build(), 2)
    vol_g = {k: v for k, v in g.items() if not k.startswith("decoder.")}
    torch.save({"g": g, "d": {"convs.0.conv.weight": torch.zeros(1)}, "g_ema": g}, root / "ffhq1024x1024.pt")
    torch.save({"g": vol_g, "d": vol_d, "g_ema": vol_g}, root / "ffhq_vol_renderer.pt")
    enc = {"module." + k: v for k, v in _perturbed(E0_TINY.build(), 3).items()}  # DDP prefix, as some runners
    runner = {
        "iter": 434000,
        "encoder": enc,
        "netLocal": _perturbed(LocalEncoderConfig.tiny().build(), 4),
        "grid_align": _perturbed(AlignerConfig.tiny().build(), 5),
        "Fuse_sft_block": _perturbed(FeatureFusion(16), 6),
        "encoder_optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]},
    }
    torch.save(runner, root / "E3DGE_Full_Runner.pt")
    toon = _perturbed(G, 7)
    assert not torch.equal(toon["style.0.weight"], g_base["style.0.weight"])
    torch.save({"g_ema": toon, "g": toon, "d": {}}, root / "Toonify400_1024x1024.pt")
    torch.save({"iter": 52000, "encoder": _perturbed(E0_TINY.build(), 8)}, root / "no_local_basic_trainer.pt")
    b = root / "boundaries"
    for part, dim in (("renderer", 16), ("decoder", 32)):
        (b / f"{part}_Smiling").mkdir(parents=True)
        v = np.random.default_rng(9 if part == "renderer" else 10).normal(size=(1, dim)).astype(np.float32)
        np.save(b / f"{part}_Smiling" / "boundary.npy", v / np.linalg.norm(v))
    return {
        "root": root,
        "full": root / "ffhq1024x1024.pt",
        "vol": root / "ffhq_vol_renderer.pt",
        "runner": root / "E3DGE_Full_Runner.pt",
        "toon": root / "Toonify400_1024x1024.pt",
        "toon_enc": root / "no_local_basic_trainer.pt",
        "boundaries": b,
    }


@pytest.fixture(scope="module")
def bundle(official, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "e3dge-stylesdf"
    report = convert_stylesdf(official["full"], official["vol"], out, mean_samples=256, seed=2, configs=TINY)
    assert set(report.components) == {"generator", "pose_estimator", "latent_mean"}
    assert report.ignored[str(official["full"])] == ["d", "g"] and "differ by at most 0" in report.notes[0]
    report = convert_e3dge(
        official["runner"],
        out,
        official["boundaries"],
        official["toon"],
        official["toon_enc"],
        mean_samples=256,
        configs=TINY,
    )
    assert (
        report.ignored[str(official["runner"])] == ["encoder_optimizer", "iter"]
        and "iteration 434000" in report.notes[0]
    )
    return out


@pytest.fixture(scope="module")
def pipe(bundle) -> InversionPipeline:
    return InversionPipeline.from_pretrained(bundle)


def _as_input(pixels: np.ndarray) -> torch.Tensor:
    """``uint8 [S, S, 3]`` -> ``[1, 3, S, S]`` in [-1, 1], as the pipeline feeds the flow."""
    return torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 127.5 - 1


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    y, x = np.mgrid[0:64, 0:64] / 63.0
    return (np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y)], -1) * 255).astype(np.uint8)


def test_bundle_holds_the_official_weights_and_the_licence(official, bundle, pipe):
    spec = json.loads((bundle / "pipeline.json").read_text())
    assert spec["components"]["generator"]["class"] == "StyleSDFGenerator" and spec["aligner"]["convention"] == "ffhq"
    assert "non-commercial" in spec["description"] and LICENCE_NOTE in (bundle / "README.md").read_text()
    g = torch.load(official["full"], weights_only=True)["g_ema"]
    assert all(torch.equal(pipe.generator.state_dict()[k], v) for k, v in g.items())
    runner = torch.load(official["runner"], weights_only=True)
    assert all(torch.equal(pipe.encoder.state_dict()[k[7:]], v) for k, v in runner["encoder"].items())
    assert all(torch.equal(pipe.local_encoder.state_dict()[k], v) for k, v in runner["netLocal"].items())
    assert (
        isinstance(pipe, InversionPipeline)
        and pipe.backbone.name == "stylesdf"
        and pipe.generators == ("default", "toonify")
        and sorted(pipe.directions) == ["smiling"]
    )
    assert pipe.directions["smiling"].strength_range == (-1.4, 1.5)


def test_invert_follows_the_official_flow(pipe, photo):
    inv = pipe.invert(photo, align=False)
    models = pipe.flow.models
    x = _as_input(photo)
    with torch.no_grad():
        face = encode_face(models, x)
        enc = models.encoder(torch.nn.functional.adaptive_avg_pool2d(x, 64))
        ref = reference_view(models, face)
        trace = render_query(models, face, ref, ref.camera)  # reuses G0's render of the input view ...
        fresh = render_query(models, face, ref.without_base(), ref.camera)  # ... which is exactly a render from scratch
    assert (
        ref.base is not None
        and torch.equal(fresh.output.image, trace.output.image)
        and torch.equal(fresh.alpha, trace.alpha)
    )
    lat = pipe.backbone.latents(inv.ws)  # the packed W+: renderer rows in columns :16, decoder rows after them
    assert inv.ws.shape == (1, 6, 48) and torch.equal(inv.ws[:, 4:, :16], torch.zeros(1, 2, 16))
    assert torch.allclose(lat.renderer, models.mean.renderer[:, None] + enc.renderer_offsets, atol=1e-6)
    assert torch.allclose(lat.decoder, models.mean.decoder[:, None] + enc.decoder_offsets, atol=1e-6)
    pose = models.pose(torch.nn.functional.adaptive_avg_pool2d(x, 16))
    assert (inv.yaw, -inv.pitch) == pytest.approx((float(pose.azim), float(pose.elev)), abs=1e-6)
    assert inv.method == "e0+local" and inv.camera_source == "encoder" and inv.reconstruction.shape == (32, 32, 3)
    expected = ((trace.output.image[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(inv.reconstruction, expected)
    # the local branch: f2d/f3d at every sample point, visibility per ray, FiLM on texture only
    m = 8 * 8 * 6
    assert trace.f3d.shape == (1, m, 16) and trace.f2d.shape == (1, m, 16) and trace.alpha.shape == (1, m, 16)
    assert set(trace.visibility.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(trace.output.depth, trace.depth)  # geometry is G0's
    s = inv.summary()
    assert (
        s["backbone"] == "stylesdf"
        and s["generator"] == "default"
        and s["ws_shape"] == [1, 6, 48]
        and len(s["camera_label"]) == 25
    )


def test_render_views_edits_and_local_branch(pipe, photo):
    inv = pipe.invert(photo, align=False)
    same = pipe.render(inv, quality="full")
    assert np.array_equal(same.image, inv.reconstruction) and same.cached_planes
    off = pipe.render(inv, quality="full", local=False)
    assert np.abs(off.image.astype(int) - same.image.astype(int)).max() > 0 and np.allclose(off.depth, same.depth)
    turned = pipe.render(inv, yaw=0.3, pitch=-0.1, quality="full")
    assert np.abs(turned.image.astype(int) - same.image.astype(int)).max() > 0
    preview = pipe.render(inv, yaw=0.3, quality="preview", resolution=48)
    assert preview.image.shape == (48, 48, 3)
    lat, plain = pipe.backbone.latents(pipe.edited_latent(inv, {"smiling": 1.2})), pipe.backbone.latents(inv.ws)
    v = pipe.directions[
        "smiling"
    ].vector  # the official boundary: renderer + decoder values, added to every row of both
    assert torch.allclose(lat.renderer, plain.renderer + 1.2 * v[:16], atol=1e-6)
    assert torch.allclose(lat.decoder, plain.decoder + 1.2 * v[16:], atol=1e-6)
    edited = pipe.render(inv, edits={"smiling": 1.2}, quality="full")
    assert np.abs(edited.image.astype(int) - same.image.astype(int)).max() > 0
    with pytest.raises(UserError, match="unknown editing direction.*available: smiling"):
        pipe.render(inv, edits={"age": 1.0})
    # the depth is a distance along the ray: about 1 for a camera on the unit sphere
    assert 0.85 < float(np.median(same.depth)) < 1.2 and same.camera.shape == (1, 25)


def test_toonify_and_clear_refusals(pipe, photo):
    toon = pipe.invert(photo, align=False, generator="toonify")
    assert toon.variant == "toonify" and toon.method == "e0"  # the Toonify pair has no local branch, as released
    default = pipe.invert(photo, align=False)
    assert not torch.equal(toon.ws, default.ws)
    assert pipe.render(toon, quality="full").image.shape == (32, 32, 3)
    with pytest.raises(UserError, match="generator='cartoon' is not in this bundle"):
        pipe.invert(photo, align=False, generator="cartoon")


def test_generator_only_bundle_and_conversion_refusals(official, tmp_path, photo):
    out = tmp_path / "g-only"
    convert_stylesdf(official["full"], official["vol"], out, mean_samples=16, configs=TINY)
    pipe = InversionPipeline.from_pretrained(out)
    with pytest.raises(UserError, match=r"no encoder \(E0\) yet.*e3dge convert e3dge"):
        pipe.invert(photo, align=False)
    with pytest.raises(UserError, match="is not empty"):
        convert_stylesdf(official["full"], official["vol"], out, configs=TINY)
    with pytest.raises(UserError, match="not a bundle"):
        convert_e3dge(official["runner"], tmp_path / "nowhere", configs=TINY)
    with pytest.raises(UserError, match="holds a volume renderer only"):
        convert_stylesdf(official["vol"], official["vol"], tmp_path / "x", configs=TINY)
    with pytest.raises(UserError, match="needs both files"):
        convert_e3dge(official["runner"], out, toonify=official["toon"], configs=TINY)
    with pytest.raises(UserError, match="no official boundaries"):
        convert_e3dge(official["runner"], out, boundaries=tmp_path, configs=TINY)
    assert not (out / "encoder").exists()  # nothing was written: every input is read first


def test_outputs_and_mesh_of_a_stylesdf_inversion(pipe, photo, tmp_path):
    from e3dge.export import MeshOptions, extract_mesh
    from e3dge.inversion.outputs import write_inversion

    inv = pipe.invert(photo, align=False)
    files = write_inversion(pipe, inv, tmp_path / "out", views=1, orbit_frames=0, edits={"smiling": 0.5})
    data = json.loads(files.json.read_text())
    assert data["backbone"] == "stylesdf" and data["edits"] == {"smiling": 0.5} and files.edited.is_file()
    backbone, ws, scene = pipe.scene_for(inv)
    grid = torch.linspace(-0.12, 0.12, 9)
    pts = torch.stack(torch.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(1, -1, 3)
    level = float(backbone.field(ws, scene, pts).occupancy.median())  # a level the random field certainly crosses
    mesh = extract_mesh(
        pipe, inv, options=MeshOptions(resolution=24, level=level, smooth_iterations=0, target_faces=None)
    )
    assert (
        len(mesh.faces) > 0
        and np.abs(mesh.vertices).max() <= 0.12 + 0.24 / 23
        and mesh.info["field"] == "stylesdf -sdf"
    )


def test_sdf_mesh_vertices_lie_on_the_surface():
    """The exporter's SDF path on a smooth (unperturbed) field: marching-cubes vertices sit on the iso-surface."""
    from e3dge.backbones.stylesdf.adapter import StyleSDFBackbone
    from e3dge.export import MeshOptions, extract_mesh

    class Field:  # what extract_mesh asks of a pipeline: the backbone, latent and scene of an inversion
        def __init__(self):
            torch.manual_seed(0)
            self.G = StyleSDFGenerator(**stylesdf_config("tiny")).eval()
            self.w = self.G.mapping(torch.randn(1, 16)).renderer
            self.backbone = StyleSDFBackbone(self.G)

        def scene_for(self, inversion, edits=None):
            ws = self.backbone.pack(StyleSDFLatents(self.w, torch.zeros(1, 32)))
            return self.backbone, ws, self.backbone.scene(ws)

    f = Field()
    axis = torch.linspace(-0.12, 0.12, 32)
    grid = -f.G.query_sdf(
        f.w, torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(1, -1, 3)
    ).sdf.detach()
    level = float(grid.median())
    mesh = extract_mesh(
        f,
        None,
        options=MeshOptions(
            resolution=32, level=level, smooth_iterations=0, target_faces=None, largest_component=False
        ),
    )
    inner = mesh.vertices[np.abs(mesh.vertices).max(1) < 0.12 - 2 * 0.24 / 31]  # not the caps that close the cube
    on_mesh = (-f.G.query_sdf(f.w, torch.from_numpy(inner[None])).sdf.detach() - level).abs().median()
    assert len(inner) > 100 and float(on_mesh) < 0.2 * float((grid - level).abs().median())
    rgb = torch.sigmoid(f.G.query_sdf(f.w, torch.from_numpy(mesh.vertices[None])).rgb[0]).detach()
    assert (
        np.abs(mesh.colors.astype(np.float32) - (rgb.numpy() * 255)).max() <= 1.0
    )  # colours are the field's at each vertex


def test_cli_convert_and_invert_with_a_stylesdf_bundle(official, bundle, photo, tmp_path, capsys):
    from PIL import Image

    from e3dge.cli import main

    vol = torch.load(official["vol"], weights_only=True)
    vol["d"] = VolumePoseConfig.official().build().state_dict()  # the CLI builds the released sizes
    torch.save(vol, tmp_path / "vol.pt")
    out = tmp_path / "cli-bundle"
    assert (
        main(
            ["convert", "stylesdf", str(official["full"]), str(tmp_path / "vol.pt"), str(out), "--mean-samples", "100"]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert (
        "pose_estimator: 12.10 M parameters" in text
        and "next: e3dge convert e3dge" in text
        and "non-commercial" in text
    )
    assert (
        main(["convert", "stylesdf", str(official["full"]), str(tmp_path / "vol.pt"), str(out)]) == 2
    )  # never overwrites silently
    assert "is not empty" in capsys.readouterr().err
    assert (
        main(["convert", "e3dge", str(official["runner"]), str(out)]) == 2
    )  # tiny E0 tensors vs the released sizes: one line
    err = capsys.readouterr().err
    assert "['encoder']: tensors do not match" in err and err.count("\n") == 1
    assert main(["convert", "stylesdf", str(tmp_path / "nope.pt"), str(tmp_path / "vol.pt"), str(tmp_path / "o2")]) == 2
    assert "no such file" in capsys.readouterr().err
    Image.fromarray(photo).save(tmp_path / "face.png")
    res = tmp_path / "inverted"
    assert (
        main(
            [
                "invert",
                str(tmp_path / "face.png"),
                str(res),
                "--model",
                str(bundle),
                "--no-align",
                "--views",
                "1",
                "--frames",
                "2",
                "--edit",
                "smiling=1",
                "--generator",
                "toonify",
                "--quiet",
            ]
        )
        == 0
    )
    data = json.loads((res / "inversion.json").read_text())
    assert data["generator"] == "toonify" and data["edits"] == {"smiling": 1.0} and (res / "orbit.mp4").is_file()
    assert (
        main(
            [
                "invert",
                str(tmp_path / "face.png"),
                str(tmp_path / "r2"),
                "--model",
                str(bundle),
                "--no-align",
                "--edit",
                "age=1",
            ]
        )
        == 2
    )
    assert "unknown editing direction(s) ['age']; available: smiling" in capsys.readouterr().err


def test_app_lists_and_serves_a_converted_bundle(bundle, photo, tmp_path):
    from PIL import Image

    from e3dge.app import handlers as h
    from e3dge.app.models import available_bundles

    labels = [c.source for c in available_bundles({"E3DGE_MODEL": str(bundle), "HF_HUB_OFFLINE": "1"})]
    assert labels[0] == str(bundle) and "toy" in labels
    Image.fromarray(photo).save(tmp_path / "crop.png")
    aligned = h.align_photo(str(tmp_path / "crop.png"), str(bundle), skip_alignment=True)
    result = h.invert_photo(h.AppState(str(bundle)), aligned, str(bundle))
    assert result.message.startswith("e0+local") and result.reconstruction.shape == (32, 32, 3)
    assert h.direction_sliders(str(bundle)) == [("smiling", -1.4, 1.5)]
    view = h.render_view(result.state, 20.0, -5.0, [0.8])
    assert view.shape == (32, 32, 3)
    refined = h.refine(result.state, steps=2, progress=False)  # test-time refinement runs on StyleSDF too
    assert refined.message.startswith("refined (P+C)") and refined.state.inversion.method == "e0+pose+code+local"


def test_converted_official_weights_are_never_exported_or_pushed(bundle, tmp_path):
    import shutil

    from e3dge.publish.hub_export import export_bundle, push_bundle

    with pytest.raises(UserError, match="does not export or upload it"):
        export_bundle(str(bundle), tmp_path / "hub")
    assert not (tmp_path / "hub").exists()
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    (copy / "README.md").write_text("---\nlicense: other\n---\n# a card\n")
    with pytest.raises(UserError, match="non-commercial licences"):
        push_bundle(copy, "someone/e3dge-stylesdf", token="x")


def test_a_netlocal_in_the_training_layout_is_refused_with_the_reason(official, bundle, tmp_path):
    runner = torch.load(official["runner"], weights_only=True)
    runner["netLocal"] = {
        k.replace("residual_conv", "residual_conv_bn"): v for k, v in runner["netLocal"].items()
    }  # renamed tensors
    torch.save(runner, tmp_path / "other.pt")
    with pytest.raises(UserError, match="inference layout HGPIFuNetGANResidualResnetFC, 456 tensors"):
        convert_e3dge(tmp_path / "other.pt", bundle, configs=TINY)


def test_a_2d_alignment_only_runner(official, tmp_path, photo):
    """E3DGE_2DAlignOnly_Runner has no fusion: the FiLM head reads the 2D-aligned features f2d alone (the official 2.1 flow)."""
    import shutil

    runner = torch.load(official["runner"], weights_only=True)
    del runner["Fuse_sft_block"]
    torch.save(runner, tmp_path / "E3DGE_2DAlignOnly_Runner.pt")
    out = tmp_path / "b2d"
    convert_stylesdf(official["full"], official["vol"], out, mean_samples=64, configs=TINY)
    convert_e3dge(official["runner"], out, configs=TINY)  # a full conversion first ...
    report = convert_e3dge(
        tmp_path / "E3DGE_2DAlignOnly_Runner.pt", out, configs=TINY
    )  # ... then replaced by the 2D-only one
    assert any("2D alignment only" in n for n in report.notes) and not (out / "fusion").exists()
    pipe = InversionPipeline.from_pretrained(out)
    assert pipe.fusion is None and "2D alignment" in pipe.description
    inv = pipe.invert(photo, align=False)
    models = pipe.flow.models
    x = _as_input(photo)
    with torch.no_grad():
        face = encode_face(models, x)
        ref = reference_view(models, face)
        trace = render_query(models, face, ref, ref.camera)
        base = render_query(models, face, ref, ref.camera, local=False)
    assert ref.feature_map is None and trace.f3d is None and torch.equal(trace.fused, trace.f2d)
    assert inv.method == "e0+local" and (trace.output.image - base.output.image).abs().max() > 1e-4
    shutil.rmtree(out)


def test_renders_follow_the_inversions_own_latents_and_given_cameras(pipe, photo):
    from e3dge.core.cameras import label_from_yaw_pitch

    inv = pipe.invert(photo, align=False, camera=label_from_yaw_pitch(0.2, -0.1))  # a video aligner's label
    assert inv.camera_source == "given" and (inv.yaw, inv.pitch) == pytest.approx((0.2, -0.1), abs=1e-5)
    moved = dataclasses.replace(inv, ws=inv.ws + 0.3)  # e.g. a smoothed code: the cache keys follow the content
    assert moved.key != inv.key
    a, b = pipe.render(moved, quality="full", local=False), pipe.render(inv, quality="full", local=False)
    assert np.abs(a.image.astype(int) - b.image.astype(int)).max() > 0
    G = pipe.generator
    with torch.no_grad():
        out = G.synthesis(
            pipe.backbone.latents(moved.ws), G.camera(moved.yaw, -moved.pitch)
        )  # StyleSDF's azimuth = yaw, elevation = -pitch
    assert np.array_equal(
        a.image, ((out.image[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    )


def test_app_toonify_option(bundle, photo, tmp_path):
    from PIL import Image

    from e3dge.app import handlers as h

    assert h.has_toonify(str(bundle)) and not h.has_toonify("toy") and not h.has_toonify(str(tmp_path))
    Image.fromarray(photo).save(tmp_path / "crop.png")
    aligned = h.align_photo(str(tmp_path / "crop.png"), str(bundle), skip_alignment=True)
    toon = h.invert_photo(h.AppState(str(bundle)), aligned, str(bundle), toonify=True)
    plain = h.invert_photo(h.AppState(str(bundle)), aligned, str(bundle))
    assert toon.state.inversion.variant == "toonify" and plain.state.inversion.variant == "default"
    assert not np.array_equal(toon.reconstruction, plain.reconstruction)
    with pytest.raises(UserError, match="no Toonify generator"):
        h.invert_photo(
            h.AppState("toy"),
            h.align_photo(str(tmp_path / "crop.png"), "toy", skip_alignment=True),
            "toy",
            toonify=True,
        )


def test_demo_runs_a_stylesdf_bundle_with_refinement(bundle, tmp_path):
    from e3dge.inversion.examples import run_demo

    result = run_demo(tmp_path / "demo", model=str(bundle), steps=2, frames=0, views=1, num_toy=1, progress=False)
    assert not result.failed and result.sheet.is_file()
    data = json.loads((result.folders["astronaut"] / "inversion.json").read_text())
    assert (
        data["backbone"] == "stylesdf"
        and data["options"]["refine"] == "pose+code"
        and data["method"] == "e0+pose+code+local"
    )


def test_video_inversion_with_a_stylesdf_bundle(pipe, tmp_path):
    pytest.importorskip("dlib")
    pytest.importorskip("skimage.data")
    import imageio.v2 as imageio
    from conftest import write_astronaut_clip

    from e3dge.inversion.video import invert_video

    result = invert_video(pipe, write_astronaut_clip(tmp_path / "clip.mp4", 3), tmp_path / "out", progress=False)
    frames = imageio.mimread(str(result.video))
    assert (
        result.num_frames == 3 and len(frames) == 3 and frames[0].shape == (32, 96, 3)
    )  # input | reconstruction | novel view
    assert np.load(tmp_path / "out" / "frames" / "ws_00000.npy", allow_pickle=False).shape == (
        6,
        48,
    )  # the packed W+ (renderer | decoder)


def test_refinement_on_stylesdf_lowers_the_loss_and_keeps_the_models(pipe, photo):
    """P moves only the camera, P+C the camera and the packed W+; both lower the reconstruction loss; the shared models are untouched."""
    before = {k: v.clone() for k, v in pipe.generator.state_dict().items()}
    e0 = pipe.invert(photo, align=False)
    p = pipe.invert(photo, align=False, refine="pose", steps=8)
    pc = pipe.invert(photo, align=False, refine="pose+code", steps=8)
    assert p.method == "e0+pose+local" and pc.method == "e0+pose+code+local"
    assert torch.equal(p.ws, e0.ws) and (p.yaw, p.pitch) != (e0.yaw, e0.pitch)
    assert not torch.equal(pc.ws, e0.ws) and torch.equal(
        pc.ws[:, 4:, :16], e0.ws[:, 4:, :16]
    )  # unused cells get no gradient
    for inv in (p, pc):
        assert min(inv.loss_curve[1:]) < inv.loss_curve[0]
    assert all(torch.equal(v, pipe.generator.state_dict()[k]) for k, v in before.items())


def test_optimisation_then_pti_on_a_private_stylesdf_copy(pipe, photo):
    before = {k: v.clone() for k, v in pipe.generator.state_dict().items()}
    inv = pipe.invert(photo, align=False, optimize=True, steps=10)
    assert inv.method == "optimization+pti" and inv.camera_source == "optimized" and inv.tuned is not None
    assert inv.tuned.generator is not pipe.generator and inv.tuned.identity != pipe.backbone.identity
    assert all(torch.equal(v, pipe.generator.state_dict()[k]) for k, v in before.items())  # PTI tuned a copy
    tuned = dict(inv.tuned.generator.named_parameters())
    assert torch.equal(tuned["style.0.weight"], pipe.generator.state_dict()["style.0.weight"])  # the mapping stays
    assert not torch.equal(
        tuned["renderer.network.pts_linears.0.weight"],
        pipe.generator.state_dict()["renderer.network.pts_linears.0.weight"],
    )
    assert inv.loss_curve[-1] < inv.loss_curve[0]
    view = pipe.render(inv, quality="full")  # renders through the tuned copy
    assert np.array_equal(view.image, inv.reconstruction)
