"""Stage II on StyleSDF (tiny random models): the loss drops, resume is exact, what is trained is what the pipeline runs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from e3dge.core.errors import UserError
from e3dge.core.images import to_uint8
from e3dge.encoders.aligner import ResidualAligner
from e3dge.encoders.fusion import FeatureFusion
from e3dge.encoders.local import LocalEncoder
from e3dge.encoders.volume_pose import VolumePoseConfig
from e3dge.inversion import InversionPipeline
from e3dge.training.stage2 import Stage2Trainer, load_stage2_config


def _trainer(tmp_path, name: str, **overrides) -> Stage2Trainer:
    return Stage2Trainer(load_stage2_config("tiny-test-stylesdf", {"out_dir": str(tmp_path / name), **overrides}))


@pytest.mark.parametrize("seed", [0, 7])
def test_a_few_steps_lower_the_decoded_query_loss_below_e0(tmp_path, seed):
    tr = _trainer(tmp_path, f"fit{seed}", seed=seed, adv_weight=0.0)
    batch = tr.sample(2)
    G = tr.backbone.generator
    assert batch.photo.shape == (2, 3, G.img_resolution, G.img_resolution)
    assert batch.target.shape == (2, 3, G.img_resolution, G.img_resolution)  # the decoded image (32^2 < 256)
    first = tr.losses(batch)
    assert float(first["mse"].detach()) == pytest.approx(float(first["mse_e0"]), abs=1e-7)  # identity FiLM at start
    for _ in range(12):
        terms = tr.losses(batch)
        tr.opt.zero_grad(set_to_none=True)
        terms["total"].backward()
        tr.opt.step()
    after = tr.losses(batch)
    assert float(after["mse"].detach()) < 0.9 * float(first["mse"].detach())
    assert float(after["residual"].detach()) < float(first["residual"].detach())


def test_stage_21_then_22_and_exact_resume(tmp_path):
    straight = _trainer(tmp_path, "a")
    rows = [straight.train_step() for _ in range(4)]
    assert [r["stage"] for r in rows] == ["2.1", "2.1", "2.2", "2.2"] and "adv" in rows[2] and "adv" not in rows[1]
    _trainer(tmp_path, "b").fit(progress=False, stop_at=2)
    resumed = _trainer(tmp_path, "b").fit(progress=False)
    a, b = straight.branch.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_refusals_name_what_stylesdf_supports(tmp_path):
    with pytest.raises(UserError, match="aligns '2d' or 'hybrid'"):
        _trainer(tmp_path, "3d", alignment="3d").train_step()
    with pytest.raises(UserError, match="set render_resolution=8"):
        _trainer(tmp_path, "res", render_resolution=16).train_step()
    with pytest.raises(UserError, match="own 6 samples per ray"):
        _trainer(tmp_path, "rays", ray_samples=12).sample(1)
    with pytest.raises(UserError, match="'features' modulates EG3D's tri-plane features"):
        _trainer(tmp_path, "feat", film_target="features")
    with pytest.raises(UserError, match="E0 and the generator do not belong together"):
        _trainer(tmp_path, "mixed", encoder="toy")


def test_the_trained_branch_renders_the_same_in_the_pipeline(tmp_path):
    tr = _trainer(tmp_path, "run")
    tr.fit(progress=False)
    final = tmp_path / "run" / "final"
    backbone = tr.backbone
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        pose = VolumePoseConfig.tiny().build()
    pipe = InversionPipeline(
        backbone.generator,
        encoder=tr.E0.encoder,
        local_encoder=LocalEncoder.from_pretrained(final / "local_encoder"),
        aligner_2d=ResidualAligner.from_pretrained(final / "aligner_2d"),
        fusion=FeatureFusion.from_pretrained(final / "fusion"),
        pose_estimator=pose,
        latent_mean=backbone.mean,
    )
    photo = to_uint8(tr.sample(1, torch.Generator().manual_seed(11)).photo)
    inv = pipe.invert(photo, align=False)
    with_branch = pipe.render(inv, yaw=0.3, quality="full").image.astype(int)
    plain = pipe.render(inv, yaw=0.3, quality="full", local=False).image.astype(int)
    photo_t = backbone.photo(photo)
    with torch.no_grad():
        trained = tr.flow.branch_render(
            photo_t,
            inv.ws,
            backbone.camera(inv.yaw, inv.pitch),
            backbone.camera(0.3, inv.pitch),
            "hybrid",
            resolution=backbone.neural_resolution,
            decode=True,
        )
    assert np.abs(with_branch - plain).max() >= 2  # the trained branch changes the picture
    assert np.abs(to_uint8(trained.view.image).astype(int) - with_branch).max() <= 1
    assert np.abs(to_uint8(trained.plain.image).astype(int) - plain).max() <= 1
