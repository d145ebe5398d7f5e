"""Editing directions: applying, fitting (planted directions), conditional projection, peers' files, bundles."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from e3dge.core.errors import UserError
from e3dge.editing import (
    Direction,
    apply_edits,
    binarize,
    fit_direction,
    load_directions,
    load_goae,
    load_interfacegan,
    load_preim3d,
    project_out,
    save_directions,
)


def test_apply_is_identity_at_zero_and_linear_on_its_rows():
    ws = torch.randn(2, 6, 8)
    d = Direction("smile", torch.randn(8), rows=(0, 1, 2))
    assert torch.equal(d.apply(ws, 0.0), ws)
    out = d.apply(ws, 2.0)
    torch.testing.assert_close(out[:, :3] - ws[:, :3], 2.0 * d.vector.expand(2, 3, 8))
    assert torch.equal(out[:, 3:], ws[:, 3:])  # rows it does not touch
    per_row = Direction("age", torch.randn(6, 8))
    torch.testing.assert_close(per_row.apply(ws, -1.0), ws - per_row.vector)
    both = apply_edits(ws, {"smile": d, "age": per_row}, {"smile": 2.0, "age": -1.0})
    torch.testing.assert_close(both, per_row.apply(d.apply(ws, 2.0), -1.0))
    with pytest.raises(UserError, match=r"unknown editing direction\(s\) \['glasses'\]; available: age, smile"):
        apply_edits(ws, {"smile": d, "age": per_row}, {"glasses": 1.0})
    with pytest.raises(UserError, match="7 W\\+ rows but the generator has 6"):
        Direction("x", torch.randn(7, 8)).apply(ws, 1.0)
    with pytest.raises(UserError, match="finite"):
        Direction("x", torch.tensor([float("nan")] * 8))


@pytest.mark.parametrize("shape", [(16,), (4, 16)])
def test_fit_recovers_a_planted_direction(shape):
    gen = torch.Generator().manual_seed(0)
    truth = torch.randn(shape, generator=gen)
    truth = truth / truth.norm()
    x = torch.randn(2000, *shape, generator=gen)
    labels = ((x * truth).flatten(1).sum(1) + 0.05 * torch.randn(2000, generator=gen) > 0).long()
    res = fit_direction("planted", x, labels)
    cos = float((res.direction.vector * truth).sum())
    assert cos > 0.97, cos
    assert res.val_accuracy > 0.95 and res.direction.info["num_samples"] == 2000
    flipped = fit_direction("planted", x, 1 - labels)
    assert float((flipped.direction.vector * truth).sum()) < -0.97  # the positive class sets the sign


def test_conditional_direction_is_orthogonal_to_the_conditions():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(16, generator=gen), torch.randn(16, generator=gen)
    b = b + 2 * a  # correlated attributes
    x = torch.randn(1000, 16, generator=gen)
    cond = Direction("a", a / a.norm())
    res = fit_direction("b", x, (x @ b > 0).long(), conditions=[cond])
    assert abs(float(res.direction.vector @ cond.vector)) < 1e-5 and res.direction.info["conditions"] == ["a"]
    v = project_out(torch.tensor([1.0, 1.0, 0.0]), [torch.tensor([1.0, 0.0, 0.0])])
    torch.testing.assert_close(v, torch.tensor([0.0, 1.0, 0.0]))


def test_binarize_keeps_the_tails():
    idx, y = binarize(np.array([5.0, 1.0, 3.0, 2.0, 4.0, 0.0]), tail=1 / 3)
    assert sorted(idx[y == 0].tolist()) == [1, 5] and sorted(idx[y == 1].tolist()) == [0, 4]
    with pytest.raises(UserError, match="both classes"):
        fit_direction("x", np.zeros((4, 3)), np.zeros(4))


def test_peers_files_load_with_shape_checks(tmp_path):
    v = torch.randn(14 * 512, 1)
    torch.save(v, tmp_path / "smile.pt")
    d = load_preim3d(tmp_path / "smile.pt", "smile")
    assert d.vector.shape == (14, 512) and torch.equal(d.vector.flatten(), v.flatten())
    np.save(tmp_path / "age.npy", np.random.default_rng(0).normal(size=(1, 14, 512)).astype(np.float32))
    assert load_goae(tmp_path / "age.npy", "age").vector.shape == (14, 512)
    b = np.random.default_rng(1).normal(size=(1, 256)).astype(np.float32) * 3
    np.save(tmp_path / "boundary.npy", b)
    d = load_interfacegan(tmp_path / "boundary.npy", "bangs", w_dim=256)
    assert d.vector.shape == (256,) and abs(float(d.vector.norm()) - 1) < 1e-6
    with pytest.raises(UserError, match=r"InterfaceGAN boundary holds shape \(1, 512\), this file holds \(1, 256\)"):
        load_interfacegan(tmp_path / "boundary.npy", "bangs")
    with pytest.raises(UserError, match="PREIM3D direction holds shape"):
        torch.save(torch.randn(100, 1), tmp_path / "bad.pt")
        load_preim3d(tmp_path / "bad.pt", "bad")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UserError, match="nothing in it was executed|not a readable PREIM3D direction"):
        load_preim3d(tmp_path / "evil.pt", "evil")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="not a readable .npy"):
        load_goae(tmp_path / "obj.npy", "obj")
    assert not marker.exists()


def test_directions_round_trip_and_travel_with_the_bundle(tmp_path):
    from e3dge.inversion import InversionPipeline
    from e3dge.inversion.examples import toy_photo_examples

    pipe = InversionPipeline.from_pretrained("toy")
    G = pipe.generator
    smile = Direction("smile", torch.randn(G.w_dim), rows=(0, 1, 2, 3), source="test", strength_range=(-2.0, 2.0))
    save_directions(tmp_path / "d", {"smile": smile})
    back = load_directions(tmp_path / "d")["smile"]
    assert torch.equal(back.vector, smile.vector) and back.rows == smile.rows and back.strength_range == (-2.0, 2.0)
    edited = InversionPipeline(G, pipe.encoder, directions={"smile": smile})
    edited.save_pretrained(tmp_path / "bundle")
    again = InversionPipeline.from_pretrained(tmp_path / "bundle")
    assert torch.equal(again.directions["smile"].vector, smile.vector)
    inv = again.invert(toy_photo_examples(1)[0].pixels, align=False)
    plain = again.render(inv, quality="full")
    moved = again.render(inv, edits={"smile": 2.0}, quality="full")
    zero = again.render(inv, edits={"smile": 0.0}, quality="full")
    assert np.array_equal(zero.image, plain.image) and not np.array_equal(moved.image, plain.image)
    assert not moved.cached_planes and again.render(inv, edits={"smile": 2.0}).cached_planes  # planes cached per edit
    (tmp_path / "d" / "directions.json").write_text('{"smile": {"rows": "all"}}')
    with pytest.raises(UserError, match="rows of 'smile' must be a list of integers"):
        load_directions(tmp_path / "d")
    (tmp_path / "d" / "directions.safetensors").write_bytes(
        b"\x08" + b"\x00" * 7 + b"{}"
    )  # a corrupt header: one line, not an internal error
    with pytest.raises(UserError, match="unreadable directions"):
        load_directions(tmp_path / "d")


def test_toy_directions_move_their_own_factor_most():
    """Ground truth: along each fitted direction, a linear read-out of the true factors moves most on that factor."""
    from e3dge.editing.toy import TOY_ATTRIBUTES, fit_toy_directions
    from e3dge.toy import FACTOR_NAMES, HeadFactorMap, load_toy_generator

    G = load_toy_generator()
    fits = fit_toy_directions(G, None, num=1500, seed=3)
    assert set(fits) == set(TOY_ATTRIBUTES)
    for attr in ("smile", "glasses"):
        assert fits[attr].val_accuracy > 0.9, (attr, fits[attr].val_accuracy)
    fm = HeadFactorMap(G.z_dim)
    z = torch.randn(3000, G.z_dim, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        w = G.mapping(z, torch.zeros(len(z), 25))[:, 0].double()
    scores = torch.special.ndtri(fm.factors(z).double().clamp(1e-6, 1 - 1e-6))  # factors before the normal CDF
    design = torch.cat([w, torch.ones(len(w), 1, dtype=w.dtype)], 1)
    readout = torch.linalg.lstsq(design, scores).solution[:-1]  # [w_dim, F]: w -> factor scores
    index = {
        "smile": "smile",
        "glasses": "glasses",
        "hair_colour": "hair_colour",
        "skin_tone": "skin_tone",
        "head_size": "head_size",
    }
    for attr, factor in index.items():
        move = (fits[attr].direction.vector.double() @ readout).abs()  # change of each factor score per unit strength
        assert int(move.argmax()) == FACTOR_NAMES.index(factor), (attr, move)
        others = torch.cat([move[: FACTOR_NAMES.index(factor)], move[FACTOR_NAMES.index(factor) + 1 :]])
        assert float(move.max()) > 3 * float(others.max()), (attr, move)
