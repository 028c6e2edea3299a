"""``backchain ps``: every task, like crash's ps (filters, parents, children, tree, counts)."""

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
from explorer.cli.taskfilter import filter_options, pid_option


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "ps",
        help="every task: pid, ppid, CPU, task address, state, comm",
        description="Every task, like crash's ps. CPU is the CPU a running task runs on; for "
        "any other task, in parentheses, the CPU it last ran on.",
    )
    p.add_argument("dump", help="dump file")
    filter_options(p)
    pid_option(p)
    view = p.add_mutually_exclusive_group()
    view.add_argument(
        "-p", "--parents", action="store_true", help="each selected task's parents up to pid 0"
    )
    view.add_argument("-c", "--children", action="store_true", help="each selected task's children")
    view.add_argument("--tree", action="store_true", help="the process tree")
    view.add_argument("-S", "--summary", action="store_true", help="count tasks per state")
    view.add_argument(
        "-l",
        "--last-run",
        action="store_true",
        help="when each task last ran (sched_info.last_arrival, ns of the CPU clock), newest first",
    )
    view.add_argument(
        "-m",
        "--since",
        action="store_true",
        help="time since each task last ran, relative to its CPU's clock (hung tasks)",
    )
    common_options(p)
    json_flag(p)
    p.add_argument(
        "-v", "--verbose", action="store_true", help="also say where each struct offset came from"
    )
    p.set_defaults(handler=cmd_ps)


def task_json(task: Any) -> dict[str, Any]:
    """The JSON of one task (the fields every command gives a task)."""
    from explorer.model.tasks import task_fields

    return task_fields(task)


HEADER = f"   {'PID':>6} {'PPID':>6} {'CPU':>4} {'TASK':<16} {'ST':<2} COMM"


def task_line(t: Any) -> str:
    """One ``ps`` row: ``>`` marks a running task."""
    from explorer.model.tasks import comm_column, cpu_column

    mark = ">" if t.running else " "
    ppid = "?" if t.ppid is None else str(t.ppid)
    return (
        f"{mark}  {t.pid:>6} {ppid:>6} {cpu_column(t):>4} {t.address:016x} {t.state:<2} "
        f"{comm_column(t)}"
    )


def cmd_ps(args: argparse.Namespace) -> int:
    """``backchain ps``: like crash's ps."""
    from explorer.model.tasks import find_tasks

    kernel = open_kernel(args)
    scan = find_tasks(kernel)
    out = ps_output(kernel, scan, args)
    if args.json:
        print_json(out.doc)
    else:
        print("\n".join(out.lines))
    for w in [*scan.warnings, *out.warnings]:
        print(f"warning: {w}", file=sys.stderr)
    if args.verbose:
        from explorer.model.tasks import offsets_used

        print(
            f"sizeof(pt_regs) {kernel.pt_regs_size}, layout {kernel.pt_regs_layout} "
            f"({kernel.pt_regs_source}); lowcore layout {kernel.lowcore_era} "
            f"({kernel.lowcore_source}); stack_frame ({kernel.stack_frame_source}); "
            f"THREAD_SIZE {kernel.thread_size} ({kernel.thread_size_source})",
            file=sys.stderr,
        )
        for name, offset, source in offsets_used(kernel):
            print(f"offset {name} = 0x{offset:x} ({source})", file=sys.stderr)
    return EXIT_OK


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.doc: dict[str, Any] = {}
        self.warnings: list[str] = []  # besides the scan's


