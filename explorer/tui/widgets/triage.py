"""The triage card: what this dump is and what its CPUs were doing (``backchain info``)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from explorer.tui.markup import join_lines, markup
from explorer.tui.session import Session

MAX_CPU_LINES = 4


def cpu_state(psw: dict[str, Any]) -> str:
    """A CPU's state in two words, from its PSW facts."""
    bits = psw["bits"]
    enabled = "IO:1" in bits or "EX:1" in bits
    if psw["wait"]:
        return "idle wait" if enabled else "disabled wait"
    return "user mode" if psw["user_mode"] else "running"


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} bytes"


class TriageCard(Static):
    """Kernel, dump format, memory, symbols and one line per CPU (the first few)."""

    DEFAULT_CSS = """
    TriageCard { height: auto; padding: 0 1; }
    """

    def show(self, session: Session) -> None:
        """Fill the card from the session's facts."""
        f = session.facts
        sym = f["symbols"]
        symbols = (
            markup(
                "$count symbols from $source", count=sym["count"], source=sym["source"].split()[0]
            )
            if sym
            else markup("[$text-warning]no symbols[/] (pass --map or --vmlinux)")
        )
        crash = "" if not f["crash_time"] else f" · crash time {f['crash_time']}"
        cpus = f"{len(f['cpus'])} CPU{'' if len(f['cpus']) == 1 else 's'}{crash}"
        lines = [
            markup(
                "[b]$label[/b] · [b $text-accent]$release[/] · $size · $cpus",
                label=session.label,
                release=f["release"] or "?",
                size=_size(f["memory"]["size"]),
                cpus=cpus,
            ),
            markup("$format · ", format=f["format"]) + symbols,
        ]
        if session.kernel.forced:  # --force: a file of another kernel is in use
            lines.append(
                markup(
                    "[b $text-error]FORCED[/] $n file(s) of another kernel in use (--force): "
                    "names and offsets may be wrong",
                    n=len(session.kernel.forced),
                )
            )
        panic = f.get("panic")
        if panic:
            cpu = f"on CPU {panic['cpu']}: " if panic["cpu"] is not None else ""
            lines.append(
                markup(
                    "[b $text-error]PANIC[/] $cpu$message", cpu=cpu, message=panic["message"] or ""
                )
            )
        for c in f["cpus"][:MAX_CPU_LINES]:
            psw = c["psw"]
            state = cpu_state(psw)
            colour = "b $text-error" if "disabled" in state else "$text-muted"
            lines.append(
                markup(
                    f"CPU $cpu [{colour}]$state[/] $where  [$text-muted]task[/] $task",
                    cpu=f"{c['cpu']:<2}",
                    state=f"{state:<13}",
                    where="" if psw["user_mode"] else psw["symbol"] or psw["addr"],
                    task=self._task_name(session, c["current_task"]),
                )
            )
            if c["problem"]:
                lines.append(markup("       [$text-warning]! $problem[/]", problem=c["problem"]))
        more = len(f["cpus"]) - MAX_CPU_LINES
        if more > 0:
            lines.append(
                markup(
                    "[$text-muted]… $more more CPUs: press l for each CPU's lowcore[/]", more=more
                )
            )
        self.update(join_lines(lines))

    @staticmethod
    def _task_name(session: Session, address: str | None) -> str:
        if address is None:
            return "?"
        task = session.task_at(int(address, 16))
        if task is None:
            return address
        return f"{task.comm}:{task.pid}"  # plain text (a template value)
