"""The code style is a check, not a convention: ``ruff check`` and ``ruff format --check`` (pyproject's config) pass on the repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("ruff")


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_passes(command):
    r = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "e3dge", "tests", "benchmarks", "spaces_app.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:] + "\nrun: ruff check --fix . && ruff format ."
