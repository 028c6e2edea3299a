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
    ]

    def __init__(self, session: Session, cpu: int = 0) -> None:
        super().__init__()
        self.session = session
        self.numbers = [c.number for c in session.kernel.cpus]
        self.cpu = cpu if cpu in self.numbers else (self.numbers[0] if self.numbers else 0)

    def compose(self) -> ComposeResult:
        """CPU tabs, a note line, the table."""
        yield Header()
        yield Tabs(*[Tab(f"CPU {n}", id=f"cpu-{n}") for n in self.numbers], id="cpus")
        yield Static(id="lowcore-note")
        yield LowcoreTable(id="lowcore")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Show the first CPU."""
        self.sub_title = f"{self.session.label} · lowcore"
        self.query_one(Tabs).active = f"cpu-{self.cpu}"
        self.show_cpu(self.cpu)
        self.query_one(LowcoreTable).focus()

    @on(Tabs.TabActivated, "#cpus")
    def _tab(self, event: Tabs.TabActivated) -> None:
        if event.tab.id:
            self.show_cpu(int(event.tab.id.removeprefix("cpu-")))

    def show_cpu(self, number: int) -> None:
        """Fill the table with CPU ``number``'s lowcore."""
        self.cpu = number
        cpu = self.session.cpu(number)
        note = self.query_one("#lowcore-note", Static)
        table = self.query_one(LowcoreTable)
        if cpu is None:
            return
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
                cpu=number,
                prefix=f"0x{prefix:x}",
                n=len(rows),
                source=self.session.kernel.lowcore_source,
            )
        )
        table.show(self.session, cpu, rows)

    def action_cpu(self, delta: int) -> None:
        """Switch CPU."""
        if not self.numbers:
            return
        i = (self.numbers.index(self.cpu) + delta) % len(self.numbers)
        self.query_one(Tabs).active = f"cpu-{self.numbers[i]}"
