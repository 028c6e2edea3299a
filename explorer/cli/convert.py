"""``backchain convert``: any supported dump format to an ELF vmcore."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    json_flag,
    print_json,
    progress_printer,
    size_text,
)
from parsers.errors import DumpError


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("convert", help="convert a dump (kdump, s390, s390_ext, ELF) to ELF")
    p.add_argument("dump", nargs="+", help="dump file (all parts of a split kdump dump)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.elf", help="ELF file to write")
    p.add_argument("--force", action="store_true", help="overwrite OUT.elf if it exists")
    json_flag(p)
    p.set_defaults(handler=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    """``backchain convert DUMP -o OUT.elf [--force]``."""
    import os

    from parsers.dumps.dumpfile import open_dump
    from parsers.write.convert import convert_to_elf

    if os.path.exists(args.output) and not args.force:
        raise DumpError("exists; pass --force to overwrite it", args.output)
    dump = open_dump(args.dump if len(args.dump) > 1 else args.dump[0])
    progress = progress_printer("converting to ELF")
    fmt = getattr(dump, "format", "elf")
    origin = f"{fmt} " + ", ".join(os.path.basename(d) for d in args.dump)
    try:
        convert_to_elf(dump, args.output, progress=progress, origin=origin)
    finally:
        dump.close()
    size = os.path.getsize(args.output)
    notes = companion_lines(args.dump[0], args.output)
    if args.json:
        print_json({"output": args.output, "size": size, "from": origin, "notes": notes})
        return EXIT_OK
    print(f"wrote {args.output}: ELF vmcore, {size_text(size)}, converted from {origin}")
    for line in notes:
        print(line)
    return EXIT_OK


#: Companions copied beside the converted file (small); larger ones are only named.
_COPIED = ("System.map*", "*.profile.json", "profile.json")
_NAMED = ("vmlinux*",)


def companion_name(output: str, name: str) -> str:
    """A companion's name beside ``output``: prefixed with the output's own name
    (``b.elf`` + ``System.map.zst`` -> ``b.System.map.zst``), so a second dump converted
    into the same folder brings its own map instead of finding the first one's there."""
    from pathlib import Path

    return f"{Path(output).stem}.{name}"


def companion_lines(source: str, output: str) -> list[str]:
    """Copy the source dump's small companions (System.map, profile) beside ``output``,
    named after it (:func:`companion_name`), and say so; name the large ones (vmlinux) with
    the option that finds them."""
    import shutil
    from pathlib import Path

    src, dst = Path(source).resolve().parent, Path(output).resolve().parent
    if src == dst:
        found = sorted(p.name for pat in _COPIED + _NAMED for p in src.glob(pat) if p.is_file())
        if not found:
            return ["no System.map beside it: pass --map System.map when you open it"]
        return [f"companions beside it (found when you open it): {', '.join(found)}"]
    lines = []
    copied = []
    for pattern in _COPIED:
        for p in sorted(src.glob(pattern)):
            if p.is_file():
                target = dst / companion_name(output, p.name)
                shutil.copy2(p, target)  # named after OUT: it belongs to OUT, as OUT does
                copied.append(target.name)
    if copied:
        lines.append(f"copied beside it: {', '.join(copied)}")
    for pattern in _NAMED:
        for p in sorted(src.glob(pattern)):
            if p.is_file():
                lines.append(f"not copied (large): {p}; open with --vmlinux {p}")
    if not any(".System.map" in name for name in copied):
        lines.append("no System.map found: pass --map System.map when you open it")
    return lines
