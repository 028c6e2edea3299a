"""A scenario's texts in a box: before the answer what happened to the machine (its
situation), after it the verdict explained, the story and what to look for."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Markdown

from explorer.walk.analysis import TaskAnalysis


def debrief_markdown(a: TaskAnalysis, scenario: Any, outcome: str) -> str:
    """The debriefing: ``outcome``, the verdict with its explanation, then the scenario."""
    v = a.verdict
    where = "" if v.frame is None else f" at frame #{v.frame}"
    text = f"**{outcome}**\n\nVerdict: **`{v.label}`{where}**. {v.message}\n\n"
    text += f"Livepatch would log: `{a.livepatch}`\n"
    if scenario is not None:
        s = scenario
        text += f"\n## {s.name}: {s.title}\n\n{s.story}\n\n**What to look for:** {s.look_for}\n"
    return text


def situation_markdown(scenario: Any) -> str:
    """Before the answer: the kernel, the task and what happened, never where to look."""
    s = scenario
    return (
        f"Kernel {s.release}, unwinder rules `{s.era}`, pid {s.pid}.\n\n{s.situation}\n\n"
        "Walk the stack with `n` (or `r`), then answer with `a`."
    )


def klp_situation_markdown(scenario: Any) -> str:
    """A livepatch exercise before the answer: the kernel, what happened and the question."""
    s = scenario
    return (
        f"Kernel {s.release}, unwinder rules `{s.era}`.\n\n{s.situation}\n\n"
        "Open tasks' stacks from the list (enter) and walk them with `n`; answer with `a`."
    )


class DebriefScreen(ModalScreen[None]):
    """The debriefing in a scrollable box; escape closes it."""

    BINDINGS = [Binding("escape,enter,q,i", "app.pop_screen", "Close")]
    DEFAULT_CSS = """
    DebriefScreen { align: center middle; }
    DebriefScreen > VerticalScroll {
        width: 90; max-width: 100%; height: auto; max-height: 90%;
        border: round $accent; background: $panel; padding: 0 1;
    }
    DebriefScreen Markdown { margin: 0; }
    """

    def __init__(self, markdown: str, title: str) -> None:
        super().__init__()
        self.markdown = markdown
        self.title_text = title

    def compose(self) -> ComposeResult:
        """The text."""
        with VerticalScroll() as box:
            box.border_title = self.title_text
            box.border_subtitle = "escape closes · i opens it again"
            yield Markdown(self.markdown)

    def on_mount(self) -> None:
        """Focus the box so arrows scroll."""
        self.query_one(VerticalScroll).focus()
