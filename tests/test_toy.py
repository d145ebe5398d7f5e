"""Toy lab: procedural heads (determinism, geometry, attributes, multi-view) and the shipped generator."""

from __future__ import annotations

import json
import math

import pytest
import torch

from e3dge.core.cameras import label_from_yaw_pitch, split_label
from e3dge.rendering.volume import sample_rays
from e3dge.toy.heads import FACTOR_NAMES, HeadFactorMap, sdf_at
from e3dge.toy.render import render_heads

SMILE, GLASSES = FACTOR_NAMES.index("smile"), FACTOR_NAMES.index("glasses")


@pytest.fixture(scope="module")
def factor_map() -> HeadFactorMap:
    return HeadFactorMap()


def _frontal(n: int) -> torch.Tensor:
    return label_from_yaw_pitch(torch.zeros(n), torch.zeros(n))


def test_factor_map_is_fixed_uniform_and_labels_are_half_spaces(factor_map):
    other = HeadFactorMap()
    assert torch.equal(factor_map.rows, other.rows)
    z = factor_map.sample_z(4000, seed=1)
    u = factor_map.factors(z)
    assert u.shape == (4000, len(FACTOR_NAMES))
    assert torch.allclose(u.mean(0), torch.full((len(FACTOR_NAMES),), 0.5), atol=0.03)  # uniform marginals
    labels = factor_map.labels(u)
    assert 0.45 < labels.glasses.float().mean() < 0.55 and 0.45 < labels.is_smiling.float().mean() < 0.55
    # glasses is exactly the half-space rows[GLASSES] . z > 0
    assert torch.equal(labels.glasses, (z @ factor_map.rows[GLASSES]) > 0)


