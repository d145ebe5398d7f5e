"""InversionPipeline: bundles, inversion on toy photos, refinement, optimisation, cached views, threads, CLI."""

from __future__ import annotations

import dataclasses
import json
import threading
import warnings

import numpy as np
import pytest
import torch

from e3dge.core.errors import UserError
from e3dge.inversion import BundleError, InversionPipeline
from e3dge.inversion.examples import toy_photo_examples


@pytest.fixture(scope="module")
def pipe() -> InversionPipeline:
    return InversionPipeline.from_pretrained("toy")


@pytest.fixture(scope="module")
def toy_photos():
    """Held-out photo-like heads with their ground truth (procedural image at the source view)."""
    return toy_photo_examples(num=4, seed=777)


def mae(a: np.ndarray, b: np.ndarray) -> float:
    from PIL import Image

    if a.shape != b.shape:
        b = np.asarray(Image.fromarray(b).resize(a.shape[:2][::-1], Image.BICUBIC))
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() / 255)


# ------------------------------------------------------------------ bundles
def test_toy_bundle_round_trips_through_save_pretrained(pipe, toy_photos, tmp_path):
    pipe.save_pretrained(tmp_path / "bundle")
    spec = json.loads((tmp_path / "bundle" / "pipeline.json").read_text())
    assert spec["components"] == {
        "generator": {"class": "TriPlaneGenerator", "subfolder": "generator"},
        "encoder": {"class": "GlobalEncoder", "subfolder": "encoder"},
        "local_encoder": {"class": "LocalEncoder", "subfolder": "local_encoder"},
        "aligner_2d": {"class": "ResidualAligner", "subfolder": "aligner_2d"},
        "fusion": {"class": "FeatureFusion", "subfolder": "fusion"},
    }
    again = InversionPipeline.from_pretrained(tmp_path / "bundle", local_files_only=True)
    for slot, module in pipe.components.items():
        other = again.components[slot].state_dict()
        assert all(torch.equal(v, other[k]) for k, v in module.state_dict().items()), slot
    a = pipe.invert(toy_photos[0].pixels, align=False)
    b = again.invert(toy_photos[0].pixels, align=False)
    assert torch.equal(a.ws, b.ws) and np.array_equal(a.reconstruction, b.reconstruction)


def test_bundle_errors_are_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BundleError, match="no such folder"):
        InversionPipeline.from_pretrained(str(tmp_path / "missing" / "bundle"))
    with pytest.raises(BundleError, match="not in the local Hub cache"):
        InversionPipeline.from_pretrained("someone/not-cached-e3dge-bundle")
    (tmp_path / "b").mkdir()
    with pytest.raises(BundleError, match="has no pipeline.json"):
        InversionPipeline.from_pretrained(tmp_path / "b")
    cases = {
        '{"components": {"generator": {"class": "TriPlaneGenerator", "subfolder": "../../etc"}}}': "must stay inside the bundle",
        '{"components": {"generator": {"class": "TriPlaneGenrator", "subfolder": "g"}}}': "did you mean 'TriPlaneGenerator'",
        '{"components": {"generator": {"class": "os.system", "subfolder": "g"}}}': "unknown component class 'os.system'",
        '{"components": {"generater": {"class": "TriPlaneGenerator", "subfolder": "g"}}}': "did you mean 'generator'",
        '{"components": {"generator": {"class": "TriPlaneGenerator", "subfolder": "g"}}, "descripton": ""}': "did you mean 'description'",
        '{"components": {"generator": {"class": "TriPlaneGenerator", "subfolder": "nothere"}}}': "does not have",
        '{"components": {"generator": {"class": "TriPlaneGenerator", "subfolder": "/abs"}}}': "must stay inside the bundle",
        "{not json": "not valid JSON",
        '{"format": 7, "components": {}}': "format 7 is not supported",
    }
    for text, message in cases.items():
        (tmp_path / "b" / "pipeline.json").write_text(text)
        with pytest.raises(BundleError) as info:
            InversionPipeline.from_pretrained(tmp_path / "b")
        assert message in str(info.value) and "\n" not in str(info.value), (text, str(info.value))


