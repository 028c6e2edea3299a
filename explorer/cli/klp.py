"""``backchain klp``: the livepatches in the dump and, while a transition is in progress,
which tasks block it and why, in the words and order of ``klp_try_switch_task()``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    common_options,
    json_flag,
    open_kernel,
    print_json,
)


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "klp",
        help="livepatches and a stuck transition: which tasks block it, in the kernel's words",
        description="List the livepatches loaded in the dump (klp_patches). While a "
        "transition is in progress, replay klp_try_switch_task() for every task still "
        "pending, in the kernel's order, and say what would unblock each one.",
    )
    p.add_argument("dump", help="dump file")
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_klp)


def cmd_klp(args: argparse.Namespace) -> int:
    """``backchain klp``."""
    from explorer.livepatch.replay import replay
    from explorer.livepatch.state import NoLivepatch, read_livepatch
    from explorer.model.tasks import find_tasks

    kernel = open_kernel(args)
    state = read_livepatch(kernel)
    if isinstance(state, NoLivepatch):
        if args.json:
            print_json({"livepatch": False, "reason": state.reason, "patches": []})
        else:
            print(f"no livepatch loaded: {state.reason}")
        return EXIT_OK
    result = None
    scan = None
    if state.transition_patch is not None:
        scan = find_tasks(kernel)
        result = replay(kernel, state, scan)
    from explorer.livepatch.report import klp_json, render_klp

    data = klp_json(kernel, state, result, args.dump)
    if args.json:
        print_json(data)
    else:
        print("\n".join(render_klp(data)))
    if scan is not None:
        for w in scan.warnings:
            print(f"warning: {w}", file=sys.stderr)
    return EXIT_OK
