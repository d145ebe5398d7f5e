"""e3dge.metrics.LPIPS: torchvision-format loading, lpips-format heads, search order, refusals, maths.

Weights are random and written by the tests themselves (no network). Key names and shapes of the
torchvision files are spelled out here independently of e3dge's code.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import e3dge.metrics.lpips as lp
from e3dge.metrics import LPIPS, LPIPSWeightsNotFoundError, UncalibratedLPIPSWarning

# torchvision AlexNet / VGG16 conv layers: features index -> (out, in, k)
ALEX_CONVS = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}
VGG_CONVS = dict(
    zip(
        (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
        ((64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256))
        + ((512, 256),)
        + ((512, 512),) * 5,
    )
)
ALEX_CH = (64, 192, 384, 256, 256)
VGG_CH = (64, 128, 256, 512, 512)


def _tv_state(convs: dict, seed: int, classifier: bool = True) -> dict[str, torch.Tensor]:
    """A random torchvision-style state dict (``features.i.weight/bias`` + a dummy ``classifier``)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for i, spec in convs.items():
        out_c, in_c, k = spec if len(spec) == 3 else (*spec, 3)
        state[f"features.{i}.weight"] = torch.randn(out_c, in_c, k, k, generator=g) * (2.0 / (in_c * k * k)) ** 0.5
        state[f"features.{i}.bias"] = torch.randn(out_c, generator=g) * 0.1
    if classifier:
        state["classifier.1.weight"] = torch.zeros(4, 8)
        state["classifier.1.bias"] = torch.zeros(4)
    return state


def _lin_state(channels, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) * 0.1 for k, c in enumerate(channels)}


@pytest.fixture
def no_default_weights(tmp_path, monkeypatch):
    """Empty torch hub dir, no lpips package, no Hub repo: nothing is found unless passed explicitly."""
    old = torch.hub.get_dir()
    hub = tmp_path / "torch_hub"
    torch.hub.set_dir(str(hub))
    monkeypatch.setattr(lp, "_lpips_package_dirs", lambda: [])
    monkeypatch.delenv(lp.HUB_REPO_ENV, raising=False)
    yield hub
    torch.hub.set_dir(old)


@pytest.fixture
def alex_files(tmp_path):
    trunk, lin = tmp_path / "alexnet-owt-7be5be79.pth", tmp_path / "alex.pth"
    torch.save(_tv_state(ALEX_CONVS, seed=0), trunk)
    torch.save(_lin_state(ALEX_CH), lin)
    return trunk, lin


@pytest.fixture
def alex(alex_files, no_default_weights):
    return LPIPS("alex", backbone_weights=alex_files[0], lin_weights=alex_files[1])


