"""``python -m e3dge.faces IN OUT [--convention eg3d|ffhq] ...``: the ``e3dge align`` command on its own."""

from __future__ import annotations

import argparse
import sys

from e3dge.cli.align import _DESCRIPTION, configure_align_parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the align command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m e3dge.faces", description=_DESCRIPTION)
    configure_align_parser(parser)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