def test_render_is_deterministic_and_shaped(factor_map):
    u = factor_map.factors(factor_map.sample_z(3, seed=0))
    c = label_from_yaw_pitch(torch.tensor([0.0, 0.4, -0.5]), torch.tensor([0.0, 0.1, -0.2]))
    a, b = render_heads(u, c, 32), render_heads(u, c, 32)
    for name in ("image", "depth", "normal", "mask"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert a.image.shape == (3, 3, 32, 32) and a.depth.shape == (3, 1, 32, 32)
    assert a.image.min() >= -1 and a.image.max() <= 1
    frac = a.mask.mean((1, 2, 3))
    assert ((frac > 0.25) & (frac < 0.8)).all(), frac  # a head fills a good part of the frame, not all of it
    assert ((a.depth == 3.3) == (a.mask == 0)).all()


def test_rendered_depth_lies_on_the_sdf_zero_level(factor_map):
    u = factor_map.factors(factor_map.sample_z(4, seed=2))
    c = label_from_yaw_pitch(torch.tensor([0.0, 0.3, -0.6, 0.7]), torch.tensor([0.0, -0.2, 0.1, 0.25]))
    r = render_heads(u, c, 32)
    o, d = sample_rays(*split_label(c), 32)
    t = r.depth.reshape(4, -1, 1)
    m = r.mask.reshape(4, -1) > 0
    on = sdf_at(u, o + t * d)[m]
    before = sdf_at(u, o + (t - 0.01) * d)[m]
    assert on.abs().max() < 2e-3
    assert (before > 0).float().mean() > 0.99  # the surface is the first crossing, seen from outside
    # background rays never cross the surface (checked at 64 points along each ray)
    ts = torch.linspace(2.25, 3.3, 64)
    bg = ~m[0]
    pts = (o[0, bg, None] + ts[None, :, None] * d[0, bg, None]).reshape(1, -1, 3)
    assert sdf_at(u[:1], pts).min() > 0


def test_normals_are_unit_and_face_the_camera(factor_map):
    u = factor_map.factors(factor_map.sample_z(2, seed=3))
    r = render_heads(u, _frontal(2), 32)
    m = r.mask[:, 0] > 0
    n = r.normal.permute(0, 2, 3, 1)[m]
    assert torch.allclose(n.norm(dim=-1), torch.ones(len(n)), atol=1e-4)
    assert (n[:, 2] > 0).float().mean() > 0.9  # mostly facing +z, towards the frontal camera


def _with(u: torch.Tensor, index: int, value: float) -> torch.Tensor:
    u = u.clone()
    u[:, index] = value
    return u


def test_smile_changes_only_the_mouth_region(factor_map):
    u = factor_map.factors(factor_map.sample_z(2, seed=4))
    u = _with(u, GLASSES, 0.0)
    c = _frontal(2)
    frown, smile = render_heads(_with(u, SMILE, 0.0), c, 64), render_heads(_with(u, SMILE, 1.0), c, 64)
    changed = ((frown.image - smile.image).abs().amax(1) > 0.05) | ((frown.depth - smile.depth).abs()[:, 0] > 1e-3)
    rows = changed.any(0).any(-1).nonzero().squeeze(-1)
    assert changed.sum() > 20  # the smile visibly moves the mouth
    # the lower face only: mouth is below the eyes (rows 32-50 at 64x64 for the frontal camera)
    assert rows.min() >= 34 and rows.max() <= 52, rows.tolist()


def test_glasses_add_geometry_in_front_of_the_eyes(factor_map):
    u = factor_map.factors(factor_map.sample_z(2, seed=5))
    c = _frontal(2)
    off, on = render_heads(_with(u, GLASSES, 0.0), c, 64), render_heads(_with(u, GLASSES, 1.0), c, 64)
    closer = (off.depth - on.depth)[:, 0]  # > 0 where glasses sit in front of the face
    assert (closer < -2e-3).sum() == 0  # glasses never remove geometry (1e-3 = tracing tolerance)
    moved = closer > 0.01
    assert moved.sum() > 40
    rows = moved.any(0).any(-1).nonzero().squeeze(-1)
    assert rows.min() >= 20 and rows.max() <= 36, rows.tolist()  # at eye height


def _reproject_error(depth_a, depth_a_mask, c_a, depth_b, mask_b, c_b, res):
    """Lift view A's depth to 3D, project into B, compare with B's depth where both see the point."""
    o, d = sample_rays(*split_label(c_a), res)
    pts = (o + depth_a.reshape(1, -1, 1) * d)[0][depth_a_mask.reshape(-1) > 0.5]
    cam2world, K = split_label(c_b)
    world2cam = torch.linalg.inv(cam2world[0])
    pc = pts @ world2cam[:3, :3].T + world2cam[:3, 3]
    uv = (pc[:, :2] / pc[:, 2:3]) @ K[0, :2, :2].T + K[0, :2, 2]
    ij = (uv * res - 0.5).round().long()
    inside = (ij >= 0).all(-1) & (ij < res).all(-1)
    ij, pts, pc = ij[inside], pts[inside], pc[inside]
    o_b = cam2world[0, :3, 3]
    dist = (pts - o_b).norm(dim=-1)
    seen = depth_b[0, 0, ij[:, 1], ij[:, 0]]
    visible = (mask_b[0, 0, ij[:, 1], ij[:, 0]] > 0.5) & (dist < seen + 0.02)  # not occluded in B
    return (dist - seen)[visible].abs(), visible.float().mean()


def test_procedural_depth_is_multiview_consistent(factor_map):
    u = factor_map.factors(factor_map.sample_z(1, seed=6))
    c_a, c_b = label_from_yaw_pitch(0.0, 0.0), label_from_yaw_pitch(0.35, -0.1)
    a, b = render_heads(u, c_a, 64), render_heads(u, c_b, 64)
    err, frac = _reproject_error(a.depth, a.mask, c_a, b.depth, b.mask, c_b, 64)
    assert frac > 0.7
    assert err.median() < 0.01 and err.mean() < 0.02  # pixel rounding only (a pixel is ~0.01 wide)


# ------------------------------------------------------------------ shipped generator
def _load():
    toy = pytest.importorskip("e3dge.toy")
    if not hasattr(toy, "load_toy_generator"):
        pytest.fail("e3dge.toy.load_toy_generator is missing: the toy weights are not shipped")
    return toy.load_toy_generator()


@pytest.fixture(scope="module")
def toy_generator():
    return _load()


def test_shipped_generator_loads_offline_and_renders(toy_generator, monkeypatch):
    import huggingface_hub

    def no_network(*args, **kwargs):
        raise AssertionError("load_toy_generator must not touch the network")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    G = _load()
    assert not G.training and all(not p.requires_grad for p in G.parameters())
    z = HeadFactorMap(G.z_dim).sample_z(2, seed=7)
    c = _frontal(2)
    with torch.no_grad():
        out = G.synthesis(G.mapping(z, c), c, neural_rendering_resolution=32, deterministic=True)
    assert out.image.shape == (2, 3, 128, 128) and torch.isfinite(out.image).all()
    # it draws a head where the procedural head is: opacity agrees with the procedural mask
    ref = render_heads(HeadFactorMap(G.z_dim).factors(z), c, 32)
    agree = ((out.mask > 0.5) == (ref.mask > 0.5)).float().mean()
    assert agree > 0.9


def test_shipped_generator_matches_procedural_heads(toy_generator):
    from e3dge.toy.gates import measure_render_gates

    G = toy_generator
    gates = measure_render_gates(G, num_heads=4, resolution=32, batch=4, seed=123)
    # shipped weights measure 19.4 dB / 1.45 % / IoU 0.95 here; an untrained generator gets about 10 dB.
    # The full gates (64 heads at 64x64) live in benchmarks/toy_gates.py.
    assert gates.psnr_db > 18.0, gates
    assert gates.depth_mae_fraction < 0.02, gates
    assert gates.mask_iou > 0.9, gates


def test_shipped_generator_depth_is_multiview_consistent(toy_generator):
    G = toy_generator
    z = HeadFactorMap(G.z_dim).sample_z(1, seed=8)
    c_a, c_b = label_from_yaw_pitch(0.0, 0.0), label_from_yaw_pitch(0.35, -0.1)
    with torch.no_grad():
        ws = G.mapping(z, c_a)
        a = G.synthesis(ws, c_a, neural_rendering_resolution=48, deterministic=True)
        b = G.synthesis(ws, c_b, neural_rendering_resolution=48, deterministic=True)
    err, frac = _reproject_error(a.depth, a.mask, c_a, b.depth, b.mask, c_b, 48)
    assert frac > 0.6
    assert err.median() < 0.02, float(err.median())


def test_train_generator_resumes_exactly(tmp_path):
    from e3dge.toy.distill import DistillConfig, train_generator

    small = dict(
        batch_size=2,
        train_resolution=16,
        target_resolution=32,
        depth_samples=6,
        importance_samples=6,
        points_per_head=64,
        checkpoint_every=1,
        threads=1,
    )
    straight = train_generator(DistillConfig(out_dir=str(tmp_path / "a"), steps=3, **small), progress=False)
    train_generator(DistillConfig(out_dir=str(tmp_path / "b"), steps=3, **small), progress=False, stop_at=2)
    assert not (tmp_path / "b" / "final").exists()
    resumed = train_generator(DistillConfig(out_dir=str(tmp_path / "b"), steps=3, **small), progress=False)
    for (name, p), q in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), name
    assert (tmp_path / "b" / "final" / "model.safetensors").is_file()


