"""The rules applied at one step: the unwinder's checks, then livepatch's reliability rules.

Marks: ✓ passed, ✗ failed, • a note (no verdict) or a rule livepatch never reached.
"""

from __future__ import annotations

from rich.markup import escape
from textual.widgets import Static

from explorer.analysis import TaskAnalysis
from explorer.reliable import EXPLANATIONS, RULES
from explorer.unwind import Check

MARKS = {True: "✓", False: "✗", None: "•"}
COLOURS = {True: "$text-success", False: "$text-error", None: "$text-muted"}

#: The per-frame rules of arch_stack_walk_reliable(), in the kernel's order, said positively.
FRAME_RULES = {
    "not_task_stack": "the frame is on the task stack",
    "crossed_pt_regs": "no pt_regs was crossed to reach it",
    "return_address_not_text": "the return address is kernel text",
    "kretprobe_trampoline": "the return address is no kretprobe trampoline",
    "too_many_entries": "it fits livepatch's 100 entries",
}
assert tuple(FRAME_RULES) == RULES[:5]


def livepatch_rules(a: TaskAnalysis, row: int) -> list[tuple[str, bool | None, str]]:
    """Livepatch's rules at walk row ``row`` as (id, ok, text), derived from the verdict.

    Frames before the failing one pass every rule; at the failing frame the rules before the
    failing one pass; later frames were never looked at.
    """
    v = a.verdict
    steps = len(a.walk.steps)
    if v.rule == "task_running":
        return [("task_running", False, v.message)]
    if row >= steps:  # the end of the walk
        if v.rule == "unwind_error":
            return [("unwind_error", False, v.message)]
        if v.reliable:
            return [("reliable", True, v.message)]
        return [("reliable", None, f"livepatch stopped earlier, at frame #{v.frame}.")]
    if v.frame is not None and v.rule in FRAME_RULES:
        if row > v.frame:
            return [("not_checked", None, f"not checked: livepatch stopped at frame #{v.frame}.")]
        if row == v.frame:
            out: list[tuple[str, bool | None, str]] = []
            reached = True
            for rule, text in FRAME_RULES.items():
                if rule == v.rule:
                    out.append((rule, False, v.message))
                    reached = False
                else:
                    out.append((rule, True if reached else None, text))
            return out
    return [(rule, True, text) for rule, text in FRAME_RULES.items()]


class ChecksPane(Static):
    """Checks of the current step; the failing one in the error colour with its explanation.

    Attributes:
        failing: id of the failing check or rule shown, if any.
    """

    DEFAULT_CSS = """
    ChecksPane { height: auto; padding: 0 1; }
    """

    failing: str | None = None

    def show(self, a: TaskAnalysis, row: int) -> None:
        """Display the checks of walk row ``row``."""
        steps = a.walk.steps
        checks: tuple[Check, ...] = steps[row].checks if row < len(steps) else a.walk.end.checks
        where = f"frame #{row}" if row < len(steps) else "the end of the walk"
        lines = [f"[b]unwinder[/b] [$text-muted]unwind_bc.c, {where}[/]"]
        self.failing = None
        if not checks:
            lines.append("[$text-muted]• no checks recorded for this step[/]")
        for c in checks:
            lines.append(self._line(c.id, c.ok, c.reason))
            if c.ok is False:
                self.failing = c.id
                extra = EXPLANATIONS.get(a.walk.end.detail or "", "")
                if extra:
                    lines.append(f"  [$text-error]{escape(extra)}[/]")
        lines.append("")
        lines.append("[b]livepatch[/b] [$text-muted]arch_stack_walk_reliable[/]")
        for rule, ok, text in livepatch_rules(a, row):
            lines.append(self._line(rule, ok, text))
            if ok is False:
                self.failing = self.failing or rule
                lines.append(f"  [$text-error]→ livepatch logs: {escape(a.livepatch)}[/]")
        self.update("\n".join(lines))

    @staticmethod
    def _line(rule: str, ok: bool | None, text: str) -> str:
        colour = COLOURS[ok]
        style = f"b {colour}" if ok is False else colour
        body = escape(text) if ok is not False else f"[{style}]{escape(text)}[/]"
        return f"[{style}]{MARKS[ok]} {escape(rule)}[/]\n  {body}"
