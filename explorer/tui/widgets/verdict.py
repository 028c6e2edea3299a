"""The verdict of a walk and what livepatch would log."""

from __future__ import annotations

from rich.markup import escape
from textual.widgets import Static

from explorer.walk.analysis import TaskAnalysis


def verdict_line(a: TaskAnalysis) -> str:
    """``RELIABLE`` or ``UNRELIABLE: rule at frame #n`` as markup."""
    v = a.verdict
    if v.reliable:
        return "[b $text-success]RELIABLE[/]"
    where = "" if v.frame is None else f" at frame #{v.frame}"
    colour = "$text-warning" if v.rule == "task_running" else "$text-error"
    return f"[b {colour}]UNRELIABLE: {escape(v.label)}{where}[/]"


class VerdictBar(Static):
    """Verdict, livepatch's log line, explanation."""

    DEFAULT_CSS = """
    VerdictBar { height: auto; max-height: 4; padding: 0 1; }
    VerdictBar.-hidden { color: $text-muted; }
    """

    def hide(self, placeholder: str, hint: str = "") -> None:
        """Exercise mode: a neutral ``placeholder`` instead of the verdict, and the last hint."""
        self.add_class("-hidden")
        text = f"[b $text-accent]{escape(placeholder)}[/]  a answer · R reveal"
        if hint:
            text += f"\n[$text-warning]✗ {escape(hint)}[/]"
        self.update(text)

    def show(self, a: TaskAnalysis) -> None:
        """Display the verdict of ``a``."""
        self.remove_class("-hidden")
        self.update(
            f"{verdict_line(a)}  [$text-muted]livepatch:[/] {escape(a.livepatch)}\n"
            f"[$text-muted]{escape(a.verdict.message)}[/]"
        )