def test_cli_registers_train_generator():
    import argparse

    from e3dge.cli.toy import add_toy_command

    parser = argparse.ArgumentParser()
    add_toy_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["toy", "train-generator", "--out", "x", "--steps", "5", "--seed", "3"])
    assert args.steps == 5 and args.seed == 3 and args.out == "x" and callable(args.func)
    assert math.isclose(args.lr, 2e-3)


def test_photo_renders_add_detail_a_small_generator_cannot_hold(factor_map):
    u = factor_map.factors(factor_map.sample_z(2, seed=9))
    c = label_from_yaw_pitch(torch.tensor([0.5, -0.5]), torch.zeros(2))  # side views show the earrings
    plain, photo = render_heads(u, c, 64), render_heads(u, c, 64, photo=True)
    both = (plain.mask * photo.mask)[:, 0] > 0
    diff = (plain.image - photo.image).abs().amax(1)[both]
    assert diff.mean() > 0.02  # texture, freckles and highlights everywhere on the head
    assert ((plain.depth - photo.depth) > 0.005).sum() >= 4  # earrings: geometry only the photos have
    # high-frequency energy: photos are rougher than the plain renders (neighbour differences)
    rough = lambda x: (x[..., 1:] - x[..., :-1]).abs().amax(1)[both[:, :, 1:] & both[:, :, :-1]].mean()
    assert rough(photo.image) > 1.2 * rough(plain.image)


