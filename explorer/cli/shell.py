"""``backchain shell``: load a dump once, then run commands on it (crash's session).

Each line is a subcommand with its options, without the DUMP argument (``bt --pid 1``,
``ps -S``, ``struct task_struct init_task``). ``set PID`` (or ``set 0xTASK``) makes a task
the default context of ``bt`` and ``task``; ``set`` alone shows it; ``help`` lists the
commands; ``quit`` (or end of input) ends. As in crash, ``COMMAND | SHELL COMMAND`` pipes a
command's output to a shell command (``bt -f | grep foo``), and ``foreach [UN|RU|IN|...]
bt`` walks every task (in those crash states). A prompt with history and tab completion when
standard input is a terminal; otherwise lines are read from standard input without a
prompt, so a script of commands gives the same output as the one-shot commands.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from explorer.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    common_options,
    open_kernel,
    parse_command,
    subcommands,
)
from parsers.errors import DumpError

#: Longest command line read (``shlex`` is quadratic in a line's length: a 10 MiB line took
#: minutes); a longer one is refused with one line.
MAX_LINE = 1 << 16

#: Commands that do not work on the one open dump.
NOT_IN_SHELL = frozenset({"shell", "serve", "convert", "profile", "scenarios"})

#: crash's foreach state names -> ``ps`` letters.
FOREACH_STATES = {
    "RU": "R",
    "IN": "S",
    "UN": "D",
    "ST": "T",
    "TR": "t",
    "ZO": "Z",
    "DE": "X",
    "PA": "P",
    "ID": "I",
}


def foreach_words(rest: list[str]) -> list[str] | None:
    """``foreach [STATE...] bt [options]`` as ``bt --all [--state ...] [options]``; None
    when it is not that form (only bt runs per task)."""
    states = []
    while rest and rest[0].upper() in FOREACH_STATES:
        states.append(FOREACH_STATES[rest[0].upper()])
        rest = rest[1:]
    if not rest or rest[0] != "bt":
        return None
    return ["bt", "--all", *(["--state", ",".join(states)] if states else []), *rest[1:]]


def split_pipe(line: str) -> tuple[str, str | None]:
    """``COMMAND | SHELL COMMAND``: the command and the shell pipeline (None without one).
    A ``|`` inside quotes or after a backslash belongs to the command."""
    quote = ""
    escaped = False
    for at, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "|":
            return line[:at], line[at + 1 :].strip() or None
    return line, None


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "shell",
        help="load a dump once and run commands on it (prompt, or commands on stdin)",
        description="Commands as in 'backchain COMMAND DUMP ...' without DUMP; set PID; quit.",
    )
    p.add_argument("dump", help="dump file")
    common_options(p)
    p.set_defaults(handler=cmd_shell)


def _lines(prompt: str) -> Iterator[str]:
    if sys.stdin.isatty():
        while True:
            try:
                yield input(prompt)
            except EOFError:
                print()
                return
    else:
        while line := sys.stdin.readline(MAX_LINE + 1):
            if len(line) > MAX_LINE:  # too long: the rest of it is read and dropped
                rest = line
                while rest and not rest.endswith("\n"):
                    rest = sys.stdin.readline(MAX_LINE)
            yield line.rstrip("\n")


def _setup_readline(names: Iterable[str], options: dict[str, list[str]]) -> None:
    try:
        import readline
    except ImportError:  # pragma: no cover - no readline on this platform
        return
    from parsers.cache import cache_dir

    history = cache_dir("shell_history")
    try:
        history.parent.mkdir(parents=True, exist_ok=True)
        if history.exists():
            readline.read_history_file(history)
    except OSError:
        pass
    import atexit

    def save() -> None:
        try:
            readline.set_history_length(2000)
            readline.write_history_file(history)
        except OSError:
            pass

    atexit.register(save)
    words = sorted(set(names) | {"set", "help", "quit", "foreach"})

    def complete(text: str, state: int) -> str | None:
        line = readline.get_line_buffer().lstrip()
        first = line.split(" ", 1)[0]
        pool = words if " " not in line else options.get(first, [])
        hits = [w for w in pool if w.startswith(text)]
        return hits[state] if state < len(hits) else None

    readline.set_completer(complete)
    readline.set_completer_delims(" \t\n")  # options start with '-': complete them whole
    readline.parse_and_bind("tab: complete")


def cmd_shell(args: argparse.Namespace) -> int:
    """``backchain shell DUMP``."""
    from explorer.cli import build_parser, common
    from explorer.model.tasks import find_tasks

    kernel = open_kernel(args)  # once: every command below reuses it
    common.SESSION[common.kernel_key(args)] = kernel
    parser = build_parser()
    choices = subcommands(parser)
    names = [n for n in choices if n not in NOT_IN_SHELL]
    options = {n: sorted(o for a in choices[n]._actions for o in a.option_strings) for n in names}
    if sys.stdin.isatty():
        _setup_readline(names, options)
        print(f"backchain shell on {args.dump}: {', '.join(names)}; set PID; help; quit")
    context: Any = None
    status = EXIT_OK
    try:
        for line in _lines("backchain> "):
            if len(line) > MAX_LINE:
                print(
                    f"backchain: line longer than {MAX_LINE} characters ignored",
                    file=sys.stderr,
                )
                status = EXIT_BAD_INPUT
                continue
            line, pipe = split_pipe(line)
            try:
                words = shlex.split(line, comments=True)
            except ValueError as exc:
                print(f"backchain: {exc}", file=sys.stderr)
                continue
            if not words:
                continue
            if words[0] == "foreach":
                each = foreach_words(words[1:])
                if each is None:
                    print(
                        "backchain: foreach [RU|IN|UN|ST|TR|ZO|DE|PA|ID ...] bt [options]",
                        file=sys.stderr,
                    )
                    status = EXIT_BAD_INPUT
                    continue
                words = each
            command, rest = words[0], words[1:]
            if command in ("quit", "exit", "q"):
                break
            if command == "help":
                print(f"commands: {', '.join(names)}; 'COMMAND --help' for its options")
                print("set PID|0xTASK: default task of bt and task; set: show it; quit")
                print("foreach [UN|RU|IN|...] bt: every task's stack; COMMAND | grep x: a pipe")
                continue
            if command == "set":
                context = _set(kernel, find_tasks(kernel), rest, context)
                continue
            if command not in names:
                print(
                    f"backchain: {command!r} is not a shell command (commands: {', '.join(names)})",
                    file=sys.stderr,
                )
                status = EXIT_BAD_INPUT
                continue
            run = functools.partial(_run, parser, command, args, rest, context)
            status = run() if pipe is None else _piped(pipe, run)
            sys.stdout.flush()
    finally:
        common.SESSION.clear()
    return status


def _shared(args: argparse.Namespace) -> list[str]:
    out = [args.dump]
    for flag, value in (
        ("--vmlinux", args.vmlinux),
        ("--map", args.system_map),
        ("--profile", args.profile),
        ("--era", args.era),
    ):
        if value:
            out += [flag, value]
    if getattr(args, "force", False):
        out.append("--force")
    types = getattr(args, "types", None)
    if types and types != "auto":
        out += ["--types", types]
    return out


def _run(
    parser: argparse.ArgumentParser,
    command: str,
    args: argparse.Namespace,
    rest: list[str],
    context: Any,
) -> int:
    try:
        parsed = parse_command(subcommands(parser)[command], [*_shared(args), *rest])
        parsed.command = command
    except SystemExit as exc:  # argparse printed usage or --help
        return int(exc.code or 0)
    parsed.context = context
    try:
        return int(parsed.handler(parsed))
    except DumpError as exc:
        print(f"backchain: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _piped(pipeline: str, run: Callable[[], int]) -> int:
    """Run a command with its output going to ``pipeline`` (the user's own shell command,
    as crash does); the command's status, or the pipeline's when the command succeeded."""
    import contextlib
    import io
    import subprocess

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = int(run())
    sys.stdout.flush()
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", pipeline], input=out.getvalue(), text=True, check=False
        )
    except OSError as exc:
        print(f"backchain: cannot run {pipeline!r}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT
    return status or (EXIT_OK if done.returncode in (0, 1) else done.returncode)


def _set(kernel: Any, scan: Any, rest: list[str], context: Any) -> Any:
    from explorer.cli.task import pick_task
    from explorer.model.context import default_context

    if not rest:
        if context is None:
            ctx = default_context(kernel, scan)
            print(f"default: PID {ctx.task.pid} {ctx.task.comm} ({ctx.reason})")
        else:
            print(f"set: PID {context.pid} {context.comm} (task 0x{context.address:x})")
        return context
    try:
        task = pick_task(kernel, scan, rest[0])
    except DumpError as exc:
        print(f"backchain: {exc}", file=sys.stderr)
        return context
    print(f'PID: {task.pid:<7} TASK: 0x{task.address:016x}  COMM: "{task.comm}"')
    return task
