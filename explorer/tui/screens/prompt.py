"""A one-line question in a small modal box (go to frame, go to address)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


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
            yield Input(value=self.value, placeholder=self.placeholder, compact=True)
            if self.hint:
                yield Label(self.hint)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter answers."""
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        """Escape cancels."""
        self.dismiss(None)
