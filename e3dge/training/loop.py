"""The one training loop: checkpointing, exact resume, RNG handling, logging and the progress bar.

Every stage (Stage I, the toy distillation, Stage II) is a :class:`TrainingTask`: it owns its
models, optimizer and losses and knows how to take one step; :class:`TrainingLoop` drives it
(the EDM / StyleGAN3 ``training_loop`` shape). What the loop guarantees for every stage:

- checkpoints are safetensors + JSON (:mod:`e3dge.training.checkpoint`), written atomically every
  ``checkpoint_every`` steps (at most a tenth of the run, so short runs checkpoint too), every
  ``checkpoint_minutes`` on one process, when stopped early, and at the end; a kill at any moment
  loses at most one interval;
- resume compares the saved options with the requested ones: equal -> resume; different -> a
  one-line diff and the choice ``resume="override"`` (continue with the new options) or
  ``resume="restart"`` (the old run is moved to ``previous-N/``, nothing is deleted);
- ``log.jsonl`` (one JSON object per step, every stage) is truncated to the resumed step, so a
  resumed run never duplicates rows; TensorBoard optionally;
- the caller's global state is left alone: the global torch RNG is forked and the thread count
  restored; the run's own global-RNG state travels in the checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

import torch
from tqdm.auto import tqdm

from e3dge.core.errors import UserError
from e3dge.core.files import write_text
from e3dge.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = [
    "TrainingTask",
    "LoopOptions",
    "LoopResult",
    "TrainingLoop",
    "OptionsChangedError",
    "RESUME_MODES",
    "CHECKPOINT",
    "LOG",
    "read_log",
    "options_diff",
    "restored_threads",
]

CHECKPOINT = "checkpoint.safetensors"
LOG = "log.jsonl"
LEGACY_CHECKPOINT = "checkpoint.pt"
RESUME_MODES = ("auto", "override", "restart")
RUN_FILES = (
    CHECKPOINT,
    LOG,
    "config.json",
    "train_config.json",
    "history.json",
    "runs.jsonl",
    "final",
    "samples",
    "tensorboard",
    LEGACY_CHECKPOINT,
)


class OptionsChangedError(UserError, ValueError):
    """The run folder holds a run made with other options."""


class TrainingTask(Protocol):
    """What a stage plugs into :class:`TrainingLoop`."""

    step: int  # optimisation steps taken so far

    def train_step(self) -> dict[str, Any]:
        """Take one optimisation step (advancing ``step``); return the floats/strings to log."""

    def state_dict(self) -> dict[str, Any]:
        """Shared state to checkpoint: weights, optimizer, averages (tensors + JSON values)."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def rng_state_dict(self) -> dict[str, Any]:
        """This process's random streams (each process of a multi-GPU run saves its own)."""

    def load_rng_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`rng_state_dict`."""

    def after_step(self, is_main: bool) -> None:
        """Per-step extras (sample grids, weight averages) after the step was logged."""

    def finish(self, out_dir: Path) -> None:
        """The run reached its last step: write ``out_dir/final`` (main process only)."""


@dataclass
class LoopOptions:
    """How the loop runs a task; ``options`` are what defines the run and are compared on resume."""

    out_dir: str | os.PathLike
    steps: int
    options: dict[str, Any]
    seed: int = 0  # seeds the run's global torch RNG (the caller's is left untouched)
    checkpoint_every: int = 100  # steps; capped at a tenth of the run
    checkpoint_minutes: float = 10.0  # also checkpoint after this much time (single process)
    resume: str = "auto"  # one of RESUME_MODES
    progress: bool = True
    desc: str = "train"
    postfix: tuple[str, ...] = ()  # log keys shown on the progress bar
    tensorboard: bool = False
    threads: int = 0  # torch CPU threads during the run (0 = leave as is); restored afterwards
    device: torch.device | str = "cpu"

    def __post_init__(self) -> None:
        if self.resume not in RESUME_MODES:
            raise ValueError(f"resume must be one of {RESUME_MODES}, got {self.resume!r}")
        if self.steps < 1 or self.checkpoint_every < 1 or self.checkpoint_minutes <= 0:
            raise ValueError(
                f"steps and checkpoint_every must be >= 1 and checkpoint_minutes > 0, got {self.steps}, {self.checkpoint_every}, {self.checkpoint_minutes}"
            )

    @property
    def interval(self) -> int:
        """Steps between checkpoints: ``checkpoint_every``, but at least ten checkpoints per run."""
        return max(1, min(self.checkpoint_every, math.ceil(self.steps / 10)))


@dataclass
class LoopResult:
    """What a :meth:`TrainingLoop.run` call did."""

    step: int
    finished: bool
    resumed_from: int
    checkpoints: list[int] = field(default_factory=list)


STATE_FIELDS: dict[str, tuple[type, ...]] = {
    "step": (int,),
    "elapsed_s": (int, float),
    "options": (dict,),
    "world_size": (int,),
    "task": (dict,),
    "rng": (dict,),
}
"""The top level of a run checkpoint and the JSON types each field must have."""


def check_state(path: Path, state: dict[str, Any]) -> None:
    """A one-line :class:`CheckpointError` naming ``path`` when a field is missing or of the wrong type (a damaged or
    hand-edited file), before anything is read from it."""
    for name, types in STATE_FIELDS.items():
        value = state.get(name)
        if isinstance(value, bool) or not isinstance(value, types) or (name in ("step", "world_size") and value < 0):
            got = "missing" if name not in state else f"a {type(value).__name__}"
            raise CheckpointError(
                f"{path}: damaged checkpoint ({name!r} must be {' or '.join(t.__name__ for t in types)}, got {got}); "
                "pass --restart to set it aside and start over"
            )


def options_diff(saved: dict[str, Any], asked: dict[str, Any]) -> list[str]:
    """``["lr: 0.001 -> 0.002", ...]`` for every key whose value differs (nested dicts flattened with dots)."""

    def flat(d: dict, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a, b = flat(json.loads(json.dumps(saved))), flat(json.loads(json.dumps(asked)))  # tuples vs lists compare equal
    unset = "(unset)"
    return [
        f"{k}: {a.get(k, unset)} -> {b.get(k, unset)}"
        for k in sorted(set(a) | set(b))
        if a.get(k, unset) != b.get(k, unset)
    ]


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a ``log.jsonl`` (a half-written last line from a kill is skipped)."""
    rows = []
    path = Path(path)
    if not path.is_file():
        return rows
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    return rows


