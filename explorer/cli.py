"""The ``backchain`` command: argument parsing and printing (nothing else prints)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``backchain`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="backchain",
        description="Explore s390x Linux kernel dumps: stacks, pt_regs, lowcore, reliability.",
    )
    parser.add_argument("dump", nargs="?", help="dump file to open in the explorer")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    print(f"backchain: {args.dump or 'no dump'}", file=sys.stderr)
    return 0
