"""e3dge.tutorials (what notebooks 01 and 03 call): exercise checks pass the solutions, fail wrong answers, wait for unanswered ones;
the helpers' numbers agree with the package's own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from e3dge.tutorials import editing as X
from e3dge.tutorials import training as T


def test_checks_pass_solutions_fail_wrong_answers_and_wait_for_missing_ones(capsys):
    assert T.check_surface_depth_term(T.surface_depth_term_solution).passed
    assert T.check_depth_error_pct(T.depth_error_pct_solution).passed
    assert X.check_visibility(X.in_image_visibility_solution).passed
    wrong = T.check_surface_depth_term(lambda p, d, m: (p - d).abs().mean())  # forgot the mask
    assert not wrong.passed and "off by" in wrong.message
    assert not T.check_depth_error_pct(
        lambda p, r, m: T.depth_error_pct_solution(p, r, m).mean()
    ).passed  # one value, not one per image

    def unanswered(*args):
        raise NotImplementedError

    assert not T.check_surface_depth_term(unanswered).passed and not X.check_visibility(unanswered).passed
    out = capsys.readouterr().out
    assert out.count("✅") == 3 and out.count("❌") == 2 and out.count("⏳") == 2


def test_direction_check_reads_the_cosine():
    from e3dge.editing import Direction

    ref = Direction("hair_colour", torch.nn.functional.normalize(torch.randn(16), dim=0))
    assert X.check_direction(ref.vector * 3, ref).passed
    flipped = X.check_direction(-ref.vector, ref)
    assert not flipped.passed and "flip the sign" in flipped.message
    assert not X.check_direction(torch.ones(4), ref).passed and not X.check_direction(None, ref).passed


def test_loss_terms_are_zero_for_the_true_code_and_pose():
    sampler = T.toy_sampler(resolution=16, points=32)
    batch = sampler.sample(2, torch.Generator().manual_seed(0))

    class Oracle(torch.nn.Module):  # returns the pair's own code and pose
        def forward(self, images):
            from e3dge.encoders import EncoderOutput

            return EncoderOutput(ws_offset=torch.zeros_like(batch.ws), ws=batch.ws, pose=batch.pose)

    terms = T.loss_terms(Oracle(), sampler.backbone, batch)
    # the sampler jitters its ray samples; these renders are deterministic: image and depth agree closely, not exactly
    assert terms.pop("L_rec (MSE, raw)") < 1e-3 and terms.pop("L_geo_surface_depth") < 2e-3
    assert all(v == pytest.approx(0.0, abs=1e-4) for v in terms.values()), terms
    fig = T.pair_figure(batch, 1)
    assert len(fig.data) == 4 and len(fig.data[2].x) == 32


def test_alignment_comparison_and_edit_sweep_on_one_head():
    from e3dge.inversion import InversionPipeline

    pipe = InversionPipeline.from_pretrained("toy")
    heads = X.toy_heads(1, resolution=32)
    rows = X.alignment_comparison(pipe, heads, 0)
    assert list(rows)[:5] == list(X.ALIGNMENT_ROWS) and rows["ground truth"][1] == 0.0
    assert all(r[0].shape == (32, 32, 3) and r[0].dtype == np.uint8 for r in rows.values())
    assert rows["hybrid (paper)"][3] < rows["E0 only"][3]  # the shipped branch helps at the novel view
    plain, local = X.edit_sweep(pipe, heads, "skin_tone", [0.0, 2.0])
    assert (plain.local, local.local) == (False, True) and len(plain.mae) == 2
    assert plain.best[0] == 2.0 and plain.mae[1] < plain.mae[0]  # moving skin tone towards the target helps E0's render


def test_inversion_and_depth_helpers():
    from e3dge.inversion import InversionPipeline
    from e3dge.tutorials import depth3d as D
    from e3dge.tutorials import inversion as I

    assert I.check_psnr(I.psnr_solution).passed and not I.check_psnr(lambda a, b: I.psnr_solution(a, b) + 1).passed
    assert I.check_camera_label(I.camera_label_solution).passed
    a = torch.zeros(1, 3, 4, 4)
    assert float(I.psnr_solution(a, a + 0.2)) == pytest.approx(20.0, abs=1e-4)  # 0.1 on the [0, 1] scale: MSE 0.01
    pipe = InversionPipeline.from_pretrained("toy")
    heads = X.toy_heads(1, resolution=32)
    (e0,) = I.compare_methods(pipe, heads, 1, 1, methods=("E0",))
    inv = pipe.invert(heads.pixels[0], align=False, local=False)
    # the source MAE from first principles: E0's raw render at the head's own camera vs the procedural photo render
    from e3dge.core.cameras import label_from_yaw_pitch
    from e3dge.toy import render_heads

    cam = label_from_yaw_pitch(float(heads.yaw[0]), float(heads.pitch[0]))
    with torch.no_grad():
        raw = pipe.generator.synthesis(
            inv.ws, inv.camera, deterministic=True, superresolution=False, neural_rendering_resolution=32
        ).image_raw
    truth = render_heads(heads.factors[:1], cam, 32, photo=True).image
    assert e0.source_mae == pytest.approx(float((raw.clamp(-1, 1) - truth).abs().mean()) / 2, rel=1e-4)  # on [0, 1]
    assert 0 < e0.source_mae < 0.2 and "E0" in I.table_text([e0])
    assert I.side_by_side(heads.pixels[0], inv.reconstruction, size=40).shape == (2, 40, 40, 3)
    ch = D.depth_change(pipe, inv, "head_size", 2.0)
    assert (
        D.check_back_project(D.back_project_solution, ch.before).passed
        and D.check_moved_fraction(D.moved_fraction_solution, ch).passed
    )
    assert not D.check_moved_fraction(
        lambda b, a, mb, ma, t: float((abs(a - b) > t).mean()), ch
    ).passed  # background pixels counted
    none = D.depth_change(pipe, inv, "head_size", 0.0)
    assert (
        none.moved_fraction == 0.0 and ch.moved_fraction > 0.3
    )  # no edit moves nothing; a bigger head moves most of the face