def test_registry_lists_what_each_bundle_needs():
    from e3dge.inversion import BUNDLES

    assert BUNDLES["toy"].offline and not BUNDLES["toy"].needs
    assert not BUNDLES["eg3d-ffhq"].offline and any("network" in n for n in BUNDLES["eg3d-ffhq"].needs)


# ------------------------------------------------------------------ inversion quality on the toy lab
def test_invert_recovers_a_toy_head_better_than_the_mean_face(pipe, toy_photos):
    G = pipe.generator
    errors, mean_errors, e0_errors = [], [], []
    for ex in toy_photos:
        inv = pipe.invert(ex.pixels, align=False)
        e0_errors.append(mae(pipe.invert(ex.pixels, align=False, local=False).reconstruction, ex.pixels))
        assert inv.ws.shape == (1, G.num_ws, G.w_dim) and inv.camera.shape == (1, 25) and inv.camera_source == "encoder"
        assert inv.reconstruction.shape == (G.img_resolution, G.img_resolution, 3) and inv.depth.shape == inv.mask.shape
        assert set(inv.timings) == {"align", "encode", "render"}
        mean_inv = dataclasses.replace(inv, ws=G.backbone.mapping.w_avg.expand(1, G.num_ws, -1).clone())
        errors.append(mae(inv.reconstruction, ex.pixels))
        mean_errors.append(mae(pipe.render(mean_inv, quality="full", local=False).image, ex.pixels))
    assert np.mean(errors) < 0.8 * np.mean(mean_errors), (errors, mean_errors)
    assert np.mean(errors) < 0.95 * np.mean(e0_errors), (
        errors,
        e0_errors,
    )  # the shipped Stage II branch adds what E0 misses


def test_refinement_lowers_the_loss_and_the_error(pipe, toy_photos):
    ex = toy_photos[1]
    e0 = pipe.invert(ex.pixels, align=False)
    pc = pipe.invert(ex.pixels, align=False, refine="pose+code", steps=12)
    p = pipe.invert(ex.pixels, align=False, refine="pose", steps=6)
    assert pc.method == "e0+pose+code+local" and p.method == "e0+pose+local" and "refine" in pc.timings
    assert pc.loss_curve[-1] < 0.9 * pc.loss_curve[0]
    assert p.loss_curve[-1] <= p.loss_curve[0]
    assert torch.equal(p.ws, e0.ws)  # P moves the camera only
    assert mae(pc.reconstruction, ex.pixels) < mae(e0.reconstruction, ex.pixels)


