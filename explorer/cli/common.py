"""What every subcommand shares: the symbol/type options, address parsing, JSON output,
opening the dump, and a progress line on stderr."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK = 0
EXIT_BAD_INPUT = 2

Handler = Callable[[argparse.Namespace], int]

#: Values of ``--types``.
TYPE_SOURCES = ("auto", "dwarf", "btf", "profile", "bundled", "probe")
#: Warnings of the kernel opened last with ``--force`` mismatches, repeated in JSON output.
_FORCED: list[str] = []


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The parsers of ``parser``'s subcommands by name (empty when it has none)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def parse_command(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse one subcommand's arguments with its own parser, options anywhere among the
    positionals (``task DUMP --map M 1``, ``dis DUMP FUNC -r 6``); errors show that
    subcommand's usage. A command with actions of its own (``scenarios build NAME``)
    parses the action's arguments the same way.

    Raises:
        SystemExit: argparse's usage error or ``--help`` (exit 2 or 0).
    """
    actions = subcommands(parser)
    if actions:
        if argv and argv[0] in actions:
            args = parse_command(actions[argv[0]], argv[1:])
            sub_dest = next(
                a.dest for a in parser._actions if isinstance(a, argparse._SubParsersAction)
            )
            setattr(args, sub_dest, argv[0])
            for key, value in parser._defaults.items():  # the command's set_defaults
                if not hasattr(args, key):
                    setattr(args, key, value)
        else:  # --help, or no or an unknown action: argparse says which
            args = parser.parse_args(argv)
    else:
        args = parser.parse_intermixed_args(argv)
    return args


def common_options(parser: argparse.ArgumentParser) -> None:
    """Options every subcommand and the TUI share."""
    g = parser.add_argument_group("symbols and types (found beside the dump when omitted)")
    g.add_argument("--vmlinux", metavar="FILE", help="vmlinux with symbols (and DWARF types)")
    g.add_argument("--map", metavar="FILE", dest="system_map", help="System.map (or .zst)")
    g.add_argument("--profile", metavar="FILE", help="type profile made by 'backchain profile'")
    g.add_argument(
        "--era",
        choices=("v5.5", "current"),
        help="unwinder rules to apply (default: from the kernel release)",
    )
    g.add_argument(
        "--types",
        choices=TYPE_SOURCES,
        default="auto",
        help="where struct offsets come from (default auto: --profile, --vmlinux DWARF, the "
        "dump's BTF, a bundled profile, then inference from the dump)",
    )
    g.add_argument(
        "--force",
        action="store_true",
        help="use a symbol file, vmlinux or profile even if it does not belong to the dump "
        "(every output then carries a warning)",
    )


def results_option(parser: argparse.ArgumentParser) -> None:
    """``--results FILE``: where exercise answers are appended."""
    parser.add_argument(
        "--results",
        metavar="FILE",
        help="exercise mode: ask the trainee's name, append every answer to FILE as one JSON "
        "line (summary: 'backchain scenarios results FILE')",
    )


def check_results_file(path: str) -> None:
    """Refuse a results file that cannot be appended to (before any trainee answers).

    Raises:
        DumpError: naming the file and why.
    """
    from parsers.errors import DumpError

    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise DumpError(f"cannot write the results file: {exc.strerror}", path) from None


def address(text: str) -> int:
    """An address on the command line: hex with or without 0x."""
    try:
        return int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a hex address: {text!r}") from None


def word_size_options(parser: argparse.ArgumentParser, sizes: tuple[int, ...]) -> None:
    """``-8``/``-16``/``-32``/``-64`` (those in ``sizes``): the word size in bits, as
    ``args.bits`` (default 64), as crash's rd and search spell it."""
    group = parser.add_mutually_exclusive_group()
    for bits in sizes:
        group.add_argument(
            f"-{bits}",
            dest="bits",
            action="store_const",
            const=bits,
            help=f"{bits}-bit words" + (" (the default)" if bits == 64 else ""),
        )
    parser.set_defaults(bits=64)


def json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def size_text(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << (shift - 10)) == 0:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} bytes"


