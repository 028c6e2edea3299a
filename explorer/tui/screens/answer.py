"""The exercise's answer form: the rule, then the failing frame and the unwind-error kind
where the rule has them. It cannot say something self-contradictory: no rule is chosen for
the trainee, ``reliable`` and ``task_running`` take no frame, every other rule needs one."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Label, Select

from explorer.training.exercise import CHOICES, KINDS, NO_FRAME, Guess, parse_frame
from explorer.tui.screens.form import AnswerBase
from explorer.tui.widgets.field import Field


class AnswerForm(AnswerBase[Guess]):
    """Rule, frame, kind; Check answers, Reveal gives up (after a confirmation), escape
    cancels. Enter in a field moves to the next one, on Check it checks.

    Args:
        steps: frames in the walk (for ``end``).
        seen: frames the trainee has walked so far (a frame beyond them is refused without
            saying how long the walk is).
        last: the previous guess (the form starts from it).
        hint: the hint for the previous guess.
    """

    PREFIX = "answer"
    ORDER = ("#answer-rule", "#answer-frame", "#answer-kind", "#answer-check")
    DEFAULT_CSS = """
    AnswerForm > Vertical { width: 64; }
    """

    def __init__(
        self, steps: int, seen: int | None = None, last: Guess | None = None, hint: str = ""
    ) -> None:
        super().__init__(hint)
        self.steps = steps
        self.seen = steps if seen is None else seen
        self.last = last

    def fields(self) -> ComposeResult:
        """Rule select, frame field and kind select."""
        last = self.last
        yield Label("rule that fails first (livepatch's order), or reliable")
        yield Select(
            [(c, c) for c in CHOICES],
            value=last.rule if last is not None else Select.NULL,
            prompt="choose a rule",
            id="answer-rule",
            compact=True,
        )
        yield Label("failing frame: its number (#n) or end", id="answer-frame-label")
        yield Field(
            "" if last is None or last.frame is None else str(last.frame),
            placeholder="e.g. 2",
            id="answer-frame",
            compact=True,
        )
        yield Label("kind of unwind error", id="answer-kind-label")
        yield Select(
            [(k, k) for k in KINDS],
            value=last.detail if last is not None and last.detail else Select.NULL,
            prompt="choose the kind",
            id="answer-kind",
            compact=True,
        )

    @property
    def rule(self) -> str | None:
        """The rule chosen, or None."""
        value = self.query_one("#answer-rule", Select).value
        return None if value is Select.NULL else str(value)

    def _fields_shown(self) -> None:
        rule = self.rule
        framed = rule is not None and rule not in NO_FRAME
        for name in ("#answer-frame", "#answer-frame-label"):
            self.query_one(name).display = framed
        unwind = rule == "unwind_error"
        for name in ("#answer-kind", "#answer-kind-label"):
            self.query_one(name).display = unwind

    def guess(self) -> Guess | None:
        """The form as a guess, or None (and what is missing shown) when it is incomplete."""
        rule = self.rule
        if rule is None:
            self._error("choose the rule that fails first (or reliable)")
            return None
        if rule in NO_FRAME:
            return Guess(None, rule)
        text = self.query_one("#answer-frame", Field).value
        try:
            frame = parse_frame(text, self.steps, self.seen)
        except ValueError as exc:
            self._error(f"frame: {exc}")
            return None
        if frame is None:
            self._error(f"{rule} fails at a frame: name it (#n or end)")
            return None
        kind = None
        if rule == "unwind_error":
            value = self.query_one("#answer-kind", Select).value
            if value is Select.NULL:
                self._error("choose the kind of unwind error")
                return None
            kind = str(value)
        return Guess(frame, rule, kind)