def _images(n=3, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.rand(n, 3, size, size, generator=g) * 2 - 1


def _reference_alex(x, y, trunk: dict, lins: dict) -> torch.Tensor:
    """LPIPS v0.1 (alex) written out from the paper / lpips package with functional ops."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def taps(t):
        t = (t - shift) / scale
        w = lambda i: (trunk[f"features.{i}.weight"], trunk[f"features.{i}.bias"])  # noqa: E731
        r1 = F.relu(F.conv2d(t, *w(0), stride=4, padding=2))
        r2 = F.relu(F.conv2d(F.max_pool2d(r1, 3, 2), *w(3), padding=2))
        r3 = F.relu(F.conv2d(F.max_pool2d(r2, 3, 2), *w(6), padding=1))
        r4 = F.relu(F.conv2d(r3, *w(8), padding=1))
        r5 = F.relu(F.conv2d(r4, *w(10), padding=1))
        return [r1, r2, r3, r4, r5]

    total = torch.zeros(x.shape[0], dtype=torch.float64)
    for k, (a, b) in enumerate(zip(taps(x.double()), taps(y.double()))):
        na = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total += F.conv2d((na - nb) ** 2, lins[f"lin{k}.model.1.weight"].double()).mean(dim=(1, 2, 3))
    return total


def test_matches_functional_reference(alex, alex_files):
    trunk = {k: v.double() for k, v in torch.load(alex_files[0]).items()}
    lins = torch.load(alex_files[1])
    x, y = _images()
    d = alex(x, y)
    assert alex.is_calibrated and d.shape == (3,)
    torch.testing.assert_close(d.double(), _reference_alex(x, y, trunk, lins), rtol=1e-5, atol=1e-7)


def test_identity_positive_symmetric_and_per_layer(alex):
    x, y = _images()
    assert torch.equal(alex(x, x), torch.zeros(3))
    d_xy, per = alex(x, y, return_per_layer=True)
    assert (d_xy > 0).all()
    torch.testing.assert_close(d_xy, alex(y, x))
    assert len(per) == 5 and all(p.shape == (3,) for p in per)
    torch.testing.assert_close(sum(per), d_xy)
    # [0, 1] inputs with normalize=True give the same number
    torch.testing.assert_close(alex(x * 0.5 + 0.5, y * 0.5 + 0.5, normalize=True), d_xy)


def test_gradient_reaches_input_and_parameters_are_frozen(alex):
    x, y = _images(n=2, size=32)
    x.requires_grad_(True)
    alex(x, y).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in alex.parameters())
    assert not alex.training


def test_strict_torchvision_names_and_shapes(tmp_path, no_default_weights, alex_files):
    m = LPIPS("alex", backbone_weights=alex_files[0], lin_weights=alex_files[1])
    expected = {f"features.{i}.{p}" for i in ALEX_CONVS for p in ("weight", "bias")}
    assert {f"features.{k}" for k in m.net.features.state_dict()} == expected
    good = _tv_state(ALEX_CONVS, seed=0)
    bad_cases = {
        "renamed": {("features.1.weight" if k == "features.0.weight" else k): v for k, v in good.items()},
        "missing": {k: v for k, v in good.items() if k != "features.10.bias"},
        "shape": {**good, "features.3.weight": torch.zeros(192, 64, 3, 3)},
        "foreign": {**good, "fc.weight": torch.zeros(2, 2)},
    }
    for name, state in bad_cases.items():
        path = tmp_path / f"{name}.pth"
        torch.save(state, path)
        with pytest.raises(ValueError, match="torchvision"):
            LPIPS("alex", backbone_weights=path, lin_weights=alex_files[1])


def test_missing_weights_raise_clear_error(no_default_weights):
    with pytest.raises(LPIPSWeightsNotFoundError) as info:
        LPIPS("alex")
    msg = str(info.value)
    for part in (
        "alexnet-owt-7be5be79.pth",
        str(no_default_weights / "checkpoints"),
        "alex.pth",
        "allow_random_backbone",
    ):
        assert part in msg, part
    with pytest.raises(LPIPSWeightsNotFoundError, match="does not exist"):
        LPIPS("alex", backbone_weights=no_default_weights / "nope.pth")


def test_trunk_from_torch_hub_cache_and_heads_from_lpips_package(tmp_path, no_default_weights, monkeypatch):
    ckpt = no_default_weights / "checkpoints" / "alexnet-owt-7be5be79.pth"
    ckpt.parent.mkdir(parents=True)
    torch.save(_tv_state(ALEX_CONVS, seed=3), ckpt)
    pkg = tmp_path / "site" / "lpips"
    (pkg / "weights" / "v0.1").mkdir(parents=True)
    torch.save(_lin_state(ALEX_CH), pkg / "weights" / "v0.1" / "alex.pth")
    monkeypatch.setattr(lp, "_lpips_package_dirs", lambda: [pkg])
    m = LPIPS("alex")
    assert m.is_calibrated
    assert m.sources == {"backbone": str(ckpt), "lin": str(pkg / "weights" / "v0.1" / "alex.pth")}


def test_offline_hub_repo_is_tried_and_reported(no_default_weights):
    with pytest.raises(LPIPSWeightsNotFoundError, match="e3dge-tests/no-such-lpips-repo"):
        LPIPS("alex", hub_repo_id="e3dge-tests/no-such-lpips-repo")


def test_allow_random_backbone_warns_and_is_uncalibrated(no_default_weights, alex_files):
    with pytest.warns(UncalibratedLPIPSWarning, match="NOT LPIPS"):
        m = LPIPS("alex", allow_random_backbone=True)
    assert m.is_calibrated is False
    assert m.sources["backbone"].startswith("random") and m.sources["lin"].startswith("ones")
    x, y = _images(n=2)
    d = m(x, y)
    assert torch.isfinite(d).all() and (d > 0).all()
    with pytest.warns(UncalibratedLPIPSWarning):  # a real trunk but no heads is still uncalibrated
        m2 = LPIPS("alex", backbone_weights=alex_files[0], allow_random_backbone=True)
    assert m2.is_calibrated is False and m2.sources["backbone"] == str(alex_files[0])
    # random init is deterministic and leaves the global RNG alone
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UncalibratedLPIPSWarning)
        m3 = LPIPS("alex", allow_random_backbone=True)
    assert torch.equal(torch.rand(1), before)
    assert torch.equal(m3.net.features[0].weight, m.net.features[0].weight)


def test_bad_head_file_and_bad_inputs(tmp_path, alex, alex_files):
    bad = tmp_path / "bad_lin.pth"
    torch.save({"lin0.model.0.weight": torch.zeros(1, 64, 1, 1)}, bad)
    with pytest.raises(ValueError, match="lin0.model.1.weight"):
        LPIPS("alex", backbone_weights=alex_files[0], lin_weights=bad)
    x, y = _images(n=2)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        alex(x[0], y[0])
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        alex(x[:, :1], y[:, :1])
    with pytest.raises(ValueError, match="same shape"):
        alex(x, y[:1])
    with pytest.raises(ValueError, match="H, W >= 31"):
        alex(x[..., :16, :16], y[..., :16, :16])
    with pytest.raises(ValueError, match="net must be one of"):
        LPIPS("squeeze")


def test_vgg16_loads_torchvision_layout(tmp_path, no_default_weights):
    trunk, lin = tmp_path / "vgg16-397923af.pth", tmp_path / "vgg.pth"
    torch.save(_tv_state(VGG_CONVS, seed=2), trunk)
    torch.save(_lin_state(VGG_CH), lin)
    m = LPIPS("vgg", backbone_weights=trunk, lin_weights=lin)
    assert m.is_calibrated and len(m.net.features) == 31
    x, y = _images(n=1, size=16)
    assert torch.equal(m(x, x), torch.zeros(1))
    assert m(x, y).item() > 0
