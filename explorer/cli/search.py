"""``backchain search``: where a value lies in memory or on task stacks (crash search)."""

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
from explorer.cli.taskfilter import filter_options, pid_option
from parsers.errors import DumpError

#: Hits listed by default (--limit).
DEFAULT_LIMIT = 1000


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "search",
        help="where a value lies: in all memory, or on task stacks with -t (crash search)",
        description="Find aligned big-endian words equal to VALUE (hex, or symbol[+off]) in "
        "all memory the dump holds (virtual address in the identity map, and physical), or "
        "with -t on the kernel stack of every task (or of those --pid/--state/--comm select).",
    )
    p.add_argument("dump", help="dump file")
    p.add_argument("value", metavar="VALUE", help="hex value or symbol[+off]")
    p.add_argument("-t", "--tasks", action="store_true", help="search task kernel stacks")
    filter_options(p, "with -t: only tasks")
    pid_option(p, "with -t: only tasks with these pids (repeatable)")
    word_size_options(p, (16, 32, 64))
    p.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"stop after N hits (default {DEFAULT_LIMIT})",
    )
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    """``backchain search DUMP VALUE [-t]``."""
    from explorer.cli.rd import resolve_address
    from explorer.cli.taskfilter import filter_tasks, filtering, no_match
    from explorer.model.tasks import comm_column, cpu_column, find_tasks, task_fields, task_order
    from explorer.reports.search import search_memory, search_stacks

    if args.limit < 1:
        raise DumpError(f"--limit must be at least 1, not {args.limit}")
    if filtering(args) and not args.tasks:
        raise DumpError("--pid/--state/--comm select tasks: add -t to search their stacks")
    kernel = open_kernel(args)
    value = resolve_address(kernel, args.value)
    size = args.bits // 8
    if value >> (8 * size):
        raise DumpError(f"0x{value:x} does not fit in {args.bits} bits")
    if args.tasks:
        tasks = filter_tasks(sorted(find_tasks(kernel).tasks, key=task_order), args)
        if not tasks:
            print(no_match(args))
            return EXIT_OK
        hits, more = search_stacks(kernel, tasks, value, size, args.limit)
    else:
        hits, more = search_memory(kernel, value, size, args.limit)
    if args.json:
        print_json(
            {
                "value": f"0x{value:x}",
                "bits": args.bits,
                "hits": [
                    {
                        "address": None if h.address is None else f"0x{h.address:x}",
                        "physical": None if h.physical is None else f"0x{h.physical:x}",
                        "task": None if h.task is None else task_fields(h.task),
                    }
                    for h in hits
                ],
                "truncated": more,
            }
        )
        return EXIT_OK
    digits = 2 * size
    shown = None
    for h in hits:
        if h.task is not None and h.task is not shown:
            shown = h.task
            t = h.task
            print(
                f"PID: {t.pid:<7} TASK: {t.address:016x}  CPU: {cpu_column(t):<4} "
                f'COMMAND: "{comm_column(t)}"'
            )
        where = "-" if h.address is None else f"{h.address:x}"
        phys = "" if h.physical is None else f"  (physical {h.physical:x})"
        print(f"{where}: {value:0{digits}x}{phys}")
    if not hits:
        print(f"0x{value:x} found nowhere" + (" on the task stacks" if args.tasks else ""))
    if more:
        print(f"… stopped after {args.limit} hits (--limit N for more)")
    return EXIT_OK
