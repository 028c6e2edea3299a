"""``backchain rd``: read memory as 64-bit words with ASCII, like crash's ``rd``."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    common_options,
    json_flag,
    open_kernel,
    print_json,
    word_size_options,
)
from parsers.errors import DumpError

#: At most this many words per command (a mistyped count must not print gigabytes).
MAX_WORDS = 1 << 16


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("rd", help="read kernel memory: 64-bit words, hex and ASCII (crash rd)")
    p.add_argument("dump", help="dump file")
    p.add_argument("address", metavar="ADDR", help="hex address or symbol[+off]")
    p.add_argument("count", nargs="?", type=int, default=1, help="words to show (default 1)")
    p.add_argument(
        "-s",
        "--symbols",
        action="store_true",
        help="show words that are kernel addresses as symbols (64-bit words)",
    )
    p.add_argument(
        "-p",
        "--physical",
        action="store_true",
        help="ADDR is a physical (absolute) address, read from the dump as it is",
    )
    word_size_options(p, (8, 16, 32, 64))
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_rd)


def resolve_address(kernel: Any, text: str) -> int:
    """``ADDR`` of rd/struct: hex (with or without 0x), or ``symbol[+off]``.

    Raises:
        DumpError: neither.
    """
    name, plus, off = text.partition("+")
    if kernel.symbols is not None:
        base = kernel.symbols.address_of(name)
        if base is not None:
            try:
                return base + (int(off, 0) if plus else 0)
            except ValueError:
                raise DumpError(f"{text!r}: bad offset after '+'") from None
    try:
        return int(text, 16)
    except ValueError:
        raise DumpError(f"{text!r} is neither a hex address nor a symbol") from None


def cmd_rd(args: argparse.Namespace) -> int:
    """``backchain rd DUMP ADDR [COUNT] [-s]``."""
    from explorer.reports.memory import read_words

    kernel = open_kernel(args)
    if args.physical:
        try:
            address = int(args.address, 16)
        except ValueError:
            raise DumpError(f"-p: {args.address!r} is not a hex physical address") from None
    else:
        address = resolve_address(kernel, args.address)
    if not 0 < args.count <= MAX_WORDS:
        raise DumpError(f"COUNT must be 1..{MAX_WORDS}, not {args.count}")
    rows = read_words(kernel, address, args.count, args.bits // 8, args.physical)
    if args.json:
        print_json(
            {
                "address": f"0x{address:x}",
                "physical": args.physical,
                "bits": args.bits,
                "words": [
                    {
                        "address": f"0x{w.address:x}",
                        "value": f"0x{w.value:x}",
                        "symbol": w.symbol,
                    }
                    for w in rows
                ],
            }
        )
        return EXIT_OK
    print("\n".join(rd_lines(rows, args.symbols)))
    return EXIT_OK


def rd_lines(words: list[Any], symbols: bool) -> list[str]:
    """crash's layout: ``addr:  word word   ascii``, 16 bytes a line (two 64-bit words,
    four 32-bit, eight 16-bit, sixteen bytes)."""
    lines = []
    size = words[0].size if words else 8
    per_line = 16 // size
    width = max([2 * size] + [len(w.symbol) for w in words if symbols and w.symbol])
    for i in range(0, len(words), per_line):
        row = words[i : i + per_line]
        cells = [w.symbol if symbols and w.symbol else f"{w.value:0{2 * size}x}" for w in row]
        text = "".join(
            chr(b) if 32 <= b < 127 else "." for w in row for b in w.value.to_bytes(size, "big")
        )
        body = " ".join(f"{c:<{width}}" for c in cells)
        lines.append(f"{row[0].address:016x}:  {body:<{per_line * (width + 1) - 1}}   {text}")
    return lines
