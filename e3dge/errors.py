"""Errors shared across e3dge's command-line tools."""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """A problem with the user's input; the CLI prints it without a traceback."""
