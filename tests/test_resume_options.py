"""A run resumed with new options (``--override``) trains with them: the optimizer's restored state does not win."""

from __future__ import annotations

import pytest
import torch

from e3dge.training.checkpoint import CheckpointError, restore_optimizer
from e3dge.training.config import load_stage1_config
from e3dge.training.stage1 import Stage1Trainer
from e3dge.training.stage2 import Stage2Trainer, load_stage2_config


def test_stage1_override_keeps_the_new_learning_rate_and_the_moments(tmp_path):
    out = str(tmp_path / "s1")
    first = Stage1Trainer(load_stage1_config("tiny-test", {"out_dir": out, "steps": 4, "lr": 1e-4}))
    first.loop.opts.progress = False
    first.loop.run(stop_at=2)
    moments = {k: v["exp_avg"].clone() for k, v in first.opt.state_dict()["state"].items()}
    resumed = Stage1Trainer(
        load_stage1_config("tiny-test", {"out_dir": out, "steps": 4, "lr": 3e-3}), resume="override"
    )
    assert resumed.step == 2
    assert [g["lr"] for g in resumed.opt.param_groups] == [3e-3]
    state = resumed.opt.state_dict()["state"]
    assert all(torch.equal(state[k]["exp_avg"], v) for k, v in moments.items())  # Adam's moments were restored


def test_stage2_override_keeps_the_new_learning_rates_of_the_branch_and_the_discriminator(tmp_path):
    out = str(tmp_path / "s2")
    Stage2Trainer(load_stage2_config("tiny-test", {"out_dir": out})).fit(progress=False, stop_at=2)
    new = {"out_dir": out, "lr_local": 2e-3, "lr_aligner": 3e-3, "lr_fusion": 4e-3, "lr_d": 1e-3, "r1_every": 4}
    resumed = Stage2Trainer(load_stage2_config("tiny-test", new), resume="override")
    assert resumed.step == 2
    assert [g["lr"] for g in resumed.opt.param_groups] == [2e-3, 3e-3, 4e-3]
    c = 4 / 5  # the lazy-R1 correction of the new r1_every
    assert resumed.opt_d.param_groups[0]["lr"] == pytest.approx(1e-3 * c)
    assert resumed.opt_d.param_groups[0]["betas"] == pytest.approx((0.0, 0.99**c))


def test_an_optimizer_of_another_model_is_a_checkpoint_error():
    a = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))])
    b = torch.optim.Adam(
        [{"params": [torch.nn.Parameter(torch.zeros(2))]}, {"params": [torch.nn.Parameter(torch.zeros(3))]}]
    )
    with pytest.raises(CheckpointError, match="does not fit this run.*--restart"):
        restore_optimizer(b, a.state_dict())


@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("options", [1, 2], "'options' must be dict, got a list"),
        ("step", "2", "'step' must be int, got a str"),
        ("step", -1, "'step' must be int"),
        ("elapsed_s", "soon", "'elapsed_s' must be int or float, got a str"),
        ("world_size", True, "'world_size' must be int, got a bool"),
        ("task", None, "'task' must be dict, got a NoneType"),
    ],
)
def test_a_hand_edited_checkpoint_is_named_in_one_line(tmp_path, field, value, needle):
    from e3dge.training.checkpoint import load_checkpoint, save_checkpoint

    out = tmp_path / "run"
    Stage1Trainer(load_stage1_config("tiny-test", {"out_dir": str(out), "steps": 2})).loop.run()
    state = load_checkpoint(out / "checkpoint.safetensors")
    state[field] = value
    save_checkpoint(out / "checkpoint.safetensors", state)
    with pytest.raises(CheckpointError, match=f"checkpoint.safetensors: damaged checkpoint \\({needle}") as err:
        Stage1Trainer(load_stage1_config("tiny-test", {"out_dir": str(out), "steps": 2}))
    assert "\n" not in str(err.value) and "--restart" in str(err.value)
