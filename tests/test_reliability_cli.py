"""The ``e3dge`` command line under bad input: one line on stderr, the right exit code, never a traceback."""

from __future__ import annotations

import importlib
import os
import pickle
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from e3dge.backbones.eg3d.network import TriPlaneGenerator, eg3d_config
from e3dge.cli import main
from e3dge.core.errors import UserError
from e3dge.core.hub import CheckpointFileError

CLI_MAIN = importlib.import_module("e3dge.cli.main")  # the module (e3dge.cli.main is also the name of its function)


def _err_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.rstrip("\n")


@pytest.fixture
def tiny_demo(monkeypatch, tiny_generator):
    """``e3dge demo`` with the tiny test generator instead of the toy one."""
    monkeypatch.setattr(CLI_MAIN, "default_offline_generator", lambda seed=0: (tiny_generator, "tiny test generator"))
    return tiny_generator


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--frames", "0", "argument --frames: must be between 1 and 10000, got '0'"),
        ("--frames", "-3", "argument --frames: must be between 1 and 10000, got '-3'"),
        ("--frames", "10001", "argument --frames: must be between 1 and 10000, got '10001'"),
        ("--frames", "many", "argument --frames: expected an integer between 1 and 10000, got 'many'"),
        ("--fps", "0", "argument --fps: must be between 1 and 240, got '0'"),
        ("--fps", "1000", "argument --fps: must be between 1 and 240, got '1000'"),
        ("--seed", "4294967296", "argument --seed: must be between 0 and 4294967295, got '4294967296'"),
        ("--seed", "1.5", "argument --seed: expected an integer between 0 and 4294967295, got '1.5'"),
    ],
)
def test_orbit_options_are_range_checked(tmp_path, capsys, option, value, message):
    assert main(["orbit", "--out", str(tmp_path), option, value]) == 2
    line = _err_line(capsys)
    assert line == f"e3dge orbit: error: {message} (see e3dge orbit --help)"
    assert not (tmp_path / "frames").exists()


def test_negative_seed_given_with_equals_is_refused(tmp_path, capsys):
    assert main(["orbit", "--out", str(tmp_path), "--seed=-1"]) == 2
    assert "argument --seed: must be between 0 and" in _err_line(capsys)


def test_unknown_command_and_help(capsys):
    assert main(["nonsense"]) == 2
    assert _err_line(capsys).startswith("e3dge: error: argument command: invalid choice: 'nonsense'")
    assert main(["--help"]) == 0
    assert "--debug" in capsys.readouterr().out


def test_user_errors_from_loaders_are_one_line_exit_2(tmp_path, monkeypatch, capsys):
    raised = [
        CheckpointFileError("/x/model.safetensors: not a valid safetensors file (header too large)"),
        ValueError("a loader's ValueError\nwith a second line"),
        FileNotFoundError(2, "No such file or directory", "/missing/weights.pth"),
    ]
    for err in raised:

        def boom(seed=0, err=err):
            raise err

        monkeypatch.setattr(CLI_MAIN, "default_offline_generator", boom)
        assert main(["orbit", "--out", str(tmp_path)]) == 2
        line = _err_line(capsys)
        assert line.startswith("e3dge orbit: error: ")
    assert line == "e3dge orbit: error: [Errno 2] No such file or directory: '/missing/weights.pth'"


def test_internal_errors_say_so_and_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    def bug(*args, **kwargs):
        raise RuntimeError("tensor sizes do not match\n(second line)")

    monkeypatch.setattr(CLI_MAIN, "default_offline_generator", bug)
    assert main(["orbit", "--out", str(tmp_path)]) == 1
    line = _err_line(capsys)
    assert line.startswith(
        "e3dge orbit: internal error (RuntimeError: tensor sizes do not match (second line)); this is a bug"
    )
    assert "rerun as 'e3dge --debug orbit ...'" in line
    with pytest.raises(RuntimeError, match="tensor sizes"):
        main(["--debug", "orbit", "--out", str(tmp_path)])


