import collections
import io
import os
import pickle
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from official_format import write_official_snapshot

from e3dge.backbones.eg3d.network import PRETRAINED_EG3D, TriPlaneGenerator, eg3d_config, load_official_pkl
from e3dge.backbones.official_pickle import (
    UnreadablePickleError,
    UnsafePickleError,
    read_official_pickle,
    safe_load_pickle,
)
from e3dge.cli import main as cli_main
from e3dge.core.cameras import label_from_yaw_pitch
from e3dge.core.errors import UserError
from e3dge.core.hub import CheckpointFileError, CheckpointNotFoundError


def _render(G, seed=0):
    c = label_from_yaw_pitch(torch.tensor([0.2]), torch.tensor([-0.1]))
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        ws = G.mapping(z, c, truncation_psi=0.7)
        return G.synthesis(ws, c, deterministic=True)


def _assert_same_outputs(a, b):
    for key in ("image", "image_raw", "depth"):
        torch.testing.assert_close(getattr(a, key), getattr(b, key), atol=0, rtol=0)


@pytest.fixture
def official_pkl(tmp_path, tiny_generator):
    marker = tmp_path / "EXECUTED"
    G_train = TriPlaneGenerator(**tiny_generator.config)  # different weights, stored as 'G'
    path = write_official_snapshot(tiny_generator, tmp_path / "snapshot.pkl", marker, G_training=G_train)
    return path, marker


def test_official_pickle_loads_without_executing_anything(official_pkl, tiny_generator):
    path, marker = official_pkl
    assert "module_src" in path.read_bytes().decode("latin-1")
    G = load_official_pkl(path)
    assert not marker.exists(), "loading executed code from the pickle"
    _assert_same_outputs(_render(G), _render(tiny_generator))
    assert G.neural_rendering_resolution == tiny_generator.neural_rendering_resolution
    assert not G.training and not any(p.requires_grad for p in G.parameters())


def test_official_pickle_reads_g_ema_not_g(official_pkl, tiny_generator):
    path, _ = official_pkl
    ema = read_official_pickle(path, key="G_ema").state_dict
    train = read_official_pickle(path, key="G").state_dict
    key = "backbone.synthesis.b4.const"
    assert torch.equal(ema[key], tiny_generator.state_dict()[key])
    assert not torch.equal(ema[key], train[key])
    with pytest.raises(ValueError, match="'D_ema'"):
        read_official_pickle(path, key="D_ema")


class _Evil:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize(
    "payload,refused",
    [
        (_Evil(os.system, "echo pwned > /dev/null"), "system"),
        (_Evil(eval, "1 + 1"), "builtins.eval"),
        (_Evil(getattr, "text", "upper"), "builtins.getattr"),
        (_Evil(__import__("subprocess").Popen, ["true"]), "subprocess.Popen"),
        (_Evil(shutil.rmtree, "/nonexistent"), "shutil.rmtree"),
    ],
)
def test_malicious_pickles_are_refused(tmp_path, payload, refused):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": payload}))
    with pytest.raises(UnsafePickleError, match=refused) as info:
        load_official_pkl(path)
    assert "nothing in it was executed" in str(info.value)


def test_safe_loader_keeps_plain_data():
    data = {"a": torch.arange(3.0), "p": torch.nn.Parameter(torch.ones(2)), "s": {1, 2}, "t": (1, "x")}
    out = safe_load_pickle(io.BytesIO(pickle.dumps(data)))
    assert torch.equal(out["a"], data["a"]) and isinstance(out["p"], torch.nn.Parameter)
    assert out["s"] == {1, 2} and out["t"] == (1, "x")


