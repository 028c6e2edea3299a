"""The livepatches of the dump and, while a transition is in progress, the tasks that block
it, in the kernel's words and order (the report of ``backchain klp``, made in a worker)."""

from __future__ import annotations

import textwrap

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Header, Static

from explorer.tui.session import Session
from explorer.tui.widgets.error import ErrorPanel
from explorer.tui.widgets.footer import KeyFooter


class LivepatchScreen(Screen[None]):
    """The ``klp`` report: patches, transition, each blocking task with its cause."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session
        self._lines: list[str] = []

    def compose(self) -> ComposeResult:
        """A note, an error panel (hidden), the report."""
        yield Header()
        yield Static("reading the livepatch state and replaying the transition …", id="klp-note")
        yield ErrorPanel(id="klp-error")
        with VerticalScroll(id="klp-scroll"):
            yield Static(id="klp-text")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Start the worker."""
        self.sub_title = f"{self.session.label} · livepatch"
        self.query_one("#klp-error", ErrorPanel).display = False
        self.query_one("#klp-scroll").focus()
        self.load()

    @work(thread=True, exclusive=True, group="klp", exit_on_error=False)
    def load(self) -> None:
        """Read the state and replay the transition (walks the pending tasks)."""
        from explorer.livepatch.replay import replay
        from explorer.livepatch.report import klp_json, render_klp
        from explorer.livepatch.state import NoLivepatch, read_livepatch

        kernel = self.session.kernel
        try:
            state = read_livepatch(kernel)
            if isinstance(state, NoLivepatch):
                lines = [f"no livepatch loaded: {state.reason}"]
            else:
                result = None
                if state.transition_patch is not None:
                    result = replay(kernel, state, self.session.scan)
                lines = render_klp(klp_json(kernel, state, result, self.session.label))
        except Exception as exc:  # shown in the panel: never a traceback
            self.app.call_from_thread(self._failed, exc)
            return
        self.app.call_from_thread(self._show, lines)

    def _show(self, lines: list[str]) -> None:
        self.query_one("#klp-note", Static).update(
            "livepatch: what klp_try_switch_task() would decide for each pending task now, "
            "in the kernel's order [$text-muted](the same report as 'backchain klp')[/]"
        )
        self._lines = lines
        self._wrap()

    def on_resize(self) -> None:
        """Wrap the report again for the new width."""
        if self._lines:
            self.call_after_refresh(self._wrap)

    def _wrap(self) -> None:
        """Each line wrapped to the width under its own indentation, plus four: a long line
        (a patched function with its module tags) reads as one item, not as a new one."""
        text = self.query_one("#klp-text", Static)
        width = text.size.width or self.app.size.width - 4
        out: list[str] = []
        for line in self._lines:
            indent = " " * (len(line) - len(line.lstrip(" ")))
            out += textwrap.wrap(
                line,
                max(width, 20),
                subsequent_indent=indent + "    ",
                break_long_words=False,
                break_on_hyphens=False,
                drop_whitespace=True,
            ) or [""]
        text.update(escape("\n".join(out)))

    def _failed(self, exc: BaseException) -> None:
        self.query_one("#klp-note", Static).update("the livepatch state cannot be shown")
        self.query_one("#klp-error", ErrorPanel).show(
            "livepatch", exc, "'backchain klp' on the command line says the same in one line"
        )
