"""Errors shared across e3dge's command-line tools."""

from __future__ import annotations

import re

__all__ = ["UserError", "one_line", "refused_global"]


class UserError(Exception):
    """A problem with the user's input; the CLI prints it without a traceback."""


def one_line(text: object) -> str:
    """``str(text)`` with its lines joined by spaces, for messages that must stay on one line."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def refused_global(err: BaseException) -> str | None:
    """The global a ``torch.load(weights_only=True)`` refusal names (e.g. ``'posix.system'``), or None."""

    found = re.search(r"GLOBAL ([\w.]+)", str(err))
    return found.group(1) if found else None
