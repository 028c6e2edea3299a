"""The verdict of a walk and what livepatch would log."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from explorer.tui.markup import markup
from explorer.walk.analysis import TaskAnalysis


def verdict_line(a: TaskAnalysis) -> Content:
    """``RELIABLE`` or ``UNRELIABLE: rule at frame #n``."""
    v = a.verdict
    if v.reliable:
        return markup("[b $text-success]RELIABLE[/]")
    where = "" if v.frame is None else f" at frame #{v.frame}"
    colour = "$text-warning" if v.rule == "task_running" else "$text-error"
    return markup(f"[b {colour}]UNRELIABLE: $label[/]", label=f"{v.label}{where}")


class VerdictBar(Static):
    """Verdict, livepatch's log line, explanation."""

    DEFAULT_CSS = """
    VerdictBar { height: auto; max-height: 4; padding: 0 1; }
    VerdictBar.-hidden { color: $text-muted; }
    """

    def hide(self, placeholder: str, hint: str = "", keys: str = "a answer · R reveal") -> None:
        """Exercise mode: a neutral ``placeholder`` instead of the verdict, the keys that
        answer, and the last hint."""
        self.add_class("-hidden")
        text = markup("[b $text-accent]$placeholder[/]  $keys", placeholder=placeholder, keys=keys)
        if hint:
            text += "\n" + markup("[$text-warning]✗ $hint[/]", hint=hint)
        self.update(text)

    def show(self, a: TaskAnalysis, livepatch: str | None = None) -> None:
        """Display the verdict of ``a``; ``livepatch``: the kernel's decision while a
        transition is in progress (else the line livepatch would log)."""
        self.remove_class("-hidden")
        self.update(
            verdict_line(a)
            + markup(
                "  [$text-muted]livepatch:[/] $livepatch\n[$text-muted]$message[/]",
                livepatch=livepatch or a.livepatch,
                message=a.verdict.message,
            )
        )
