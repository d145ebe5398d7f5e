"""e3dge.metrics.identity: pSp's IR-SE50 layout, pSp's crop, ID loss maths, weight search, dlib substitute.

Weights are random and written by the tests (no network). The expected state-dict names and shapes are
spelled out here as data taken from pSp's ``models/encoders/model_irse.py`` / ``helpers.py``
(``Backbone(112, 50, 'ir_se', drop_ratio=0.6)``), independently of e3dge's code.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import e3dge.metrics.identity as idm
from e3dge.metrics import (
    ArcFaceIRSE50,
    ArcFaceWeightsNotFoundError,
    IdentityLoss,
    IdentitySimilarity,
    IdentityTermOffWarning,
    UncalibratedIdentityWarning,
    make_identity_loss,
)

# --- official facts (pSp) -------------------------------------------------------------------------
# get_blocks(50): per unit (in_channel, depth, stride); body indices run 0..23 across the four stages.
UNITS = (
    [(64, 64, 2), (64, 64, 1), (64, 64, 1)]
    + [(64, 128, 2)]
    + [(128, 128, 1)] * 3
    + [(128, 256, 2)]
    + [(256, 256, 1)] * 13
    + [(256, 512, 2)]
    + [(512, 512, 1)] * 2
)
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
INPUT_LAYER = (
    [("input_layer.0.weight", (64, 3, 3, 3))]
    + [(f"input_layer.1.{b}", (64,)) for b in BN]
    + [("input_layer.2.weight", (64,))]
)
OUTPUT_LAYER = (
    [(f"output_layer.0.{b}", (512,)) for b in BN]
    + [("output_layer.3.weight", (512, 25088)), ("output_layer.3.bias", (512,))]
    + [(f"output_layer.4.{b}", (512,)) for b in BN]
)
# sha256 of "name shape" lines (shape as comma-separated ints, '' for scalars), official state_dict order
# (input_layer, output_layer, body), computed from pSp's own Backbone class.
OFFICIAL_SHA256 = "9cf42a7bac8c8506592b3e8dd412a96369e77955d5dddb4a2635078f596f3aa8"
OFFICIAL_N_KEYS = 397
OFFICIAL_N_PARAMS = 43_797_696  # trainable parameters (buffers excluded)


def _unit_keys(i: int, cin: int, cout: int) -> list[tuple[str, tuple[int, ...]]]:
    """bottleneck_IR_SE: res_layer = BN, conv3x3, PReLU, conv3x3, BN, SE(16); conv+BN shortcut iff cin != cout."""
    p = f"body.{i}."
    keys = [(p + f"res_layer.0.{b}", (cin,)) for b in BN]
    keys += [(p + "res_layer.1.weight", (cout, cin, 3, 3)), (p + "res_layer.2.weight", (cout,))]
    keys += [(p + "res_layer.3.weight", (cout, cout, 3, 3))]
    keys += [(p + f"res_layer.4.{b}", (cout,)) for b in BN]
    keys += [(p + "res_layer.5.fc1.weight", (cout // 16, cout, 1, 1))]
    keys += [(p + "res_layer.5.fc2.weight", (cout, cout // 16, 1, 1))]
    if cin != cout:
        shortcut = [(p + "shortcut_layer.0.weight", (cout, cin, 1, 1))]
        keys = shortcut + [(p + f"shortcut_layer.1.{b}", (cout,)) for b in BN] + keys
    return keys


def _expected() -> list[tuple[str, tuple[int, ...]]]:
    body = [k for i, (cin, cout, _) in enumerate(UNITS) for k in _unit_keys(i, cin, cout)]
    return [(n, () if n.endswith("num_batches_tracked") else s) for n, s in INPUT_LAYER + OUTPUT_LAYER + body]


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory) -> Path:
    """A random ``model_ir_se50.pth`` (seeded, non-trivial BatchNorm statistics) saved with torch.save."""
    torch.manual_seed(0)
    net = ArcFaceIRSE50()
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("arcface") / "model_ir_se50.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def id_loss(weights_file) -> IdentityLoss:
    return IdentityLoss(weights=weights_file)


@pytest.fixture
def no_default_weights(tmp_path, monkeypatch):
    """Empty torch hub dir, no env vars: nothing is found unless passed explicitly."""
    old = torch.hub.get_dir()
    hub = tmp_path / "torch_hub"
    torch.hub.set_dir(str(hub))
    monkeypatch.delenv(idm.WEIGHTS_ENV, raising=False)
    monkeypatch.delenv(idm.HUB_REPO_ENV, raising=False)
    yield hub
    torch.hub.set_dir(old)


def _images(n: int, size: int = 256, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1


# --- architecture ---------------------------------------------------------------------------------


def test_state_dict_equals_psp_backbone():
    net = ArcFaceIRSE50()
    got = [(k, tuple(v.shape)) for k, v in net.state_dict().items()]
    assert got == _expected()
    lines = "\n".join(f"{k} {','.join(map(str, s))}" for k, s in got)
    assert hashlib.sha256(lines.encode()).hexdigest() == OFFICIAL_SHA256
    assert len(got) == OFFICIAL_N_KEYS
    assert sum(p.numel() for p in net.parameters()) == OFFICIAL_N_PARAMS
    assert net.output_layer[1].p == 0.6 and net.output_layer[4].affine


# --- loss / similarity maths ----------------------------------------------------------------------


def test_loss_zero_for_identical_positive_for_different(id_loss):
    y = _images(2, seed=1)
    y_hat = torch.cat([y[:1], _images(1, seed=2)])  # sample 0 identical, sample 1 different
    assert id_loss.is_calibrated and id_loss.source.endswith("model_ir_se50.pth")
    per_sample = id_loss(y_hat, y, reduction="none")
    assert per_sample.shape == (2,)
    assert abs(float(per_sample[0])) < 1e-5  # also checks the unit norm: <f, f> = 1
    assert float(per_sample[1]) > 1e-4
    assert torch.allclose(id_loss(y_hat, y), per_sample.mean())
    sim = id_loss.similarity(y_hat[1:], y[1:])
    assert torch.allclose(sim, 1 - per_sample[1:], atol=1e-6) and not sim.requires_grad


def test_gradient_reaches_y_hat_not_y(id_loss):
    y_hat = _images(1, seed=3).requires_grad_(True)
    y = _images(1, seed=4).requires_grad_(True)
    id_loss(y_hat, y).backward()
    assert y_hat.grad is not None and torch.isfinite(y_hat.grad).all() and y_hat.grad.abs().sum() > 0
    assert y.grad is None
    assert all(p.grad is None and not p.requires_grad for p in id_loss.parameters())


def test_train_keeps_eval_mode(id_loss):
    id_loss.train()
    assert not id_loss.training and not any(m.training for m in id_loss.modules())


def test_crop_is_rows_35_223_cols_32_220(id_loss):
    base = _images(1, seed=5)[0]
    outside = base.clone()
    outside[:, :35] = 1.0
    outside[:, 223:] = -1.0
    outside[:, :, :32] = 0.5
    outside[:, :, 220:] = -0.5
    variants = [base, outside]
    for r, c in ((35, 100), (222, 100), (100, 32), (100, 219)):  # first/last rows and columns inside the crop
        v = base.clone()
        v[:, r, c] = -base[:, r, c] + 0.5
        variants.append(v)
    with torch.no_grad():
        emb = id_loss.embed(torch.stack(variants))
    assert torch.equal(emb[0], emb[1])
    for k in range(2, len(variants)):
        assert not torch.equal(emb[0], emb[k]), k


def test_other_sizes_resized_to_256(id_loss):
    big = _images(1, size=768, seed=6)
    by_area = big.reshape(1, 3, 256, 3, 256, 3).mean(dim=(3, 5))  # 3x3 area average, as pSp's face_pool
    small = _images(1, size=128, seed=7)
    with torch.no_grad():
        assert torch.allclose(id_loss.embed(big), id_loss.embed(by_area), atol=1e-5)
        assert id_loss.embed(small).shape == (1, 512)


# --- weight search --------------------------------------------------------------------------------


def test_path_env_and_cache_load_the_same_weights(weights_file, id_loss, no_default_weights, monkeypatch, tmp_path):
    x, y = _images(1, seed=8), _images(1, seed=9)
    monkeypatch.setenv(idm.WEIGHTS_ENV, str(weights_file))
    by_env = IdentitySimilarity()
    assert by_env.source == str(weights_file) and by_env.is_calibrated
    assert torch.equal(by_env(x, y), id_loss.similarity(x, y))  # id_loss was loaded with weights=path

    cache = no_default_weights / "checkpoints" / "model_ir_se50.pth"
    cache.parent.mkdir(parents=True)
    cache.symlink_to(weights_file)
    other = tmp_path / "elsewhere.pth"
    other.symlink_to(weights_file)
    monkeypatch.setenv(idm.WEIGHTS_ENV, str(other))
    assert idm.find_arcface_weights()[0] == other  # env var beats the cache
    assert idm.find_arcface_weights(weights_file)[0] == weights_file  # explicit path beats both
    monkeypatch.delenv(idm.WEIGHTS_ENV)
    assert idm.find_arcface_weights()[0] == cache


def test_file_without_num_batches_tracked_loads(weights_file, id_loss, tmp_path):
    from safetensors.torch import save_file

    state = {k: v for k, v in id_loss.facenet.state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "ir_se50.safetensors"
    save_file(state, str(path))
    net, source, calibrated = idm.load_arcface(path)
    assert calibrated and source == str(path)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items() if k in state)
    assert not net.training and not any(p.requires_grad for p in net.parameters())


def test_wrong_file_is_rejected(tmp_path):
    path = tmp_path / "not_arcface.pth"
    torch.save({"encoder.input_layer.0.weight": torch.zeros(64, 3, 3, 3)}, path)
    with pytest.raises(ValueError, match="is not pSp's model_ir_se50.pth"):
        IdentitySimilarity(weights=path)


def test_missing_weights_error_says_where_and_what(no_default_weights):
    with pytest.raises(ArcFaceWeightsNotFoundError) as info:
        IdentityLoss(hub_repo_id="nobody/no-such-arcface-repo")
    msg = str(info.value)
    for part in (
        "model_ir_se50.pth",
        f"${idm.WEIGHTS_ENV}: not set",
        str(no_default_weights / "checkpoints" / "model_ir_se50.pth"),
        "Hugging Face Hub nobody/no-such-arcface-repo",
        "weights=PATH",
        "allow_random_backbone=True",
    ):
        assert part in msg, part
    with pytest.raises(ArcFaceWeightsNotFoundError, match=idm.HUB_REPO_ENV):
        IdentityLoss()
    with pytest.raises(ArcFaceWeightsNotFoundError, match="does not exist"):
        IdentityLoss(weights=no_default_weights / "missing.pth")


def test_random_backbone_is_loud(no_default_weights):
    with pytest.warns(UncalibratedIdentityWarning, match="NOT identity similarities"):
        loss = IdentityLoss(allow_random_backbone=True)
    assert not loss.is_calibrated and "uncalibrated" in loss.source


def test_make_identity_loss_off_with_warning(no_default_weights, weights_file, monkeypatch):
    with pytest.warns(IdentityTermOffWarning, match="ID term is off"):
        assert make_identity_loss() is None
    with pytest.raises(ArcFaceWeightsNotFoundError):
        make_identity_loss(required=True)
    with pytest.raises(ArcFaceWeightsNotFoundError):  # a configured path that is missing is an error
        make_identity_loss(weights=no_default_weights / "missing.pth")
    monkeypatch.setenv(idm.WEIGHTS_ENV, str(weights_file))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(make_identity_loss(), IdentityLoss)


# --- dlib substitute ------------------------------------------------------------------------------


def test_dlib_missing_says_how_to_install(monkeypatch):
    from e3dge.faces.errors import MissingDependencyError

    def missing():
        raise MissingDependencyError("dlib model files not found")

    monkeypatch.setattr(idm, "face_recognizer", missing)
    monkeypatch.setattr(idm, "import_dlib", lambda: None)
    with pytest.raises(MissingDependencyError, match=r"pip install -e \.\[faces\]"):
        idm.DlibFaceIdentity()


@pytest.fixture(scope="module")
def dlib_id():
    pytest.importorskip("dlib")
    from e3dge.faces.errors import MissingDependencyError

    try:
        return idm.DlibFaceIdentity()
    except MissingDependencyError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # 512x512 RGB, one face near (180..266, 83..170)


def test_dlib_descriptor_and_similarity(dlib_id, astronaut):
    crop, shifted = astronaut[:256, 96:352], astronaut[:256, 112:368]  # 16 px horizontal shift
    as_tensor = torch.from_numpy(crop).permute(2, 0, 1).float() / 127.5 - 1  # [-1, 1] input
    emb = dlib_id.embed([crop, shifted, as_tensor])
    assert emb.shape == (3, 128) and torch.isfinite(emb).all()
    assert bool(((emb.norm(dim=1) > 0.5) & (emb.norm(dim=1) < 2.0)).all())
    a, b, t = emb[:1], emb[1:2], emb[2:]
    assert torch.allclose(t, a)
    assert torch.allclose(dlib_id.similarity(a, a), torch.ones(1))
    assert float(dlib_id.similarity(a, b)) > 0.98
    assert float(dlib_id.distance(a, b)) < 0.2 and bool(dlib_id.same_person(a, b))


def test_dlib_refuses_non_face(dlib_id, astronaut):
    from skimage import data

    from e3dge.faces.errors import NoFaceError

    coffee = data.coffee()[:256, :256]
    with pytest.raises(NoFaceError, match="box='full'"):
        dlib_id.embed(coffee)
    full = idm.DlibFaceIdentity(box="full")
    crop, shifted = astronaut[:256, 96:352], astronaut[:256, 112:368]
    emb = full.embed([crop, shifted, coffee])
    assert float(full.distance(emb[:1], emb[2:])) > float(full.distance(emb[:1], emb[1:2]))
