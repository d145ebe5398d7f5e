"""Device-clean code, proven without a GPU: the main paths run with every model and input on PyTorch's ``meta`` device.

A tensor made on the CPU inside a forward pass (or a host round trip such as ``float(t)`` / ``.item()``) raises on meta
just as it would break a CUDA run: "Tensor on device cpu is not on the expected device meta".
"""

from __future__ import annotations

import pytest
import torch

from e3dge.backbones.eg3d.adapter import EG3DBackbone
from e3dge.backbones.eg3d.network import TriPlaneGenerator, eg3d_config
from e3dge.backbones.stylesdf.adapter import StyleSDFBackbone
from e3dge.backbones.stylesdf.network import StyleSDFGenerator, StyleSDFMeanLatents, stylesdf_config
from e3dge.encoders.flows import LocalSlots, encoder_flow, trainable_encoder
from e3dge.encoders.volume_pose import VolumePoseConfig
from e3dge.inversion.refine import reconstruction_loss
from e3dge.training.stage2 import build_branch, load_stage2_config

META = torch.device("meta")


def test_the_meta_device_catches_a_tensor_left_on_the_cpu():
    with pytest.raises(RuntimeError, match="not on the expected device meta"):
        torch.zeros(3, device=META) + torch.zeros(3)


@pytest.fixture(scope="module", params=["eg3d", "stylesdf"])
def backbone(request):
    """A tiny backbone built on meta (identity given: a meta tensor has no bytes to hash)."""
    with META:
        if request.param == "eg3d":
            return EG3DBackbone(TriPlaneGenerator(**eg3d_config("tiny")).eval(), identity="meta")
        return StyleSDFBackbone(StyleSDFGenerator(**stylesdf_config("tiny")).eval(), StyleSDFMeanLatents(16), "meta")


def _latent(backbone, n: int = 2):
    camera = backbone.camera(torch.zeros(n, device=META), torch.zeros(n, device=META))
    return backbone.sample_latent(torch.empty(n, backbone.z_dim, device=META), camera, truncation=0.7), camera


def test_latents_renders_and_the_field_stay_on_the_device(backbone):
    ws, camera = _latent(backbone)
    scene = backbone.scene(ws)
    for quality in ("full", "preview"):
        view = backbone.render(ws, scene, camera, quality)
        assert {view.image.device, view.image_raw.device, view.depth.device, view.mask.device} == {META}
        assert tuple(view.image.shape) == (2, 3, backbone.image_resolution, backbone.image_resolution)
        assert tuple(view.depth.shape) == (2, 1, backbone.neural_resolution, backbone.neural_resolution)
    field = backbone.field(ws, scene, torch.empty(2, 7, 3, device=META))
    assert field.occupancy.device == field.rgb.device == META and field.occupancy.shape == (2, 7)


def test_e0_and_the_pose_estimator_stay_on_the_device(backbone):
    with META:
        E0 = trainable_encoder(backbone, "tiny")
        pose = VolumePoseConfig.tiny().build()
    photo = torch.empty(2, 3, backbone.image_resolution, backbone.image_resolution, device=META)
    out = E0(photo)
    assert out.ws.device == META and tuple(out.ws.shape[1:]) == (backbone.layout.num_ws, backbone.layout.w_dim)
    est = pose(photo)
    assert est.azim.device == est.elev.device == META


def test_a_refinement_step_and_a_stage2_step_backpropagate_on_the_device(backbone):
    ws, _ = _latent(backbone, 1)
    ws = ws.detach().requires_grad_(True)
    yaw = torch.zeros((), device=META, requires_grad=True)
    pitch = torch.zeros((), device=META, requires_grad=True)
    view = backbone.render(ws, backbone.scene(ws), backbone.camera(yaw, pitch), "full")
    target = torch.empty_like(view.image)
    reconstruction_loss(view, target).backward()
    assert ws.grad is not None and ws.grad.device == META and yaw.grad is not None and pitch.grad is not None

    stylesdf = backbone.name == "stylesdf"
    cfg = load_stage2_config("tiny-test-stylesdf" if stylesdf else "tiny-test")
    with META:
        branch = build_branch(cfg, backbone.film_channels)
    flow = encoder_flow(backbone, None, None, LocalSlots(branch.local_encoder, branch.aligner, branch.fusion))
    ws, camera = _latent(backbone)
    ws = ws.detach()  # E0's code is frozen in Stage II
    photo = torch.empty(2, 3, backbone.image_resolution, backbone.image_resolution, device=META)
    for alignment in ("2d", "hybrid"):
        out = flow.branch_render(
            photo, ws, camera, camera, alignment, resolution=backbone.neural_resolution, decode=stylesdf
        )
        (out.view.image.mean() + out.aligned_residual.abs().mean()).backward()
    grads = [p.grad for p in branch.parameters() if p.grad is not None]
    assert grads and all(g.device == META for g in grads)


@pytest.mark.parametrize("dtype, grey_levels", [(torch.bfloat16, 4.0), (torch.float16, 2.0)])
def test_autocast_inversion_and_render_run_on_cpu(dtype, grey_levels):
    """Mixed precision is an option on every path (never a silent default): it runs, and costs a few grey levels."""
    import numpy as np

    from e3dge.inversion import InversionPipeline
    from e3dge.inversion.examples import toy_photo_examples

    pipe = InversionPipeline.from_pretrained("toy")
    photo = toy_photo_examples(1, seed=3)[0].pixels
    reference = pipe.render(pipe.invert(photo, align=False), yaw=0.3, quality="full").image.astype(float)
    with torch.autocast("cpu", dtype=dtype):
        inv = pipe.invert(photo, align=False)
        view = pipe.render(inv, yaw=0.3, quality="full")
    assert view.image.dtype == np.uint8 and np.isfinite(view.depth).all() and inv.ws.dtype == torch.float32
    assert 0 < np.abs(view.image.astype(float) - reference).mean() < grey_levels