def test_not_a_snapshot_is_a_clear_error(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(ValueError, match="not an official snapshot"):
        load_official_pkl(path)


def test_convert_cli_round_trip(official_pkl, tmp_path, capsys):
    path, marker = official_pkl
    out_dir = tmp_path / "converted"
    assert cli_main(["convert", "eg3d", str(path), str(out_dir)]) == 0
    assert (out_dir / "config.json").is_file() and (out_dir / "model.safetensors").is_file()
    assert "converted" in capsys.readouterr().out
    _assert_same_outputs(_render(TriPlaneGenerator.from_pretrained(out_dir)), _render(load_official_pkl(path)))
    assert not marker.exists()


def test_convert_cli_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["convert", "eg3d", str(tmp_path / "missing.pkl"), str(tmp_path / "o")]) == 2
    assert "no such file" in capsys.readouterr().err
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"G_ema": _Evil(os.system, "true")}))
    assert cli_main(["convert", "eg3d", str(evil), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "Traceback" not in err
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle at all")
    assert cli_main(["convert", "eg3d", str(junk), str(tmp_path / "o")]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_save_and_load_pretrained_folder(tiny_generator, tmp_path):
    tiny_generator.save_pretrained(tmp_path / "m")
    G = TriPlaneGenerator.from_pretrained(tmp_path / "m")
    _assert_same_outputs(_render(G), _render(tiny_generator))
    with pytest.raises(CheckpointNotFoundError, match="model.safetensors"):
        (tmp_path / "m" / "model.safetensors").unlink()
        TriPlaneGenerator.from_pretrained(tmp_path / "m")


def _make_offline_cache(cache: Path, repo_id: str, files: dict[str, Path], commit: str = "a" * 40) -> None:
    """Lay files out as huggingface_hub's cache does: refs/main -> snapshots/<commit>/..."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    for name, src in files.items():
        dst = repo / "snapshots" / commit / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, dst)


def test_hub_loading_from_offline_cache(tiny_generator, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = tiny_generator.save_pretrained(tmp_path / "export")
    cache = tmp_path / "hub"
    _make_offline_cache(cache, "e3dge/tiny-eg3d", {n: folder / n for n in ("config.json", "model.safetensors")})
    G = TriPlaneGenerator.from_pretrained("e3dge/tiny-eg3d", cache_dir=cache)
    _assert_same_outputs(_render(G), _render(tiny_generator))
    with pytest.raises(CheckpointNotFoundError, match="not in the local Hub cache"):
        TriPlaneGenerator.from_pretrained("e3dge/not-cached", cache_dir=cache)


def test_registry_name_loads_official_pickle_from_cache(official_pkl, tiny_generator, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path, marker = official_pkl
    source = PRETRAINED_EG3D["eg3d-ffhqrebalanced512-128"]
    cache = tmp_path / "hub"
    _make_offline_cache(cache, source.repo_id, {source.filename: path})
    G = TriPlaneGenerator.from_pretrained("eg3d-ffhqrebalanced512-128", cache_dir=cache)
    _assert_same_outputs(_render(G), _render(tiny_generator))
    assert not marker.exists()


def test_eg3d_pipeline_bundle_loads_the_official_pickle_on_the_asked_device(
    official_pkl, tiny_generator, tmp_path, monkeypatch
):
    """Regression: the pipeline passes ``device=`` to every component; the official-pickle path must accept it."""
    import huggingface_hub.constants

    from e3dge.inversion import InversionPipeline

    path, marker = official_pkl
    source = PRETRAINED_EG3D["eg3d-ffhqrebalanced512-128"]
    cache = tmp_path / "hub"
    _make_offline_cache(cache, source.repo_id, {source.filename: path})
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    pipe = InversionPipeline.from_pretrained("eg3d-ffhq", local_files_only=True, device="cpu")
    assert next(pipe.generator.parameters()).device.type == "cpu"
    _assert_same_outputs(_render(pipe.generator), _render(tiny_generator))
    assert not marker.exists()


# ---------------------------------------------------------------- hostile pickles beyond a plain bad global
class _Blob:
    """Pickles as ``torch.storage._load_from_bytes(data)``, as official snapshots store storages."""

    def __init__(self, data: bytes):
        self.data = data

    def __reduce__(self):
        import torch.storage

        return torch.storage._load_from_bytes, (self.data,)


def _legacy_storage_blob(numel: int) -> bytes:
    """A legacy ``torch.save`` of a 4-float storage whose pickle declares ``numel`` elements."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # TypedStorage is deprecated, and what official pickles hold
        torch.save(torch.zeros(4).storage(), buf, _use_new_zipfile_serialization=False)
    data = buf.getvalue()
    at = data.index(b"K\x04Nt")  # BININT1 4, NONE, TUPLE: the numel field of the storage record
    return data[:at] + b"J" + numel.to_bytes(4, "little") + data[at + 2 :]


def _tensor_blob_with_global() -> bytes:
    buf = io.BytesIO()
    torch.save({"x": _Evil(os.system, "echo pwned > /dev/null")}, buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    "payload,error,message",
    [
        (_Evil(eval, "__import__('os').system('true')"), UnsafePickleError, "'builtins.eval'"),
        (_Evil(collections.OrderedDict, 42), UnreadablePickleError, "TypeError"),
        (_Evil(np.dtype, "O"), None, None),  # harmless alone; next case uses it
        (
            _Evil(
                torch._utils._rebuild_tensor_v2,
                _Blob(_legacy_storage_blob(4)),
                0,
                (2**40,),
                (1,),
                False,
                collections.OrderedDict(),
            ),
            UnreadablePickleError,
            "a tensor of shape (1099511627776,) does not fit its storage of 4 values",
        ),
        (  # 4e9 values seen through zero strides: free to make, 15 GiB at the first copy
            _Evil(
                torch._utils._rebuild_tensor_v2,
                _Blob(_legacy_storage_blob(4)),
                0,
                (4_000_000_000,),
                (0,),
                False,
                collections.OrderedDict(),
            ),
            UnreadablePickleError,
            "a tensor of shape (4000000000,) does not fit its storage of 4 values",
        ),
        (_Blob(_legacy_storage_blob(2**31 - 1)), UnreadablePickleError, "storage has wrong byte size"),
        (_Blob(_tensor_blob_with_global()), UnsafePickleError, "a tensor storage references 'posix.system'"),
    ],
    ids=[
        "eval",
        "ordered-dict-hostile-args",
        "object-dtype",
        "huge-tensor-view",
        "zero-stride-view",
        "huge-declared-storage",
        "nested-os-system",
    ],
)
def test_hostile_pickles_are_refused_in_one_line(tmp_path, payload, error, message):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": payload}))
    if error is None:
        assert isinstance(safe_load_pickle(path)["G_ema"], np.dtype)
        return
    start = time.perf_counter()
    with pytest.raises(error) as info:
        load_official_pkl(path)
    assert time.perf_counter() - start < 1.0
    text = str(info.value)
    assert "\n" not in text and str(path) in text and message in text, text
    assert isinstance(info.value, UserError)


@pytest.mark.parametrize("args", [(np.dtype("O"),), (np.dtype("O"), b"\0" * 8)], ids=["no-data", "with-data"])
def test_numpy_object_scalar_is_refused(tmp_path, args):
    scalar = pickle.loads(pickle.dumps(np.float32(1)))  # the numpy scalar rebuilder, as pickles name it
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _Evil(type(scalar).__reduce__(scalar)[0], *args)}))
    with pytest.raises(
        UnreadablePickleError, match=r"cannot read it as an official snapshot pickle \(ValueError: "
    ) as info:
        load_official_pkl(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_cyclic_record_is_refused(tmp_path):
    from official_format import write_official_snapshot

    torch.manual_seed(0)
    G = TriPlaneGenerator(**eg3d_config("tiny"))
    G.config["mapping_kwargs"]["self"] = G.config["mapping_kwargs"]  # a cycle inside _init_kwargs
    path = write_official_snapshot(G, tmp_path / "cycle.pkl", tmp_path / "EXECUTED")
    with pytest.raises(UnreadablePickleError, match=r"G_ema is not a well-formed network record \(RecursionError"):
        load_official_pkl(path)


def test_official_dotted_module_names_are_converted(tmp_path, tiny_generator):
    from official_format import write_official_snapshot

    dotted = "training.superresolution.SuperresolutionHybrid2X"
    tiny_generator.rendering_kwargs["superresolution_module"] = dotted
    tiny_generator.config["rendering_kwargs"]["superresolution_module"] = dotted
    path = write_official_snapshot(tiny_generator, tmp_path / "s.pkl", tmp_path / "EXECUTED")
    assert dotted.encode() in path.read_bytes()
    G = load_official_pkl(path)
    assert G.rendering_kwargs["superresolution_module"] == "SuperresolutionHybrid2X"
    out = G.save_pretrained(tmp_path / "converted")
    assert "training." not in (out / "config.json").read_text()
    _assert_same_outputs(_render(TriPlaneGenerator.from_pretrained(out)), _render(G))


def test_mismatched_tensors_in_a_snapshot_are_one_line(tmp_path, tiny_generator):
    from official_format import write_official_snapshot

    tiny_generator.config["decoder_hidden"] = 9  # the constructor kwargs no longer match the stored tensors
    path = write_official_snapshot(tiny_generator, tmp_path / "s.pkl", tmp_path / "EXECUTED")
    with pytest.raises(
        CheckpointFileError,
        match=r"\(G_ema\): tensor 'decoder.net.0.weight' has shape \[8, 4\], the config needs \[9, 4\]",
    ):
        load_official_pkl(path)
