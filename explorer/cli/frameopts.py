"""The debug-information options of ``bt`` and ``check`` (argparse only: registering a
subcommand must not import pyelftools or construct, so ``--help`` stays fast)."""

from __future__ import annotations

import argparse


def lines_options(parser: argparse.ArgumentParser) -> None:
    """``-l/--lines`` and ``--source DIR``."""
    parser.add_argument(
        "-l",
        "--lines",
        action="store_true",
        help="source file:line and inline functions of each frame (needs --vmlinux with DWARF)",
    )
    parser.add_argument(
        "--source",
        metavar="DIR",
        help="kernel source tree: print each frame's source line (implies --lines)",
    )


def frame_options(parser: argparse.ArgumentParser) -> None:
    """``bt``'s frame options: ``-l/--lines``, ``--source``, ``-f/--full``, ``-F``."""
    lines_options(parser)
    parser.add_argument(
        "-f",
        "--full",
        action="store_true",
        help="each frame's words from its sp to the next frame, saved registers named",
    )
    parser.add_argument(
        "-F",
        dest="full_symbols",
        action="store_true",
        help="like -f, with values that are kernel symbols shown by name",
    )
