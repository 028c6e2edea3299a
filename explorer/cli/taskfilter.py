"""One way to select tasks on every command that lists or walks several (``ps``, ``bt``,
``check``): ``--pid 1,2`` (repeatable), ``--state R,S,D``, ``--comm GLOB``, and one sentence
when they match nothing."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from parsers.errors import DumpError


def pid_list(text: str) -> list[int]:
    """``--pid 1,2``: the pids (argparse type)."""
    try:
        pids = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a pid or a list of pids: {text!r}") from None
    if not pids or any(p < 0 for p in pids):
        raise argparse.ArgumentTypeError(f"not a pid or a list of pids: {text!r}")
    return pids


def pid_option(container: Any, help_text: str = "only these pids (repeatable)") -> None:
    """``--pid PID[,PID...]``, on a parser or a mutually exclusive group."""
    container.add_argument(
        "--pid", type=pid_list, action="append", metavar="PID[,PID...]", help=help_text
    )


def filter_options(parser: argparse.ArgumentParser, what: str = "only tasks") -> None:
    """``--state`` and ``--comm``."""
    parser.add_argument(
        "--state", metavar="R,S,D,I,T,Z", help=f"{what} in these states (ps letters)"
    )
    parser.add_argument("--comm", metavar="PATTERN", help=f"{what} whose name matches (glob: kw*)")


def states_of(text: str | None) -> set[str] | None:
    """``--state R,S,D``: the set of ``ps`` letters, None for all.

    Raises:
        DumpError: a letter that is no task state.
    """
    if not text:
        return None
    from explorer.model.tasks import STATE_LETTERS

    wanted = {s.strip().upper() for s in text.split(",")}
    wanted.discard("")
    bad = sorted(w for w in wanted if w not in STATE_LETTERS.upper())
    if bad:
        raise DumpError(f"--state {','.join(bad)}: not a task state (R S D T t X Z P I)")
    return wanted


def wanted_pids(args: argparse.Namespace) -> set[int] | None:
    """The pids of every ``--pid``, None when none was given."""
    given = getattr(args, "pid", None)
    if not given:
        return None
    return {p for group in given for p in group}


def filtering(args: argparse.Namespace) -> bool:
    """True if any of ``--pid``, ``--state``, ``--comm`` was given."""
    return bool(getattr(args, "pid", None) or args.state or args.comm)


def filter_tasks(tasks: Iterable[Any], args: argparse.Namespace) -> list[Any]:
    """The tasks ``--pid``, ``--state`` and ``--comm`` select (all without them).

    Raises:
        DumpError: ``--state`` names no task state.
    """
    from explorer.reports.pstree import matches

    return matches(tasks, states_of(args.state), args.comm, wanted_pids(args))


def no_match(args: argparse.Namespace) -> str:
    """The sentence for filters that select nothing: ``no task matches --state D``."""
    words = []
    pids = getattr(args, "pid", None)
    if pids:
        words.append("--pid " + ",".join(str(p) for group in pids for p in group))
    if args.state:
        words.append(f"--state {args.state}")
    if args.comm:
        words.append(f"--comm {args.comm}")
    return "no task matches " + " ".join(words) + " (see 'backchain ps')"
