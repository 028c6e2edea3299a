"""The ``backchain`` command: argument parsing and printing (nothing else prints).

``backchain DUMP`` opens the explorer; subcommands print text or ``--json``. Bad input is
one line on stderr and exit status 2; analysis that ran exits 0 whatever it found.

Each subcommand is a module of this package with ``register(sub)``; :data:`COMMANDS` lists
them in the order ``--help`` shows them. Handlers import what they need when they run, so
``backchain --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence

from explorer.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    Handler,
    check_results_file,
    common_options,
    options_of,
    parse_command,
    results_option,
    subcommands,
)
from explorer.reports.printable import EscapingWriter, printable
from parsers.errors import DumpError

#: Subcommand modules of this package, in help order; each module's command has its name,
#: except those in :data:`MODULE_OF`.
COMMANDS = (
    "info",
    "system",
    "ps",
    "log",
    "rd",
    "search",
    "structure",
    "task",
    "profile",
    "bt",
    "check",
    "klp",
    "report",
    "diff",
    "sym",
    "mod",
    "dis",
    "audit",
    "convert",
    "scenarios",
    "serve",
    "shell",
)

#: Commands whose module is named otherwise (``sys``, ``struct``: a module of that name would
#: shadow Python's in this package).
MODULE_OF = {"sys": "system", "struct": "structure"}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of the subcommands (``only``: of that one alone, which is all
    that running one command needs; importing and building every subcommand's parser
    would slow down each start)."""
    parser = argparse.ArgumentParser(
        prog="backchain",
        description="Explore s390x Linux kernel dumps: stack frames, pt_regs, lowcore, and "
        "why a stack trace is or is not reliable. 'backchain DUMP' opens the explorer.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (MODULE_OF.get(only, only),):
        importlib.import_module(f"explorer.cli.{name}").register(sub)
    return parser


def command_list() -> list[str]:
    """``backchain --help``'s command list: every command with its one line of help."""
    top = build_parser()
    helps = {}
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
    rows = [(name, helps.get(name, "")) for name in _command_names()]
    rows.append(("help", "this list, or 'backchain help COMMAND': that command's options"))
    width = max(len(name) for name, _ in rows)
    return [f"  {name:<{width}}  {text}" for name, text in rows]


def build_tui_parser(commands: bool = False) -> argparse.ArgumentParser:
    """The parser of ``backchain [DUMP]`` (the explorer); ``commands``: its help lists
    every command (building every command's parser, which only ``--help`` needs)."""
    parser = argparse.ArgumentParser(
        prog="backchain",
        usage="backchain [DUMP] [options]  |  backchain COMMAND ...  |  backchain help [COMMAND]",
        description="Open DUMP (default: the bundled sample) in the explorer, or run a command.",
        epilog="commands ('backchain help COMMAND' for its options):\n"
        + "\n".join(command_list() if commands else ()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dump", nargs="?", help="dump file (default: the bundled sample)")
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    parser.add_argument(
        "--exercise",
        action="store_true",
        help="hide every verdict until you name the failing frame and rule (a answers, R reveals)",
    )
    parser.add_argument(
        "--source", metavar="DIR", help="kernel source tree: show the source lines of frames"
    )
    results_option(parser)
    common_options(parser)
    return parser


def _version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("backchain")
    except PackageNotFoundError:
        return "(not installed)"


class _Version(argparse.Action):
    """``--version``: looked up only when asked (importlib.metadata slows every start)."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: object) -> None:
        print(f"backchain {_version()}")
        parser.exit()


def _command_names() -> list[str]:
    command_of = {module: command for command, module in MODULE_OF.items()}
    return [command_of.get(module, module) for module in COMMANDS]


def _not_a_command_or_file(word: str, what: str = "command nor an existing dump file") -> str:
    """The usage error for ``backchain WORD`` when WORD is neither a command nor a file."""
    import difflib

    names = _command_names()
    close = difflib.get_close_matches(word, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    article = "neither a " if "nor" in what else "not a "
    return (
        f"backchain: {word!r} is {article}{what}{hint}\n"
        f"commands: {', '.join(names)}; 'backchain --help' explains them"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``backchain``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] == "help":
            if len(args_list) > 2 or (len(args_list) == 2 and args_list[1] not in _command_names()):
                print(_not_a_command_or_file(" ".join(args_list[1:]), "command"), file=sys.stderr)
                return EXIT_BAD_INPUT
            return main([*args_list[1:], "--help"])
        if args_list and args_list[0] in _command_names():
            name = args_list[0]
            args = parse_command(subcommands(build_parser(only=name))[name], args_list[1:])
            args.command = name
            prefetch(args)
            handler: Handler = args.handler
            with escaped_output():
                return handler(args)
        wants_help = any(a in ("-h", "--help") for a in args_list)
        word = args_list[0] if args_list else "-"
        if not (wants_help or word.startswith("-") or os.path.exists(word)):
            # a mistyped command before its dump: not a file either (argparse would only
            # call the dump an unrecognized argument)
            print(_not_a_command_or_file(word), file=sys.stderr)
            return EXIT_BAD_INPUT
        args = build_tui_parser(commands=wants_help).parse_args(args_list)
        if args.dump is not None and not os.path.exists(args.dump):
            print(_not_a_command_or_file(args.dump), file=sys.stderr)
            return EXIT_BAD_INPUT
        return run_tui(args)
    except DumpError as exc:
        print(f"backchain: {printable(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:  # a read no reader turned into a DumpError (EIO, ENOSPC, ...)
        if isinstance(exc, BrokenPipeError):
            return EXIT_OK
        where = f"{exc.filename}: " if exc.filename else ""
        print(printable(f"backchain: {where}{exc.strerror or exc}"), file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


def prefetch(args: argparse.Namespace) -> None:
    """A command that opens one dump with ``--vmlinux`` has the vmlinux's symbol table built
    by a second process meanwhile, when it is not cached (:mod:`explorer.sources.prefetch`)."""
    dump = getattr(args, "dump", None)
    if isinstance(dump, list) and len(dump) == 1:
        dump = dump[0]
    vmlinux = getattr(args, "vmlinux", None)
    if vmlinux and isinstance(dump, str):
        from explorer.sources import prefetch as worker

        # the commands that judge running CPUs decode their code (Capstone) on a first run
        worker.start(vmlinux, meanwhile=_load_decoder if args.command in _DECODING else None)


#: Commands whose first run decodes machine code (the prologue of each CPU's PSW).
_DECODING = frozenset({"check", "bt"})


def _load_decoder() -> None:
    """Load the instruction decoder now (while a worker builds the symbol table)."""
    from explorer.code.insn import load_decoder

    load_decoder()


@contextlib.contextmanager
def escaped_output() -> Iterator[None]:
    """Standard output and error through :class:`EscapingWriter` meanwhile: whatever text a
    command prints from the dump, its control characters reach the terminal escaped."""
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingWriter(out), EscapingWriter(err)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stdout, sys.stderr = out, err


def run_tui(args: argparse.Namespace) -> int:
    """Open the explorer on DUMP (default: the bundled sample). Errors opening the dump are
    shown inside the explorer, which keeps running."""
    from explorer.training.bundled import default_sample
    from explorer.tui.app import run

    if args.dump is None:
        args.dump = default_sample()
    scenario = getattr(args, "scenario", None)  # set by 'backchain scenarios open NAME'
    exercise = bool(getattr(args, "exercise", False)) or scenario is not None
    results = getattr(args, "results", None)
    if results is not None:
        check_results_file(results)
    return run(args.dump, options_of(args), exercise=exercise, scenario=scenario, results=results)


__all__ = ["COMMANDS", "build_parser", "build_tui_parser", "main", "run_tui"]
