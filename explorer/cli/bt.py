"""``backchain bt``: one stack, frame by frame, with its verdict."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    address,
    common_options,
    json_flag,
    open_kernel,
    print_json,
)
from explorer.cli.taskfilter import (
    filter_options,
    filter_tasks,
    filtering,
    no_match,
    pid_option,
    wanted_pids,
)
from parsers.errors import DumpError


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "bt",
        help="walk one stack frame by frame and judge its reliability",
        description="Walk a stack and judge it. With no selector: the panic task, else the "
        "current task of the CPU that stopped first (it says which).",
    )
    p.add_argument("dump", help="dump file")
    who = p.add_mutually_exclusive_group()
    pid_option(who, "tasks with these pids (pid 0: the idle tasks; repeatable)")
    who.add_argument("--task", type=address, metavar="ADDR", help="task_struct address")
    who.add_argument("--cpu", type=int, help="the task running on this CPU, from its registers")
    who.add_argument("--sp", type=address, metavar="ADDR", help="start at this stack pointer")
    who.add_argument(
        "-a", "--active", action="store_true", help="the active task of every CPU (crash bt -a)"
    )
    who.add_argument(
        "--all", action="store_true", help="every task (crash foreach bt); see --state, --comm"
    )
    filter_options(p, "every task (crash foreach UN bt: --state D), or of --pid/--all only those")
    p.add_argument("--steps", action="store_true", help="print every check of every step")
    p.add_argument("--markdown", action="store_true", help="print Markdown (course material)")
    p.add_argument(
        "-v",
        dest="sanity",
        action="store_true",
        help="stack sanity (crash bt -v): STACK_END_MAGIC, task vs CPU, headroom",
    )
    p.add_argument(
        "--cfi",
        action="store_true",
        help="also unwind with the -dbg vmlinux's DWARF CFI, side by side with the back chain",
    )
    text = p.add_mutually_exclusive_group()
    text.add_argument(
        "-t",
        dest="text_words",
        action="store_const",
        const="t",
        help="every text address on the live stack, graded proven/plausible/stale (crash bt -t)",
    )
    text.add_argument(
        "-T",
        dest="text_words",
        action="store_const",
        const="T",
        help="the text addresses from where the walk broke on, and the chain they recover",
    )
    from explorer.cli.frameopts import frame_options

    frame_options(p)
    common_options(p)
    if "--force" not in p._option_string_actions:  # shared flag, may come from common_options
        p.add_argument(
            "--force",
            action="store_true",
            help="walk a --task address that is not in the task list (marked unvetted)",
        )
    json_flag(p)
    p.set_defaults(handler=cmd_bt)


#: Why bt walks the shell's ``set`` task when none is named.
SET_CONTEXT = "the task chosen with 'set'"


def _select_tasks(kernel: Any, scan: Any, args: argparse.Namespace) -> tuple[list[Any], str | None]:
    """The tasks to walk and, for the default context, why that task."""
    from explorer.model.context import active_tasks, default_context
    from explorer.model.tasks import task_order

    if args.all or filtering(args):
        tasks = filter_tasks(sorted(scan.tasks, key=task_order), args)
        pids = wanted_pids(args)
        if pids is not None and not tasks and not (args.state or args.comm):
            shown = ",".join(str(p) for p in sorted(pids))
            raise DumpError(f"no task with pid {shown} (see 'backchain ps')", kernel.path)
        for pid in sorted((pids or set()) - {t.pid for t in scan.tasks}):
            print(f"note: no task with pid {pid}", file=sys.stderr)
        return tasks, None
    if args.active:
        return active_tasks(kernel, scan), None
    if args.task is not None:
        task = scan.by_address(args.task)
        if task is None:
            if not getattr(args, "force", False):
                raise DumpError(
                    f"no task at 0x{args.task:x} in the task list (see 'backchain ps'); "
                    "--force walks it anyway, unvetted",
                    kernel.path,
                )
            from explorer.model.tasks import read_task

            task = read_task(kernel, args.task, "--task --force (unvetted)")
        return [task], None
    if args.cpu is not None:
        for cpu in kernel.cpus:
            if cpu.number == args.cpu:
                task = scan.by_address(cpu.current_task or 0)
                if task is None:
                    raise DumpError(
                        f"CPU {args.cpu} runs task 0x{cpu.current_task or 0:x}, which is "
                        "unreadable",
                        kernel.path,
                    )
                return [task], None
        raise DumpError(f"no CPU {args.cpu} in the dump (it has {len(kernel.cpus)})", kernel.path)
    chosen = getattr(args, "context", None)  # set by 'backchain shell' (set PID)
    if chosen is not None:
        return [chosen], SET_CONTEXT
    ctx = default_context(kernel, scan)
    return [ctx.task], ctx.reason


def cmd_bt(args: argparse.Namespace) -> int:
    """``backchain bt``."""
    from explorer.cli.debuginfo import FrameExtras
    from explorer.model.tasks import find_tasks
    from explorer.reports.walk import (
        analysis_json,
        end_json,
        step_json,
        task_header,
        verdict_text,
        walk_markdown,
        walk_text,
    )
    from explorer.walk.analysis import analyse_task, unwind_context, walk_sp

    kernel = open_kernel(args)
    if args.cfi:  # before any output: without a vmlinux, one line and exit 2
        from explorer.debuginfo.cfi import table_or_error

        table_or_error(kernel)
    ctx = unwind_context(kernel)
    extras = FrameExtras.from_args(kernel, args)
    if args.sp is not None:
        walk = walk_sp(kernel, args.sp, ctx=ctx)
        if args.json:
            doc = {
                "sp": f"0x{args.sp:x}",
                "era": walk.era,
                "frames": [step_json(kernel, s, args.steps) for s in walk.steps],
                "end": end_json(kernel, walk.end, args.steps),
            }
            print_json(extras.add_json(doc, walk))
        else:
            print(f"walk from sp 0x{args.sp:016x} (rules: {walk.era})")
            for line in extras.head_text():
                print(line)
            print("\n".join(walk_text(kernel, walk, args.steps, extras.under_for(walk))))
        extras.close()
        return EXIT_OK
    scan = find_tasks(kernel)
    tasks, why = _select_tasks(kernel, scan, args)
    analyses = [analyse_task(kernel, t, ctx) for t in tasks]
    unvetted = [a.task.found_by.endswith("(unvetted)") for a in analyses]
    letter = getattr(args, "text_words", None)
    if args.json:
        docs: list[dict[str, Any]] = [
            extras.add_json(analysis_json(kernel, a, args.steps), a.walk) for a in analyses
        ]
        if letter:
            from explorer.code.recovered import SCOPES, recovery_json, recovery_of

            for one, a in zip(docs, analyses, strict=True):
                one["recovered"] = recovery_json(
                    kernel, recovery_of(kernel, a.walk, SCOPES[letter])
                )
        if args.cfi:
            from explorer.debuginfo.cfi import cfi_for_walk, cfi_json, table_or_error
            from explorer.reports.cfiexplain import explain

            table = table_or_error(kernel)
            for one, a in zip(docs, analyses, strict=True):
                cfi = cfi_for_walk(kernel, table, a.walk)
                one["cfi"] = (
                    None
                    if cfi is None
                    else cfi_json(kernel, a.walk, cfi, explain(kernel, table, a.walk, cfi))
                )
        if args.sanity:
            from explorer.walk.sanity import sanity_json, stack_sanity

            for one, a in zip(docs, analyses, strict=True):
                one["sanity"] = sanity_json(stack_sanity(kernel, a.task, a.walk))
        for one, flag in zip(docs, unvetted, strict=True):
            if flag:
                one["unvetted"] = True
        if why is not None:
            docs[0]["context"] = why
        several = (
            args.all
            or args.active
            or args.state
            or args.comm
            or len(wanted_pids(args) or ()) > 1
            or len(docs) != 1
        )
        print_json(docs if several else docs[0])
        extras.close()
        return EXIT_OK
    transition = _transition(kernel, scan)
    if why is not None:
        a = analyses[0]
        if why == SET_CONTEXT:
            print(f"({why}: pid {a.task.pid} {a.task.comm})")
        else:
            print(f"(no task named: {why}; pid {a.task.pid} {a.task.comm})")
    if not analyses:
        print(no_match(args) if filtering(args) else "no task matches")
    for i, a in enumerate(analyses):
        if i:
            print()
        if unvetted[i]:
            print(
                f"UNVETTED: 0x{a.task.address:x} is not in the task list; read as a "
                "task_struct because of --force, so every value below may be garbage"
            )
        if args.markdown:
            print(walk_markdown(kernel, a, args.steps), end="")
            continue
        print(task_header(kernel, a))
        regions = "  ".join(f"{r.stack_type} 0x{r.begin:x}-0x{r.end:x}" for r in a.walk.regions.all)
        print(f"stacks: {regions or 'none'}   (rules: {a.walk.era})")
        for line in extras.head_text():
            print(line)
        print("\n".join(walk_text(kernel, a.walk, args.steps, extras.under_for(a.walk), a.verdict)))
        if args.cfi:
            from explorer.debuginfo.cfi import cfi_for_walk, side_by_side, table_or_error
            from explorer.reports.cfiexplain import explain

            table = table_or_error(kernel)
            cfi = cfi_for_walk(kernel, table, a.walk)
            if cfi is not None:
                ag = explain(kernel, table, a.walk, cfi)
                print("\n".join(side_by_side(kernel, a.walk, cfi, ag)))
        if letter:
            from explorer.code.recovered import SCOPES, recovery_lines, recovery_of

            rec = recovery_of(kernel, a.walk, SCOPES[letter])
            print("\n".join(recovery_lines(kernel, rec)))
        from explorer.walk.sanity import corrupt_lines, sanity_lines, stack_sanity

        sane = stack_sanity(kernel, a.task, a.walk, high_water=args.sanity)
        print("\n".join(sanity_lines(sane) if args.sanity else corrupt_lines(sane)), end="")
        print("\n" if args.sanity or sane.corrupt else "", end="")
        print("\n".join(_with_transition(verdict_text(a), transition, a)))
        if unvetted[i]:
            print("UNVETTED: this verdict is about memory that may not be a task at all")
    extras.close()
    return EXIT_OK


def _transition(kernel: Any, scan: Any) -> Any:
    """A livepatch transition in progress, None when none (or its state cannot be read:
    'backchain klp' says why)."""
    from explorer.livepatch.watch import Transition
    from parsers.errors import DumpError

    try:
        return Transition.of(kernel, scan)
    except DumpError:
        return None


def _with_transition(lines: list[str], transition: Any, a: Any) -> list[str]:
    """The verdict's lines, the hypothetical ``livepatch:`` line replaced by the kernel's
    decision while a transition is in progress."""
    if transition is None:
        return lines
    from explorer.livepatch.report import task_line

    line = task_line(transition.state, a.task, transition.decide(a))
    return [line if text.startswith("livepatch: ") else text for text in lines]