def test_debug_shows_user_errors_as_exceptions(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        main(["--debug", "convert", "eg3d", str(tmp_path / "missing.pkl"), str(tmp_path / "o")])


def test_ctrl_c_is_interrupted_130(tmp_path, monkeypatch, capsys):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(CLI_MAIN, "default_offline_generator", interrupt)
    assert main(["orbit", "--out", str(tmp_path)]) == 130
    assert _err_line(capsys) == "e3dge orbit: interrupted"


class _Reduce:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _raw(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _write(path: Path, obj) -> Path:
    return _raw(path, pickle.dumps(obj))


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: _write(p, {"G_ema": _Reduce(eval, "1+1")}), "refused to load"),
        (lambda p: _raw(p, pickle.dumps({"G_ema": [1, 2, 3]})[:-7]), "cannot read it as an official snapshot pickle"),
        (lambda p: _raw(p, os.urandom(64)), "cannot read it"),
        (lambda p: _raw(p, b""), "cannot read it as an official snapshot pickle (EOFError"),
        (
            lambda p: _write(p, {"G_ema": _Reduce(collections_ordered_dict(), 42)}),
            "cannot read it as an official snapshot pickle (TypeError",
        ),
        (lambda p: _write(p, [1, 2]), "not an official snapshot with a 'G_ema' entry (found list)"),
    ],
    ids=["eval", "truncated", "random", "empty", "hostile-args", "list"],
)
def test_convert_refuses_corrupt_inputs_in_one_line(tmp_path, capsys, make, message):
    src = make(tmp_path / "in.pkl")
    assert main(["convert", "eg3d", str(src), str(tmp_path / "out")]) == 2
    line = _err_line(capsys)
    assert line.startswith("e3dge convert: error: ") and message in line and len(line) < 600
    assert not (tmp_path / "out").exists()


def collections_ordered_dict():
    import collections

    return collections.OrderedDict


def test_convert_refuses_a_snapshot_with_huge_sizes(tmp_path, tiny_generator, capsys, monkeypatch):
    from official_format import write_official_snapshot

    G = TriPlaneGenerator(**eg3d_config("tiny"))
    G.config["plane_resolution"] = 100000
    path = write_official_snapshot(G, tmp_path / "big.pkl", tmp_path / "EXECUTED")
    monkeypatch.setattr(torch.nn.Module, "__init__", lambda *a, **k: pytest.fail("allocated before checking"))
    assert main(["convert", "eg3d", str(path), str(tmp_path / "out")]) == 2
    line = _err_line(capsys)
    assert f"{path} (G_ema): plane_resolution must be a power of two between 4 and 512, got 100000" in line
    assert not (tmp_path / "EXECUTED").exists()


# ---------------------------------------------------------------- property test over demo options
_OPTION_VALUES = st.one_of(
    st.integers(-5, 4),
    st.integers(10_001, 2**70),
    st.integers(-(2**70), -1),
    st.sampled_from(["", " ", "1e3", "0x10", "nan", "3.0", "--", "-", "٣", "1_0", "\n", "2\n"]),
    st.text(max_size=8),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(frames=_OPTION_VALUES, fps=_OPTION_VALUES, seed=_OPTION_VALUES)
@example(frames=2, fps=24, seed=7)  # always exercise one successful run
@example(frames=1, fps=1, seed=0)
@example(frames="1_0", fps=24, seed=0)  # Python's int() reads this as 10; the CLI takes plain digits only
@example(frames=1, fps=1, seed="--")  # Python 3.11's argparse turns --seed=-- into an unchecked empty list
def test_property_demo_options_fail_in_one_line_or_run(tiny_demo, capsys, frames, fps, seed):
    out = Path(tempfile.mkdtemp())
    try:
        code = main(["orbit", "--out", str(out), f"--frames={frames}", f"--fps={fps}", f"--seed={seed}"])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        if code == 0:
            assert 1 <= int(frames) <= 4 and (out / "orbit.mp4").is_file() and "error" not in captured.err
        else:
            assert code == 2 and captured.err.count("\n") == 1, captured.err
            assert captured.err.startswith("e3dge orbit: error: argument --")
    finally:
        shutil.rmtree(out)


def test_demo_into_the_same_folder_with_another_seed_says_it_renders_again(tiny_demo, tmp_path, capsys):
    assert main(["orbit", "--out", str(tmp_path), "--frames", "2", "--seed", "1"]) == 0
    capsys.readouterr()
    assert main(["orbit", "--out", str(tmp_path), "--frames", "2", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "were made with other options (seed: 1 -> 2); rendered them again" in out and "resumed" not in out
    assert main(["orbit", "--out", str(tmp_path), "--frames", "2", "--seed", "2"]) == 0
    assert "resumed: reused 2 of 2 frames already on disk" in capsys.readouterr().out
