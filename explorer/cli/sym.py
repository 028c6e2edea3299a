"""``backchain sym``: a symbol's address, or the symbol holding an address, like crash's sym."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from explorer.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    common_options,
    json_flag,
    open_kernel,
    print_json,
)
from parsers.errors import DumpError


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "sym",
        help="name -> address, or address -> name+off/size [module], like crash's sym",
        description="Resolve symbols both ways: an address (hex, 0x optional) prints "
        "'ADDR (T) name+off/size [module]', a name ('schedule' or 'jbd2:kjournald2') prints "
        "'ADDR (T) name'. Core kernel symbols come from --map/--vmlinux, else from the dump's "
        "own kallsyms; module symbols from each loaded module's kallsyms.",
    )
    p.add_argument("dump", help="dump file")
    p.add_argument("queries", nargs="+", metavar="NAME|ADDR", help="symbol names or addresses")
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_sym)


def cmd_sym(args: argparse.Namespace) -> int:
    """``backchain sym``: every query answered; the ones that fail on stderr, exit 2."""
    from explorer.model.symbols import resolve

    kernel = open_kernel(args)
    docs: list[dict[str, Any]] = []
    failed = False
    for query in args.queries:
        try:
            found = resolve(kernel, query)
        except DumpError as exc:
            failed = True
            docs.append({"query": query, "error": exc.message})
            print(f"backchain: {exc.message}", file=sys.stderr)
            continue
        docs.append(found.to_json())
        if not args.json:
            print(found.text())
    if args.json:
        print_json(docs[0] if len(docs) == 1 else docs)
    return EXIT_BAD_INPUT if failed else EXIT_OK