def test_optimisation_baseline_inverts_without_an_encoder(pipe):
    """On the toy generator's own render (exactly representable), W/W+ + PTI gets close."""
    G = pipe.generator
    no_encoder = InversionPipeline(G)
    with pytest.raises(UserError, match="no encoder"):
        no_encoder.invert(np.zeros((64, 64, 3), np.uint8), align=False)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(5))
    from e3dge.core.cameras import label_from_yaw_pitch

    c = label_from_yaw_pitch(0.2, 0.0)
    with torch.no_grad():
        target = G.synthesis(G.mapping(z, c, truncation_psi=0.7), c, deterministic=True).image
    before = {k: v.clone() for k, v in G.state_dict().items()}
    inv = no_encoder.invert(target, align=False, camera=(0.2, 0.0), optimize=True, steps=40)
    assert inv.method == "optimization+pti" and inv.tuned is not None and inv.tuned.generator is not G
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in before.items())  # the shared generator is untouched
    pixels = ((target[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    assert inv.loss_curve[-1] < 0.5 * inv.loss_curve[0]
    assert mae(inv.reconstruction, pixels) < 0.06


# ------------------------------------------------------------------ views
def test_cached_plane_views_equal_uncached_ones(pipe, toy_photos):
    inv = pipe.invert(toy_photos[2].pixels, align=False)
    first = pipe.render(inv, yaw=0.4, pitch=0.1, quality="full", local=False)
    again = pipe.render(inv, yaw=0.4, pitch=0.1, quality="full", local=False)
    assert first.cached_planes and again.cached_planes  # invert cached the planes
    G = pipe.generator
    from e3dge.core.cameras import label_from_yaw_pitch

    with torch.no_grad():
        fresh = G.synthesis(inv.ws, label_from_yaw_pitch(0.4, 0.1), deterministic=True)
    from e3dge.core.images import to_uint8

    assert np.array_equal(first.image, to_uint8(fresh.image)) and np.array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.depth, fresh.depth[0, 0].numpy())
    preview = pipe.render(inv, yaw=0.4, pitch=0.1, local=False)
    assert preview.depth.shape[0] == G.neural_rendering_resolution and preview.image.shape == first.image.shape
    assert mae(preview.image, first.image) < 0.05  # a faithful preview
    assert pipe.render(inv, resolution=64).image.shape == (64, 64, 3)
    for bad in (dict(quality="ultra"), dict(resolution=100000), dict(yaw=float("nan")), dict(edits={"wings": 1.0})):
        with pytest.raises(UserError):
            pipe.render(inv, **bad)


def test_concurrent_calls_equal_sequential_ones(pipe, toy_photos):
    sequential = []
    for ex in toy_photos:
        inv = pipe.invert(ex.pixels, align=False)
        sequential.append((inv.reconstruction, pipe.render(inv, yaw=-0.3, quality="full").image))
    results: dict[int, tuple] = {}

    def work(i: int) -> None:
        inv = pipe.invert(toy_photos[i].pixels, align=False)
        results[i] = (inv.reconstruction, pipe.render(inv, yaw=-0.3, quality="full").image)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(toy_photos))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, (recon, view) in enumerate(sequential):
        assert np.array_equal(results[i][0], recon) and np.array_equal(results[i][1], view), i


def test_input_kinds_and_bad_inputs(pipe, toy_photos, tmp_path):
    from PIL import Image

    ex = toy_photos[0]
    path = tmp_path / "head.png"
    Image.fromarray(ex.pixels).save(path)
    a = pipe.invert(ex.pixels, align=False)
    for source in (path, str(path), Image.open(path), torch.from_numpy(ex.pixels).permute(2, 0, 1).float() / 127.5 - 1):
        assert torch.allclose(pipe.invert(source, align=False).ws, a.ws, atol=1e-5)
    (tmp_path / "not.png").write_bytes(b"hello")
    from e3dge.faces.errors import FaceError

    with pytest.raises(FaceError):
        pipe.invert(tmp_path / "not.png", align=False)
    with pytest.raises(UserError, match="square"):
        pipe.invert(np.zeros((64, 80, 3), np.uint8), align=False)
    with pytest.raises(UserError, match="refine must be one of"):
        pipe.invert(ex.pixels, align=False, refine="everything")
    with pytest.raises(UserError, match="camera must be"):
        pipe.invert(ex.pixels, align=False, camera=(0.1,))


def test_astronaut_goes_through_alignment(pipe):
    pytest.importorskip("dlib")
    from e3dge.inversion.examples import astronaut_example

    ex = astronaut_example()
    inv = pipe.invert(ex.pixels, align=True)
    assert inv.camera_source == "aligner" and inv.transform is not None and inv.aligned.shape == (512, 512, 3)
    assert abs(inv.degrees[0]) < 30 and abs(inv.degrees[1]) < 30


# ------------------------------------------------------------------ CLI
def test_cli_writes_every_output_and_refuses_unsafe_locations(tmp_path, toy_photos, capsys):
    from PIL import Image

    from e3dge.cli import main

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(toy_photos[0].pixels).save(src / "a.png")
    Image.fromarray(toy_photos[1].pixels).save(src / "a.jpg", quality=95)
    out = tmp_path / "out"
    args = ["--no-align", "--views", "2", "--frames", "4", "--quiet"]
    assert main(["invert", str(src / "a.png"), str(out / "single"), *args]) == 0
    names = sorted(p.name for p in (out / "single").iterdir())
    assert names == [
        "aligned.png",
        "depth.png",
        "inversion.json",
        "orbit.mp4",
        "reconstruction.png",
        "view_00.png",
        "view_01.png",
    ]
    info = json.loads((out / "single" / "inversion.json").read_text())
    assert info["method"] == "e0+local" and len(info["camera_label"]) == 25 and info["options"]["views"] == 2
    import imageio.v3 as iio

    assert iio.imread(out / "single" / "orbit.mp4").shape[0] == 4
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    assert main(["invert", str(src), str(out / "batch"), *args]) == 0
    assert sorted(p.name for p in (out / "batch").iterdir()) == ["a_jpg", "a_png"]  # same stem: distinct outputs
    assert main(["invert", str(src), str(out / "batch"), *args]) == 0  # resumed: nothing to redo
    assert "(2 already done)" in capsys.readouterr().out
    assert main(["invert", str(src), str(src / "results"), *args]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in src.iterdir() if p.is_file()} == before  # inputs untouched
    (tmp_path / "fake.mp4").write_bytes(b"not a video at all")
    assert main(["invert", str(tmp_path / "fake.mp4"), str(out / "v"), "--quiet"]) in (1, 2)
    err = capsys.readouterr().err.strip().splitlines()
    assert err and "Traceback" not in "\n".join(err) and len(err) == 1
    assert main(["invert", str(tmp_path / "nothing.png"), str(out / "x")]) == 2
    assert "no such file" in capsys.readouterr().err


# ------------------------------------------------------------------ video
def test_smooth_codes_is_a_centred_moving_average():
    from e3dge.inversion.video import smooth_codes

    ws = np.arange(5, dtype=np.float64)[:, None, None] * np.ones((5, 2, 3))
    out = smooth_codes(ws, 3)
    np.testing.assert_allclose(out[:, 0, 0], [0.5, 1, 2, 3, 3.5])  # edges average what exists
    assert smooth_codes(ws, 1) is ws


def test_video_inversion_writes_a_side_by_side_video_and_resumes(pipe, tmp_path):
    pytest.importorskip("dlib")
    pytest.importorskip("skimage.data")
    import imageio.v2 as imageio
    from conftest import write_astronaut_clip

    from e3dge.inversion.video import invert_video

    clip = write_astronaut_clip(tmp_path / "clip.mp4", 5)
    out = tmp_path / "out"
    result = invert_video(pipe, clip, out, progress=False)
    frames = imageio.mimread(str(result.video))
    size = pipe.generator.img_resolution
    assert result.num_frames == 5 and result.frames_reused == 0 and len(frames) == 5
    assert frames[0].shape == (size, 3 * size, 3)  # input | reconstruction | novel view
    codes = sorted((out / "frames").glob("ws_*.npy"))
    codes_shape = (pipe.generator.num_ws, pipe.generator.w_dim)
    assert len(codes) == 5 and np.load(codes[0], allow_pickle=False).shape == codes_shape
    again = invert_video(pipe, clip, out, progress=False)
    assert again.frames_reused == 5
    (out / "frames" / "ws_00002.npy").write_bytes(b"\x93NUMPY cut")  # an interrupted write of an older run
    mended = invert_video(pipe, clip, out, progress=False)
    assert mended.frames_reused == 4 and np.load(out / "frames" / "ws_00002.npy").shape == codes_shape
    changed = invert_video(pipe, clip, out, smooth_window=1, progress=False)  # other options: frames are redone
    assert changed.frames_reused == 0


def test_another_video_into_the_same_folder_is_aligned_and_inverted_again(pipe, tmp_path):
    pytest.importorskip("dlib")
    pytest.importorskip("skimage.data")
    from conftest import write_astronaut_clip

    from e3dge.inversion.video import invert_video

    out = tmp_path / "out"
    first = invert_video(pipe, write_astronaut_clip(tmp_path / "a.mp4", 3), out, progress=False)
    second = invert_video(pipe, write_astronaut_clip(tmp_path / "b.mp4", 4), out, progress=False)
    assert first.num_frames == 3 and second.num_frames == 4 and second.frames_reused == 0
    assert len(sorted((out / "frames").glob("ws_*.npy"))) == 4


def test_cli_edits_use_the_bundles_directions(tmp_path, toy_photos, capsys):
    from PIL import Image

    from e3dge.cli import main

    Image.fromarray(toy_photos[0].pixels).save(tmp_path / "a.png")
    args = ["--no-align", "--views", "1", "--frames", "0", "--quiet"]
    assert (
        main(
            [
                "invert",
                str(tmp_path / "a.png"),
                str(tmp_path / "o"),
                *args,
                "--edit",
                "smile=1.5",
                "--edit",
                "glasses=2",
            ]
        )
        == 0
    )
    info = json.loads((tmp_path / "o" / "inversion.json").read_text())
    assert info["edits"] == {"smile": 1.5, "glasses": 2.0}
    edited, recon = (np.asarray(Image.open(tmp_path / "o" / n)) for n in ("edited.png", "reconstruction.png"))
    assert edited.shape == recon.shape and mae(edited, recon) > 0.005  # the edit changed the face
    assert main(["invert", str(tmp_path / "a.png"), str(tmp_path / "p"), *args, "--edit", "wings=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown editing direction(s) ['wings']; available: glasses, glasses_preim3d" in err[0]
    assert not (tmp_path / "p").exists()
    assert main(["invert", str(tmp_path / "a.png"), str(tmp_path / "q"), *args, "--edit", "smile=lots"]) == 2
    assert "--edit expects NAME=STRENGTH" in capsys.readouterr().err


def test_the_toy_bundle_ships_directions_found_both_ways(pipe):
    names = set(pipe.directions)
    for attr in ("smile", "glasses", "hair_colour", "skin_tone", "head_size"):
        assert {attr, f"{attr}_preim3d"} <= names
        assert pipe.directions[attr].info["val_accuracy"] > 0.9
        assert pipe.directions[f"{attr}_preim3d"].vector.shape == (pipe.generator.num_ws, pipe.generator.w_dim)


def test_refinement_uses_lpips_only_with_real_weights(pipe, toy_photos, monkeypatch):
    """Without LPIPS / ArcFace weights both terms are off (warned once), never replaced by random networks."""
    import e3dge.inversion.pipeline as P
    from e3dge.inversion.refine import Criteria, reconstruction_loss

    monkeypatch.setattr(
        P, "make_lpips", lambda net, device: None
    )  # no weights installed: both terms off, with a warning
    monkeypatch.setattr(P, "make_identity", lambda kind, device: None)
    fresh = InversionPipeline.from_pretrained("toy")
    with pytest.warns(UserWarning, match="pixel losses only: LPIPS and ArcFace ID weights are not installed"):
        crit = fresh.criteria()
    assert crit.lpips is None and crit.identity is None and crit is fresh.criteria()  # loaded once
    lpips, arcface = object(), object()  # installed weights: exactly those networks, for both terms
    monkeypatch.setattr(P, "make_lpips", lambda net, device: lpips if net == "alex" else None)
    monkeypatch.setattr(P, "make_identity", lambda kind, device: arcface if kind == "arcface" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        crit = InversionPipeline.from_pretrained("toy").criteria()
    assert crit.lpips is lpips and crit.identity is arcface
    out = type("Out", (), {"image": torch.zeros(1, 3, 8, 8), "image_raw": torch.zeros(1, 3, 4, 4)})()
    target = torch.ones(1, 3, 8, 8)
    base = float(reconstruction_loss(out, target))
    assert base == pytest.approx(2.0)
    with_terms = reconstruction_loss(
        out, target, Criteria(lpips=lambda a, b: torch.full((1,), 0.5), identity=lambda a, b: torch.tensor(0.3))
    )
    assert float(with_terms) == pytest.approx(base + 0.8 * 0.5 + 0.1 * 0.3)


def test_cache_keys_follow_the_content_not_the_object(pipe, toy_photos):
    """``replace(inv, ws=other)`` renders the other latent, never the planes cached for the first one."""
    a = pipe.invert(toy_photos[0].pixels, align=False)
    b = pipe.invert(toy_photos[1].pixels, align=False)
    first = pipe.render(a, yaw=0.3, quality="full", local=False)  # a's planes are in the cache now
    swapped = dataclasses.replace(a, ws=b.ws, yaw=b.yaw, pitch=b.pitch)
    assert swapped.key != a.key and dataclasses.replace(a).key == a.key  # a digest of the content, not of the object
    theirs = pipe.render(b, yaw=0.3, quality="full", local=False)
    assert np.array_equal(pipe.render(swapped, yaw=0.3, quality="full", local=False).image, theirs.image)
    assert not np.array_equal(first.image, theirs.image)