def ps_output(kernel: Any, scan: Any, args: argparse.Namespace) -> _Out:
    """The text lines and the JSON document of ``ps`` with ``args``' options."""
    from explorer.cli.taskfilter import filter_tasks, filtering, no_match
    from explorer.model.tasks import task_order
    from explorer.reports.pstree import (
        children_of,
        parents_of,
        roots,
        state_counts,
        tree_lines,
        tree_warnings,
    )

    out = _Out()
    tasks = sorted(scan.tasks, key=task_order)
    selected = filter_tasks(tasks, args)
    warnings = list(scan.warnings)
    if not selected and filtering(args):
        out.lines = [no_match(args)]
        out.doc = {"tasks": [], "warnings": warnings, "note": no_match(args)}
        return out
    if args.summary:
        counts = state_counts(selected)
        out.doc = {"states": counts, "total": len(selected), "warnings": warnings}
        out.lines = [f"  {state}: {n}" for state, n in counts.items()]
        out.lines.append(f"  total: {len(selected)}")
        return out
    if args.tree:
        nodes = roots(tasks, selected)
        out.warnings = tree_warnings(nodes)
        out.lines = tree_lines(nodes)
        out.doc = {"tree": [_tree_json(n) for n in nodes], "warnings": warnings + out.warnings}
        return out
    if args.parents or args.children:
        blocks = []
        for t in selected:
            chain = parents_of(tasks, t) if args.parents else [t, *children_of(tasks, t)]
            blocks.append(chain)
            if out.lines:
                out.lines.append("")
            if args.parents:
                for depth, p in enumerate(reversed(chain)):
                    out.lines.append(
                        f'{" " * depth}PID: {p.pid:<6} TASK: {p.address:016x}  COMM: "{p.comm}"'
                    )
            else:
                out.lines.append(f'PID: {t.pid:<6} TASK: {t.address:016x}  COMM: "{t.comm}"')
                kids = chain[1:]
                out.lines += [
                    f'  PID: {c.pid:<6} TASK: {c.address:016x}  COMM: "{c.comm}"' for c in kids
                ] or ["  (no children)"]
        key = "parents" if args.parents else "children"
        out.doc = {
            key: [{"pid": b[0].pid, key: [task_json(x) for x in b[1:]]} for b in blocks],
            "warnings": warnings,
        }
        return out
    if args.last_run or args.since:
        from explorer.model.sched import last_run_rows

        rows, notes = last_run_rows(kernel, selected)
        warnings += notes
        out.doc = {
            "tasks": [
                {
                    **task_json(r.task),
                    "last_arrival_ns": r.last_arrival,
                    "since_ns": r.since,
                    "clock": r.clock,
                }
                for r in rows
            ],
            "warnings": warnings,
        }
        for r in rows:
            if args.last_run:
                when = "?" if r.last_arrival is None else str(r.last_arrival)
                out.lines.append(f"[{when:>16}] {task_line(r.task)[3:]}")
            else:
                out.lines.append(f"[{_since_text(r.since)}] {task_line(r.task)[3:]}")
        out.lines += [f"note: {n}" for n in notes]
        return out
    marks, note = _livepatch_marks(kernel, scan)
    if note:
        warnings.append(note)
    out.doc = {
        "tasks": [
            {**task_json(t), **({"livepatch": marks[t.address]} if t.address in marks else {})}
            for t in selected
        ],
        "warnings": warnings,
    }
    out.lines = (
        [HEADER]
        + [
            task_line(t) + (f"  [{marks[t.address]}]" if t.address in marks else "")
            for t in selected
        ]
        + ([f"note: {note}"] if note else [])
    )
    return out


def _livepatch_marks(kernel: Any, scan: Any) -> tuple[dict[int, str], str | None]:
    """The tasks that block a livepatch transition in progress (none without one), or why
    the livepatch state cannot be read."""
    from explorer.livepatch.watch import Transition, blocking_marks
    from parsers.errors import DumpError, FormatError

    try:
        transition = Transition.of(kernel, scan)
        return ({} if transition is None else blocking_marks(transition.replay())), None
    except FormatError as exc:  # damaged: say so
        return {}, exc.message
    except DumpError:  # not readable here (no types, text symbols only): 'klp' says why
        return {}, None


def _since_text(ns: int | None) -> str:
    """crash's ``ps -m``: ``days hh:mm:ss.mmm``."""
    if ns is None:
        return f"{'?':>16}"
    ms = ns // 1_000_000
    days, ms = divmod(ms, 86_400_000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{days:>3} {h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _tree_json(node: Any) -> dict[str, Any]:
    return {
        "pid": node.task.pid,
        "comm": node.task.comm,
        "task": f"0x{node.task.address:x}",
        "children": [_tree_json(c) for c in node.children],
    }
