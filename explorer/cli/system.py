"""``backchain sys``: the system at dump time, like crash's ``sys``."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    common_options,
    json_flag,
    open_kernel,
    plural,
    print_json,
    size_text,
)


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "sys", help="release, machine, CPUs, memory, uptime, load average, panic (crash sys)"
    )
    p.add_argument("dump", help="dump file")
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_sys)


def cmd_sys(args: argparse.Namespace) -> int:
    """``backchain sys``."""
    from explorer.livepatch.summary import livepatch_summary
    from explorer.reports.system import sys_info

    kernel = open_kernel(args)
    info = sys_info(kernel)
    livepatch = livepatch_summary(kernel)
    if args.json:
        doc = asdict(info)
        doc["warnings"] = list(info.warnings)
        if livepatch is not None:  # only kernels with a livepatch loaded
            doc["livepatch"] = livepatch
        print_json(doc)
        return EXIT_OK
    lines = sys_lines(info)
    if livepatch is not None:
        at = next((i for i, line in enumerate(lines) if line.startswith("note: ")), len(lines))
        lines.insert(at, f"{'LIVEPATCH':>12}: {livepatch}")
    print("\n".join(lines))
    return EXIT_OK


def uptime_text(seconds: float) -> str:
    """``1 day, 02:03:04`` or ``00:00:16.68``."""
    days, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    clock = f"{int(h):02d}:{int(m):02d}:{s:05.2f}"
    return f"{plural(int(days), 'day')}, {clock}" if days >= 1 else clock


def sys_lines(info: Any) -> list[str]:
    """The text of ``backchain sys``."""
    import datetime

    def row(label: str, value: object) -> str:
        return f"{label:>12}: {value}"

    online = "" if info.cpus_online is None else f" ({info.cpus_online} online)"
    lines = [
        row("RELEASE", info.release or "unknown"),
        row("VERSION", info.version or "unknown"),
        row("NODENAME", info.nodename or "unknown"),
        row("MACHINE", info.machine),
        row("CPUS", f"{info.cpus} in the dump{online}"),
        row(
            "MEMORY",
            f"{size_text(info.memory)} in the dump"
            + ("" if info.total_ram is None else f", MemTotal {info.total_ram // 1024} kB"),
        ),
    ]
    if info.uptime_s is not None:
        lines.append(row("UPTIME", f"{uptime_text(info.uptime_s)} ({info.uptime_s:.3f} s)"))
    else:
        lines.append(row("UPTIME", "unknown"))
    if info.load_average is not None:
        lines.append(row("LOAD AVERAGE", ", ".join(f"{x:.2f}" for x in info.load_average)))
    if info.dump_time is not None:
        when = datetime.datetime.fromtimestamp(info.dump_time, datetime.UTC)
        lines.append(row("DUMP TIME", f"{when:%Y-%m-%d %H:%M:%S} UTC ({info.dump_time_source})"))
    if info.panic_cpu is not None or info.panic_message:
        cpu = "" if info.panic_cpu is None else f"on CPU {info.panic_cpu}: "
        lines.append(row("PANIC", f"{cpu}{info.panic_message or '(no message in the log)'}"))
    else:
        lines.append(row("PANIC", "none (no panic_cpu, no panic in the log)"))
    lines += [f"note: {w}" for w in info.warnings]
    return lines
