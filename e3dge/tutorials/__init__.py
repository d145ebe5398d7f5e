"""Helpers behind the notebooks in ``notebooks/``: runtime detection, widget logic, exercise checks.

Notebook cells stay short; what they call lives here, so CI tests it like any other code.
"""

from e3dge.tutorials.checks import CheckResult, check_against, report
from e3dge.tutorials.runtime import COLAB_BADGE, REPOSITORY, Runtime, detect_runtime, show_video

__all__ = [
    "Runtime",
    "detect_runtime",
    "show_video",
    "REPOSITORY",
    "COLAB_BADGE",
    "CheckResult",
    "report",
    "check_against",
]
