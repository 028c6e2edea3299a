"""The scenario picker opens every scenario with the app's one ``Options``: opening one must
not change how any other opens (before, the first scenario's companion files were written
into the shared options and 24 of the other 40 were refused or walked otherwise).

Every scenario is opened after every other one, through the function the picker's overview
worker calls (``Session.open`` with the app's options), and must give the verdict and frames
it gives alone, which are the scenario's own answer (tests/test_scenarios.py). And one app
plays every scenario through the picker itself, one after another (issue 23): each shows
the verdict, rule and frames it shows opened alone."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList

from explorer.model.kernel import Options
from explorer.training.scenarios import SCENARIOS, Scenario
from explorer.tui.app import BackchainApp
from explorer.tui.screens.picker import ScenarioPicker
from explorer.tui.screens.prompt import Confirm
from explorer.tui.screens.stack import StackScreen
from explorer.tui.session import Session
from explorer.tui.widgets.verdict import VerdictBar, verdict_line
from explorer.tui.widgets.walk import WalkTable
from tests.helpers.tui import SIZE, cells, plain, sync


def _seen(path: Path, scenario: Scenario, options: Options) -> tuple[str, tuple[int, ...], str]:
    """The scenario task's verdict, frame addresses and walk end, as the explorer opens it."""
    session = Session.open(str(path), options)
    try:
        (task,) = session.scan.by_pid(scenario.pid)
        a = session.detail(task)
        return a.verdict.label, tuple(s.ip for s in a.walk.steps), a.walk.end.kind
    finally:
        session.kernel.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every scenario written as the picker writes it: one folder each, side by side."""
    root = tmp_path_factory.mktemp("cache") / "scenarios"  # where the picker writes them
    return {s.name: s.build(root / s.name) for s in SCENARIOS}


def test_every_scenario_opens_alike_after_every_other(built: dict[str, Path]) -> None:
    alone = {s.name: _seen(built[s.name], s, Options()) for s in SCENARIOS}
    for s in SCENARIOS:
        assert alone[s.name][0] == s.answer.label, s.name  # alone is the scenario's truth
    app = BackchainApp(None, picker=SCENARIOS)
    shared = app.options  # the one Options every scenario the picker opens gets
    differ = []
    for first in SCENARIOS:
        _seen(built[first.name], first, shared)
        for then in SCENARIOS:
            if then is not first and _seen(built[then.name], then, shared) != alone[then.name]:
                differ.append(f"{then.name} after {first.name}")
    assert not differ, f"{len(differ)} opened otherwise, e.g. {differ[:3]}"
    assert shared == Options()  # nobody wrote into it


def _shown_alone(path: Path, scenario: Scenario) -> tuple[str, str | None, list[list[str]]]:
    """What the scenario's stack shows opened alone, once revealed: the verdict line, the
    rule, and each frame's number, stack pointer and function."""
    session = Session.open(str(path), Options())
    try:
        (task,) = session.scan.by_pid(scenario.pid)
        a = session.detail(task)
        frames = [
            [
                f"#{s.index}",
                f"0x{s.sp:x}",
                (session.symbolize(s.ip) or f"0x{s.ip:x}").partition("/")[0],
            ]
            for s in a.walk.steps
        ]
        return verdict_line(a).plain, a.verdict.rule, frames
    finally:
        session.kernel.close()


async def _until(pilot: Pilot[None], done: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        await pilot.pause(0.02)


@sync
async def test_one_app_plays_every_scenario_through_the_picker(
    built: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The picker's own path: pick (enter builds and opens), reveal, run the walk, back with
    o, the next one; each shows what it shows alone (its verdict is the scenario's answer)."""
    alone = {s.name: _shown_alone(built[s.name], s) for s in SCENARIOS}
    monkeypatch.setenv("BACKCHAIN_CACHE", str(next(iter(built.values())).parents[2]))
    app = BackchainApp(None, Options(), picker=SCENARIOS)
    app.animation_level = "none"
    differ = []
    async with app.run_test(size=SIZE) as pilot:
        for index, s in enumerate(SCENARIOS):
            if index:
                await pilot.press("o")
            await _until(pilot, lambda: isinstance(app.screen, ScenarioPicker), "no picker")
            app.screen.query_one("#picker", OptionList).highlighted = index
            await pilot.press("enter")

            def is_open(s: Scenario = s) -> bool:
                screen = app.screen
                return isinstance(screen, StackScreen) and screen.shown_task.pid == s.pid

            await _until(pilot, is_open, f"{s.name}: its stack did not open")
            stack = app.screen
            assert isinstance(stack, StackScreen) and stack.hidden, s.name
            await pilot.press("R")
            await _until(pilot, lambda: isinstance(app.screen, Confirm), "no confirmation")
            await pilot.press("y")
            await pilot.pause()
            await pilot.press("escape")  # the debrief
            await _until(pilot, lambda st=stack: app.screen is st, f"{s.name}: stack after reveal")
            await pilot.press("r")  # the whole walk
            await pilot.pause()
            walk = stack.query_one(WalkTable)
            rows = [cells(walk, r) for r in range(walk.row_count)]
            verdict, rule, frames = alone[s.name]
            shown_frames = [row[:2] for row in rows if row[0] != "end"]
            bar = plain(stack.query_one(VerdictBar)).splitlines()[0]  # then livepatch's line
            if (
                not f"{bar} ".startswith(f"{verdict} ")
                or stack.analysis.verdict.rule != rule
                or shown_frames != [f[:2] for f in frames]
                or not all(f[2] in row[3] for f, row in zip(frames, rows, strict=False))
            ):
                differ.append(f"{s.name} after {index}: {bar} {rows} vs {verdict} {frames}")
    assert not differ, f"{len(differ)} shown otherwise: {differ[:2]}"
    assert app.options == Options()
