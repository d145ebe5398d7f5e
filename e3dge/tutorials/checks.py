"""Exercise checks: tell the learner, in one line, whether an answer is right and what to look at if not."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["CheckResult", "report", "check_against", "PASS_MARK", "FAIL_MARK", "PENDING_MARK"]

PASS_MARK = "✅"
FAIL_MARK = "❌"


@dataclass(frozen=True)
class CheckResult:
    """Outcome of one exercise check."""

    exercise: str
    passed: bool
    message: str

    def __str__(self) -> str:
        return f"{PASS_MARK if self.passed else FAIL_MARK} {self.exercise}: {self.message}"


def report(exercise: str, passed: bool, message: str) -> CheckResult:
    """Print and return the check's verdict (notebooks show the line; tests read ``passed``)."""
    result = CheckResult(exercise, bool(passed), message)
    print(result)
    return result


PENDING_MARK = "⏳"


def check_against(exercise: str, learner_fn, reference_fn, *args, atol: float = 1e-5, hint: str = "") -> CheckResult:
    """Call the learner's function and the reference on the same inputs and compare (⏳ while unanswered, ❌ with a hint when wrong)."""

    try:
        got = learner_fn(*args)
    except NotImplementedError:
        got = None
    if got is None:
        result = CheckResult(exercise, False, "not answered yet (replace `raise NotImplementedError`)")
        print(f"{PENDING_MARK} {exercise}: {result.message}")
        return result
    want = reference_fn(*args)
    got_t, want_t = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
    if got_t.shape != want_t.shape:
        return report(exercise, False, f"shape {tuple(got_t.shape)}, expected {tuple(want_t.shape)}. {hint}".strip())
    err = float((got_t - want_t).abs().max()) if got_t.numel() else 0.0
    if err <= atol:
        return report(exercise, True, f"matches e3dge's implementation (max difference {err:.1e})")
    return report(exercise, False, f"off by up to {err:.3g} (tolerance {atol:g}). {hint}".strip())
