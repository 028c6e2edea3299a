"""``backchain log``: the kernel log (dmesg) from the printk ring buffer."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    common_options,
    json_flag,
    open_kernel,
    print_json,
)


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("log", help="the kernel log (dmesg) from the printk ring buffer")
    p.add_argument("dump", help="dump file")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N messages")
    p.add_argument("--grep", metavar="TEXT", help="only messages containing TEXT")
    p.add_argument(
        "-i", "--ignore-case", action="store_true", help="--grep ignoring upper/lower case"
    )
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_log)


def cmd_log(args: argparse.Namespace) -> int:
    """``backchain log``: like ``dmesg`` (crash's ``log``)."""
    from explorer.model.printk import read_log

    kernel = open_kernel(args)
    lost: list[str] = []
    records = read_log(kernel, lost)
    for warning in lost:
        print(f"warning: {warning}", file=sys.stderr)
    if args.grep:
        if args.ignore_case:
            needle = args.grep.casefold()
            records = [r for r in records if needle in r.text.casefold()]
        else:
            records = [r for r in records if args.grep in r.text]
    if args.tail is not None:
        records = records[-args.tail :] if args.tail > 0 else []
    if args.json:
        print_json([{"seq": r.seq, "ts_nsec": r.ts_nsec, "text": r.text} for r in records])
        return EXIT_OK
    for r in records:
        print(r.line())
    return EXIT_OK
