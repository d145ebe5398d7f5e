"""A tiny training task for the loop's tests (importable by a subprocess that gets killed)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch

from e3dge.training.loop import LoopOptions, TrainingLoop


class RegressionTask:
    """Linear regression with dropout (global RNG), Adam and a data stream (own generator)."""

    output_names = ("final.txt",)

    def __init__(self, seed: int = 0, fail_at: int | None = None, sleep: float = 0.0) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.3), torch.nn.Linear(16, 1))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-2)
        self.gen = torch.Generator().manual_seed(seed + 1)
        self.target = torch.linspace(-1, 1, 8)
        self.step, self.fail_at, self.sleep, self.finished = 0, fail_at, sleep, False

    def train_step(self) -> dict[str, Any]:
        if self.fail_at is not None and self.step == self.fail_at:
            raise KeyboardInterrupt(f"killed before step {self.step + 1}")
        x = torch.randn(32, 8, generator=self.gen)
        loss = ((self.model(x)[:, 0] - x @ self.target) ** 2).mean()  # dropout draws from the global RNG
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.step += 1
        time.sleep(self.sleep)
        return {"step": self.step, "loss": float(loss.detach())}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.opt.state_dict(), "step": self.step}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.step = int(state["step"])

    def rng_state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state()}

    def load_rng_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])

    def after_step(self, is_main: bool) -> None:
        pass

    def finish(self, out_dir: Path) -> None:
        self.finished = True
        (out_dir / "final.txt").write_text(
            " ".join(f"{v:.9e}" for v in torch.cat([p.flatten() for p in self.model.parameters()]).tolist())
        )


def run(
    out: str | Path, steps: int = 40, every: int = 4, resume: str = "auto", lr: float = 1e-2, **task_kw
) -> tuple[RegressionTask, TrainingLoop]:
    """Build the task and the loop over ``out`` (resuming what is there), run it, return both."""
    task = RegressionTask(**task_kw)
    for group in task.opt.param_groups:
        group["lr"] = lr
    loop = TrainingLoop(
        task,
        LoopOptions(
            out, steps, {"lr": lr, "steps": steps}, seed=7, checkpoint_every=every, resume=resume, progress=False
        ),
    )
    loop.resume()
    loop.run()
    return task, loop


if __name__ == "__main__":  # python tests/loop_task.py OUT SLEEP: a slow run for the kill test
    run(sys.argv[1], sleep=float(sys.argv[2]))
