"""``backchain ps``: every task, like crash's ps."""

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
    p = sub.add_parser("ps", help="every task: pid, ppid, CPU, task address, state, comm")
    p.add_argument("dump", help="dump file")
    common_options(p)
    json_flag(p)
    p.add_argument(
        "-v", "--verbose", action="store_true", help="also say where each struct offset came from"
    )
    p.set_defaults(handler=cmd_ps)


def task_json(task: Any) -> dict[str, Any]:
    """The JSON of one task (shared by ps, bt and check)."""
    return {
        "pid": task.pid,
        "tgid": task.tgid,
        "ppid": task.ppid,
        "comm": task.comm,
        "state": task.state,
        "cpu": task.cpu,
        "task": f"0x{task.address:x}",
        "stack": f"0x{task.stack:x}" if task.stack else None,
        "ksp": f"0x{task.ksp:x}",
        "kthread": task.is_kthread,
        "idle": task.is_idle,
    }


def cmd_ps(args: argparse.Namespace) -> int:
    """``backchain ps``: like crash's ps."""
    from explorer.tasks import find_tasks

    kernel = open_kernel(args)
    scan = find_tasks(kernel)
    tasks = sorted(scan.tasks, key=lambda t: (t.pid, t.cpu if t.cpu is not None else -1))
    if args.json:
        print_json({"tasks": [task_json(t) for t in tasks], "warnings": scan.warnings})
        return EXIT_OK
    print(f"   {'PID':>6} {'PPID':>6} {'CPU':>3} {'TASK':<16} {'ST':<2} COMM")
    for t in tasks:
        mark = ">" if t.running else " "
        ppid = "?" if t.ppid is None else str(t.ppid)
        cpu = t.cpu if t.cpu is not None else t.last_cpu
        comm = f"[{t.comm}]" if t.is_kthread or t.is_idle else t.comm
        print(f"{mark}  {t.pid:>6} {ppid:>6} {cpu:>3} {t.address:016x} {t.state:<2} {comm}")
    for w in scan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.verbose:
        from explorer.tasks import offsets_used

        print(
            f"sizeof(pt_regs) {kernel.pt_regs_size}, THREAD_SIZE {kernel.thread_size} "
            f"({kernel.thread_size_source})",
            file=sys.stderr,
        )
        for name, offset, source in offsets_used(kernel):
            print(f"offset {name} = 0x{offset:x} ({source})", file=sys.stderr)
    return EXIT_OK
