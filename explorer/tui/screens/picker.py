"""The scenario picker: the training scenarios by name and title (never their answers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Label, OptionList
from textual.widgets.option_list import Option

from explorer.tui.protocol import explorer_of


class ScenarioPicker(Screen[None]):
    """Pick a scenario: enter builds its dump (once, into the cache) and opens it.

    Args:
        scenarios: the ``explorer.training.scenarios.Scenario`` objects offered, in order.
    """

    BINDINGS = [Binding("enter", "open", "Open", show=True)]
    DEFAULT_CSS = """
    ScenarioPicker > Vertical { padding: 0 1; }
    ScenarioPicker #picker-intro { color: $text-muted; margin: 1 0; width: 1fr; }
    ScenarioPicker OptionList { height: 1fr; }
    """

    def __init__(self, scenarios: Sequence[Any]) -> None:
        super().__init__()
        self.scenarios = list(scenarios)

    def compose(self) -> ComposeResult:
        """An intro line and the list."""
        yield Header()
        with Vertical():
            yield Label(
                "Pick a scenario: its task's stack opens with the verdict hidden. Find the "
                "failing frame and rule, then answer with a. Enter opens; o comes back here.",
                id="picker-intro",
            )
            width = max(len(s.name) for s in self.scenarios)
            yield OptionList(
                *(
                    Option(f"{s.name:<{width}}  {s.era:<7}  {s.title}", id=s.name)
                    for s in self.scenarios
                ),
                id="picker",
            )
        yield Footer()

    def on_mount(self) -> None:
        """The list has the focus."""
        self.sub_title = f"{len(self.scenarios)} training scenarios"
        self.query_one(OptionList).focus()

    def action_open(self) -> None:
        """Enter: open the highlighted scenario."""
        options = self.query_one(OptionList)
        if options.highlighted is not None:
            self._open(options.get_option_at_index(options.highlighted).id)

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self._open(event.option.id)

    def _open(self, name: str | None) -> None:
        scenario = next((s for s in self.scenarios if s.name == name), None)
        if scenario is not None:
            self.notify(f"building scenario {scenario.name}…", timeout=2, markup=False)
            self.build(scenario)

    @work(thread=True, exclusive=True, group="build", exit_on_error=False)
    def build(self, scenario: Any) -> None:
        """Write the scenario's dump into the cache (a thread: it takes a moment)."""
        from parsers.cache import cache_dir

        try:
            dump = scenario.build(cache_dir("scenarios", scenario.name))
        except Exception as exc:  # shown, never a traceback
            self.app.call_from_thread(
                self.notify, f"cannot build {scenario.name}: {exc}", severity="error"
            )
            return
        self.app.call_from_thread(explorer_of(self.app).open_scenario, scenario, str(dump))
