"""The edit-precision benchmark's core (benchmarks/editing.py) on a few toy heads: targets, strength 0, a calibrated edit reaching its target."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

RES = 24  # small renders (the judge resamples them to 32 px): cheap


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "bench_editing", Path(__file__).parents[1] / "benchmarks" / "editing.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def setup(bench):
    from e3dge.inversion import InversionPipeline

    pipe = InversionPipeline.from_pretrained("toy")
    judge, info = bench.train_judge(96, val=32, res=RES)
    pixels, f, yaw, pitch, z = (
        v[[0, 2]] for v in bench.held_out_heads(3, 7070)
    )  # a dark and a light skin: edits both ways
    ws, yaw_e, pitch_e = bench.invert_all(pipe, pixels)
    return pipe, judge, info, (f, yaw, pitch, z), (ws, yaw_e, pitch_e)


def test_targets_change_only_the_edited_factor(bench):
    from e3dge.toy import HeadFactorMap

    fm = HeadFactorMap()
    z = fm.sample_z(64, 3)
    f = fm.factors(z)
    for attr in bench.TOY_ATTRIBUTES:
        tf, delta = bench.edit_target(f, attr)
        i = bench.FI[attr]
        others = [j for j in range(f.shape[1]) if j != i]
        assert torch.equal(tf[:, others], f[:, others])
        assert (
            bench.target_class(tf[:, i].numpy(), attr) != bench.target_class(f[:, i].numpy(), attr)
        ).all() or attr in ("skin_tone", "head_size")
        assert ((tf[:, i] >= 0) & (tf[:, i] <= 1)).all() and (delta.abs() > 0.05).all()
        # the oracle latent has exactly the target's factors
        assert torch.allclose(fm.factors(bench.target_z(z, tf, attr)), tf, atol=1e-4)


def test_strength_zero_is_the_unedited_render(bench, setup):
    pipe, _, _, _, (ws, yaw_e, pitch_e) = setup
    d = pipe.directions["skin_tone"]
    edited = bench.edit_ws(ws, d, torch.zeros(len(ws)))
    assert torch.equal(edited, ws)
    a, b = (bench.render_edit(pipe.generator, w[:1], yaw_e[:1], pitch_e[:1], RES) for w in (ws, edited))
    assert torch.equal(a["src"], b["src"]) and torch.equal(a["side"], b["side"])
    s, clipped = bench.strengths(
        torch.tensor([0.3, -0.3]), 1e-6, d
    )  # an edit that does not show: the validated range's ends
    assert s.tolist() == pytest.approx([d.strength_range[1], d.strength_range[0]]) and clipped.all()


def test_calibrated_skin_tone_edits_move_the_judged_factor_by_the_asked_change(bench, setup):
    pipe, judge, info, (f, yaw, pitch, _), (ws, yaw_e, pitch_e) = setup
    assert info["r2"][bench.FI["skin_tone"]] > 0.9  # the judge reads skin tone (else this test says nothing)
    G, attr, i = pipe.generator, "skin_tone", bench.FI["skin_tone"]
    kinds = {k: {attr: v[attr]} for k, v in bench.direction_kinds(pipe.directions, ("w", "preim3d")).items()}
    slopes = bench.calibrate(G, judge, ws, kinds)
    tf, delta = bench.edit_target(f, attr)
    assert delta.tolist() == pytest.approx([-0.3, 0.3])
    base = bench.render_edit(G, ws, yaw_e, pitch_e, RES)
    target = bench.render_target(tf, yaw, pitch, RES)
    r0 = judge(base["side"])
    none = bench.edit_scores(attr, base, target, r0, r0, tf, delta, judge)
    assert none["hit"].sum() == 0 and (none["drift"] == 0).all()
    for kind, dirs in kinds.items():
        assert slopes[kind][attr] > bench.MIN_SLOPE  # positive strength darkens the skin, as the judge sees it
        s, clipped = bench.strengths(delta, slopes[kind][attr], dirs[attr])
        assert not clipped.any() and (torch.sign(s) == torch.sign(delta)).all()
        edited = bench.render_edit(G, bench.edit_ws(ws, dirs[attr], s), yaw_e, pitch_e, RES)
        r1 = judge(edited["side"])
        change = r1[:, i] - r0[:, i]
        assert (np.abs(change - delta.numpy()) < 0.5 * np.abs(delta.numpy())).all(), (kind, change)
        scores = bench.edit_scores(attr, edited, target, r1, r0, tf, delta, judge)
        assert scores["hit"].all() and (scores["drift"] > 0).all()
