"""Small modal questions: one line of text (go to frame, the trainee's name), yes or no."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from explorer.tui.widgets.field import Field


class Prompt(ModalScreen[str | None]):
    """Ask for one line; dismiss with the text, or None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    Prompt { align: center middle; }
    Prompt > Vertical {
        width: 60; height: auto; padding: 1 2;
        border: round $accent; background: $panel;
    }
    Prompt Label { color: $text-muted; }
    """

    def __init__(
        self, question: str, placeholder: str = "", hint: str = "", value: str = ""
    ) -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder
        self.hint = hint
        self.value = value

    def compose(self) -> ComposeResult:
        """The question and an input."""
        with Vertical() as box:
            box.border_title = self.question
            yield Field(value=self.value, placeholder=self.placeholder, compact=True)
            if self.hint:
                yield Label(self.hint)

    def on_input_submitted(self, event: Field.Submitted) -> None:
        """Enter answers."""
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        """Escape cancels."""
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """A yes/no question: the ``yes`` button (or ``y``) confirms; escape, ``n`` or Cancel do
    not. Cancel has the focus: enter alone never confirms."""

    BINDINGS = [
        Binding("escape,n", "answer(False)", "Cancel"),
        Binding("y", "answer(True)", "Yes"),
    ]
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical {
        width: 60; height: auto; padding: 1 2;
        border: round $warning; background: $panel;
    }
    Confirm #confirm-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    Confirm Button { margin-left: 1; min-width: 10; }
    """

    def __init__(self, question: str, explanation: str, yes: str) -> None:
        super().__init__()
        self.question = question
        self.explanation = explanation
        self.yes = yes

    def compose(self) -> ComposeResult:
        """The explanation and two buttons."""
        with Vertical() as box:
            box.border_title = self.question
            box.border_subtitle = "y yes · n / escape no"
            yield Label(self.explanation)
            with Horizontal(id="confirm-buttons"):
                yield Button(self.yes, variant="warning", id="confirm-yes", compact=True)
                yield Button("Cancel", id="confirm-no", compact=True)

    def on_mount(self) -> None:
        """Cancel has the focus."""
        self.query_one("#confirm-no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """A button answers."""
        event.stop()
        self.dismiss(event.button.id == "confirm-yes")

    def action_answer(self, yes: bool) -> None:
        """``y`` / ``n``."""
        self.dismiss(yes)
