"""``backchain convert``: any supported dump format to an ELF vmcore."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    progress_printer,
)
from parsers.errors import DumpError


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("convert", help="convert a dump (kdump, s390, s390_ext, ELF) to ELF")
    p.add_argument("dump", nargs="+", help="dump file (all parts of a split kdump dump)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.elf", help="ELF file to write")
    p.add_argument("--force", action="store_true", help="overwrite OUT.elf if it exists")
    p.set_defaults(handler=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    """``backchain convert DUMP -o OUT.elf [--force]``."""
    import os

    from parsers.convert import convert_to_elf
    from parsers.dumps import open_dump

    if os.path.exists(args.output) and not args.force:
        raise DumpError("exists; pass --force to overwrite it", args.output)
    dump = open_dump(args.dump if len(args.dump) > 1 else args.dump[0])
    progress = progress_printer("converting to ELF")
    try:
        convert_to_elf(dump, args.output, progress=progress)
    finally:
        dump.close()
    return EXIT_OK
