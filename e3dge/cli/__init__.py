"""The ``e3dge`` command line: :mod:`e3dge.cli.main` builds the parser; one module per command group.

``align`` (faces), ``invert`` (the pipeline's commands), ``directions`` (editing), ``train`` (Stage I / II), ``toy``
(the toy lab's own training); ``demo``, ``orbit`` and ``convert`` live in ``main``.
"""

from e3dge.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
