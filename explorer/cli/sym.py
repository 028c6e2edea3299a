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
        "'ADDR (T) name'; a glob ('kjournald*', 'jbd2:*') or -q TEXT lists every symbol that "
        "matches. Core kernel symbols come from --map/--vmlinux, else from the dump's own "
        "kallsyms; module symbols from each loaded module's kallsyms.",
    )
    p.add_argument("dump", help="dump file")
    p.add_argument(
        "queries", nargs="+", metavar="NAME|ADDR|GLOB", help="symbol names, addresses or globs"
    )
    p.add_argument(
        "-q",
        "--search",
        action="store_true",
        help="list every symbol whose name contains each query (crash sym -q)",
    )
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_sym)


def cmd_sym(args: argparse.Namespace) -> int:
    """``backchain sym``: every query answered; the ones that fail on stderr, exit 2."""
    from explorer.model.symbols import GLOB_CHARS, resolve, search_symbols

    kernel = open_kernel(args)
    docs: list[dict[str, Any]] = []
    failed = False
    listing = args.search or any(GLOB_CHARS & set(q) for q in args.queries)
    for query in args.queries:
        try:
            if args.search or GLOB_CHARS & set(query):
                found = search_symbols(kernel, query, substring=args.search)
                if not found:
                    how = "contains" if args.search else "matches"
                    raise DumpError(f"no symbol name {how} {query!r}")
            else:
                found = [resolve(kernel, query)]
        except DumpError as exc:
            failed = True
            docs.append({"query": query, "error": exc.message})
            print(f"backchain: {exc.message}", file=sys.stderr)
            continue
        docs += [f.to_json() for f in found]
        if not args.json:
            print("\n".join(f.text() for f in found))
    if args.json:
        print_json(docs[0] if len(docs) == 1 and not listing else docs)
    return EXIT_BAD_INPUT if failed else EXIT_OK