def test_shipped_generator_stores_its_mean_latent():
    """Truncation (the demo's psi 0.7) and encoders (offsets around w_avg) need the real mean w, not zeros."""
    from e3dge.toy import load_toy_generator

    G = load_toy_generator()
    w_avg = G.backbone.mapping.w_avg.clone()
    assert w_avg.norm() > 1
    # an independent estimate: the mean mapped w of fresh codes (another seed), within its Monte Carlo error
    z = torch.randn(20000, G.z_dim, generator=torch.Generator().manual_seed(99))
    c = torch.zeros(20000, G.c_dim)
    with torch.no_grad():
        w = G.backbone.mapping(z, c, truncation_psi=1.0)[:, 0]
    error = 4 * w.std(0) / len(w) ** 0.5
    assert ((w_avg - w.mean(0)).abs() <= error).all() and not ((w_avg - w.mean(0)).abs() <= error / 100).all()


def test_toy_sizes_change_widths_only():
    from e3dge.toy.distill import TOY_SIZES, toy_eg3d_config

    small, wide = toy_eg3d_config(32, "small"), toy_eg3d_config(32, "wide")
    assert (
        (small["w_dim"], small["channel_max"], small["decoder_hidden"], small["mapping_kwargs"]["num_layers"])
        == TOY_SIZES["small"]
        == (64, 64, 32, 2)
    )
    assert (wide["w_dim"], wide["channel_max"], wide["decoder_hidden"], wide["mapping_kwargs"]["num_layers"]) == (
        128,
        128,
        64,
        4,
    )
    same = {k for k in small if small[k] == wide[k]}
    assert same == set(small) - {"w_dim", "channel_max", "decoder_hidden", "mapping_kwargs"}
    with pytest.raises(ValueError, match="unknown toy EG3D size 'huge'.*'small', 'wide'"):
        toy_eg3d_config(32, "huge")


def test_train_generator_cli_refuses_a_checkpoint_of_another_size_and_a_missing_gpu(tmp_path, capsys):
    from e3dge.cli import main

    tiny = ["--batch-size", "1", "--train-resolution", "8", "--points-per-head", "16", "--threads", "1", "--quiet"]
    assert main(["toy", "train-generator", "--out", str(tmp_path), "--steps", "1", "--size", "wide", *tiny]) == 0
    cfg = json.loads((tmp_path / "final" / "config.json").read_text())
    assert cfg["w_dim"] == 128  # the wide generator was trained and saved
    assert main(["toy", "train-generator", "--out", str(tmp_path), "--steps", "2", *tiny]) == 2
    err = capsys.readouterr().err
    assert "holds a run made with other options (size: wide -> small; steps: 1 -> 2); rerun with --override" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert main(["toy", "train-generator", "--out", str(tmp_path), "--steps", "2", "--override", *tiny]) == 2
    err = capsys.readouterr().err
    assert "holds a 'wide' generator but size='small' was asked; use the same --size or another --out folder" in err
    assert (
        main(["toy", "train-generator", "--out", str(tmp_path / "p"), "--steps", "0", "--average-every", "0", *tiny])
        == 2
    )
    assert "average_every must be >= 1" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert (
            main(["toy", "train-generator", "--out", str(tmp_path / "g"), "--steps", "1", "--device", "cuda", *tiny])
            == 2
        )
        assert "no CUDA device; use --device cpu (or auto)" in capsys.readouterr().err


def test_weight_averaging_exports_the_mean_of_the_last_steps(tmp_path):
    from e3dge.toy.distill import DistillConfig, train_generator

    small = dict(
        batch_size=1,
        train_resolution=8,
        depth_samples=4,
        importance_samples=4,
        points_per_head=16,
        checkpoint_every=1,
        threads=1,
    )
    snapshots = []
    for stop in (2, 3, 4):  # the plain run, paused after steps 2, 3 and 4
        G = train_generator(
            DistillConfig(out_dir=str(tmp_path / "plain"), steps=4, **small), progress=False, stop_at=stop
        )
        snapshots.append({k: v.clone() for k, v in G.state_dict().items()})
    averaged = train_generator(
        DistillConfig(out_dir=str(tmp_path / "avg"), steps=4, average_from=2, average_every=1, **small), progress=False
    )
    state = averaged.state_dict()
    moved = 0
    for name, last in snapshots[-1].items():
        if name.endswith("w_avg"):
            continue  # re-estimated from the exported weights
        mean = sum(s[name].double() for s in snapshots) / 3
        torch.testing.assert_close(state[name], mean.float(), rtol=0, atol=1e-7, msg=name)
        moved += int(not torch.equal(state[name], last))
    assert moved > 10  # the average differs from the last weights


