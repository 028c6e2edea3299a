"""``backchain check``: every task's verdict, grouped by cause and by identical stack."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    common_options,
    json_flag,
    open_kernel,
    plural,
    widen_pipe,
)
from explorer.cli.taskfilter import filter_options, filter_tasks, filtering, no_match, pid_option


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("check", help="every task's reliability verdict, grouped by cause")
    p.add_argument(
        "dump",
        nargs="+",
        help="dump file; several dumps are walked in parallel and their stacks grouped",
    )
    p.add_argument(
        "--functions",
        metavar="F,G",
        default="",
        help="functions a livepatch would replace: which tasks sleep on them",
    )
    p.add_argument(
        "--patch",
        metavar="NAME",
        help="a livepatch loaded in the dump: its functions, as --functions gives them by hand",
    )
    p.add_argument("--all", action="store_true", help="list every task, not just a summary")
    filter_options(p, "judge only tasks")
    pid_option(p, "judge only tasks with these pids (repeatable)")
    from explorer.cli.frameopts import lines_options

    lines_options(p)
    common_options(p)
    p.add_argument(
        "--cfi",
        action="store_true",
        help="also unwind every task with the -dbg vmlinux's DWARF CFI and count agreement",
    )
    json_flag(p)
    p.add_argument(
        "--jsonl", action="store_true", help="print one JSON object per task, one per line"
    )
    from explorer.cli.fleet import fleet_options

    fleet_options(p)
    p.set_defaults(handler=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """``backchain check``: every task's verdict, grouped by cause and by identical stack."""
    from explorer.cli.fleet import cmd_check_many, is_fleet

    if is_fleet(args):
        return cmd_check_many(args)
    args.dump = args.dump[0]
    from explorer.cli.debuginfo import FrameExtras, StackLines
    from explorer.code.cache import calls_of
    from explorer.code.present import suspicious_lines
    from explorer.model.tasks import find_tasks
    from explorer.reports.stream import json_writer
    from explorer.walk.analysis import analyse_all, unwind_context

    kernel = open_kernel(args)
    extras = FrameExtras.from_args(kernel, args)
    functions = [f for f in args.functions.split(",") if f]
    if args.patch:
        from explorer.livepatch.watch import patch_functions

        functions += [f for f in patch_functions(kernel, args.patch) if f not in functions]
    for name in unknown_functions(kernel, functions):
        print(
            f"warning: --functions {name}: not a symbol of this kernel; no task can sleep on it",
            file=sys.stderr,
        )
    ctx = unwind_context(kernel)
    scan = find_tasks(kernel)
    if args.cfi:
        from explorer.cli.cficheck import check_cfi

        return check_cfi(kernel, scan, ctx, args.json)
    tasks = filter_tasks(scan.tasks, args) if filtering(args) else scan.tasks
    if not tasks and filtering(args) and not (args.json or args.jsonl):
        print(no_match(args))
        return EXIT_OK
    if args.json or args.jsonl:  # streamed: one task at a time, nothing kept
        out = sys.stdout
        if not args.jsonl:
            out.write("[")
        widen_pipe(out)
        emit = json_writer(kernel, out, lines=args.jsonl, extras=extras)
        analyse_all(kernel, tasks, ctx, functions, keep=emit)
        emit.flush()
        if not args.jsonl:
            out.write("\n]\n")
        extras.close()
        return EXIT_OK
    from explorer.walk.summary import summarizer  # the text report's verdicts (a dataclass)

    summarize = summarizer(kernel)
    stack_lines = StackLines(extras.lines) if extras.lines is not None else None
    if stack_lines is not None:
        summarize = stack_lines.keeper(summarize)
    calls = calls_of(kernel)
    suspicious: list[Any] = []
    transition, klp_problem = _transition(kernel, scan)

    from explorer.walk.sanity import corrupt_lines, stack_sanity

    corrupt: list[str] = []
    sane = [0]

    def keep(a: Any) -> Any:
        suspicious.extend((a.task, step) for step, _ in calls.suspicious(a.walk.steps))
        s = stack_sanity(kernel, a.task, a.walk, high_water=False)
        sane[0] += s.magic_intact is True
        corrupt.extend(f"  pid {a.task.pid} {a.task.comm}: {line}" for line in corrupt_lines(s))
        if transition is not None:
            transition.keep(a)
        return summarize(a)

    rows = analyse_all(kernel, tasks, ctx, functions, keep=keep)
    result = transition.replay() if transition is not None else None
    marks = None
    if result is not None:
        from explorer.livepatch.watch import blocking_marks

        marks = blocking_marks(result)
    print("\n".join(render_check(rows, functions, args.all, marks)))
    if result is not None:
        from explorer.livepatch.report import transition_lines

        print("\n".join(transition_lines(result, args.dump, every=args.all)))
    if suspicious:
        print("\n".join(suspicious_lines(kernel, suspicious)))
    if corrupt:  # intact stacks add nothing to the report ('bt -v' shows each check)
        print(
            f"\nstack sanity: {plural(len(corrupt), 'problem')} "
            f"(STACK_END_MAGIC intact on {sane[0]} task stacks):"
        )
        print("\n".join(corrupt))
    if stack_lines is not None:
        from explorer.walk.summary import by_stack

        print("\n".join(stack_lines.text([key for key, _ in by_stack(rows)])))
    extras.close()
    for w in scan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if klp_problem:
        print(f"warning: {klp_problem}", file=sys.stderr)
    return EXIT_OK


