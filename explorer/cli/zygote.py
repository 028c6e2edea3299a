"""The warm process ``backchain serve`` forks its sessions from (explorer.serve.forks).

    python -m explorer.cli.zygote ARG... FD

ARG... are the arguments every session's ``backchain`` gets (``DUMP [options]`` or
``scenarios open ...``); FD is the zygote's end of the server's socket. It imports what a
session's explorer imports, opens the served dump (``DUMP``; scenarios are built and opened
by each session), then forks a session per request: each runs ``backchain`` with its own
arguments as if started anew, with everything here already done.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

#: The explorer's packages a session uses (every module of each is imported ahead: a
#: session opening a stack would import most of them, Capstone and pyelftools included,
#: 0.7 s of CPU per session otherwise); not the fleet (dask) nor the server.
PACKAGES = (
    "parsers",
    "explorer.sources",
    "explorer.model",
    "explorer.walk",
    "explorer.code",
    "explorer.debuginfo",
    "explorer.reports",
    "explorer.training",
    "explorer.livepatch",
    "explorer.tui",
)
#: What those modules import only when first needed.
LAZY = (
    "textual.drivers.web_driver",
    "capstone",
    "elftools.elf.elffile",
    "elftools.dwarf.dwarfinfo",
    "cramjam",
    "rich._emoji_codes",
)


def import_ahead() -> list[str]:
    """Import :data:`PACKAGES`' modules and :data:`LAZY`; returns those that failed (an
    optional dependency missing: the session does without, as it would)."""
    import importlib
    import pkgutil

    failed = []
    names = list(LAZY)
    for package in PACKAGES:
        try:
            module = importlib.import_module(package)
        except ImportError:
            failed.append(package)
            continue
        names += [
            info.name
            for info in pkgutil.walk_packages(module.__path__, package + ".")
            if not info.name.endswith("__main__")
        ]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            failed.append(name)
    return failed


def warm(arguments: Sequence[str]) -> None:
    """Import what the session's explorer needs, and open its dump ahead when it names one
    (every task judged), then draw its overview once, headless (the CSS parsed, Textual's
    caches filled). A dump that cannot be opened is left for each session to report (as it
    would)."""
    from explorer import cli
    from explorer.cli.common import options_of

    import_ahead()
    from explorer.tui.session import preopen

    if not arguments or arguments[0] in cli.COMMANDS:
        return
    try:
        args = cli.build_tui_parser().parse_args(list(arguments))
    except SystemExit:
        return
    if args.dump is None:
        return
    options = options_of(args)
    try:
        preopen(args.dump, options)
    except Exception:  # the session says what is wrong, in its own screen
        return
    from explorer.tui.rehearsal import rehearse

    try:
        rehearse(args.dump, options)
    except Exception:  # only a warm-up: each session draws its own screens
        return


def run(argv: list[str]) -> int:
    """A forked session: ``backchain ARGV``."""
    from explorer.cli import main

    return main(argv)


def main(argv: Sequence[str] | None = None) -> None:
    import signal

    from explorer.serve.forks import channel_of, serve_forks

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's: it closes the socket
    arguments = list(sys.argv[1:] if argv is None else argv)
    channel = channel_of(arguments[-1])
    warm(arguments[:-1])
    serve_forks(channel, run)


if __name__ == "__main__":
    main()
