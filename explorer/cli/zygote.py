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


def warm(arguments: Sequence[str]) -> None:
    """Import what the session's explorer needs, and open its dump ahead when it names one.
    A dump that cannot be opened is left for each session to report (as it would)."""
    import textual.drivers.web_driver  # noqa: F401  (the served explorer's driver)

    import explorer.tui.app
    from explorer import cli
    from explorer.cli.common import options_of
    from explorer.tui.session import preopen

    if not arguments or arguments[0] in cli.COMMANDS:
        if arguments and arguments[0] == "scenarios":
            import explorer.training.scenarios
            import explorer.tui.screens.picker  # noqa: F401
        return
    try:
        args = cli.build_tui_parser().parse_args(list(arguments))
    except SystemExit:
        return
    if args.dump is None:
        return
    try:
        preopen(args.dump, options_of(args))
    except Exception:  # the session says what is wrong, in its own screen
        return


def run(argv: list[str]) -> int:
    """A forked session: ``backchain ARGV``."""
    from explorer.cli import main

    return main(argv)


def main(argv: Sequence[str] | None = None) -> None:
    from explorer.serve.forks import channel_of, serve_forks

    arguments = list(sys.argv[1:] if argv is None else argv)
    channel = channel_of(arguments[-1])
    warm(arguments[:-1])
    serve_forks(channel, run)


if __name__ == "__main__":
    main()
