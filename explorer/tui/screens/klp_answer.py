"""A livepatch exercise's answer form: the task that blocks the transition (or none), why
the kernel cannot switch it, the function it sleeps on; for a settled dump also whose code
runs. Nothing is chosen for the trainee; a field shows only when the answer so far needs it."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widgets import Input, Label, Select

from explorer.training.klp import CAUSES, KlpGuess, function_name, parse_pid
from explorer.tui.screens.form import AnswerBase
from explorer.tui.widgets.field import Field


class KlpAnswerForm(AnswerBase[KlpGuess]):
    """Pid, cause, function (and patch); Check answers, Reveal gives up, escape cancels.

    Args:
        pid: the task to start from (the stack the trainee is on), or None.
        top: the function whose running code is asked, with the patches to choose from.
        last: the previous guess; hint: its hint.
    """

    PREFIX = "klp"
    ORDER = ("#klp-pid", "#klp-cause", "#klp-function", "#klp-patch", "#klp-check")
    DEFAULT_CSS = """
    KlpAnswerForm > Vertical { width: 68; }
    KlpAnswerForm Label { width: 1fr; }
    """

    def __init__(
        self,
        pid: int | None = None,
        top: tuple[str, tuple[str, ...]] | None = None,
        last: KlpGuess | None = None,
        hint: str = "",
    ) -> None:
        super().__init__(hint)
        self.start_pid = pid
        self.top = top
        self.last = last

    def fields(self) -> ComposeResult:
        """Pid, cause, function and (a settled dump) patch."""
        last = self.last
        pid = last.pid if last is not None else self.start_pid
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
        self._answer_changed()

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