def test_warmup_ramps_the_learning_rate_then_follows_the_cosine():
    from e3dge.toy.distill import DistillConfig, learning_rate

    cfg = DistillConfig(lr=1e-3, lr_final_ratio=0.05, steps=1000, warmup_steps=100)
    plain = DistillConfig(lr=1e-3, lr_final_ratio=0.05, steps=1000)
    assert learning_rate(cfg, 0) == pytest.approx(1e-3 / 100, rel=1e-3)  # the cosine barely moved at step 0
    assert learning_rate(cfg, 49) == pytest.approx(0.5 * learning_rate(plain, 49))
    assert learning_rate(cfg, 500) == learning_rate(plain, 500) == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))
    assert learning_rate(plain, 1000) == pytest.approx(5e-5)
    with pytest.raises(ValueError, match="warmup_steps must be >= 0"):
        DistillConfig(warmup_steps=-1)


def test_fine_tunes_start_with_a_probe_fitted_to_the_generators_w(toy_generator):
    from e3dge.backbones.ops import normalize_2nd_moment
    from e3dge.toy.distill import DistillConfig, DistillLoss

    fm = HeadFactorMap(toy_generator.z_dim)
    loss = DistillLoss(DistillConfig(), fm, toy_generator.w_dim)
    z = torch.randn(512, toy_generator.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        w = toy_generator.mapping(z, torch.zeros(512, 25))[:, 0]
        scores = normalize_2nd_moment(z) @ fm.rows.T
        before = float(((loss.probe(w) - scores) ** 2).mean())
        fit_mse = loss.fit_probe(toy_generator, n=2048, seed=0)
        after = float(((loss.probe(w) - scores) ** 2).mean())  # fresh latents: the fit generalises
    assert before > 0.5  # a random probe: about the scores' variance
    assert fit_mse < 0.02 and after < 0.02


def test_fine_tune_records_its_parent_recipe_and_the_card_chains_the_phases(tmp_path):
    import importlib.util
    from pathlib import Path

    from e3dge.toy.distill import DistillConfig, train_generator

    small = dict(batch_size=1, train_resolution=8, depth_samples=4, importance_samples=4, points_per_head=16, threads=1)
    train_generator(DistillConfig(out_dir=str(tmp_path / "p1"), steps=2, seed=3, **small), progress=False)
    parent = json.loads((tmp_path / "p1" / "final" / "train_config.json").read_text())
    assert parent["steps"] == 2 and parent["seed"] == 3 and "parent" not in parent
    train_generator(
        DistillConfig(
            out_dir=str(tmp_path / "p2"),
            steps=1,
            lr=1e-3,
            warmup_steps=1,
            init_from=str(tmp_path / "p1" / "final"),
            **small,
        ),
        progress=False,
    )
    recipe = json.loads((tmp_path / "p2" / "final" / "train_config.json").read_text())
    assert recipe["parent"] == parent and recipe["warmup_steps"] == 1

    spec = importlib.util.spec_from_file_location(
        "toy_export", Path(__file__).parents[1] / "benchmarks" / "toy_export.py"
    )
    toy_export = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(toy_export)
    line = toy_export.reproduce_line(recipe)
    assert line.startswith(
        "phase 1 `e3dge toy train-generator --out outputs/toy-eg3d-phase1 --steps 2 --batch-size 1 --seed 3 "
    )
    assert (
        "then phase 2 `e3dge toy train-generator --out outputs/toy-eg3d --init-from outputs/toy-eg3d-phase1/final --steps 1 "
        "--batch-size 1 --lr 0.001 --seed 0 "
    ) in line and "--warmup-steps 1" in line
    assert str(tmp_path) not in line  # no machine-specific paths in a card
