"""``backchain dis``: disassemble kernel code as the dump holds it (crash's ``dis``)."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import EXIT_OK, common_options, json_flag, open_kernel, print_json
from parsers.errors import DumpError


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "dis",
        help="disassemble a function or address (code as patched at run time, from the dump)",
    )
    p.add_argument("dump", help="dump file")
    p.add_argument("where", metavar="ADDR|FUNC", help="hex address, function name or FUNC+OFFSET")
    p.add_argument(
        "count", type=int, nargs="?", help="list this many instructions (right after ADDR)"
    )
    way = p.add_mutually_exclusive_group()
    way.add_argument(
        "-r", "--reverse", action="store_true", help="from the function's start up to ADDR"
    )
    way.add_argument("-f", "--forward", action="store_true", help="from ADDR to the function's end")
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_dis)


def cmd_dis(args: argparse.Namespace) -> int:
    """``backchain dis``: a whole function (FUNC, or the function holding ADDR) with ADDR
    and the CPUs' PSWs marked; ``-r`` up to ADDR, ``-f`` from ADDR, COUNT instructions."""
    from explorer.code.cache import code_of
    from explorer.code.listing import (
        cpu_marks,
        listing_json,
        listing_text,
        make_listing,
        resolve,
    )

    if args.count is not None and args.count <= 0:
        raise DumpError(f"COUNT must be a positive number of instructions, not {args.count}")
    kernel = open_kernel(args)
    code = code_of(kernel)
    address = resolve(code, args.where)
    marks = cpu_marks(kernel)
    func = code.function_at(address)
    if func is None or address != func.start or args.forward or args.reverse:
        marks.setdefault(address, []).insert(0, "ADDR")
    listing = make_listing(
        code,
        address,
        reverse=args.reverse,
        forward=args.forward,
        count=args.count,
        marks=marks,
    )
    if args.json:
        print_json(listing_json(listing))
        return EXIT_OK
    func = listing.function
    if func is not None:
        print(f"{func.name}: 0x{func.start:x}-0x{func.end:x} ({func.size} bytes)")
    print("\n".join(listing_text(listing)))
    return EXIT_OK