def word(value: str | None) -> str:
    """A ``"0x…"`` string from the facts as a full 64-bit word (``0x%016x``)."""
    return "?" if value is None else f"0x{int(value, 16):016x}"


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """``1 task``, ``2 tasks``."""
    return f"{n} {noun if n == 1 else (nouns or noun + 's')}"


def print_json(data: Any) -> None:
    """Print one JSON document; a dict gets ``"forced"`` when --force used a mismatching
    file, so the warning travels with the data."""
    if _FORCED and isinstance(data, dict) and "forced" not in data:
        data = {**data, "forced": list(_FORCED)}
    import json

    # json.dump would hand each token to stdout (escaping, encoding) on its own: tens of
    # thousands of writes for a fleet's report. The same text goes out 1 MiB at a time.
    chunks: list[str] = []
    size = 0
    for chunk in json.JSONEncoder(indent=2).iterencode(data):
        chunks.append(chunk)
        size += len(chunk)
        if size >= JSON_WRITE:
            sys.stdout.write("".join(chunks))
            chunks.clear()
            size = 0
    chunks.append("\n")
    sys.stdout.write("".join(chunks))


#: Characters of JSON text gathered before a write to stdout.
JSON_WRITE = 1 << 20


def options_of(args: argparse.Namespace) -> Any:
    from explorer.model.options import Options

    return Options(
        vmlinux=args.vmlinux,
        system_map=args.system_map,
        profile=args.profile,
        era=args.era,
        force=bool(getattr(args, "force", False)),
        types=getattr(args, "types", None) or "auto",
        source=getattr(args, "source", None),
    )


#: Dumps 'backchain shell' keeps open, by :func:`kernel_key`: its commands open them once.
SESSION: dict[tuple[str | None, ...], Any] = {}


def kernel_key(args: argparse.Namespace) -> tuple[str | None, ...]:
    """What identifies an opened dump: the file and the symbol/type options."""
    return (
        args.dump,
        args.vmlinux,
        args.system_map,
        args.profile,
        args.era,
        str(bool(getattr(args, "force", False))),
        getattr(args, "types", None) or "auto",
    )


def open_kernel(args: argparse.Namespace) -> Any:
    """Open the dump with the shared options; on stderr, warn about any --force mismatch and
    note each companion file skipped."""
    from explorer.model import opening

    known = SESSION.get(kernel_key(args))
    if known is not None:
        return known
    kernel = opening.open_kernel(args.dump, options_of(args), progress=progress_printer())
    _FORCED[:] = kernel.forced
    for warning in kernel.forced:
        print(f"warning: {warning}", file=sys.stderr)
    for note in kernel.skipped:
        print(f"note: {note}", file=sys.stderr)
    return kernel


def print_type_notes(kernel: Any) -> None:
    """On stderr, what the type graph says about how it was read (a fallback reader)."""
    from explorer.model.structview import type_notes

    for note in type_notes(kernel):
        print(f"note: {note}", file=sys.stderr)


def progress_printer(
    what: str = "decompressing the dump once into the cache",
) -> Callable[[int, int], None] | None:
    """A percentage on stderr while long work runs, when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    last = [-1]
    stream = getattr(sys.stderr, "raw", sys.stderr)  # "\r" is ours, not the dump's

    def show(done: int, total: int) -> None:
        pct = 100 * done // total if total else 100
        if pct != last[0]:
            last[0] = pct
            stream.write(f"\r{what}: {pct:3d}%")
            if pct >= 100:
                stream.write("\n")
            stream.flush()

    return show


#: The capacity asked of a pipe before a large output (Linux lets anyone ask up to
#: /proc/sys/fs/pipe-max-size, 1 MiB by default).
PIPE_SIZE = 1 << 20


def widen_pipe(stream: Any) -> None:
    """When ``stream`` is a pipe, ask Linux for a 1 MiB one (``F_SETPIPE_SZ``): its reader
    is then woken once per MiB instead of per 64 KiB. Anything else (a file, a terminal,
    another system), or a refusal, changes nothing."""
    import os
    import stat

    try:
        import fcntl

        fd = stream.fileno()
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), PIPE_SIZE)
    except (OSError, ValueError, AttributeError, ImportError):  # io.UnsupportedOperation too
        pass
