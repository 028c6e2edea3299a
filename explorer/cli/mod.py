"""``backchain mod``: the loaded modules, like crash's mod and /proc/modules."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from explorer.cli.common import EXIT_OK, common_options, json_flag, open_kernel, print_json


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "mod", help="loaded modules: name, base, size, state, taint (and symbol counts)"
    )
    p.add_argument("dump", help="dump file")
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_mod)


def cmd_mod(args: argparse.Namespace) -> int:
    """``backchain mod``."""
    kernel = open_kernel(args)
    scan = kernel.modules
    # taints unknown (e.g. --types probe does not infer them): "?", not "-" (untainted)
    known = kernel.types is not None and kernel.types.has("module.taints")
    rows = []
    for m in scan.modules:
        table = scan.symbols.get(m.address)
        rows.append(
            {
                "name": m.name,
                "module": f"0x{m.address:x}",
                "base": f"0x{m.base:x}",
                "size": m.size,
                "state": m.state,
                "taint": m.taint_letters if known else None,
                "taints": m.taints if known else None,
                "text": [[f"0x{s:x}", f"0x{e:x}"] for s, e in m.text if e > s],
                "symbols": len(table) if table is not None else None,
            }
        )
    if args.json:
        print_json({"modules": rows, "warnings": scan.warnings})
        return EXIT_OK
    if not rows and not scan.warnings:
        print("no modules loaded")
    elif not rows:
        print("modules unknown")
    else:
        print(f"{'MODULE':<16} {'NAME':<24} {'BASE':<16} {'SIZE':>8} {'STATE':<9} TAINT  SYMBOLS")
        for m, r in zip(scan.modules, rows, strict=True):
            symbols = "?" if r["symbols"] is None else str(r["symbols"])
            print(
                f"{m.address:016x} {m.name:<24} {m.base:016x} {m.size:>8} "
                f"{m.state or '?':<9} {(m.taint_letters or '-') if known else '?':<6} {symbols}"
            )
    for w in scan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return EXIT_OK
