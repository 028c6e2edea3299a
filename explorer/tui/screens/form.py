"""What the exercises' answer forms share (:mod:`.answer`, :mod:`.klp_answer`): a box titled
"your answer" with the hint after the previous answer, the form's own fields, a line for
what is missing, and Check, Reveal… and Cancel. Enter in a field moves to the next one
shown; a choice made moves on too (once the trainee has started: not the form's start
value). Check dismisses with the guess, Reveal with :data:`REVEAL`, escape with None."""

from __future__ import annotations

from typing import ClassVar, Generic, TypeVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Label, Select

from explorer.tui.widgets.field import Field

#: What a form dismisses with when the trainee gives up.
REVEAL = "reveal"

G = TypeVar("G")


class AnswerBase(ModalScreen[G | str | None], Generic[G]):
    """The scaffolding; a form gives its fields (:meth:`fields`), which of them show
    (:meth:`_fields_shown`) and its guess (:meth:`guess`).

    Args:
        hint: the hint after the previous answer ("" before the first).
    """

    #: The widgets' id prefix (``answer`` gives ``#answer-check``, ``#answer-error``...).
    PREFIX: ClassVar[str]
    #: The fields in the order enter moves through them, the Check button last; the first
    #: has the focus at the start.
    ORDER: ClassVar[tuple[str, ...]]

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    AnswerBase { align: center middle; }
    AnswerBase > Vertical {
        max-width: 100%; height: auto; padding: 0 1;
        border: round $accent; background: $panel;
    }
    AnswerBase Label { color: $text-muted; margin-top: 1; }
    AnswerBase .form-hint { color: $text-warning; margin: 0; width: 1fr; }
    AnswerBase .form-error { color: $text-error; margin: 0; }
    AnswerBase Select { width: 1fr; }
    AnswerBase .form-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    AnswerBase Button { margin-left: 1; min-width: 10; }
    """

    def __init__(self, hint: str = "") -> None:
        super().__init__()
        self.hint = hint
        self._typing = False

    def compose(self) -> ComposeResult:
        """The hint, the fields, the error line and the buttons."""
        p = self.PREFIX
        with Vertical() as box:
            box.border_title = "your answer"
            if self.hint:
                yield Label(
                    f"hint after your previous answer: {self.hint}",
                    id=f"{p}-hint",
                    classes="form-hint",
                )
            yield from self.fields()
            yield Label("", id=f"{p}-error", classes="form-error")
            with Horizontal(id=f"{p}-buttons", classes="form-buttons"):
                yield Button("Check", variant="primary", id=f"{p}-check", compact=True)
                yield Button("Reveal…", variant="warning", id=f"{p}-reveal", compact=True)
                yield Button("Cancel", id=f"{p}-cancel", compact=True)

    def fields(self) -> ComposeResult:
        """The form's own labels and fields."""
        raise NotImplementedError

    def _fields_shown(self) -> None:
        """Show the fields the answer so far needs, hide the others."""
        raise NotImplementedError

    def guess(self) -> G | None:
        """The form as a guess, or None (and what is missing shown) when it is incomplete."""
        raise NotImplementedError

    def on_mount(self) -> None:
        """Show the fields the answer needs; focus the first."""
        self._fields_shown()
        self.query_one(f"#{self.PREFIX}-error").display = False
        self.query_one(self.ORDER[0]).focus()

    def _answer_changed(self) -> None:
        """The fields shown follow the answer; what was missing is said again on Check."""
        self._fields_shown()
        self.query_one(f"#{self.PREFIX}-error").display = False

    @on(Select.Changed)
    def _chosen(self, event: Select.Changed) -> None:
        """A choice made: show the fields it needs and move on to the next one."""
        self._answer_changed()
        chosen = self._typing and event.select.has_focus_within  # not the form's start value
        if chosen and event.value is not Select.NULL:
            self.call_after_refresh(self._next_after, event.select)

    def on_key(self) -> None:
        """The trainee has started: a choice from now on moves on to the next field."""
        self._typing = True

    @on(Field.Submitted)
    def _entered(self, event: Field.Submitted) -> None:
        """Enter in a field: on to the next one shown (Check last)."""
        self._next_after(event.input)

    def _next_after(self, widget: Widget) -> None:
        later = self.ORDER[self.ORDER.index(f"#{widget.id}") + 1 :]
        for name in later:
            found = self.query(name)
            if found and found.first().display:
                found.first().focus()
                return

    def _error(self, text: str) -> None:
        error = self.query_one(f"#{self.PREFIX}-error", Label)
        error.update(Content(text))
        error.display = True

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        what = (event.button.id or "").removeprefix(f"{self.PREFIX}-")
        if what == "check":
            g = self.guess()
            if g is not None:
                self.dismiss(g)
        elif what == "reveal":
            self.dismiss(REVEAL)
        elif what == "cancel":
            self.action_cancel()

    def action_cancel(self) -> None:
        """Escape: close without answering."""
        self.dismiss(None)
