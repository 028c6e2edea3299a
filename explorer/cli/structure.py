"""``backchain struct``: a struct from the kernel's own types, with values at an address."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    common_options,
    json_flag,
    open_kernel,
    print_json,
    print_type_notes,
)


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "struct",
        help="a struct's members with values at ADDR, or its layout (crash struct)",
        description="Types come from the dump's BTF or --vmlinux DWARF. Without ADDR: the "
        "layout (offset, size, type of each member).",
    )
    p.add_argument("dump", help="dump file")
    p.add_argument("type", metavar="TYPE", help="task_struct, 'struct list_head', a typedef")
    p.add_argument("address", metavar="ADDR", nargs="?", help="hex address or symbol[+off]")
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_struct)


def cmd_struct(args: argparse.Namespace) -> int:
    """``backchain struct DUMP TYPE [ADDR]``."""
    kernel = open_kernel(args)
    try:
        return _struct(kernel, args)
    finally:
        print_type_notes(kernel)


def _struct(kernel: Any, args: argparse.Namespace) -> int:
    from explorer.cli.rd import resolve_address
    from explorer.model.structview import read_struct, value_json, value_lines

    if args.address is None:
        return _layout(kernel, args)
    address = resolve_address(kernel, args.address)
    value = read_struct(kernel, args.type, address)
    if args.json:
        print_json(value_json(value))
        return EXIT_OK
    lines = value_lines(value)
    lines[0] = f"{value.type} {{"
    lines[-1] = "}"
    print(f"{value.type} at 0x{address:x}:")
    print("\n".join(lines))
    return EXIT_OK


def _layout(kernel: Any, args: argparse.Namespace) -> int:
    from explorer.model.structview import find_type, type_graph
    from parsers.errors import DumpError
    from parsers.types.graph import strip, type_name

    graph = type_graph(kernel)
    type_id = find_type(graph, args.type)
    if type_id is None:
        raise DumpError(f"no type {args.type!r} in {graph.source}", kernel.path)
    t = strip(graph, type_id)
    rows = []
    for m in t.members:
        mt = strip(graph, m.type)
        rows.append(
            {
                "name": m.name,
                "offset": m.bit_offset // 8,
                "bit_offset": m.bit_offset,
                "bit_size": m.bit_size,
                "size": mt.size,
                "type": type_name(graph, m.type),
            }
        )
    if args.json:
        print_json({"type": type_name(graph, type_id), "size": t.size, "members": rows})
        return EXIT_OK
    print(f"{type_name(graph, type_id)} {{  /* size {t.size}, from {graph.source} */")
    for r in rows:
        bits = f":{r['bit_size']} (bit {r['bit_offset']})" if r["bit_size"] else ""
        print(f"  [0x{r['offset']:x}] {r['type']} {r['name'] or ''}{bits};")
    print("}")
    return EXIT_OK
