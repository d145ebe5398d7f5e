"""Fuzzing the training configs and CLIs: a clear one-line e3dge error or a valid config, never a traceback."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from e3dge.core.options import OptionError
from e3dge.toy.distill import DistillConfig
from e3dge.training.config import Stage1Config, load_stage1_config

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(string.printable, max_size=12),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
stage1_keys = st.sampled_from(
    sorted(Stage1Config.__dataclass_fields__) + ["stpes", "weights.code", "weights.geo", "lr_rate", "preset"]
)


def _one_line(err: Exception) -> str:
    msg = str(err)
    assert msg and "\n" not in msg and len(msg) < 600, msg
    return msg


@FUZZ
@given(st.dictionaries(stage1_keys, values, max_size=4))
def test_stage1_config_dicts_load_or_fail_with_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_text(
        json.dumps({"preset": "tiny-test", **{k: v for k, v in data.items() if k != "preset"}}, allow_nan=True)
    )
    try:
        cfg = load_stage1_config(str(path))
    except OptionError as err:
        assert str(path) in _one_line(err)
        return
    assert (
        isinstance(cfg, Stage1Config)
        and cfg.steps >= 1
        and cfg.batch_size >= 1
        and 8 <= cfg.neural_rendering_resolution <= 512
    )


@FUZZ
@given(
    st.sampled_from(
        [
            "steps",
            "batch_size",
            "lr",
            "neural_rendering_resolution",
            "num_surface_points",
            "checkpoint_every",
            "weights.code",
        ]
    ),
    st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=True), st.text(string.printable, max_size=8)),
)
def test_stage1_overrides_are_range_checked(key, value):
    try:
        cfg = load_stage1_config("tiny-test", {key: value})
    except OptionError as err:
        assert key.split(".")[-1] in _one_line(err)
        return
    got = cfg.weights.code if key == "weights.code" else getattr(cfg, key)
    assert got == value


CONFIG_FILE_ERRORS = [
    ('{"preset": "toy", "stpes": 3}', r"c.json: unknown Stage I option 'stpes'; did you mean 'steps'\?"),
    ('{"preset": "toy", "weights": {"geo_surface_dept": 1}}', "did you mean 'geo_surface_depth'"),
    ("{steps: 3", r"c.json: not valid JSON"),
    ('{"preset": "toyy"}', "unknown preset 'toyy'; did you mean 'toy'"),
    ("[1, 2]", "must hold a mapping"),
    (
        '{"preset": "toy", "neural_rendering_resolution": 100000}',
        "neural_rendering_resolution must be between 8 and 512, got 100000",
    ),
    ('{"preset": "toy", "render_with_predicted_pose": "yes"}', "render_with_predicted_pose must be true or false"),
]


@pytest.mark.parametrize("text,message", CONFIG_FILE_ERRORS)
def test_stage1_config_errors_name_the_file_and_suggest_the_key(tmp_path, text, message):
    bad = tmp_path / "c.json"
    bad.write_text(text)
    with pytest.raises(OptionError, match=message):
        load_stage1_config(str(bad))


@FUZZ
@given(
    st.sampled_from(
        [
            "steps",
            "batch_size",
            "lr",
            "train_resolution",
            "target_resolution",
            "points_per_head",
            "checkpoint_every",
            "threads",
            "seed",
        ]
    ),
    st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=True)),
)
def test_distill_options_are_range_checked(key, value):
    try:
        cfg = DistillConfig(**{key: value})
    except OptionError as err:
        assert key in _one_line(err)
        return
    assert getattr(cfg, key) == value and cfg.target_resolution % cfg.train_resolution == 0


@FUZZ
@given(
    st.sampled_from(
        [
            "--steps",
            "--seed",
            "--batch-size",
            "--lr",
            "--train-resolution",
            "--threads",
            "--checkpoint-every",
            "--average-every",
        ]
    ),
    st.one_of(st.integers(-(2**40), 2**40).map(str), st.sampled_from(["0", "-1", "nan", "inf", "1e9", "", "x", "3.5"])),
)
def test_toy_cli_numbers_give_exit_2_with_one_line_or_train(monkeypatch, capsys, flag, text):
    """Every numeric option: a valid value reaches the trainer; anything else is exit 2 and one line, no traceback."""
    import e3dge.toy.distill as distill
    from e3dge.cli import main

    seen = []
    monkeypatch.setattr(distill, "train_generator", lambda cfg, progress=True, resume="auto": seen.append(cfg))
    try:
        code = main(["toy", "train-generator", "--out", "/nonexistent-e3dge-out", flag, text, "--quiet"])
    except SystemExit as exit_:  # argparse: a usage line and one error line
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if code == 0:
        assert len(seen) == 1
    else:
        assert (
            code == 2
            and not seen
            and err.strip().splitlines()[-1].startswith(("e3dge", "usage"))
            or "error:" in err.strip().splitlines()[-1]
        )


@FUZZ
@given(
    st.sampled_from(["--steps", "--seed"]),
    st.one_of(st.integers(-(2**40), 2**40).map(str), st.sampled_from(["0", "-5", "nan", "x", ""])),
)
def test_stage1_cli_numbers_give_exit_2_with_one_line_or_train(monkeypatch, capsys, flag, text):
    import e3dge.cli.train as train_cli
    from e3dge.cli import main

    seen = []
    monkeypatch.setattr(train_cli, "train_stage1", lambda cfg, progress=True, resume="auto": seen.append(cfg))
    try:
        code = main(
            ["train", "stage1", "--config", "tiny-test", "--out", "/nonexistent-e3dge-out", flag, text, "--quiet"]
        )
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert (code == 0 and len(seen) == 1) or (code == 2 and not seen and "error:" in err.strip().splitlines()[-1])


def test_train_cli_refuses_a_changed_run_with_one_line(tmp_path, capsys):
    from e3dge.cli import main

    out = str(tmp_path / "run")
    assert main(["train", "stage1", "--config", "tiny-test", "--out", out, "--steps", "2", "--quiet"]) == 0
    assert main(["train", "stage1", "--config", "tiny-test", "--out", out, "--steps", "3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("e3dge train: error: ") and "steps: 2 -> 3" in err[-1] and "--override" in err[-1]
    assert (
        main(["train", "stage1", "--config", "tiny-test", "--out", out, "--steps", "3", "--quiet", "--override"]) == 0
    )
    from e3dge.training.loop import read_log

    assert [r["step"] for r in read_log(tmp_path / "run" / "log.jsonl")] == [1, 2, 3]
    (tmp_path / "run" / "checkpoint.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}garbage")
    assert main(["train", "stage1", "--config", "tiny-test", "--out", out, "--steps", "3", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "checkpoint.safetensors: unreadable checkpoint" in err[-1] and "--restart" in err[-1]


def test_training_leaves_the_callers_global_state_alone(tmp_path):
    """Global RNG and thread count are the caller's before and after a Stage I run and a distillation run."""
    import torch

    from e3dge.toy.distill import train_generator
    from e3dge.training.stage1 import train_stage1

    torch.manual_seed(99)
    rng, threads = torch.get_rng_state(), torch.get_num_threads()
    train_stage1(
        load_stage1_config("tiny-test", {"out_dir": str(tmp_path / "s1"), "steps": 1, "threads": 1}), progress=False
    )
    small = dict(batch_size=1, train_resolution=8, depth_samples=4, importance_samples=4, points_per_head=16, threads=1)
    train_generator(DistillConfig(out_dir=str(tmp_path / "d"), steps=1, **small), progress=False)
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads
