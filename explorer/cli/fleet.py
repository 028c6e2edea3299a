"""``check DUMP... [--jobs N] [--cluster dask://HOST:PORT]``: the options and the handler
(explorer/cli/check.py stays small and hands several dumps over to this module)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any


def fleet_options(parser: argparse.ArgumentParser) -> None:
    """``--jobs`` and ``--cluster``."""
    g = parser.add_argument_group("many dumps (check DUMP DUMP ...)")
    g.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=0,
        metavar="N",
        help="walk N dumps at once in separate processes (default: one per CPU)",
    )
    g.add_argument(
        "--cluster",
        metavar="dask://HOST:PORT",
        help="walk the dumps on a Dask distributed scheduler (pip install 'backchain[cluster]'); "
        "the dump paths must be readable by its workers",
    )
    g.add_argument(
        "--cluster-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up reaching the Dask scheduler after this long (default 30)",
    )


def is_fleet(args: argparse.Namespace) -> bool:
    """True when ``check`` was given several dumps (or --cluster)."""
    return len(args.dump) > 1 or bool(getattr(args, "cluster", None))


def options_from(args: argparse.Namespace) -> Any:
    """The options every dump of ``check DUMP...`` and ``diff`` is opened with."""
    from explorer.cli.common import options_of
    from explorer.fleet.walk import CheckOptions

    return CheckOptions(options_of(args), tuple(f for f in args.functions.split(",") if f))


def progress_printer(total: int) -> Callable[[Any], None] | None:
    """``checked N of TOTAL dumps`` on stderr, rewritten as each dump finishes, when stderr
    is a terminal (a pipe or file gets only the report and the errors)."""
    if not sys.stderr.isatty():
        return None
    stream = getattr(sys.stderr, "raw", sys.stderr)  # "\r" is ours, not a dump's
    done = [0, 0]

    def show(result: Any) -> None:
        done[0] += 1
        done[1] += result.error is not None
        failed = f" ({done[1]} failed)" if done[1] else ""
        stream.write(f"\rchecked {done[0]} of {total} dumps{failed}")
        if done[0] >= total:
            stream.write("\n")
        stream.flush()

    stream.write(f"checked 0 of {total} dumps")
    stream.flush()
    return show


def cmd_check_many(args: argparse.Namespace) -> int:
    """Walk every dump, group identical stacks, print text or ``--json``."""
    import os

    from explorer.cli.common import EXIT_BAD_INPUT, EXIT_OK, print_json

    if getattr(args, "pid", None) or getattr(args, "state", None) or getattr(args, "comm", None):
        print(
            "backchain: check --pid/--state/--comm select tasks of one dump: run "
            "'backchain check DUMP --state D' for each dump",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    if getattr(args, "lines", False) or getattr(args, "source", None):
        print(
            "backchain: check --lines/--source reads one dump's debug information: run "
            "'backchain check DUMP --lines' for each dump",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    options = options_from(args)
    if args.cluster:
        from explorer.fleet.cluster import check_on_cluster

        results = check_on_cluster(
            args.cluster,
            args.dump,
            options,
            timeout=args.cluster_timeout,
            progress=progress_printer(len(args.dump)),
        )
    else:
        from explorer.fleet.walk import check_many

        jobs = args.jobs if args.jobs > 0 else (os.cpu_count() or 1)
        results = check_many(
            args.dump, options, jobs=jobs, progress=progress_printer(len(args.dump))
        )
    # imported once the dumps are out: on a cluster, its workers would wait meanwhile
    from explorer.fleet.group import fleet_json, fleet_jsonl, fleet_text, group_stacks

    report = group_stacks(results, options.functions)
    if getattr(args, "jsonl", False):
        for line in fleet_jsonl(report):
            sys.stdout.write(line + "\n")
    elif args.json:
        print_json(fleet_json(report))
    else:
        print("\n".join(fleet_text(report, every=bool(getattr(args, "all", False)))))
    for r in results:
        for warning in r.forced:
            print(f"warning: {r.path}: {warning}", file=sys.stderr)
    failed = [r for r in results if r.error is not None]
    for r in failed:
        print(f"backchain: {r.error}", file=sys.stderr)
    return EXIT_BAD_INPUT if failed else EXIT_OK
