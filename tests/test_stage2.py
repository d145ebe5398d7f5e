"""Stage II training (toy lab) and the local branch in the pipeline: loss goes down, exact resume, identity at start, CLI errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from e3dge.cli import main
from e3dge.training.stage2 import Stage2Trainer, load_stage2_config


def _trainer(tmp_path, name: str, **overrides) -> Stage2Trainer:
    return Stage2Trainer(load_stage2_config("tiny-test", {"out_dir": str(tmp_path / name), **overrides}))


def test_a_few_steps_lower_the_query_loss_below_e0(tmp_path):
    tr = _trainer(tmp_path, "fit", alignment="hybrid")
    batch = tr.sample(2)
    first = tr.losses(batch)
    assert float(first["mse"].detach()) == pytest.approx(
        float(first["mse_e0"]), abs=1e-7
    )  # zero-initialised FiLM: E0's render
    for _ in range(12):
        terms = tr.losses(batch)
        tr.opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        tr.opt.step()
    after = tr.losses(batch)
    assert float(after["mse"]) < 0.9 * float(first["mse"])
    assert float(after["residual"]) < float(first["residual"])


@pytest.mark.parametrize("alignment", ["local", "2d", "3d"])
def test_every_alignment_trains(tmp_path, alignment):
    tr = _trainer(tmp_path, alignment, alignment=alignment, steps=2)
    branch = tr.fit(progress=False)
    assert (branch.aligner is not None) == (alignment == "2d") and branch.fusion is None
    assert (tmp_path / alignment / "final" / "local_encoder" / "model.safetensors").is_file()


def test_resume_is_exact_through_the_shared_loop(tmp_path):
    straight = _trainer(tmp_path, "a").fit(progress=False)
    _trainer(tmp_path, "b").fit(progress=False, stop_at=2)
    resumed = _trainer(tmp_path, "b").fit(progress=False)
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_pipeline_uses_the_local_branch_from_the_bundle(tmp_path):
    from e3dge.inversion import InversionPipeline
    from e3dge.inversion.examples import toy_photo_examples
    from e3dge.training.stage2 import build_branch

    toy = InversionPipeline.from_pretrained("toy")
    cfg = load_stage2_config("tiny-test")
    branch = build_branch(cfg, toy.backbone.film_channels)  # zero-initialised FiLM
    InversionPipeline(
        toy.generator, toy.encoder, branch.local_encoder, branch.aligner, branch.fusion, directions=toy.directions
    ).save_pretrained(tmp_path / "b")
    pipe = InversionPipeline.from_pretrained(tmp_path / "b")
    assert (
        pipe.local_branch is not None
        and pipe.local_branch.default_alignment == "hybrid"
        and pipe.local_branch.resolution == 32
    )
    photo = toy_photo_examples(1)[0].pixels
    inv, plain = pipe.invert(photo, align=False), pipe.invert(photo, align=False, local=False)
    assert inv.method == "e0+local" and plain.method == "e0"
    assert np.array_equal(inv.reconstruction, plain.reconstruction)  # identity FiLM: the same picture as E0 alone
    with_local = pipe.render(inv, yaw=0.3, edits={"smile": 1.0})
    without = pipe.render(inv, yaw=0.3, edits={"smile": 1.0}, local=False)
    assert np.array_equal(with_local.image, without.image)
    # a FiLM head that is not the identity: the same bundle now changes the pictures, only with the branch on
    head = branch.local_encoder.local_feat_to_tex_modulations_linear
    with torch.no_grad():
        torch.nn.init.normal_(head.fc_1.weight, std=0.5, generator=torch.Generator().manual_seed(1))
    InversionPipeline(
        toy.generator, toy.encoder, branch.local_encoder, branch.aligner, branch.fusion, directions=toy.directions
    ).save_pretrained(tmp_path / "c")
    moved = InversionPipeline.from_pretrained(tmp_path / "c")
    inv2, plain2 = moved.invert(photo, align=False), moved.invert(photo, align=False, local=False)
    assert np.array_equal(plain2.reconstruction, plain.reconstruction)  # E0 alone is untouched
    assert np.abs(inv2.reconstruction.astype(int) - plain2.reconstruction.astype(int)).mean() > 1
    turned = moved.render(inv2, yaw=0.3, edits={"smile": 1.0}).image.astype(int)
    assert np.abs(turned - moved.render(inv2, yaw=0.3, edits={"smile": 1.0}, local=False).image.astype(int)).mean() > 1


def test_cli_refusals_are_one_line(tmp_path, capsys):
    assert main(["train", "stage2", "--config", "tiny-test", "--out", str(tmp_path / "x"), "--set", "bogus=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown stage2 option(s) bogus" in err
    assert (
        main(["train", "stage2", "--config", "tiny-test", "--out", str(tmp_path / "x"), "--set", "novel_view_prob=2"])
        == 2
    )
    assert "novel_view_prob must be in [0, 1]" in capsys.readouterr().err
    assert main(["train", "stage2", "--config", str(tmp_path / "missing.json")]) == 2
    assert "not a preset" in capsys.readouterr().err


# ------------------------------------------------------------------ stage 2.1 / 2.2, the adversarial term, synthetic data
def test_discriminator_losses_have_their_textbook_values():
    from e3dge.training.discriminator import Discriminator, d_logistic_loss, g_nonsaturating_loss, r1_penalty

    zero = torch.zeros(5)
    assert float(d_logistic_loss(zero, zero)) == pytest.approx(2 * np.log(2))
    assert float(g_nonsaturating_loss(torch.full((3,), 2.0))) == pytest.approx(np.log1p(np.exp(-2.0)))

    class Linear(torch.nn.Module):  # D(x) = <w, x>: its input gradient is w for every sample
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.randn(1, 3, 8, 8))

        def forward(self, x):
            return (x * self.w).sum(dim=(1, 2, 3))

    lin = Linear()
    assert float(r1_penalty(lin, torch.randn(4, 3, 8, 8))) == pytest.approx(float(lin.w.square().sum()), rel=1e-5)
    D = Discriminator(16, width=8, max_width=16)
    assert D(torch.randn(6, 3, 16, 16)).shape == (6,) and D(torch.randn(2, 3, 32, 32)).shape == (
        2,
    )  # other sizes are resized
    with pytest.raises(ValueError, match="power of two"):
        Discriminator(24)


def test_stage_21_trains_the_2d_branch_then_22_freezes_e_ada_and_adds_the_adversary(tmp_path):
    tr = _trainer(tmp_path, "stages", steps=4, stage21_steps=2, r1_every=2)
    cfg = tr.cfg
    assert (
        [cfg.stage_at(s) for s in range(4)] == ["2.1", "2.1", "2.2", "2.2"]
        and cfg.alignment_at(0) == "2d"
        and cfg.alignment_at(2) == "hybrid"
    )
    snap = lambda m: [p.detach().clone() for p in m.parameters()]  # noqa: E731
    changed = lambda a, m: any(not torch.equal(x, y) for x, y in zip(a, m.parameters()))  # noqa: E731
    rows = []
    for _ in range(4):
        ada, fuse, D = snap(tr.branch.aligner), snap(tr.branch.fusion), snap(tr.D)
        rows.append(tr.train_step())
        rows[-1]["changed"] = (changed(ada, tr.branch.aligner), changed(fuse, tr.branch.fusion), changed(D, tr.D))
    assert [r["stage"] for r in rows] == ["2.1", "2.1", "2.2", "2.2"]
    assert [r["changed"] for r in rows[:2]] == [(True, False, False)] * 2  # 2.1: E_ADA learns; no fusion, no D
    assert [r["changed"] for r in rows[2:]] == [(False, True, True)] * 2  # 2.2: E_ADA frozen; fusion and D learn
    assert "adv" not in rows[1] and "adv" in rows[2] and "residual" in rows[1] and "residual" not in rows[2]
    assert "r1" in rows[2] and "r1" not in rows[3]  # lazy R1 on steps divisible by r1_every


def test_synthetic_pairs_are_the_generators_own_renders(tmp_path):
    tr = _trainer(tmp_path, "syn", data="synthetic", adv_weight=0.0)
    batch = tr.sample(2, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)  # replay the draw: cameras first, then z
    draws = [torch.rand(2, generator=g) for _ in range(5)]
    G = tr.backbone.generator
    z = torch.randn(2, G.z_dim, generator=g)
    from e3dge.core.cameras import label_from_yaw_pitch

    cfg = tr.cfg
    label = label_from_yaw_pitch((draws[0] * 2 - 1) * cfg.yaw_range, (draws[1] * 2 - 1) * cfg.pitch_range)
    overrides = {"depth_resolution": cfg.ray_samples, "depth_resolution_importance": cfg.ray_samples}
    with torch.no_grad():
        ws = G.mapping(z, label, truncation_psi=cfg.truncation)
        target = G.synthesis(
            ws,
            batch.query.label,
            neural_rendering_resolution=cfg.render_resolution,
            deterministic=True,
            superresolution=False,
            rendering_overrides=overrides,
        ).image_raw.clamp(-1, 1)
        photo = G.synthesis(ws, label, deterministic=True).image.clamp(-1, 1)
    assert torch.allclose(batch.target, target, atol=1e-6) and torch.allclose(batch.photo, photo, atol=1e-6)
    assert batch.photo.shape == (2, 3, G.img_resolution, G.img_resolution) and batch.target.shape == (2, 3, 16, 16)
    assert torch.isfinite(torch.tensor(tr.train_step()["total"]))


def test_config_refusals_and_the_ffhq_preset():
    from e3dge.core.errors import UserError
    from e3dge.encoders.aligner import AlignerConfig
    from e3dge.encoders.local import LocalEncoderConfig

    with pytest.raises(UserError, match="needs the toy generator"):
        load_stage2_config("toy", {"generator": "tiny-random"})
    with pytest.raises(UserError, match="power of two"):
        load_stage2_config("toy", {"render_resolution": 24})
    with pytest.raises(UserError, match="truncation must be in"):
        load_stage2_config("toy", {"truncation": 1.5})
    ffhq = load_stage2_config("ffhq-eg3d")
    official = LocalEncoderConfig.official()
    assert (ffhq.stem_width, ffhq.width, ffhq.num_stack, ffhq.depth, ffhq.groups, ffhq.local_resolution) == (
        official.stem_width,
        official.width,
        official.num_stack,
        official.depth,
        official.groups,
        official.input_size,
    )
    assert (
        ffhq.aligner_widths == AlignerConfig.official().widths and ffhq.data == "synthetic" and ffhq.truncation == 0.55
    )
    assert (
        ffhq.lr_local,
        ffhq.lr_aligner,
        ffhq.lr_fusion,
        ffhq.lr_d,
        ffhq.adv_weight,
        ffhq.r1_gamma,
        ffhq.r1_every,
    ) == (5e-5, 1e-4, 1e-4, 5e-5, 0.01, 10.0, 16)


def test_sample_grid_is_written(tmp_path):
    from PIL import Image

    tr = _trainer(tmp_path, "grid")
    path = tr.save_samples(num=3)
    with Image.open(path) as im:
        assert im.size == (4 * 16, 3 * 16)  # photo | E0 | with the branch | target, one row per head
        assert np.asarray(im).std() > 1


def test_two_processes_keep_the_branch_and_discriminator_in_sync(tmp_path):
    """accelerate over torch.distributed (gloo, 2 CPU processes): different data per rank, identical weights."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_NUM_THREADS": "1"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(port),
        str(Path(__file__).with_name("stage2_ddp_worker.py")),
        str(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ranks = [(out / f"params_rank{i}.txt").read_text().split() for i in (0, 1)]
    assert ranks[0][0] == ranks[1][0] == "2" and ranks[0][1].endswith("MULTI_CPU")
    assert ranks[0][2:] == ranks[1][2:]


def test_film_on_triplane_features_starts_as_e0_and_can_move_the_geometry(tmp_path):
    from e3dge.core.errors import UserError

    tr = _trainer(tmp_path, "feat", film_target="features", adv_weight=0.0)
    G = tr.backbone.generator
    assert tr.branch.local_encoder.config["film_channels"] == G.decoder.net[0].weight.shape[1]
    batch = tr.sample(2)
    first = tr.losses(batch)
    assert float(first["mse"].detach()) == pytest.approx(
        float(first["mse_e0"]), abs=1e-7
    )  # zero-initialised FiLM: E0's render
    for _ in range(3):
        tr.train_step()
    with torch.no_grad():
        out = tr.branch_render(batch, "2d")
    assert not torch.allclose(
        out.view.depth, out.plain.depth
    )  # modulating the features before the decoder moves the density too
    with pytest.raises(UserError, match="film_target must be one of"):
        load_stage2_config("toy", {"film_target": "sigma"})
