"""Hostile and mistaken checkpoint files: config.json, model.safetensors, missing paths, weight files.

Every refusal must be one line that names the file, arrive before the model is allocated, and be a
``UserError`` (so the CLI prints it without a traceback).
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file

from e3dge.backbones.eg3d.network import CONFIG_NAMES, FFHQ_RENDERING_KWARGS, TriPlaneGenerator, eg3d_config
from e3dge.backbones.eg3d.superresolution import (
    OFFICIAL_SUPERRESOLUTION_NAMES,
    SUPERRESOLUTION_MODULES,
    superresolution_name,
)
from e3dge.core.errors import UserError
from e3dge.core.hub import CheckpointFileError, CheckpointNotFoundError, read_config
from e3dge.core.options import OptionError
from e3dge.encoders import GlobalEncoder, encoder_config
from e3dge.metrics.lpips import WeightsFileError, read_state_dict
from e3dge.toy import TOY_ENCODER_DIR, TOY_WEIGHTS_DIR

REPO = Path(__file__).resolve().parents[1]
TOY_SHA256 = {
    "toy-eg3d": "b2985b8b3ff51cd08cf59dd85def0a9cb95374e14d93133fd2d2d7fa17d27088",
    "toy-e0": "999619ff3b1913585b4811bc8de3a331337b3ad5766cf81d0e1f7dc42fae0135",
}


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text, text
    return text


def _render(G, seed=0):
    from e3dge.core.cameras import label_from_yaw_pitch

    c = label_from_yaw_pitch(torch.tensor([0.2]), torch.tensor([-0.1]))
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.synthesis(G.mapping(z, c, truncation_psi=0.7), c, deterministic=True)


@pytest.fixture
def folder(tiny_generator, tmp_path):
    return tiny_generator.save_pretrained(tmp_path / "g")


def _edit_config(path: Path, edit) -> None:
    config = json.loads((path / "config.json").read_text())
    edit(config)
    (path / "config.json").write_text(json.dumps(config))


def _refuse_init(monkeypatch, cls):
    """Make building any torch module (so any allocation by ``cls``) fail the test."""

    def fail(self, *args, **kwargs):
        raise AssertionError(f"{cls.__name__} was built from a config that should have been refused")

    monkeypatch.setattr(torch.nn.Module, "__init__", fail)


# ---------------------------------------------------------------- valid configs keep loading
@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_presets_pass_validation_unchanged(name):
    config = eg3d_config(name)
    assert TriPlaneGenerator.validate_config(copy.deepcopy(config), "preset") == config


def test_official_dotted_names_and_encoder_presets_pass():
    official = eg3d_config("ffhq512-128")
    official["rendering_kwargs"]["superresolution_module"] = "training.superresolution.SuperresolutionHybrid8XDC"
    assert TriPlaneGenerator.validate_config(official)["rendering_kwargs"]["superresolution_module"].endswith("8XDC")
    for name in ("ir_se50", "tiny"):
        assert GlobalEncoder.validate_config(encoder_config(name)) == encoder_config(name)


def test_config_spec_describes_every_constructor_argument():
    for cls in (TriPlaneGenerator, GlobalEncoder):
        valid, required = cls.config_keys()
        assert set(cls.CONFIG_SPEC) == valid, cls.__name__
    assert TriPlaneGenerator.config_keys()[1] == {"z_dim", "c_dim", "w_dim", "img_resolution", "img_channels"}


def test_superresolution_names_are_e3dge_classes():
    assert set(SUPERRESOLUTION_MODULES) == {
        "SuperresolutionHybrid2X",
        "SuperresolutionHybrid4X",
        "SuperresolutionHybrid8XDC",
    }
    assert FFHQ_RENDERING_KWARGS["superresolution_module"] == "SuperresolutionHybrid8XDC"
    assert superresolution_name("training.superresolution.SuperresolutionHybrid2X") == "SuperresolutionHybrid2X"
    assert superresolution_name("SuperresolutionHybrid4X") == "SuperresolutionHybrid4X"
    assert len(OFFICIAL_SUPERRESOLUTION_NAMES) == 3
    for name in CONFIG_NAMES:
        assert "." not in eg3d_config(name)["rendering_kwargs"]["superresolution_module"]


def test_shipped_toy_assets_use_e3dge_names_and_unchanged_weights():
    for folder in (TOY_WEIGHTS_DIR, TOY_ENCODER_DIR):
        assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == TOY_SHA256[folder.name]
    config = read_config(TOY_WEIGHTS_DIR / "config.json")
    assert config["rendering_kwargs"]["superresolution_module"] == "SuperresolutionHybrid2X"
    assert "training." not in (TOY_WEIGHTS_DIR / "config.json").read_text()


def test_toy_generator_loads_identically_from_legacy_and_new_names(tmp_path):
    G = TriPlaneGenerator.from_pretrained(TOY_WEIGHTS_DIR, local_files_only=True)
    legacy = Path(shutil.copytree(TOY_WEIGHTS_DIR, tmp_path / "legacy"))
    _edit_config(
        legacy,
        lambda c: c["rendering_kwargs"].update(
            superresolution_module="training.superresolution.SuperresolutionHybrid2X"
        ),
    )
    old = TriPlaneGenerator.from_pretrained(legacy)
    assert old.config == G.config and old.rendering_kwargs["superresolution_module"] == "SuperresolutionHybrid2X"
    for (k, a), (k2, b) in zip(G.state_dict().items(), old.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    new, ref = _render(old), _render(G)
    for key in ("image", "image_raw", "depth"):
        assert torch.equal(getattr(new, key), getattr(ref, key))
    resaved = old.save_pretrained(tmp_path / "resaved")
    assert (
        json.loads((resaved / "config.json").read_text())["rendering_kwargs"]["superresolution_module"]
        == "SuperresolutionHybrid2X"
    )
    assert GlobalEncoder.from_pretrained(TOY_ENCODER_DIR, local_files_only=True).config == {
        k: v for k, v in read_config(TOY_ENCODER_DIR / "config.json").items() if k != "_class_name"
    }


# ---------------------------------------------------------------- config.json
@pytest.mark.parametrize(
    "edit,suggested",
    [
        (lambda c: c.update(z_dmi=c.pop("z_dim")), "did you mean 'z_dim'?"),
        (lambda c: c.update(plane_resolutoin=c.pop("plane_resolution")), "did you mean 'plane_resolution'?"),
        (
            lambda c: c["rendering_kwargs"].update(ray_strat=c["rendering_kwargs"].pop("ray_start")),
            "did you mean 'ray_start'?",
        ),
        (lambda c: c["mapping_kwargs"].update(num_layer=2), "did you mean 'num_layers'?"),
        (lambda c: c["sr_kwargs"].update(widht=8), "did you mean 'width'?"),
        (
            lambda c: c["rendering_kwargs"].update(superresolution_module="SuperresolutionHybrid2x"),
            "did you mean 'SuperresolutionHybrid2X'?",
        ),
    ],
)
def test_misspelled_keys_are_refused_with_the_closest_name(folder, monkeypatch, edit, suggested):
    _edit_config(folder, edit)
    _refuse_init(monkeypatch, TriPlaneGenerator)
    with pytest.raises(OptionError) as info:
        TriPlaneGenerator.from_pretrained(folder)
    text = _one_line(info.value)
    assert text.startswith(str(folder / "config.json") + ": ") and suggested in text


def test_misspelled_encoder_key(tmp_path):
    path = GlobalEncoder(**encoder_config("tiny", num_ws=8, w_dim=8)).save_pretrained(tmp_path / "e")
    _edit_config(path, lambda c: c.update(stem_widht=c.pop("stem_width")))
    with pytest.raises(OptionError, match="unknown config key 'stem_widht'; did you mean 'stem_width'"):
        GlobalEncoder.from_pretrained(path)


HUGE = [
    ("img_resolution", lambda c: c.update(img_resolution=2**20), "img_resolution must be"),
    ("plane_resolution", lambda c: c.update(plane_resolution=100000), "plane_resolution must be"),
    ("channel_max", lambda c: c.update(channel_max=10**7), "channel_max must be"),
    ("channel_base", lambda c: c.update(channel_base=10**12), "channel_base must be"),
    ("z_dim", lambda c: c.update(z_dim=10**7), "z_dim must be"),
    ("plane_channels", lambda c: c.update(plane_channels=10**6), "plane_channels must be"),
    ("mapping", lambda c: c["mapping_kwargs"].update(num_layers=10**6), "mapping_kwargs.num_layers must be"),
    ("sr width", lambda c: c["sr_kwargs"].update(width=10**7), "sr_kwargs.width must be"),
    (
        "depth",
        lambda c: c["rendering_kwargs"].update(depth_resolution=10**6),
        "rendering_kwargs.depth_resolution must be",
    ),
    ("huge int", lambda c: c.update(w_dim=10**300), "w_dim must be"),
]


@pytest.mark.parametrize("key,edit,message", HUGE, ids=[h[0] for h in HUGE])
def test_huge_sizes_are_refused_before_allocating(folder, monkeypatch, key, edit, message):
    _edit_config(folder, edit)
    _refuse_init(monkeypatch, TriPlaneGenerator)
    start = time.perf_counter()
    with pytest.raises(OptionError) as info:
        TriPlaneGenerator.from_pretrained(folder)
    assert time.perf_counter() - start < 1.0
    assert message in _one_line(info.value) and str(folder / "config.json") in str(info.value)


def test_huge_encoder_is_refused_by_its_size(tmp_path, monkeypatch):
    path = GlobalEncoder(**encoder_config("tiny", num_ws=8, w_dim=8)).save_pretrained(tmp_path / "e")
    _edit_config(path, lambda c: c.update(widths=[1024] * 4, units=[64] * 4, w_dim=2048, num_ws=64, input_size=1024))
    _refuse_init(monkeypatch, GlobalEncoder)
    start = time.perf_counter()
    with pytest.raises(OptionError, match=r"about \d+ M parameters, more than the 537 M"):
        GlobalEncoder.from_pretrained(path)
    assert time.perf_counter() - start < 1.0


def test_largest_accepted_generator_is_bounded():
    big = eg3d_config("ffhq512-128")
    big.update(
        z_dim=2048,
        w_dim=2048,
        channel_base=1 << 20,
        channel_max=1024,
        plane_resolution=512,
        plane_channels=128,
        decoder_hidden=1024,
    )
    big["mapping_kwargs"] = {"num_layers": 16, "layer_features": 2048, "embed_features": 2048}
    big["sr_kwargs"] = {"width": 1024}
    TriPlaneGenerator.validate_config(big)
    with torch.device("meta"):
        n = sum(t.numel() for t in TriPlaneGenerator(**big).state_dict().values())
    assert 100e6 < n < 400e6  # about 1.3 GB in float32 at most


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c.update(z_dim="16"), "z_dim must be an integer between 1 and 2048, got '16'"),
        (lambda c: c.update(z_dim=True), "z_dim must be an integer between 1 and 2048, got True"),
        (lambda c: c.update(z_dim=16.0), "z_dim must be an integer"),
        (lambda c: c.update(img_channels=4), "img_channels must be one of 3, got 4"),
        (lambda c: c.update(c_dim=True), "c_dim must be one of 0, 25, got True"),
        (lambda c: c["rendering_kwargs"].update(ray_start=3.5), "ray_start (3.5) must be less than ray_end (3.3)"),
        (
            lambda c: c["rendering_kwargs"].update(sr_antialias=1),
            "rendering_kwargs.sr_antialias must be true or false, got 1",
        ),
        (lambda c: c["rendering_kwargs"].update(avg_camera_pivot=[0, 0]), "avg_camera_pivot must be a list of 3 items"),
        (lambda c: c["rendering_kwargs"].pop("box_warp"), "missing config key 'rendering_kwargs.box_warp'"),
        (lambda c: c.pop("w_dim"), "missing config key 'w_dim'"),
        (lambda c: c.update(rendering_kwargs=[1, 2]), "rendering_kwargs must be an object"),
        (
            lambda c: c.update(img_resolution=512),
            "SuperresolutionHybrid2X makes 128x128 images, but img_resolution is 512",
        ),
        (lambda c: c.update(plane_resolution=512), "channel_base (256) must be >= plane_resolution (512)"),
        (lambda c: c.update(plane_resolution=24), "plane_resolution must be a power of two"),
        (lambda c: c.update(_class_name="GlobalEncoder"), "holds a 'GlobalEncoder', not a TriPlaneGenerator"),
    ],
)
def test_wrong_types_and_values_are_one_line(folder, monkeypatch, edit, message):
    _edit_config(folder, edit)
    _refuse_init(monkeypatch, TriPlaneGenerator)
    with pytest.raises(OptionError) as info:
        TriPlaneGenerator.from_pretrained(folder)
    assert message in _one_line(info.value)


def test_nan_is_refused_in_files_and_in_dicts(folder):
    text = (folder / "config.json").read_text().replace('"ray_start": 2.25', '"ray_start": NaN')
    (folder / "config.json").write_text(text)
    with pytest.raises(CheckpointFileError, match="not valid JSON .NaN is not a JSON number"):
        TriPlaneGenerator.from_pretrained(folder)
    (folder / "config.json").write_text(text.replace('"ray_start": NaN', '"ray_start": 1e400'))  # parses as inf
    with pytest.raises(
        OptionError, match="rendering_kwargs.ray_start must be a finite number between 0 and 10000, got inf"
    ):
        TriPlaneGenerator.from_pretrained(folder)
    config = eg3d_config("tiny")
    config["rendering_kwargs"]["box_warp"] = math.nan
    with pytest.raises(OptionError, match="rendering_kwargs.box_warp must be a finite number"):
        TriPlaneGenerator.validate_config(config)


@pytest.mark.parametrize(
    "content,message",
    [
        (b'{"z_dim": 16,', "not valid JSON (Expecting property name enclosed in double quotes at line 1 column 14)"),
        (b"\xff\xfe garbage", "not UTF-8 text"),
        (b"[1, 2, 3]", "expected a JSON object of constructor arguments, got a list"),
        (b"[" * 100000 + b"]" * 100000, "not valid JSON"),
        (b'{"pad": "' + b"x" * (2 << 20) + b'"}', "too large for a model config"),
    ],
    ids=["truncated", "binary", "list", "deep", "huge"],
)
def test_unreadable_config_json_is_one_line(folder, content, message):
    (folder / "config.json").write_bytes(content)
    with pytest.raises(CheckpointFileError) as info:
        TriPlaneGenerator.from_pretrained(folder)
    text = _one_line(info.value)
    assert text.startswith(str(folder / "config.json")) and message in text and len(text) < 400


# ---------------------------------------------------------------- model.safetensors
def _header(path: Path) -> tuple[dict, bytes]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8 : 8 + n]), raw[8 + n :]


def _with_header(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def _hostile_weights(kind: str, path: Path, state: dict) -> None:
    header, data = _header(path)
    name = "backbone.synthesis.b4.const"
    if kind == "huge header length":
        path.write_bytes(struct.pack("<Q", 2**60) + path.read_bytes()[8:])
    elif kind == "header not JSON":
        path.write_bytes(struct.pack("<Q", 12) + b"{not json!!}" + data)
    elif kind == "offsets past EOF":
        begin, _ = header[name]["data_offsets"]
        header[name]["data_offsets"] = [begin, begin + 10**9]
        path.write_bytes(_with_header(header, data))
    elif kind == "shape and offsets disagree":
        header[name]["shape"] = [10**6, 10**6]
        path.write_bytes(_with_header(header, data))
    elif kind == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "wrong shape":
        save_file({**state, name: torch.zeros(2, 4, 4)}, str(path))
    elif kind == "wrong dtype":
        save_file({**state, name: state[name].to(torch.int32)}, str(path))
    elif kind == "missing tensor":
        save_file({k: v for k, v in state.items() if k != name}, str(path))
    elif kind == "extra tensor":
        save_file({**state, "evil": torch.zeros(1)}, str(path))


WEIGHT_CASES = {
    "huge header length": "not a valid safetensors file (Error while deserializing header: header too large)",
    "header not JSON": "not a valid safetensors file (Error while deserializing header: invalid JSON in header",
    "offsets past EOF": "not a valid safetensors file",
    "shape and offsets disagree": "not a valid safetensors file",
    "truncated": "not a valid safetensors file",
    "empty": "not a valid safetensors file (Error while deserializing header: header too small)",
    "wrong shape": "tensor 'backbone.synthesis.b4.const' has shape [2, 4, 4], the config needs [16, 4, 4]",
    "wrong dtype": "tensor 'backbone.synthesis.b4.const' is stored as I32, expected F32",
    "missing tensor": "tensors do not match the model its config describes: 1 missing ('backbone.synthesis.b4.const')",
    "extra tensor": "tensors do not match the model its config describes: 1 unexpected ('evil')",
}


@pytest.mark.parametrize("kind", list(WEIGHT_CASES))
def test_hostile_safetensors_are_one_line(folder, tiny_generator, kind):
    path = folder / "model.safetensors"
    _hostile_weights(kind, path, {k: v.contiguous() for k, v in tiny_generator.state_dict().items()})
    with pytest.raises(CheckpointFileError) as info:
        TriPlaneGenerator.from_pretrained(folder)
    text = _one_line(info.value)
    assert text.startswith(f"{path}: ") and WEIGHT_CASES[kind] in text, text


def test_half_precision_weights_still_load(folder, tiny_generator):
    tiny_generator.save_pretrained(folder, dtype=torch.float16)
    G = TriPlaneGenerator.from_pretrained(folder)
    assert all(p.dtype == torch.float32 for p in G.parameters())


# ---------------------------------------------------------------- paths
def test_missing_local_paths_say_no_such_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in (str(tmp_path / "nope"), "./nope", "~/e3dge-no-such-folder-4f2a", "runs/exp1/final", tmp_path / "nope"):
        with pytest.raises(CheckpointNotFoundError) as info:
            TriPlaneGenerator.from_pretrained(name)
        assert (
            _one_line(info.value)
            == f"{name}: no such folder (a checkpoint folder holds config.json and model.safetensors)"
        )
        assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, UserError)
    with pytest.raises(CheckpointNotFoundError, match=r"^weights\.safetensors: no such file"):
        GlobalEncoder.from_pretrained("weights.safetensors")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(CheckpointNotFoundError, match="is a file, not a checkpoint folder"):
        GlobalEncoder.from_pretrained(tmp_path / "file.txt")
    with pytest.raises(CheckpointNotFoundError, match="not a Hub repo id of the form 'owner/name'"):
        GlobalEncoder.from_pretrained("not a hub id")
    with pytest.raises(CheckpointNotFoundError, match="not in the local Hub cache"):
        GlobalEncoder.from_pretrained("owner/model-not-cached", cache_dir=tmp_path / "hub")


# ---------------------------------------------------------------- property test over configs
@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return TriPlaneGenerator(**eg3d_config("tiny")).save_pretrained(tmp_path_factory.mktemp("tiny"))


_VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-4, 600),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.lists(st.integers(-3, 300), max_size=4),
    st.dictionaries(st.text(max_size=6), st.integers(), max_size=2),
    st.sampled_from(
        ["SuperresolutionHybrid2X", "training.superresolution.SuperresolutionHybrid4X", "orthogonal", "softplus"]
    ),
)


def _paths(config: dict) -> list[tuple[str, ...]]:
    out = []
    for key, value in config.items():
        out.append((key,))
        if isinstance(value, dict):
            out += [(key, k) for k in value]
    return out


@st.composite
def mutated_configs(draw):
    config = copy.deepcopy(eg3d_config("tiny"))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(config)))
        parent = config if len(path) == 1 else config[path[0]]
        if not isinstance(parent, dict) or path[-1] not in parent:
            continue
        action = draw(st.sampled_from(["value", "rename", "delete"]))
        if action == "value":
            parent[path[-1]] = draw(_VALUES)
        elif action == "rename":
            key = path[-1]
            i = draw(st.integers(0, len(key) - 1))
            parent[key[:i] + key[i + 1 :] or "x"] = parent.pop(key)
        else:
            del parent[path[-1]]
    return config


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=mutated_configs())
@example(config=eg3d_config("tiny"))  # unchanged: must load
@example(config={**eg3d_config("tiny"), "decoder_hidden": 9})  # valid value, tensors no longer match
def test_property_mutated_configs_load_or_fail_in_one_line(tiny_dir, config):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.symlink(tiny_dir / "model.safetensors", folder / "model.safetensors")
        (folder / "config.json").write_text(json.dumps({"_class_name": "TriPlaneGenerator", **config}, allow_nan=True))
        try:
            G = TriPlaneGenerator.from_pretrained(folder)
        except UserError as err:
            text = _one_line(err)
            assert text.startswith(str(folder)) and len(text) < 1000
            assert isinstance(err, (OptionError, CheckpointFileError))
        else:
            assert isinstance(G, TriPlaneGenerator) and not G.training
            assert G.config["z_dim"] == config["z_dim"] and G.num_ws == 6


# ---------------------------------------------------------------- weight readers in e3dge/metrics
class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pth_with_a_pickled_os_system_is_refused(tmp_path):
    marker, path = tmp_path / "EXECUTED", tmp_path / "alex.pth"
    torch.save({"lin0.model.1.weight": torch.zeros(1), "x": _Evil(marker)}, path)
    with pytest.raises(WeightsFileError) as info:
        read_state_dict(path)
    text = _one_line(info.value)
    assert text.startswith(f"{path}: refused to load it: it references '") and "system'" in text
    assert "nothing in it was executed" in text and not marker.exists()


def test_corrupt_weight_files_are_one_line(tmp_path):
    pth, st_file = tmp_path / "w.pth", tmp_path / "w.safetensors"
    pth.write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(WeightsFileError, match=r"not a readable PyTorch weights file") as info:
        read_state_dict(pth)
    _one_line(info.value)
    st_file.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    with pytest.raises(WeightsFileError, match="not a valid safetensors file") as info:
        read_state_dict(st_file)
    _one_line(info.value)
    torch.save([torch.zeros(1)], pth)
    with pytest.raises(WeightsFileError, match="is not a state dict of tensors .got list."):
        read_state_dict(pth)


def test_every_torch_load_in_loaders_is_weights_only():
    calls = 0
    for path in sorted((REPO / "e3dge").glob("*/*.py")):
        if path.parent.name not in ("metrics", "backbones", "encoders"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                calls += 1
                flags = {k.arg: k.value for k in node.keywords}
                assert isinstance(flags.get("weights_only"), ast.Constant) and flags["weights_only"].value is True, (
                    f"{path}:{node.lineno}"
                )
    assert calls >= 2  # lpips.read_state_dict and the nested storages of official pickles
