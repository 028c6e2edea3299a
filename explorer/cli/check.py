"""``backchain check``: every task's verdict, grouped by cause and by identical stack."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    common_options,
    json_flag,
    open_kernel,
)


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("check", help="every task's reliability verdict, grouped by cause")
    p.add_argument("dump", help="dump file")
    p.add_argument(
        "--functions",
        metavar="F,G",
        default="",
        help="functions a livepatch would replace: which tasks sleep on them",
    )
    p.add_argument("--all", action="store_true", help="list every task, not just a summary")
    from explorer.debuginfo.cli import lines_options

    lines_options(p)
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """``backchain check``: every task's verdict, grouped by cause and by identical stack."""
    from explorer.analysis import analyse_all, unwind_context
    from explorer.code.model import calls_of, suspicious_lines
    from explorer.debuginfo.cli import FrameExtras, StackLines
    from explorer.report import analysis_json
    from explorer.summary import summarizer
    from explorer.tasks import find_tasks

    kernel = open_kernel(args)
    extras = FrameExtras.from_args(kernel, args)
    functions = [f for f in args.functions.split(",") if f]
    ctx = unwind_context(kernel)
    scan = find_tasks(kernel)
    if args.json:  # streamed: one task at a time, nothing kept
        out = sys.stdout
        out.write("[")
        first = [True]

        def emit(a: Any) -> None:
            out.write("\n  " if first[0] else ",\n  ")
            first[0] = False
            json.dump(extras.add_json(analysis_json(kernel, a), a.walk), out)

        analyse_all(kernel, scan.tasks, ctx, functions, keep=emit)
        out.write("\n]\n")
        extras.close()
        return EXIT_OK
    summarize = summarizer(kernel)
    stack_lines = StackLines(extras.lines) if extras.lines is not None else None
    if stack_lines is not None:
        summarize = stack_lines.keeper(summarize)
    calls = calls_of(kernel)
    suspicious: list[Any] = []

    def keep(a: Any) -> Any:
        suspicious.extend((a.task, step) for step, _ in calls.suspicious(a.walk.steps))
        return summarize(a)

    rows = analyse_all(kernel, scan.tasks, ctx, functions, keep=keep)
    print("\n".join(render_check(rows, functions, args.all)))
    if suspicious:
        print("\n".join(suspicious_lines(kernel, suspicious)))
    if stack_lines is not None:
        from explorer.summary import by_stack

        print("\n".join(stack_lines.text([key for key, _ in by_stack(rows)])))
    extras.close()
    for w in scan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return EXIT_OK


def render_check(rows: list[Any], functions: list[str], every: bool) -> list[str]:
    """The text report of ``backchain check`` from :class:`explorer.summary.TaskVerdict`."""
    from explorer.summary import blocking, by_stack, by_verdict

    total = len(rows)
    ok = sum(1 for r in rows if r.verdict.reliable)
    lines = [
        f"{total} tasks: {ok} reliable, {total - ok} not (rules: {rows[0].era if rows else '-'})",
        "",
        "by verdict:",
    ]
    lines += [f"  {n:>5}  {label}" for label, n in by_verdict(rows)]
    lines += ["", "by identical stack (most common first):"]
    for key, members in by_stack(rows):
        good = sum(1 for r in members if r.verdict.reliable)
        names = sorted({r.task.comm for r in members})
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        stack = " <- ".join(key[:6]) + (" <- ..." if len(key) > 6 else "") if key else "(none)"
        lines.append(f"  {len(members):>5} tasks, {good} reliable  [{shown}]")
        lines.append(f"         {stack}")
    if functions:
        stuck = blocking(rows)
        lines += [
            "",
            f"livepatch transition for {', '.join(functions)}: "
            + ("would complete" if not stuck else f"{len(stuck)} task(s) would block it"),
        ]
        lines += [f"  {r.livepatch}" for r in stuck]
    if every:
        lines += ["", f"{'PID':>7} {'CPU':>3} {'ST':<2} {'COMM':<16} VERDICT"]
        for r in rows:
            cpu = "-" if r.cpu is None else str(r.cpu)
            frame = "" if r.verdict.frame is None else f" at #{r.verdict.frame}"
            lines.append(
                f"{r.task.pid:>7} {cpu:>3} {r.task.state:<2} {r.task.comm:<16} "
                f"{r.verdict.label}{frame}"
            )
    return lines
