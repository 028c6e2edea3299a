"""Issue 23: a classroom a trainer can trust. Before answering, nothing a trainee sees tells
the answer: for every scenario, the picker, the window title, the situation (``i``), the
stacks map, the walk pane, the footer, the command palette and the overview's rows hold none
of the rule's id, its words from the rule table (README's "The verdict"), the failing
frame's number, the scenario's name or its title.

The truth is each scenario's expected answer (explorer/training/scenarios.py), which
tests/test_scenarios.py checks against the tool's own verdict.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.command import CommandPalette

from explorer.model.kernel import Options
from explorer.training import scenarios
from explorer.training.scenarios import SCENARIOS, Scenario
from explorer.tui.app import BackchainApp
from explorer.tui.screens.picker import ScenarioPicker
from explorer.tui.screens.scenario import DebriefScreen
from explorer.tui.screens.stack import StackScreen
from explorer.tui.widgets.regions import RegionsMap
from explorer.tui.widgets.tasks import TaskTable
from explorer.tui.widgets.walk import WalkTable
from tests.helpers.tui import SIZE, cells, sync, wait_checked

#: Each rule's words in README's rule table (and the words a story would use for it).
RULE_WORDS = {
    "not_task_stack": ("not_task_stack", "per-cpu stack", "not on the task stack"),
    "crossed_pt_regs": ("crossed", "preempt", "interrupt", "exception"),
    "return_address_not_text": ("return_address_not_text", "not kernel text", "return address"),
    "kretprobe_trampoline": ("kretprobe",),
    "too_many_entries": ("too_many_entries", "entries", "100 or more"),
    "unwind_error": ("unwind_error", "unwind error", "corrupt"),
    "task_running": ("task_running", "is running", "on a cpu"),
    "reliable": ("reliable",),
}
#: The unwind-error kinds' words.
KIND_WORDS = {
    "sp_misaligned": ("misaligned", "aligned"),
    "sp_outside_stack": ("outside",),
    "sp_not_increasing": ("increas", "loop"),
    "stack_revisited": ("revisit",),
    "pt_regs_outside_stack": ("pt_regs_outside_stack", "no room"),
    "no_room_for_frame": ("no_room", "no room"),
    "unreadable_memory": ("unreadable", "not in the dump", "missing"),
}


def giveaways(s: Scenario, named: bool = True) -> list[str]:
    """What must not be shown before the answer, lower case; ``named``: the scenario's name
    and title too (not in the dump's own data: ``kthread`` and ``mcck`` are kernel words)."""
    a = s.answer
    rule = "reliable" if a.reliable else str(a.rule)
    words = [rule, *RULE_WORDS[rule], *KIND_WORDS.get(a.detail or "", ())]
    if a.detail:
        words.append(a.detail)
    if named:
        words += [s.name, s.title]
    return [w.lower() for w in words]


def leaks(s: Scenario, text: str, named: bool = True) -> list[str]:
    """The giveaways found in ``text`` (a failing frame #0 is always on screen: the walk
    starts there, so only later frames count)."""
    low = text.lower()
    found = [w for w in giveaways(s, named) if re.search(rf"(?<![\w-]){re.escape(w)}", low)]
    frame = s.answer.frame
    if frame and re.search(rf"#{frame}\b", text):
        found.append(f"#{frame}")
    return found


def screen_text(app: BackchainApp) -> str:
    """Every character the current screen shows."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@sync
async def test_the_picker_tells_no_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKCHAIN_CACHE", str(tmp_path))
    app = BackchainApp(None, Options(), picker=SCENARIOS)
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, ScenarioPicker)
        options = picker.query_one("#picker")
        texts = [str(options.get_option_at_index(i).prompt) for i in range(len(SCENARIOS))]
        total = len(scenarios.CATALOG)  # the livepatch exercises after the synthetic ones
        assert texts[6] == f"exercise  7 of {total}  kernel 6.1.0-synthetic-s390x  rules current"
        shown = "\n".join([screen_text(app), app.title, app.sub_title, *texts])
        for s in SCENARIOS:
            assert not leaks(s, shown), (s.name, leaks(s, shown))
        # the footer offers only keys that work here
        footer = screen_text(app).splitlines()[-1]
        assert "Lowcore" not in footer and "Memory" not in footer and "Scenarios" not in footer


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
@sync
async def test_nothing_seen_before_answering_tells_the_answer(
    scenario: Scenario, tmp_path: Path
) -> None:
    dump = scenario.build(tmp_path / "dump")
    app = BackchainApp(str(dump), Options(), scenario=scenario.name)
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        stack = app.screen
        assert isinstance(stack, StackScreen) and stack.hidden
        assert stack.shown_task.pid == scenario.pid
        number = scenarios.number(scenario.name)
        lines = screen_text(app).splitlines()
        seen = {
            "title": f"{app.title}\n{app.sub_title}\n{stack.sub_title}\n{lines[0]}",
            "footer": lines[-1],
            "verdict bar": str(stack.query_one("#verdict").render()),
        }
        assert app.title.startswith(f"exercise {number} of {len(scenarios.CATALOG)} · kernel")
        regions = stack.query_one(RegionsMap)
        width = regions.virtual_size.width
        seen["map"] = "\n".join(regions._line(y, width).text for y in range(len(regions.rows)))
        walk = stack.query_one(WalkTable)
        seen["walk"] = "\n".join(
            [str(walk.border_title), str(walk.border_subtitle)]
            + [" ".join(cells(walk, r)) for r in range(walk.row_count)]
        )
        assert walk.row_count == 1 and str(walk.border_title) in (
            "walk: 1 frame so far",
            "walk: 0 frames so far · ended",  # an exited task: no stack
        )
        await pilot.press("i")  # the situation
        assert isinstance(app.screen, DebriefScreen)
        seen["situation"] = app.screen.markdown + "\n" + screen_text(app)
        assert scenario.situation in app.screen.markdown
        await pilot.press("escape", "ctrl+p")
        await pilot.pause(0.3)
        assert isinstance(app.screen, CommandPalette)
        seen["palette"] = screen_text(app)
        assert "Open task" in seen["palette"] and "unreliable" not in seen["palette"].lower()
        await pilot.press("escape", "escape")  # the overview: no verdict, no callers
        await pilot.pause()
        table = app.overview.query_one(TaskTable)
        seen["overview"] = "\n".join(" ".join(cells(table, r)) for r in range(table.row_count))
        assert "…" in seen["overview"]
        for where, text in seen.items():
            dump_data = where in ("map", "walk", "palette", "overview")  # the kernel's words
            found = leaks(scenario, text, named=not dump_data)
            assert not found, (where, found, text)
