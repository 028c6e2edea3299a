"""The lowcore of each CPU: every field with its offset, value, what it points to, meaning."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Static, Tab, Tabs

from explorer.tui.markup import markup
from explorer.tui.session import Session
from explorer.tui.widgets.error import error_text
from explorer.tui.widgets.footer import KeyFooter
from explorer.tui.widgets.lowcore import LowcoreTable
from parsers.errors import DumpError


class LowcoreScreen(Screen[None]):
    """Tabs per CPU; the table of the selected CPU's lowcore."""

    BINDINGS = [
        Binding("right,]", "cpu(1)", "Next CPU", key_display="]"),
        Binding("left,[", "cpu(-1)", "Prev CPU", key_display="["),
        Binding("escape", "app.pop_screen", "Back"),
        Binding("g,slash", "go", "Go to field", key_display="g"),
    ]

    def __init__(self, session: Session, cpu: int = 0) -> None:
        super().__init__()
        self.session = session
        # tabs by position: two CPUs of a damaged dump may give one number
        self.cpus = list(session.kernel.cpus)
        numbers = [c.number for c in self.cpus]
        self.index = numbers.index(cpu) if cpu in numbers else 0

    @property
    def cpu(self) -> int:
        """The number of the CPU shown."""
        return self.cpus[self.index].number if self.cpus else 0

    def compose(self) -> ComposeResult:
        """CPU tabs, a note line, the table."""
        yield Header()
        yield Tabs(
            *[Tab(f"CPU {c.number}", id=f"cpu-{i}") for i, c in enumerate(self.cpus)], id="cpus"
        )
        yield Static(id="lowcore-note")
        yield LowcoreTable(id="lowcore")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Show the first CPU."""
        self.sub_title = f"{self.session.label} · lowcore"
        if self.cpus:
            self.query_one(Tabs).active = f"cpu-{self.index}"
            self.show_cpu(self.index)
        self.query_one(LowcoreTable).focus()

    @on(Tabs.TabActivated, "#cpus")
    def _tab(self, event: Tabs.TabActivated) -> None:
        if event.tab.id:
            self.show_cpu(int(event.tab.id.removeprefix("cpu-")))

    def show_cpu(self, index: int) -> None:
        """Fill the table with the lowcore of the ``index``-th CPU of the dump."""
        self.index = index
        cpu = self.cpus[index]
        note = self.query_one("#lowcore-note", Static)
        table = self.query_one(LowcoreTable)
        try:
            rows = self.session.lowcore(cpu)
        except DumpError as exc:
            table.empty()
            note.update(markup("[$text-error]$error[/]", error=error_text(exc)))
            return
        prefix = cpu.registers.prefix or 0
        note.update(
            markup(
                "CPU $cpu: lowcore at absolute $prefix (prefix register), $n values, layout "
                "from $source. [$text-muted]Old PSWs: where the last interrupt of each kind "
                "struck; new PSWs: where the handlers are.[/]",
                cpu=cpu.number,
                prefix=f"0x{prefix:x}",
                n=len(rows),
                source=self.session.kernel.lowcore_source,
            )
        )
        table.show(self.session, cpu, rows)

    def action_cpu(self, delta: int) -> None:
        """Switch CPU."""
        if not self.cpus:
            return
        self.query_one(Tabs).active = f"cpu-{(self.index + delta) % len(self.cpus)}"

    def action_go(self) -> None:
        """Ask for a field name (or offset) and move the cursor to it."""
        from explorer.tui.screens.prompt import Prompt

        def answer(text: str | None) -> None:
            if not text:
                return
            row = self.query_one(LowcoreTable).find_field(text)
            if row is None:
                self.notify(f"no lowcore field {text!r}", severity="warning", markup=False)
                return
            table = self.query_one(LowcoreTable)
            table.move_cursor(row=row, animate=False, scroll=True)
            table.focus()

        self.app.push_screen(
            Prompt("go to lowcore field", "return_lpswe, kernel_stack, 0x340, psw"), answer
        )
