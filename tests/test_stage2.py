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
    assert float(first["mse"].detach()) == pytest.approx(float(first["mse_e0"]), abs=1e-7)  # zero-initialised FiLM: E0's render
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
    from e3dge.pipelines import InversionPipeline
    from e3dge.pipelines.examples import toy_photo_examples
    from e3dge.training.stage2 import build_branch

    toy = InversionPipeline.from_pretrained("toy")
    cfg = load_stage2_config("tiny-test")
    branch = build_branch(cfg, toy.generator.decoder.net[-1].weight.shape[0] - 1)  # zero-initialised FiLM
    InversionPipeline(toy.generator, toy.encoder, branch.local_encoder, branch.aligner, branch.fusion, directions=toy.directions).save_pretrained(tmp_path / "b")
    pipe = InversionPipeline.from_pretrained(tmp_path / "b")
    assert pipe.local_branch is not None and pipe.local_branch.default_alignment == "hybrid" and pipe.local_branch.resolution == 32
    photo = toy_photo_examples(1)[0].pixels
    inv, plain = pipe.invert(photo, align=False), pipe.invert(photo, align=False, local=False)
    assert inv.method == "e0+local" and plain.method == "e0"
    assert np.array_equal(inv.reconstruction, plain.reconstruction)  # identity FiLM: the same picture as E0 alone
    with_local = pipe.render(inv, yaw=0.3, edits={"smile": 1.0})
    without = pipe.render(inv, yaw=0.3, edits={"smile": 1.0}, local=False)
    assert np.array_equal(with_local.image, without.image)


def test_cli_refusals_are_one_line(tmp_path, capsys):
    assert main(["train", "stage2", "--config", "tiny-test", "--out", str(tmp_path / "x"), "--set", "bogus=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "unknown stage2 option(s) bogus" in err
    assert main(["train", "stage2", "--config", "tiny-test", "--out", str(tmp_path / "x"), "--set", "novel_view_prob=2"]) == 2
    assert "novel_view_prob must be in [0, 1]" in capsys.readouterr().err
    assert main(["train", "stage2", "--config", str(tmp_path / "missing.json")]) == 2
    assert "not a preset" in capsys.readouterr().err
