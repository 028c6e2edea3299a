"""``backchain bt``: one stack, frame by frame, with its verdict."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    address,
    common_options,
    json_flag,
    open_kernel,
    print_json,
)
from parsers.errors import DumpError


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("bt", help="walk one stack frame by frame and judge its reliability")
    p.add_argument("dump", help="dump file")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--pid", type=int, help="task with this pid (pid 0: idle tasks)")
    who.add_argument("--task", type=address, metavar="ADDR", help="task_struct address")
    who.add_argument("--cpu", type=int, help="the task running on this CPU, from its registers")
    who.add_argument("--sp", type=address, metavar="ADDR", help="start at this stack pointer")
    p.add_argument("--steps", action="store_true", help="print every check of every step")
    p.add_argument("--markdown", action="store_true", help="print Markdown (course material)")
    from explorer.debuginfo.cli import frame_options

    frame_options(p)
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_bt)


def _select_tasks(kernel: Any, scan: Any, args: argparse.Namespace) -> list[Any]:
    if args.pid is not None:
        tasks = scan.by_pid(args.pid)
        if not tasks:
            raise DumpError(f"no task with pid {args.pid} (see 'backchain ps')", kernel.path)
        return list(tasks)
    if args.task is not None:
        task = scan.by_address(args.task)
        if task is None:
            from explorer.tasks import read_task

            task = read_task(kernel, args.task, "--task")
        return [task]
    for cpu in kernel.cpus:
        if cpu.number == args.cpu:
            task = scan.by_address(cpu.current_task or 0)
            if task is None:
                raise DumpError(
                    f"CPU {args.cpu} runs task 0x{cpu.current_task or 0:x}, which is unreadable",
                    kernel.path,
                )
            return [task]
    raise DumpError(f"no CPU {args.cpu} in the dump (it has {len(kernel.cpus)})", kernel.path)


def cmd_bt(args: argparse.Namespace) -> int:
    """``backchain bt``."""
    from explorer.analysis import analyse_task, unwind_context, walk_sp
    from explorer.debuginfo.cli import FrameExtras
    from explorer.report import (
        analysis_json,
        end_json,
        step_json,
        task_header,
        verdict_text,
        walk_markdown,
        walk_text,
    )
    from explorer.tasks import find_tasks

    kernel = open_kernel(args)
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
            print("\n".join(walk_text(kernel, walk, args.steps, extras.under)))
        extras.close()
        return EXIT_OK
    scan = find_tasks(kernel)
    analyses = [analyse_task(kernel, t, ctx) for t in _select_tasks(kernel, scan, args)]
    if args.json:
        docs = [extras.add_json(analysis_json(kernel, a, args.steps), a.walk) for a in analyses]
        print_json(docs[0] if len(docs) == 1 else docs)
        extras.close()
        return EXIT_OK
    for i, a in enumerate(analyses):
        if i:
            print()
        if args.markdown:
            print(walk_markdown(kernel, a), end="")
            continue
        print(task_header(kernel, a))
        regions = "  ".join(f"{r.stack_type} 0x{r.begin:x}-0x{r.end:x}" for r in a.walk.regions.all)
        print(f"stacks: {regions or 'none'}   (rules: {a.walk.era})")
        for line in extras.head_text():
            print(line)
        print("\n".join(walk_text(kernel, a.walk, args.steps, extras.under)))
        print("\n".join(verdict_text(a)))
    extras.close()
    return EXIT_OK
