"""The rules applied at one step: the unwinder's checks, then livepatch's reliability rules.

Marks: ✓ passed, ✗ failed, • a note (no verdict) or a rule livepatch never reached.
"""

from __future__ import annotations

import textwrap

from textual.content import Content
from textual.widgets import Static

from explorer.tui.markup import join_lines, markup
from explorer.walk.analysis import TaskAnalysis
from explorer.walk.reliable import RULES, UNWIND_STOPS
from explorer.walk.unwind import Check

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


#: A line of the pane: content shown as is, or (plain text, style, first indent, other indent)
#: that is wrapped to the pane's width with a hanging indent.
Line = Content | tuple[str, str, str, str]


def wrap(text: str, style: str, width: int, first: str = "  ", rest: str = "  ") -> list[Content]:
    """``text`` (plain, never markup) wrapped to ``width`` with a hanging indent, each line
    in ``style``."""
    room = max(width - len(rest), 12)
    parts = textwrap.wrap(text, room, break_on_hyphens=False) or [""]
    return [
        Content(first if i == 0 else rest) + Content.styled(part, style)
        for i, part in enumerate(parts)
    ]


class ChecksPane(Static):
    """Checks of the current step; the failing one in the error colour with its explanation.

    Reasons are wrapped to the pane's width with a hanging indent (again on every resize).
    In exercise mode :meth:`hide` shows a placeholder and livepatch's rules without marks.

    Attributes:
        failing: id of the failing check or rule shown, if any.
    """

    DEFAULT_CSS = """
    ChecksPane { height: auto; padding: 0 1; }
    """

    failing: str | None = None

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lines: list[Line] = []

    def show(self, a: TaskAnalysis, row: int, cfi: list[str] | None = None) -> None:
        """Display the checks of walk row ``row`` (and ``cfi``: what the CFI unwinder found
        there, when the walk pane shows it)."""
        steps = a.walk.steps
        checks: tuple[Check, ...] = steps[row].checks if row < len(steps) else a.walk.end.checks
        where = f"frame #{row}" if row < len(steps) else "the end of the walk"
        lines: list[Line] = [
            markup("[b]unwinder[/b] [$text-muted]unwind_bc.c, $where[/]", where=where)
        ]
        failing: list[Line] = []  # shown first, so the failing rule is visible unscrolled
        self.failing = None
        if not checks:
            lines.append(markup("[$text-muted]• no checks recorded for this step[/]"))
        for c in checks:
            block = self._check(c.id, c.ok, c.reason)
            if c.ok is False:
                self.failing = c.id
                if a.walk.end.detail:  # the reason said what; this says what follows
                    block.append((UNWIND_STOPS, "$text-error", "  ", "  "))
                failing += block
            else:
                lines += block
        lines.append(Content())
        lines.append(markup("[b]livepatch[/b] [$text-muted]arch_stack_walk_reliable[/]"))
        for rule, ok, text in livepatch_rules(a, row):
            if ok is False:
                self.failing = self.failing or rule
                name = FRAME_RULES.get(rule)
                title = f"{name}: fails ({rule})" if name else rule
                failing += self._check(title, ok, text)
                failing.append((f"→ livepatch logs: {a.livepatch}", "$text-error", "  ", "    "))
            else:
                # passing rules are named by what they test, never by the failure's id
                lines += self._check(
                    FRAME_RULES.get(rule, rule), ok, "" if rule in FRAME_RULES else text
                )
        if cfi is not None:  # first (after a failure): the toggle was just pressed
            head = markup("[b]CFI unwinder[/b] [$text-muted](f hides)[/]")
            lines = [head, *[(text, "", "• ", "  ") for text in cfi], Content(), *lines]
        if failing:
            lines = [markup("[b $text-error]fails here[/]"), *failing, Content(), *lines]
        self._show(lines)

    def hide(
        self, placeholder: str, answers: str = "a answers (frame and rule) · R reveals"
    ) -> None:
        """Exercise mode: no marks and no verdict, only the rules to think about."""
        self.failing = None
        lines: list[Line] = [markup("[b $text-accent]$shown[/]", shown=placeholder), Content()]
        lines.append(markup("[b]livepatch[/b] [$text-muted]checks every frame, in this order:[/]"))
        for rule, text in FRAME_RULES.items():
            lines += self._check(rule, None, text)
        lines.append(
            markup("[b]then[/b] [$text-muted]the walk must end without an unwind error[/]")
        )
        lines += self._check("unwind_error", None, "and a running task is never checked")
        lines.append(Content())
        lines.append(markup("[$text-muted]$answers[/]", answers=answers))
        self._show(lines)

    def on_resize(self) -> None:
        """Wrap again for the new width."""
        self._show(self._lines)

    def _show(self, lines: list[Line]) -> None:
        self._lines = lines
        width = self.size.width or 10_000
        out: list[Content] = []
        for line in lines:
            if isinstance(line, Content):
                out.append(line)
            else:
                out += wrap(line[0], line[1], width, line[2], line[3])
        self.update(join_lines(out))

    @staticmethod
    def _check(rule: str, ok: bool | None, text: str) -> list[Line]:
        colour = COLOURS[ok]
        style = f"b {colour}" if ok is False else colour
        out: list[Line] = [Content.styled(f"{MARKS[ok]} {rule}", style)]
        if text:
            out.append((text, style if ok is False else "", "  ", "  "))
        return out
