"""A livepatch exercise's answer form: the task that blocks the transition (or none), why
the kernel cannot switch it, the function it sleeps on; for a settled dump also whose code
runs. Nothing is chosen for the trainee; a field shows only when the answer so far needs it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Input, Label, Select

from explorer.training.klp import CAUSES, KlpGuess, function_name, parse_pid
from explorer.tui.screens.answer import REVEAL
from explorer.tui.widgets.field import Field

ORDER = ("#klp-pid", "#klp-cause", "#klp-function", "#klp-patch", "#klp-check")


class KlpAnswerForm(ModalScreen[KlpGuess | str | None]):
    """Pid, cause, function (and patch); Check answers, Reveal gives up, escape cancels.

    Args:
        pid: the task to start from (the stack the trainee is on), or None.
        top: the function whose running code is asked, with the patches to choose from.
        last: the previous guess; hint: its hint.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    KlpAnswerForm { align: center middle; }
    KlpAnswerForm > Vertical {
        width: 68; max-width: 100%; height: auto; padding: 0 1;
        border: round $accent; background: $panel;
    }
    KlpAnswerForm Label { color: $text-muted; margin-top: 1; width: 1fr; }
    KlpAnswerForm #klp-hint { color: $text-warning; margin: 0; }
    KlpAnswerForm #klp-error { color: $text-error; margin: 0; }
    KlpAnswerForm Select { width: 1fr; }
    KlpAnswerForm #klp-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    KlpAnswerForm Button { margin-left: 1; min-width: 10; }
    """

    def __init__(
        self,
        pid: int | None = None,
        top: tuple[str, tuple[str, ...]] | None = None,
        last: KlpGuess | None = None,
        hint: str = "",
    ) -> None:
        super().__init__()
        self.start_pid = pid
        self.top = top
        self.last = last
        self.hint = hint
        self._typing = False

    def compose(self) -> ComposeResult:
        """The fields and buttons."""
        last = self.last
        pid = last.pid if last is not None else self.start_pid
        with Vertical() as box:
            box.border_title = "your answer"
            if self.hint:
                yield Label(f"hint after your previous answer: {self.hint}", id="klp-hint")
            yield Label("the task that blocks the transition: its pid, or none")
            yield Field(
                "" if pid is None and last is None else "none" if pid is None else str(pid),
                placeholder="a pid, or none",
                id="klp-pid",
                compact=True,
            )
            yield Label("why the kernel cannot switch it", id="klp-cause-label")
            yield Select(
                [(words.replace(" F", ""), cause) for cause, words in CAUSES.items()],
                value=last.cause if last is not None and last.cause else Select.NULL,
                prompt="choose the kernel's words",
                id="klp-cause",
                compact=True,
            )
            yield Label("the function, as the kernel names it", id="klp-function-label")
            yield Field(
                last.function or "" if last is not None else "",
                placeholder="a function name",
                id="klp-function",
                compact=True,
            )
            if self.top is not None:
                function, patches = self.top
                yield Label(f"whose {function} runs now", id="klp-patch-label")
                yield Select(
                    [(p, p) for p in patches],
                    value=last.patch if last is not None and last.patch else Select.NULL,
                    prompt="choose a patch",
                    id="klp-patch",
                    compact=True,
                )
            yield Label("", id="klp-error")
            with Horizontal(id="klp-buttons"):
                yield Button("Check", variant="primary", id="klp-check", compact=True)
                yield Button("Reveal…", variant="warning", id="klp-reveal", compact=True)
                yield Button("Cancel", id="klp-cancel", compact=True)

    def on_mount(self) -> None:
        """Show the fields the answer needs; focus the pid."""
        self._fields_shown()
        self.query_one("#klp-error").display = False
        self.query_one("#klp-pid").focus()

    def _pid(self) -> int | None:
        try:
            return parse_pid(self.query_one("#klp-pid", Field).value)
        except ValueError:
            return -1  # shown as an error on Check

    @property
    def cause(self) -> str | None:
        """The cause chosen, or None."""
        value = self.query_one("#klp-cause", Select).value
        return None if value is Select.NULL else str(value)

    def _fields_shown(self) -> None:
        named = self._pid() is not None
        for name in ("#klp-cause", "#klp-cause-label"):
            self.query_one(name).display = named
        sleeping = named and self.cause == "sleeping_on"
        for name in ("#klp-function", "#klp-function-label"):
            self.query_one(name).display = sleeping

    @on(Input.Changed, "#klp-pid")
    def _pid_changed(self) -> None:
        self._fields_shown()
        self.query_one("#klp-error").display = False

    @on(Select.Changed)
    def _changed(self, event: Select.Changed) -> None:
        """A choice made: show the fields it needs and move on to the next one."""
        self._pid_changed()
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
        later = ORDER[ORDER.index(f"#{widget.id}") + 1 :]
        for name in later:
            found = self.query(name)
            if found and found.first().display:
                found.first().focus()
                return

    def _error(self, text: str) -> None:
        error = self.query_one("#klp-error", Label)
        error.update(Content(text))
        error.display = True

    def guess(self) -> KlpGuess | None:
        """The form as a guess, or None (and what is missing shown) when it is incomplete."""
        try:
            pid = parse_pid(self.query_one("#klp-pid", Field).value)
        except ValueError as exc:
            self._error(f"task: {exc}")
            return None
        patch = None
        if self.top is not None:
            value = self.query_one("#klp-patch", Select).value
            if value is Select.NULL:
                self._error(f"choose whose {self.top[0]} runs")
                return None
            patch = str(value)
        if pid is None:
            return KlpGuess(None, patch=patch)
        cause = self.cause
        if cause is None:
            self._error("choose why the kernel cannot switch it")
            return None
        function = None
        if cause == "sleeping_on":
            function = function_name(self.query_one("#klp-function", Field).value) or None
            if function is None:
                self._error("name the function it sleeps on")
                return None
        return KlpGuess(pid, cause, function, patch)

    @on(Button.Pressed, "#klp-check")
    def _check(self) -> None:
        g = self.guess()
        if g is not None:
            self.dismiss(g)

    @on(Button.Pressed, "#klp-reveal")
    def _reveal(self) -> None:
        self.dismiss(REVEAL)

    @on(Button.Pressed, "#klp-cancel")
    def action_cancel(self) -> None:
        """Escape: close without answering."""
        self.dismiss(None)
