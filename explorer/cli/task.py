"""``backchain task``: a task's ``task_struct``, member by member (crash task)."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    common_options,
    json_flag,
    open_kernel,
    print_json,
    print_type_notes,
)
from parsers.errors import DumpError


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "task",
        help="a task's task_struct with values (crash task); default: the panic/current task",
    )
    p.add_argument("dump", help="dump file")
    p.add_argument("who", metavar="PID|ADDR", nargs="?", help="pid, or task_struct address (0x…)")
    p.add_argument(
        "-m", "--member", metavar="A,B.C", help="only these members (dotted for nested ones)"
    )
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_task)


def pick_task(kernel: Any, scan: Any, who: str | None, chosen: Any = None) -> Any:
    """``PID`` (decimal), ``0xADDR`` of a listed task, or the default context.

    Raises:
        DumpError: no such task.
    """
    from explorer.model.context import default_context

    if who is None:
        return chosen if chosen is not None else default_context(kernel, scan).task
    if who.lower().startswith("0x"):
        try:
            task = scan.by_address(int(who, 16))
        except ValueError:
            raise DumpError(f"{who!r} is not a hex task address", kernel.path) from None
        if task is None:
            raise DumpError(f"no task at {who} in the task list (see 'backchain ps')", kernel.path)
        return task
    try:
        pid = int(who)
    except ValueError:
        raise DumpError(f"{who!r} is neither a pid nor a 0x task address") from None
    tasks = scan.by_pid(pid)
    if not tasks:
        raise DumpError(f"no task with pid {pid} (see 'backchain ps')", kernel.path)
    return tasks[0]


def cmd_task(args: argparse.Namespace) -> int:
    """``backchain task DUMP [PID|ADDR]``."""
    kernel = open_kernel(args)
    try:
        return _task(kernel, args)
    finally:
        print_type_notes(kernel)


def _task(kernel: Any, args: argparse.Namespace) -> int:
    from explorer.model.structview import member, read_struct, value_json, value_lines
    from explorer.model.tasks import find_tasks

    scan = find_tasks(kernel)
    task = pick_task(kernel, scan, args.who, getattr(args, "context", None))
    value = read_struct(kernel, "task_struct", task.address)
    if args.member:
        parts = []
        for path in args.member.split(","):
            found = member(value, path.strip())
            if found is None:
                raise DumpError(f"task_struct has no member {path!r}", kernel.path)
            parts.append((path.strip(), found))
        if args.json:
            print_json({p: value_json(v) for p, v in parts})
            return EXIT_OK
        print(f'PID: {task.pid:<7} TASK: 0x{task.address:016x}  COMM: "{task.comm}"')
        for path, v in parts:
            lines = value_lines(v)
            lines[0] = lines[0].replace(f"{v.name} = ", f"{path} = ", 1)
            print("\n".join(lines))
        return EXIT_OK
    if args.json:
        print_json(value_json(value))
        return EXIT_OK
    print(f'PID: {task.pid:<7} TASK: 0x{task.address:016x}  COMM: "{task.comm}"')
    lines = value_lines(value)
    lines[0] = "struct task_struct {"
    lines[-1] = "}"
    print("\n".join(lines))
    return EXIT_OK
