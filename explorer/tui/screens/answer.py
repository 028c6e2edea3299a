"""The exercise's answer form: the failing frame and the rule (with the unwind-error kind)."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from explorer.training.exercise import CHOICES, KINDS, Guess, parse_frame

#: What the form dismisses with when the trainee gives up.
REVEAL = "reveal"


class AnswerForm(ModalScreen[Guess | str | None]):
    """Frame, rule, kind; Check answers, Reveal gives up, escape cancels.

    Args:
        steps: frames in the walk (to check the frame number).
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

    def __init__(self, steps: int, last: Guess | None = None, hint: str = "") -> None:
        super().__init__()
        self.steps = steps
        self.last = last
        self.hint = hint

    def compose(self) -> ComposeResult:
        """Frame input, rule and kind selects, buttons."""
        last = self.last
        with Vertical() as box:
            box.border_title = "your answer"
            if self.hint:
                yield Label(f"hint after your previous answer: {self.hint}", id="answer-hint")
            yield Label(
                f"failing frame: #0..#{max(self.steps - 1, 0)}, end, or none (reliable/running)"
            )
            yield Input(
                "" if last is None or last.frame is None else str(last.frame),
                placeholder="e.g. 2, or none",
                id="answer-frame",
                compact=True,
            )
            yield Label("rule that fails first (livepatch's order)")
            yield Select(
                [(c, c) for c in CHOICES],
                value=last.rule if last is not None else "reliable",
                allow_blank=False,
                id="answer-rule",
                compact=True,
            )
            yield Label("kind of unwind error", id="answer-kind-label")
            yield Select(
                [(k, k) for k in KINDS],
                value=last.detail if last is not None and last.detail else KINDS[0],
                allow_blank=False,
                id="answer-kind",
                compact=True,
            )
            yield Label("", id="answer-error")
            with Horizontal(id="answer-buttons"):
                yield Button("Check", variant="primary", id="answer-check", compact=True)
                yield Button("Reveal", variant="warning", id="answer-reveal", compact=True)
                yield Button("Cancel", id="answer-cancel", compact=True)

    def on_mount(self) -> None:
        """Focus the frame; show the kind only for unwind errors."""
        self._kind_shown()
        self.query_one("#answer-error").display = False
        self.query_one("#answer-frame", Input).focus()

    @on(Select.Changed, "#answer-rule")
    def _kind_shown(self) -> None:
        unwind = self.query_one("#answer-rule", Select).value == "unwind_error"
        self.query_one("#answer-kind").display = unwind
        self.query_one("#answer-kind-label").display = unwind

    def guess(self) -> Guess | None:
        """The form as a guess, or None (and an error shown) when the frame is not valid."""
        error = self.query_one("#answer-error", Label)
        try:
            frame = parse_frame(self.query_one("#answer-frame", Input).value, self.steps)
        except ValueError as exc:
            error.update(
                Content(f"frame: {exc}" if "#" in str(exc) else "frame: a number, end or none")
            )
            error.display = True
            return None
        rule = str(self.query_one("#answer-rule", Select).value)
        kind = str(self.query_one("#answer-kind", Select).value)
        return Guess(frame, rule, kind if rule == "unwind_error" else None)

    @on(Input.Submitted, "#answer-frame")
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
