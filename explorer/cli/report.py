"""``backchain report``: the first five minutes of a triage, ranked and short."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from explorer.cli.common import EXIT_OK, common_options, json_flag, open_kernel, print_json

#: One screen: 80 columns, 24 rows (one left for the shell prompt).
WIDTH, ROWS = 80, 23
_LABELS = {
    "stopped": "STOPPED",
    "log": "LOG",
    "blocked": "BLOCKED",
    "unreliable": "UNRELIABLE",
    "stack_sanity": "SANITY",
    "cpus": "CPUS",
    "livepatch": "LIVEPATCH",
    "taints": "TAINTS",
}
#: How many detail lines each finding gets by default, in rank order, while rows remain.
_QUOTA = {"stopped": 3, "log": 2, "blocked": 3, "unreliable": 3, "stack_sanity": 2, "cpus": 2}


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser(
        "report",
        help="triage in one screen: why it stopped, CPUs, blocked and unreliable tasks, log",
        description="The first five minutes of a triage: ranked findings, each pointing to "
        "the command that shows it in full. One 80x24 screen unless --all.",
    )
    p.add_argument("dump", help="dump file")
    p.add_argument("--all", action="store_true", help="every finding in full, no screen limit")
    p.add_argument("--markdown", action="store_true", help="print Markdown (for a ticket)")
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_report)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def text_lines(findings: list[Any], dump: str, release: str | None, every: bool) -> list[str]:
    """The text report; without ``every`` at most :data:`ROWS` lines of :data:`WIDTH`."""
    width = 10_000 if every else WIDTH
    head = f"backchain report: {release or 'release unknown'}  DUMP={dump}"
    lines = [_fit(head, width)]
    spare = ROWS - 1 - len(findings)
    for f in findings:
        cmd = f"[{f.command}]"
        label = f"{_LABELS.get(f.id, f.id.upper()):<10} "
        body = _fit(f.headline, width - len(label) - len(cmd) - 2)
        lines.append(
            f"{label}{body}".ljust(width - len(cmd) - 1) + " " + cmd
            if not every
            else f"{label}{body}  {cmd}"
        )
        details = list(f.details)
        take = len(details) if every else min(len(details), _QUOTA.get(f.id, 0), max(spare, 0))
        shown = details[:take]
        if not every and take < len(details) and take:
            shown[-1] = f"… {len(details) - take + 1} more (--all, or the command)"
        spare -= take
        lines += [_fit("           " + d, width) for d in shown]
    return lines


def _md(text: str) -> str:
    """Markdown-escaped text (function names carry underscores, stacks '<-')."""
    out = []
    for ch in text:
        out.append("\\" + ch if ch in "\\`*_[]<>#|" else ch)
    return "".join(out)


def markdown_lines(findings: list[Any], dump: str, release: str | None, every: bool) -> list[str]:
    """The report as Markdown (for a ticket)."""
    lines = [f"# backchain report: {_md(Path(dump).name)}", "", f"Kernel {_md(release or '?')}."]
    for n, f in enumerate(findings, 1):
        lines += [
            "",
            f"## {n}. {_md(f.title[:1].upper() + f.title[1:])}",
            "",
            f"**{_md(f.headline)}**",
        ]
        details = list(f.details) if every else list(f.details)[: _QUOTA.get(f.id, 0)]
        if details:
            lines.append("")
            lines += [f"- {_md(d.strip())}" for d in details]
            if len(details) < len(f.details):
                lines.append(f"- {len(f.details) - len(details)} more: `backchain report --all`")
        lines += ["", f"In full: `backchain {f.command.replace('DUMP', dump)}`"]
    return lines


def cmd_report(args: argparse.Namespace) -> int:
    """``backchain report``."""
    from dataclasses import asdict

    from explorer.model.tasks import find_tasks
    from explorer.reports.triage import triage

    kernel = open_kernel(args)
    findings = triage(kernel, find_tasks(kernel))
    if args.json:
        docs = [asdict(f) | {"command": f"backchain {f.command}"} for f in findings]
        print_json({"dump": args.dump, "release": kernel.release, "findings": docs})
        return EXIT_OK
    draw = markdown_lines if args.markdown else text_lines
    print("\n".join(draw(findings, args.dump, kernel.release, args.all)))
    return EXIT_OK
