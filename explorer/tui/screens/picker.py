"""The scenario picker: the training scenarios by number, kernel and rules until the trainee
has answered or revealed one (a name or title would tell the answer), then by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, Label, OptionList
from textual.widgets.option_list import Option

from explorer.tui.protocol import explorer_of
from explorer.tui.widgets.footer import KeyFooter


class ScenarioPicker(Screen[None]):
    """Pick a scenario: enter builds its dump (once, into the cache) and opens it.

    Args:
        scenarios: the ``explorer.training.scenarios.Scenario`` objects offered, in order.
        done: how this session ended each scenario it finished, by name: ``solved`` or
            ``revealed``.
    """

    BINDINGS = [Binding("enter", "open", "Open", show=True)]
    DEFAULT_CSS = """
    ScenarioPicker > Vertical { padding: 0 1; }
    ScenarioPicker #picker-intro { color: $text-muted; margin: 1 0; width: 1fr; }
    ScenarioPicker OptionList { height: 1fr; }
    """

    def __init__(self, scenarios: Sequence[Any], done: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.scenarios = list(scenarios)
        self.done = dict(done or {})

    def compose(self) -> ComposeResult:
        """An intro line and the list."""
        yield Header()
        with Vertical():
            yield Label(
                "Pick an exercise: its task's stack opens with the verdict hidden; i tells what "
                "happened to the machine. Walk the stack, find the failing frame and rule, "
                "then answer with a. Enter opens; o comes back here.",
                id="picker-intro",
            )
            yield OptionList(*self._options(), id="picker")
        yield KeyFooter()

    def _options(self) -> list[Option]:
        from explorer.training import scenarios

        total = len(scenarios.CATALOG)  # catalog numbers: as scenarios show/open and results
        width = len(str(total))
        out = []
        for s in self.scenarios:
            number = scenarios.number(s.name)
            mark = {"solved": "✓ solved  ", "revealed": "· revealed"}.get(self.done.get(s.name, ""))
            text = f"exercise {number:>{width}} of {total}  kernel {s.release}  rules {s.era:<7}"
            text += f"  {mark}  {s.name}" if mark else ""
            out.append(Option(Content(text), id=s.name))
        return out

    def on_mount(self) -> None:
        """The list has the focus."""
        solved = sum(v == "solved" for v in self.done.values())
        self.sub_title = f"{len(self.scenarios)} exercises, {solved} solved"
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
            self.notify("building the exercise's dump…", timeout=2, markup=False)
            self.build(scenario)

    @work(thread=True, exclusive=True, group="build", exit_on_error=False)
    def build(self, scenario: Any) -> None:
        """Write the scenario's dump into the cache (a thread: it takes a moment)."""
        from parsers.cache import cache_dir

        try:
            dump = scenario.build(cache_dir("scenarios", scenario.name))
        except Exception as exc:  # shown, never a traceback
            self.app.call_from_thread(
                self.notify, f"cannot build the exercise's dump: {exc}", severity="error"
            )
            return
        self.app.call_from_thread(explorer_of(self.app).open_scenario, scenario, str(dump))
