"""The fast inference paths give the training paths' numbers: folded FiLM, in-place decoder and MLP blocks, geometry-only
field queries, the bf16 option, ZeroGPU durations and the GPU script's dry run."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from e3dge.backbones.stylesdf.adapter import StyleSDFBackbone
from e3dge.backbones.stylesdf.network import FiLMSiren, StyleSDFGenerator, StyleSDFMeanLatents, stylesdf_config
from e3dge.core.errors import UserError
from e3dge.encoders.blocks import ResnetBlockFC
from e3dge.encoders.fusion import FeatureFusion

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_stylesdf() -> StyleSDFGenerator:
    torch.manual_seed(0)
    G = StyleSDFGenerator(**stylesdf_config("tiny")).eval()
    with torch.no_grad():  # move the zero-initialised noise weights and biases, so each term matters
        for p in G.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return G


def test_folded_film_siren_matches_the_film_formula_in_float64():
    """sin(gamma (W x + b) + beta) written the way the paper states it, in float64, against the folded layer in fp32."""
    torch.manual_seed(1)
    layer = FiLMSiren(32, 24, 16)
    x, w = torch.rand(2, 50, 32) * 2 - 1, torch.randn(2, 16)
    with torch.no_grad():
        d = copy.deepcopy(layer).double()
        gamma = d.gamma(w.double())[:, None]  # 15 (.) + 30
        beta = d.beta(w.double())[:, None]
        want = torch.sin(gamma * (x.double() @ d.weight.T + d.bias) + beta)
        got = layer(x, w)
    assert got.dtype == torch.float32 and float((got.double() - want).abs().max()) < 2e-5
    got_grad = layer(x, w)  # the autograd path (out-of-place sine) gives the same numbers
    assert got_grad.requires_grad and torch.equal(got_grad.detach(), got)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the phase stays float32 under autocast
        assert layer(x.bfloat16(), w).dtype == torch.float32


def test_in_place_inference_equals_the_autograd_path(tiny_stylesdf):
    """The decoder, the FC ResNet block and the fusion give the autograd path's outputs without gradients."""
    G = tiny_stylesdf
    features = torch.randn(1, G.renderer.network.views_linears.weight.shape[0], 8, 8)
    ws = torch.randn(1, G.num_decoder_ws, 2 * G.style_dim)
    noise = G.decoder.noise_maps(1, "const", None, "cpu")
    with torch.no_grad():
        fast = G.decoder(features, ws, noise)
    slow = G.decoder(features, ws, noise)
    assert slow.requires_grad and fast.is_contiguous()
    assert float((fast - slow.detach()).abs().max()) < 1e-5  # in-place addcmul fuses a multiply-add: one rounding less
    block, fusion = ResnetBlockFC(9, 5), FeatureFusion(4)
    x = torch.randn(3, 7, 9)
    with torch.no_grad():
        want = block.shortcut(x) + block.fc_1(torch.relu(block.fc_0(torch.relu(x))))  # the official block, spelled out
        f2d, vis, f3d = torch.randn(6, 4), (torch.rand(6, 1) > 0.5).float(), torch.randn(6, 4)
        h = fusion.encode_enc(torch.cat([f2d, vis, f3d], -1))
        fused_want = f3d + f3d * fusion.scale(h) + fusion.shift(h)
        assert torch.allclose(block(x), want, atol=1e-6) and torch.allclose(
            fusion(f2d, vis, f3d), fused_want, atol=1e-6
        )
    loss = block(x.requires_grad_(True)).square().sum()  # the in-place ReLU keeps the backward pass valid
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_geometry_only_field_gives_the_same_occupancy(tiny_stylesdf):
    """``colour=False`` (mesh grids, geometry losses) skips the texture layers and changes no occupancy."""
    backbone = StyleSDFBackbone(tiny_stylesdf, StyleSDFMeanLatents.estimate(tiny_stylesdf, 64))
    ws = backbone.mean_latent().clone()
    points = torch.rand(1, 300, 3) * 0.4 - 0.2
    with torch.no_grad():
        full = backbone.field(ws, None, points)
        geometry = backbone.field(ws, None, points, colour=False)
    assert geometry.rgb is None and full.rgb.shape == (1, 300, 3)
    assert torch.equal(geometry.occupancy, full.occupancy)


def test_the_bf16_option_is_explicit_close_and_never_reused_for_fp32():
    from e3dge.inversion import InversionPipeline
    from e3dge.inversion.examples import toy_photo_examples

    photo = toy_photo_examples(1, seed=3)[0].pixels
    fp32 = InversionPipeline.from_pretrained("toy")
    bf16 = InversionPipeline.from_pretrained("toy", precision="bf16")
    assert fp32.precision == "fp32" and bf16.precision == "bf16" and fp32.identity != bf16.identity
    a = fp32.render(fp32.invert(photo, align=False), yaw=0.3, quality="full").image.astype(np.float32)
    inv = bf16.invert(photo, align=False)
    b = bf16.render(inv, yaw=0.3, quality="full").image.astype(np.float32)
    assert inv.ws.dtype == torch.float32
    diff = np.abs(a - b)
    assert 0 < diff.mean() < 3.0  # it does change the numbers (so it is an option), by a few grey levels
    with pytest.raises(UserError, match=r"precision must be one of fp32, bf16, got 'fp16'"):
        InversionPipeline.from_pretrained("toy", precision="fp16")


def test_zerogpu_durations_come_from_the_table(monkeypatch):
    from e3dge.app import ui

    def fn():
        return 1

    assert ui._gpu(fn, "video") is fn  # no spaces package: the callback itself
    asked = []
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration: (asked.append(duration), lambda f: ("on gpu", f))[1]
    monkeypatch.setitem(sys.modules, "spaces", fake)
    assert ui._gpu(fn, "video") == ("on gpu", fn) and ui._gpu(fn, "view") == ("on gpu", fn)
    assert asked == [ui.GPU_SECONDS["video"], ui.GPU_SECONDS["view"]]
    assert min(ui.GPU_SECONDS.values()) >= 5 and ui.GPU_SECONDS["view"] < ui.GPU_SECONDS["refine"]


def test_gpu_script_dry_run_covers_every_path(tmp_path):
    """benchmarks/gpu.py --dry runs each CUDA path on the CPU with tiny models and writes both tables."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--dry", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((tmp_path / "gpu.json").read_text())
    names = {c["name"] for c in result["checks"]}
    for want in ("invert", "refine P+C", "new view", "orbit video", "Stage I step", "Stage II step"):
        assert f"toy: {want}" in names
    assert {"eg3d-tiny: synthesis", "eg3d-tiny: invert + render", "stylesdf-tiny: full view"} <= names
    assert all(c["ok"] for c in result["checks"])
    by_name = {c["name"]: c for c in result["checks"]}
    assert by_name["toy: invert"]["max_diff"] == 0.0  # the dry "device" is the CPU: identical numbers
    assert result["speed"]["eg3d-tiny: synthesis throughput, batched (fp32) [images/s]"] > 0
    assert "| check | runs | max diff vs CPU |" in (tmp_path / "gpu.md").read_text()