class restored_threads:
    """Context manager: torch's CPU thread count set to ``n`` (0 = unchanged) and restored on exit."""

    def __init__(self, n: int) -> None:
        self.n, self.saved = n, torch.get_num_threads()

    def __enter__(self) -> None:
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc) -> None:
        torch.set_num_threads(self.saved)


class TrainingLoop:
    """Drives a :class:`TrainingTask`: resume, steps, logs, checkpoints, final export.

    ``accelerator`` (an ``accelerate.Accelerator``) makes it multi-process aware: the main process
    writes the checkpoint and logs, every process saves its own RNG streams.
    """

    def __init__(self, task: TrainingTask, opts: LoopOptions, accelerator=None) -> None:
        self.task, self.opts, self.acc = task, opts, accelerator
        self.out = Path(opts.out_dir)
        self.rank = accelerator.process_index if accelerator is not None else 0
        self.world = accelerator.num_processes if accelerator is not None else 1
        self.is_main = self.rank == 0
        self.elapsed = 0.0
        self.resumed_from = 0
        self._global_rng: torch.Tensor | None = None
        self._tb = None

    # ------------------------------------------------------------------ resume
    def resume(self) -> int:
        """Load the run folder's checkpoint when its options match (see ``LoopOptions.resume``); returns the step."""
        if self.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            stem, suffix = CHECKPOINT.rsplit(".", 1)
            for stale in self.out.glob(f".{stem}.*.tmp.{suffix}"):  # a kill during a write leaves these; ours to remove
                stale.unlink()
        self._barrier()
        path = self.out / CHECKPOINT
        if self.opts.resume == "restart" and self.is_main:
            self._set_aside()
        self._barrier()
        if not path.exists():
            if (self.out / LEGACY_CHECKPOINT).exists():
                raise CheckpointError(
                    f"{self.out / LEGACY_CHECKPOINT}: an old pickle checkpoint, which e3dge no longer reads "
                    "(loading it could run code); pass --restart to set it aside and start over, or use another --out"
                )
            self._start_fresh()
            return 0
        state = load_checkpoint(path)
        check_state(path, state)
        self._check_options(path, state)
        if state.get("world_size", 1) != self.world:
            raise CheckpointError(
                f"{path} was written by {state.get('world_size')} process(es); resume with the same number, or pass --restart"
            )
        try:
            self.task.load_state_dict(state["task"])
            rng = state["rng"] if self.rank == 0 else load_checkpoint(self._rank_file(self.rank))
            self.task.load_rng_state_dict(rng["task"])
            self._global_rng = rng["torch_global"]
        except (
            KeyError,
            TypeError,
            ValueError,
            AttributeError,
            RuntimeError,
        ) as err:  # a damaged or foreign state dict
            raise CheckpointError(
                f"{path}: does not match this run's models ({str(err).splitlines()[0][:200]}); pass --restart to set it aside"
            ) from None
        self.elapsed = float(state.get("elapsed_s", 0.0))
        self.resumed_from = int(state["step"])
        if self.task.step != self.resumed_from:
            raise CheckpointError(
                f"{path}: step {self.resumed_from} disagrees with the saved task state; pass --restart"
            )
        if self.is_main:
            self._truncate_log(self.resumed_from)
            self._record_session("resume")
        return self.resumed_from

    def _check_options(self, path: Path, state: dict) -> None:
        saved = state.get("options", {})
        diff = options_diff(saved, self.opts.options)
        if diff and self.opts.resume != "override":
            raise OptionsChangedError(
                f"{self.out} holds a run made with other options ({'; '.join(diff)}); rerun with --override to continue it "
                "with the new options, --restart to set it aside (moved to previous-N/) and start fresh, or use another --out"
            )

    def _start_fresh(self) -> None:
        if self.is_main:
            self._truncate_log(0)  # rows of a run killed before its first checkpoint
            self._record_session("start")
        self._global_rng = None

    def _set_aside(self) -> None:
        """Move the previous run's files into ``previous-N/`` (nothing is deleted)."""
        names = (*RUN_FILES, *getattr(self.task, "output_names", ()))  # a task may name more outputs of its own
        present = [self.out / name for name in names if (self.out / name).exists()] + sorted(
            self.out.glob("checkpoint.rank*.safetensors")
        )
        if not present:
            return
        n = 1
        while (self.out / f"previous-{n}").exists():
            n += 1
        dest = self.out / f"previous-{n}"
        dest.mkdir()
        for p in present:
            shutil.move(str(p), str(dest / p.name))
        print(f"restart: the previous run in {self.out} was moved to {dest}")

    def _record_session(self, kind: str) -> None:
        entry = {
            "event": kind,
            "step": self.resumed_from,
            "resume": self.opts.resume,
            "options": self.opts.options,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        with (self.out / "runs.jsonl").open("a") as f:
            f.write(json.dumps(entry) + "\n")

    # ------------------------------------------------------------------ the run
    def run(self, stop_at: int | None = None) -> LoopResult:
        """Train to ``opts.steps`` (or ``stop_at``); checkpoint on the way and at the end; final export when done."""
        opts, task = self.opts, self.task
        last = opts.steps if stop_at is None else min(stop_at, opts.steps)
        result = LoopResult(step=task.step, finished=False, resumed_from=self.resumed_from)
        self._tb = self._tensorboard() if opts.tensorboard and self.is_main else None
        with restored_threads(opts.threads), self._forked_global_rng():
            bar = tqdm(
                total=opts.steps, initial=task.step, desc=opts.desc, disable=not (opts.progress and self.is_main)
            )
            t0 = time.time() - self.elapsed
            last_save = time.time()
            while task.step < last:
                row = task.train_step()
                row["time_s"] = round(time.time() - t0, 2)
                self._log(row)
                task.after_step(self.is_main)
                bar.update(1)
                bar.set_postfix({k: f"{row[k]:.4g}" for k in opts.postfix if isinstance(row.get(k), float)})
                timed = self.world == 1 and time.time() - last_save > 60 * opts.checkpoint_minutes
                if task.step % opts.interval == 0 or task.step == last or timed:
                    self.elapsed = time.time() - t0
                    self.save()
                    result.checkpoints.append(task.step)
                    last_save = time.time()
            bar.close()
        if self._tb is not None:
            self._tb.close()
        result.step = task.step
        result.finished = task.step >= opts.steps
        if result.finished and self.is_main:
            task.finish(self.out)
        self._barrier()
        return result

    def save(self) -> None:
        """Atomic checkpoint of the task, every process's RNG streams and the run's global RNG."""
        rng = {"task": self.task.rng_state_dict(), "torch_global": torch.get_rng_state()}
        if self.rank > 0:
            save_checkpoint(self._rank_file(self.rank), rng)
        self._barrier()
        if self.is_main:
            state = {
                "step": self.task.step,
                "elapsed_s": self.elapsed,
                "options": self.opts.options,
                "world_size": self.world,
                "task": self.task.state_dict(),
                "rng": rng,
            }
            save_checkpoint(self.out / CHECKPOINT, state)
        self._barrier()

    @contextmanager
    def _forked_global_rng(self) -> Iterator[None]:
        """Run on the run's own global torch RNG (seeded, or restored from the checkpoint); the caller's comes back after."""
        device = torch.device(self.opts.device)
        with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
            if self._global_rng is not None:
                torch.set_rng_state(self._global_rng)
            else:
                torch.manual_seed(self.opts.seed)
            try:
                yield
            finally:
                self._global_rng = torch.get_rng_state()

    # ------------------------------------------------------------------ logs
    def _log(self, row: dict[str, Any]) -> None:
        if not self.is_main:
            return
        with (self.out / LOG).open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for k, v in row.items():
                if isinstance(v, float) and k != "time_s":
                    self._tb.add_scalar(f"{self.opts.desc}/{k}", v, row["step"])

    def _truncate_log(self, step: int) -> None:
        """Keep only rows up to ``step`` (later ones are redone after a resume); atomic rewrite."""
        path = self.out / LOG
        if not path.exists():
            return
        rows = [r for r in read_log(path) if r["step"] <= step]
        write_text(path, "".join(json.dumps(r) + "\n" for r in rows))

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            import warnings

            warnings.warn(
                "tensorboard is not installed (pip install tensorboard); logging to log.jsonl only", stacklevel=2
            )
            return None
        return SummaryWriter(str(self.out / "tensorboard"))

    # ------------------------------------------------------------------ processes
    def _rank_file(self, rank: int) -> Path:
        return self.out / f"checkpoint.rank{rank}.safetensors"

    def _barrier(self) -> None:
        if self.acc is not None:
            self.acc.wait_for_everyone()
