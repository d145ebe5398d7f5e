"""Range-checked option values for the CLI and config readers: one line that says what is allowed.

``int_in(lo, hi)`` / ``float_in(lo, hi)`` build argparse ``type=`` callables; ``check_range`` is the
same check for values read from files (dataclass ``__post_init__``, config.json). A bad value
raises :class:`OptionError` (a ``UserError`` and a ``ValueError``), so the CLI prints one line.
"""

from __future__ import annotations

import argparse
import difflib
import math
import re
from typing import Callable, Iterable

from e3dge.core.errors import UserError

__all__ = ["OptionError", "check_range", "check_keys", "closest", "int_in", "float_in"]


class OptionError(UserError, ValueError):
    """An option or config value outside what e3dge accepts."""


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _bounds(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between {_num(lo)} and {_num(hi)}"
    return f">= {_num(lo)}" if lo is not None else f"<= {_num(hi)}"  # type: ignore[arg-type]


def check_range(
    name: str, value, lo: float | None = None, hi: float | None = None, *, integer: bool = False, where: str = ""
) -> None:
    """Raise :class:`OptionError` unless ``lo <= value <= hi`` (and an int when ``integer``); ``where`` names the file."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise OptionError(f"{prefix}{name} must be {kind} {_bounds(lo, hi)}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise OptionError(f"{prefix}{name} must be a finite number {_bounds(lo, hi)}, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise OptionError(f"{prefix}{name} must be {_bounds(lo, hi)}, got {value!r}")


def closest(name: str, valid: Iterable[str]) -> str | None:
    """The valid name nearest to a misspelled ``name`` (``None`` when nothing is close)."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return match[0] if match else None


def check_keys(keys: Iterable[str], valid: Iterable[str], *, what: str = "option", where: str = "") -> None:
    """Raise :class:`OptionError` for the first unknown key, suggesting the closest valid name."""
    valid = sorted(valid)
    prefix = f"{where}: " if where else ""
    for key in sorted(set(keys) - set(valid)):
        hint = closest(key, valid)
        suggestion = f"did you mean {hint!r}?" if hint else f"valid: {', '.join(valid)}"
        raise OptionError(f"{prefix}unknown {what} {key!r}; {suggestion}")


def _typed(parse: Callable[[str], float], lo: float | None, hi: float | None, integer: bool) -> Callable[[str], float]:
    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if integer else 'a number'} {_bounds(lo, hi)}, got {text!r}"
            ) from None
        try:
            check_range("value", value, lo, hi, integer=integer)
        except OptionError:
            raise argparse.ArgumentTypeError(f"must be {_bounds(lo, hi)}, got {text!r}") from None
        return value

    convert.__name__ = "int" if integer else "float"  # argparse names the type in its messages
    return convert


def _decimal_int(text: str) -> int:
    """Plain decimal digits (``int`` would also take ``1_0`` as 10 and non-ASCII digits)."""
    if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text):
        raise ValueError(text)
    return int(text)


def _decimal_float(text: str) -> float:
    """A number as people write it (``float`` would also take ``1_0`` as 10)."""
    if "_" in text or not text.isascii():
        raise ValueError(text)
    return float(text)


def int_in(lo: int | None = None, hi: int | None = None) -> Callable[[str], int]:
    """argparse ``type=``: an integer with ``lo <= value <= hi`` (argparse prints a one-line usage error otherwise)."""
    return _typed(_decimal_int, lo, hi, True)  # type: ignore[return-value]


def float_in(lo: float | None = None, hi: float | None = None) -> Callable[[str], float]:
    """argparse ``type=``: a finite float with ``lo <= value <= hi``."""
    return _typed(_decimal_float, lo, hi, False)
