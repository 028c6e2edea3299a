"""The exercise's answer form: the rule, then the failing frame and the unwind-error kind
where the rule has them. It cannot say something self-contradictory: no rule is chosen for
the trainee, ``reliable`` and ``task_running`` take no frame, every other rule needs one."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Label, Select

from explorer.training.exercise import CHOICES, KINDS, NO_FRAME, Guess, parse_frame
from explorer.tui.widgets.field import Field

#: What the form dismisses with when the trainee gives up.
REVEAL = "reveal"


class AnswerForm(ModalScreen[Guess | str | None]):
    """Rule, frame, kind; Check answers, Reveal gives up (after a confirmation), escape
    cancels. Enter in a field moves to the next one, on Check it checks.

    Args:
        steps: frames in the walk (for ``end``).
        seen: frames the trainee has walked so far (a frame beyond them is refused without
            saying how long the walk is).
        last: the previous guess (the form starts from it).
        hint: the hint for the previous guess.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    AnswerForm { align: center middle; }
    AnswerForm > Vertical {
        width: 64; max-width: 100%; height: auto; padding: 0 1;
        border: round $accent; background: $panel;
    }
    AnswerForm Label { color: $text-muted; margin-top: 1; }
    AnswerForm #answer-hint { color: $text-warning; margin: 0; width: 1fr; }
    AnswerForm #answer-error { color: $text-error; margin: 0; }
    AnswerForm Select { width: 1fr; }
    AnswerForm #answer-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    AnswerForm Button { margin-left: 1; min-width: 10; }
    """

    def __init__(
        self, steps: int, seen: int | None = None, last: Guess | None = None, hint: str = ""
    ) -> None:
        super().__init__()
        self.steps = steps
        self.seen = steps if seen is None else seen
        self.last = last
        self.hint = hint
        self._typing = False

    def compose(self) -> ComposeResult:
        """Rule select, frame field and kind select, buttons."""
        last = self.last
        with Vertical() as box:
            box.border_title = "your answer"
            if self.hint:
                yield Label(f"hint after your previous answer: {self.hint}", id="answer-hint")
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
            yield Label("", id="answer-error")
            with Horizontal(id="answer-buttons"):
                yield Button("Check", variant="primary", id="answer-check", compact=True)
                yield Button("Reveal…", variant="warning", id="answer-reveal", compact=True)
                yield Button("Cancel", id="answer-cancel", compact=True)

    def on_mount(self) -> None:
        """Show the fields the rule has; focus the rule."""
        self._fields_shown()
        self.query_one("#answer-error").display = False
        self.query_one("#answer-rule", Select).focus()

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

    @on(Select.Changed)
    def _changed(self, event: Select.Changed) -> None:
        """A choice made: show the fields it needs and move on to the next one."""
        self._fields_shown()
        self.query_one("#answer-error").display = False
        chosen = self._typing and event.select.has_focus_within  # not the form's start value
        if chosen and event.value is not Select.NULL:
            self.call_after_refresh(self._next_after, event.select)

    def on_key(self) -> None:
        """The trainee has started: a choice from now on moves on to the next field."""
        self._typing = True

    @on(Field.Submitted, "#answer-frame")
    def _frame_entered(self) -> None:
        """Enter in the frame: on to the kind (unwind errors) or to Check."""
        self._next_after(self.query_one("#answer-frame"))

    def _next_after(self, widget: Widget) -> None:
        order = ["#answer-rule", "#answer-frame", "#answer-kind", "#answer-check"]
        later = order[order.index(f"#{widget.id}") + 1 :]
        for name in later:
            candidate = self.query_one(name)
            if candidate.display:
                candidate.focus()
                return

    def _error(self, text: str) -> None:
        error = self.query_one("#answer-error", Label)
        error.update(Content(text))
        error.display = True

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

    @on(Button.Pressed, "#answer-check")
    def _check(self) -> None:
        g = self.guess()
        if g is not None:
            self.dismiss(g)

    @on(Button.Pressed, "#answer-reveal")
    def _reveal(self) -> None:
        self.dismiss(REVEAL)

    @on(Button.Pressed, "#answer-cancel")
    def action_cancel(self) -> None:
        """Escape: close without answering."""
        self.dismiss(None)
