"""``backchain diff A B``: two dumps (or two tasks) compared stack by stack."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import EXIT_BAD_INPUT, EXIT_OK, common_options, json_flag, print_json


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "diff",
        help="two dumps stack by stack: tasks appeared, disappeared, changed, changed verdict",
    )
    p.add_argument("a", metavar="A", help="first dump")
    p.add_argument("b", metavar="B", help="second dump (may be A itself, to compare two tasks)")
    p.add_argument(
        "--pid",
        type=int,
        action="append",
        metavar="PID",
        help="compare one task: --pid P (in both dumps) or --pid P --pid Q (P in A, Q in B)",
    )
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_diff)


def cmd_diff(args: argparse.Namespace) -> int:
    """``backchain diff``."""
    import sys

    from explorer.cli.fleet import options_from
    from explorer.fleet.diff import (
        diff_dumps,
        diff_json,
        diff_text,
        kernel_warnings,
        same_boot,
        same_kernel,
        task_diff_json,
        task_diff_text,
    )
    from explorer.fleet.walk import check_many

    args.functions = ""
    pids = args.pid or []
    if len(pids) > 2:
        print("backchain: diff: --pid at most twice (P in A, Q in B)", file=sys.stderr)
        return EXIT_BAD_INPUT
    same = args.a == args.b
    paths = [args.a] if same else [args.a, args.b]
    results = check_many(paths, options_from(args), jobs=len(paths))
    for r in results:
        if r.error is not None:
            print(f"backchain: {r.error}", file=sys.stderr)
            return EXIT_BAD_INPUT
    ra, rb = results[0], results[-1]
    if not pids:
        d = diff_dumps(ra, rb)
        if args.json:
            print_json(diff_json(d))
        else:
            print("\n".join(diff_text(d)))
        return EXIT_OK
    pa, pb = pids[0], pids[-1]
    ta = next((t for t in ra.tasks if t.pid == pa), None)
    tb = next((t for t in rb.tasks if t.pid == pb), None)
    for t, pid, path in ((ta, pa, ra.path), (tb, pb, rb.path)):
        if t is None:
            print(f"backchain: {path}: no task with pid {pid}", file=sys.stderr)
            return EXIT_BAD_INPUT
    assert ta is not None and tb is not None
    boot = same_boot(ra, rb) if same_kernel(ra, rb) else False
    if not same:
        for warning in kernel_warnings(ra, rb, boot):
            print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json(task_diff_json(ta, tb, boot))
    else:
        print("\n".join(task_diff_text(ta, tb, ra.path, rb.path, boot)))
    return EXIT_OK
