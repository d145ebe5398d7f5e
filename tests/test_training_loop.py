"""The one training loop: safe checkpoints, exact resume after kills, log truncation, option checks."""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from e3dge.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from e3dge.training.loop import CHECKPOINT, LOG, LoopOptions, OptionsChangedError, options_diff, read_log

sys.path.insert(0, str(Path(__file__).parent))
from loop_task import RegressionTask, run  # noqa: E402


def weights(task: RegressionTask) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in task.model.parameters()])


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted 40-step run everything is compared against."""
    out = tmp_path_factory.mktemp("straight")
    task, loop = run(out)
    return task, read_log(out / LOG)


# ------------------------------------------------------------------ checkpoint files
def test_checkpoint_round_trips_nested_state_without_pickle(tmp_path):
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(model.parameters(), betas=(0.8, 0.95))
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    state = {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "step": 3,
        "rng": torch.Generator().manual_seed(5).get_state(),
        "nested": {"t": (1, 2.5, None, "x"), 4: [torch.zeros(0), True]},
    }
    save_checkpoint(tmp_path / "c.safetensors", state)
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert back["step"] == 3 and back["nested"]["t"] == (1, 2.5, None, "x") and back["nested"][4][1] is True
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.95)
    assert sorted(back["optimizer"]["state"]) == [0, 1]  # int keys survive JSON
    for k, v in state["model"].items():
        assert torch.equal(back["model"][k], v)
    torch.testing.assert_close(
        back["optimizer"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"], rtol=0, atol=0
    )
    assert torch.equal(back["rng"], state["rng"])
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(back["optimizer"])  # loads into a real optimizer
    assert not any(p.name.endswith(".tmp") or ".tmp" in p.name for p in tmp_path.iterdir())


@pytest.mark.parametrize(
    "damage", ["truncated", "garbage", "huge_header", "not_e3dge", "missing_tensor", "metadata_not_json"]
)
def test_damaged_or_hostile_checkpoints_are_one_line_errors(tmp_path, damage):
    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, {"w": torch.ones(4), "step": 1})
    raw = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(raw[: len(raw) - 7])
    elif damage == "garbage":
        path.write_bytes(os.urandom(300))
    elif damage == "huge_header":
        path.write_bytes(struct.pack("<Q", 2**60) + b"{}")
    else:
        from safetensors.torch import save_file

        meta = {
            "not_e3dge": {"format": "pt"},
            "missing_tensor": {
                "format": "pt",
                "e3dge": "e3dge-checkpoint-1",
                "state": json.dumps({"w": {"__tensor__": "nope"}}),
            },
            "metadata_not_json": {"format": "pt", "e3dge": "e3dge-checkpoint-1", "state": "{not json"},
        }[damage]
        save_file({"w": torch.ones(2)}, str(path), metadata=meta)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg and len(msg) < 400


def test_a_pickled_legacy_checkpoint_is_refused_and_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "checkpoint.pt").write_bytes(pickle.dumps({"model": Evil()}))
    with pytest.raises(CheckpointError, match=r"checkpoint.pt: an old pickle checkpoint.*--restart"):
        run(tmp_path)
    assert not marker.exists()
    task, _ = run(tmp_path, resume="restart", steps=4)  # set aside, not deleted
    assert (tmp_path / "previous-1" / "checkpoint.pt").is_file() and task.step == 4 and not marker.exists()


# ------------------------------------------------------------------ kills and resume
@pytest.mark.parametrize("kill_at", [0, 1, 4, 5, 11, 39])
def test_kill_at_any_step_then_resume_gives_bitwise_equal_weights_and_no_duplicate_rows(tmp_path, straight, kill_at):
    ref_task, ref_rows = straight
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, fail_at=kill_at)
    rows = read_log(tmp_path / LOG)
    assert [r["step"] for r in rows] == list(range(1, kill_at + 1))  # logged up to the kill
    task, loop = run(tmp_path)
    assert loop.resumed_from == kill_at // 4 * 4  # the last checkpoint: at most one interval (4 steps) lost
    assert torch.equal(weights(task), weights(ref_task))
    rows = read_log(tmp_path / LOG)
    assert [r["step"] for r in rows] == list(range(1, 41))
    assert [r["loss"] for r in rows] == [r["loss"] for r in ref_rows]
    assert task.finished and (tmp_path / "final.txt").read_text() == _final_text(ref_task)


def _final_text(task: RegressionTask) -> str:
    return " ".join(f"{v:.9e}" for v in weights(task).tolist())


def test_sigkill_of_a_real_process_resumes_exactly(tmp_path, straight):
    """A process killed with SIGKILL mid-run (possibly mid-write) resumes to the same weights."""
    ref_task, ref_rows = straight
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("loop_task.py")), str(tmp_path), "0.05"], env=env
    )
    deadline = time.time() + 120
    while len(read_log(tmp_path / LOG)) < 10 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    killed_at = len(read_log(tmp_path / LOG))
    assert 10 <= killed_at < 40
    task, loop = run(tmp_path)
    assert killed_at - 4 <= loop.resumed_from <= killed_at
    assert torch.equal(weights(task), weights(ref_task))
    assert [r["step"] for r in read_log(tmp_path / LOG)] == list(range(1, 41))
    assert not list(tmp_path.glob("*.tmp*"))


def test_a_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, straight, monkeypatch):
    import e3dge.training.checkpoint as ckpt

    real_save = ckpt.save_file
    calls = {"n": 0}

    def dying_save(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 3:  # the third checkpoint: half a file, then the process dies
            Path(filename).write_bytes(b"\x00" * 10)
            raise KeyboardInterrupt("killed while writing")
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(ckpt, "save_file", dying_save)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path)
    monkeypatch.setattr(ckpt, "save_file", real_save)
    assert load_checkpoint(tmp_path / CHECKPOINT)["step"] == 8  # the second one, intact
    task, loop = run(tmp_path)
    assert loop.resumed_from == 8 and torch.equal(weights(task), weights(straight[0]))
    assert not list(tmp_path.glob("*.tmp*"))  # the stale half-written file was removed


def test_short_runs_checkpoint_and_long_intervals_are_capped():
    assert LoopOptions(".", 3, {}, checkpoint_every=100).interval == 1
    assert LoopOptions(".", 600, {}, checkpoint_every=50).interval == 50
    assert LoopOptions(".", 200, {}, checkpoint_every=1000).interval == 20
    with pytest.raises(ValueError, match="resume must be one of"):
        LoopOptions(".", 3, {}, resume="maybe")


# ------------------------------------------------------------------ options on resume
def test_resume_with_other_options_is_refused_with_a_diff_then_override_or_restart(tmp_path):
    run(tmp_path, steps=8, every=2)
    with pytest.raises(OptionsChangedError) as info:
        run(tmp_path, steps=8, every=2, lr=2e-2)
    msg = str(info.value)
    assert "lr: 0.01 -> 0.02" in msg and "--override" in msg and "--restart" in msg and "\n" not in msg
    task, loop = run(tmp_path, steps=12, every=2, lr=2e-2, resume="override")
    assert loop.resumed_from == 8 and task.step == 12
    assert [r["step"] for r in read_log(tmp_path / LOG)] == list(range(1, 13))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    task, loop = run(tmp_path, steps=4, every=2, resume="restart")
    moved = tmp_path / "previous-1"
    assert {p.name: p.read_bytes() for p in moved.iterdir()} == before  # nothing lost
    assert loop.resumed_from == 0 and [r["step"] for r in read_log(tmp_path / LOG)] == [1, 2, 3, 4]
    events = [json.loads(line)["event"] for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert events == ["start"]  # the new run's history; the old one travelled to previous-1/


def test_options_diff_flattens_nested_values():
    assert options_diff({"a": 1, "w": {"x": 1.0}}, {"a": 1, "w": {"x": 2.0}, "b": True}) == [
        "b: (unset) -> True",
        "w.x: 1.0 -> 2.0",
    ]
    assert options_diff({"t": (1, 2)}, {"t": [1, 2]}) == []


def test_the_callers_global_rng_and_thread_count_are_left_alone(tmp_path):
    torch.manual_seed(1234)
    threads = torch.get_num_threads()
    rng = torch.get_rng_state()
    task = RegressionTask()
    from e3dge.training.loop import TrainingLoop

    loop = TrainingLoop(task, LoopOptions(tmp_path, 3, {}, threads=1, progress=False))
    loop.resume()
    loop.run()
    assert torch.equal(torch.get_rng_state(), rng) and torch.get_num_threads() == threads
