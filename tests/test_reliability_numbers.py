"""NaN, infinity, text and absurd sizes are refused in one line at every numeric entry point (API, app), never rendered."""

from __future__ import annotations

import math

import pytest

from e3dge.app import handlers as h
from e3dge.core.errors import UserError
from e3dge.editing.direction import MAX_EDIT_STRENGTH, check_edits
from e3dge.inversion import InversionPipeline
from e3dge.inversion.examples import toy_photo_examples


@pytest.fixture(scope="module")
def toy():
    pipe = InversionPipeline.from_pretrained("toy")
    inv = pipe.invert(toy_photo_examples(1, seed=3)[0].pixels, align=False)
    return pipe, inv, next(iter(pipe.directions))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, "1.0", None, True, 2 * MAX_EDIT_STRENGTH])
def test_render_refuses_a_strength_that_is_not_a_usable_number(toy, bad):
    pipe, inv, name = toy
    with pytest.raises(UserError, match=f"edit strength of '{name}' must be") as err:
        pipe.render(inv, edits={name: bad})
    assert "\n" not in str(err.value)


def test_edits_of_zero_are_dropped_and_numbers_kept():
    assert check_edits({"a": 0, "b": -1.5, "c": MAX_EDIT_STRENGTH}) == {"a": 0.0, "b": -1.5, "c": MAX_EDIT_STRENGTH}
    with pytest.raises(UserError, match="must be a mapping"):
        check_edits([("a", 1.0)])


@pytest.mark.parametrize("bad", [math.nan, math.inf, "x"])
def test_the_app_refuses_nan_sliders_and_angles(toy, bad):
    pipe, inv, name = toy
    sliders = [bad] + [0.0] * (len(h.direction_sliders("toy")) - 1)
    with pytest.raises(UserError, match="must be a finite number"):
        h.edits_from_sliders("toy", sliders)
    state = h.AppState("toy", inv)
    with pytest.raises(UserError, match="yaw must be between -90 and 90 degrees"):
        h.render_view(state, bad, 0, [0.0] * len(sliders))


def test_a_given_camera_must_be_finite(toy):
    import torch

    pipe, inv, _ = toy
    label = inv.camera.clone()
    label[0, 3] = math.nan
    with pytest.raises(UserError, match="camera label holds NaN"):
        pipe.invert(inv.aligned, align=False, camera=label)
    with pytest.raises(UserError, match="camera must be a label"):
        pipe.invert(inv.aligned, align=False, camera=(math.inf, 0.0))
    assert torch.isfinite(pipe.invert(inv.aligned, align=False, camera=inv.camera).ws).all()