def _transition(kernel: Any, scan: Any) -> tuple[Any, str | None]:
    """A livepatch transition in progress (None when none), or why it cannot be read."""
    from explorer.livepatch.watch import Transition
    from parsers.errors import DumpError, FormatError, TypeInfoError

    try:
        return Transition.of(kernel, scan), None
    except FormatError as exc:  # damaged: say so
        return None, exc.message
    except TypeInfoError as exc:  # a livepatch is loaded, its layout is unknown
        return None, f"{exc.message}: tasks blocking a transition are not marked"
    except DumpError:  # whether one is loaded cannot be told here: 'klp' says why
        return None, None


def unknown_functions(kernel: Any, functions: list[str]) -> list[str]:
    """The names in ``functions`` neither the kernel's symbol table nor a loaded module has."""
    if kernel.symbols is None:
        return []
    return [
        f
        for f in functions
        if kernel.symbols.address_of(f) is None and kernel.modules.find(f) is None
    ]


def _pids(members: list[Any], limit: int | None = 8) -> str:
    pids = sorted(r.task.pid for r in members)
    shown = ", ".join(str(p) for p in pids[:limit])
    return shown + (f", … (+{len(pids) - limit})" if limit and len(pids) > limit else "")


#: Tasks listed under a livepatch transition before "... and N more" (``--all`` lists all).
BLOCKING_SHOWN = 20


def render_check(
    rows: list[Any], functions: list[str], every: bool, marks: dict[int, str] | None = None
) -> list[str]:
    """The text report of ``backchain check`` from :class:`explorer.walk.summary.TaskVerdict`;
    ``marks``: a note for some tasks of the ``--all`` table (by ``task_struct`` address)."""
    from explorer.model.tasks import comm_column, cpu_column, task_order
    from explorer.walk.summary import blocking, by_stack, by_verdict

    total = len(rows)
    ok = sum(1 for r in rows if r.verdict.reliable)
    lines = [
        f"{plural(total, 'task')}: {ok} reliable, {total - ok} not "
        f"(rules: {rows[0].era if rows else '-'})",
        "",
        "by verdict:",
    ]
    lines += [f"  {n:>5}  {label}" for label, n in by_verdict(rows)]
    lines += ["", "by identical stack (most common first):"]
    for key, members in by_stack(rows):
        good = sum(1 for r in members if r.verdict.reliable)
        names = sorted({r.task.comm for r in members})
        # --all cuts nothing: every pid, name and frame.
        names_shown = names if every else names[:4]
        shown = ", ".join(names_shown) + (", ..." if len(names) > len(names_shown) else "")
        frames = key if every else key[:6]
        stack = " <- ".join(frames) + (" <- ..." if len(key) > len(frames) else "")
        stack = stack or "(none)"
        pid_word = "pid" if len(members) == 1 else "pids"
        lines.append(
            f"  {plural(len(members), 'task'):>11}, {good} reliable: {pid_word} "
            f"{_pids(members, None if every else 8)}  [{shown}]"
        )
        lines.append(f"         {stack}")
    if functions:
        stuck = blocking(rows)
        unreliable = sum(1 for r in stuck if not r.verdict.reliable)
        sleeping = Counter(r.sleeping_on for r in stuck if r.sleeping_on)
        lines += [
            "",
            f"livepatch transition for {', '.join(functions)}: "
            + (
                "would complete"
                if not stuck
                else f"{plural(len(stuck), 'task')} would block it: "
                + ", ".join(
                    [f"{n} sleeping on {name}" for name, n in sleeping.most_common()]
                    + ([f"{unreliable} with an unreliable stack"] if unreliable else [])
                )
            ),
        ]
        shown_rows = stuck if every else stuck[:BLOCKING_SHOWN]
        lines += [f"  {r.livepatch}" for r in shown_rows]
        if len(stuck) > len(shown_rows):
            lines.append(f"  … and {len(stuck) - len(shown_rows)} more (--all lists them)")
    if every:
        lines += ["", f"{'PID':>7} {'CPU':>4} {'ST':<2} {'COMM':<18} VERDICT"]
        for r in sorted(rows, key=lambda r: task_order(r.task)):
            frame = "" if r.verdict.frame is None else f" at #{r.verdict.frame}"
            mark = (marks or {}).get(r.task.address)
            lines.append(
                f"{r.task.pid:>7} {cpu_column(r.task):>4} {r.task.state:<2} "
                f"{comm_column(r.task):<18} {r.verdict.label}{frame}"
                + (f"  [{mark}]" if mark else "")
            )
    return lines
