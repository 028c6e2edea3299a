"""``backchain serve``: the explorer in web browsers, one explorer process per session."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from typing import Any

from explorer.cli.common import EXIT_OK, check_results_file, common_options
from parsers.errors import DumpError


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "serve",
        help="serve the explorer to web browsers (a classroom: one explorer per session)",
        description="Serve the explorer over HTTP: every browser session runs its own explorer "
        "process, the same one 'backchain DUMP' runs in a terminal. Binds 127.0.0.1 unless "
        "--host says otherwise; any other host needs a token (one is generated and printed "
        "when --token is not given).",
    )
    p.add_argument("dump", nargs="?", help="dump to open in every session (default: the sample)")
    p.add_argument(
        "--scenarios",
        nargs="?",
        const="",
        metavar="NAME,...",
        help="open the training-scenario picker (only these scenarios when names are given; "
        "one name opens that scenario directly); implies --exercise",
    )
    p.add_argument("--exercise", action="store_true", help="every session in exercise mode")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument("--token", help="secret every browser needs (its URL ends in ?token=...)")
    p.add_argument(
        "--max-sessions",
        type=_positive_int,
        default=30,
        metavar="N",
        help="concurrent sessions at most (default: 30); more get a 'classroom is full' page",
    )
    p.add_argument(
        "--idle-timeout",
        type=float,
        default=1800.0,
        metavar="S",
        help="end a session after S seconds without input, counted from its first screen "
        "(default: 1800; 0: never)",
    )
    p.add_argument(
        "--no-fork",
        action="store_true",
        help="start every session's explorer anew (default: fork it from a warm process "
        "that has imported the explorer and opened the dump once; sessions start faster "
        "and share that memory)",
    )
    p.add_argument(
        "--results",
        metavar="FILE",
        help="append every exercise answer as one JSON line to FILE (sessions ask the "
        "trainee's name first); summarize with 'backchain scenarios results FILE'",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log every request and refused connection (default: one line per session start "
        "and end, and problems)",
    )
    common_options(p)
    p.set_defaults(handler=cmd_serve)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def session_command(args: argparse.Namespace) -> list[str]:
    """The argv of one session's explorer (``backchain ...`` as this Python runs it)."""
    argv = [sys.executable, "-m", "explorer"]
    if args.scenarios is not None:
        names = [n for n in args.scenarios.split(",") if n]
        if len(names) == 1:
            argv += ["scenarios", "open", names[0]]
        else:
            argv += ["scenarios", "open"] + (["--only", ",".join(names)] if names else [])
    else:
        argv.append(os.path.abspath(args.dump))
        if args.exercise:
            argv.append("--exercise")
        for option, value in (
            ("--vmlinux", args.vmlinux),
            ("--map", args.system_map),
            ("--profile", args.profile),
        ):
            if value is not None:
                argv += [option, os.path.abspath(value)]
        if args.era is not None:
            argv += ["--era", args.era]
    if args.results is not None:
        argv += ["--results", os.path.abspath(args.results)]
    return argv


def zygote_command(argv: list[str]) -> tuple[str, ...] | None:
    """The warm process that forks sessions running ``argv`` (explorer.cli.zygote), when
    ``argv`` is ``backchain ...`` as this Python runs it."""
    prefix = [sys.executable, "-m", "explorer"]
    if argv[:3] != prefix:
        return None
    return (sys.executable, "-m", "explorer.cli.zygote", *argv[3:])


def _check_inputs(args: argparse.Namespace) -> None:
    """Bad input is refused before the server starts, not in every session."""
    from explorer.training.bundled import default_sample

    if args.scenarios is not None:
        if args.dump is not None:
            raise DumpError("give a DUMP or --scenarios, not both")
        from explorer.training import scenarios

        for name in filter(None, args.scenarios.split(",")):
            scenarios.get(name)  # raises on an unknown name
    elif args.dump is None:
        args.dump = default_sample()
    elif not os.path.isfile(args.dump):
        raise DumpError("no such file", args.dump)
    if args.results is not None:
        check_results_file(args.results)
    if args.idle_timeout < 0:
        raise DumpError("--idle-timeout must be 0 (never) or more seconds")


def offered(args: argparse.Namespace) -> list[str]:
    """The scenarios the classroom offers: those named, else every one; none for a dump."""
    if args.scenarios is None:
        return []
    from explorer.training import scenarios

    names = [scenarios.get(n).name for n in args.scenarios.split(",") if n]
    return names or scenarios.names()


def urls(host: str, port: int, token: str | None) -> list[str]:
    """The URLs trainees open: one per non-loopback address of the machine (else its name)
    when ``host`` is a wildcard, else ``host``'s own."""
    from explorer.serve.policy import public_hosts  # here: 'backchain --help' stays quick

    out = []
    for shown in public_hosts(host):
        if ":" in shown:
            shown = f"[{shown}]"
        out.append(f"http://{shown}:{port}/" + (f"?token={token}" if token else ""))
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    """``backchain serve``: run the classroom server until Ctrl+C."""
    from explorer.serve.policy import resolve_token
    from explorer.serve.server import ClassroomServer, ServeConfig

    _check_inputs(args)
    try:
        token, generated = resolve_token(args.host, args.token)
    except ValueError as exc:
        raise DumpError(f"--token: {exc}") from None
    argv = session_command(args)
    if args.scenarios is not None:
        title = "backchain: training scenarios"
    else:
        title = f"backchain {os.path.basename(args.dump)}"
    config = ServeConfig(
        argv=tuple(argv),
        title=title,
        host=args.host,
        port=args.port,
        token=token,
        max_sessions=args.max_sessions,
        idle_timeout=args.idle_timeout,
        verbose=args.verbose,
        results=None if args.results is None else os.path.abspath(args.results),
        trainer_key=None if args.results is None else secrets.token_urlsafe(12),
        offered=tuple(offered(args)),
        zygote=None if args.no_fork else zygote_command(argv),
    )

    def announce(port: int) -> None:
        print(f"backchain serve: {title}", flush=True)
        for url in urls(args.host, port, token):
            print(f"  open {url}", flush=True)
        if generated:
            print(f"  (a token was generated for this run: {token})", flush=True)
        idle = "never" if args.idle_timeout == 0 else f"after {args.idle_timeout:g} s"
        print(f"  {args.max_sessions} sessions at most; idle sessions end {idle}", flush=True)
        if args.results is not None:
            print(f"  exercise answers go to {os.path.abspath(args.results)}", flush=True)
            for url in urls(args.host, port, token):
                joint = "&" if "?" in url else "?"
                page = url.replace("/?", "/results?") if "/?" in url else url + "results"
                print(f"  trainer's results: {page}{joint}key={config.trainer_key}", flush=True)
        print("  Ctrl+C stops the server and every session", flush=True)

    server = ClassroomServer(config, announce=announce)
    try:
        server.serve()
    except OSError as exc:
        raise DumpError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
    return EXIT_OK
