"""``backchain audit``: frames without a back chain and stack switches in a vmlinux, a
module, an object or the kernel text of a dump."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import EXIT_OK, common_options, json_flag, open_kernel, print_json


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "audit",
        help="find functions that allocate a stack frame without storing a back chain",
    )
    p.add_argument("file", metavar="VMLINUX|MODULE.ko|DUMP", help="an s390x ELF or a dump")
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    """``backchain audit``: every function that allocates a frame without storing a back
    chain, and code that switches stacks."""
    from explorer.code.audit import audit_file, audit_kernel, report_json, report_text
    from parsers.elf.code import is_code_elf

    if is_code_elf(args.file):
        report = audit_file(args.file)
    else:
        args.dump = args.file
        report = audit_kernel(open_kernel(args))
    if args.json:
        print_json(report_json(report))
    else:
        print("\n".join(report_text(report)))
    return EXIT_OK
