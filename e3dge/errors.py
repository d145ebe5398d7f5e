"""Errors shared across e3dge's command-line tools."""

from __future__ import annotations

__all__ = ["UserError", "one_line"]


class UserError(Exception):
    """A problem with the user's input; the CLI prints it without a traceback."""


def one_line(text: object) -> str:
    """``str(text)`` with its lines joined by spaces, for messages that must stay on one line."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())
