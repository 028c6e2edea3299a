"""Issue 23 item 10: every key a screen's footer shows works on that screen.

The test walks the screens of a classroom (the picker, an exercise's stack before and after
the answer, the situation and the debriefing) and of a plain dump (overview, stack, lowcore,
memory, help): it presses each key the footer offers there and checks that something
changed: another screen, or other text on this one (a notification counts). ``q`` is only
checked to be quit.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from explorer.model.kernel import Options
from explorer.training import scenarios
from explorer.tui.app import BackchainApp
from explorer.tui.screens.lowcore import LowcoreScreen
from explorer.tui.screens.memory import MemoryScreen
from explorer.tui.screens.overview import OverviewScreen
from explorer.tui.screens.picker import ScenarioPicker
from explorer.tui.screens.stack import StackScreen
from tests.helpers.tui import SIZE, sync, wait_checked


def footer_keys(app: BackchainApp) -> dict[str, str]:
    """The keys the footer shows on the current screen: action -> the first key."""
    keys: dict[str, str] = {}
    for key, active in app.screen.active_bindings.items():
        binding = active.binding
        if binding.show and active.enabled:
            keys.setdefault(binding.action, key)
    return keys


def state(app: BackchainApp) -> tuple[object, ...]:
    """What a key may change: the screens, the focus and every character shown."""
    text = "\n".join(strip.text for strip in app.screen._compositor.render_strips())
    return tuple(type(s).__name__ for s in app.screen_stack), app.focused, text


async def walk(
    app: BackchainApp, pilot: Pilot[None], where: str, later: tuple[str, ...] = ()
) -> set[str]:
    """Press every footer key of the current screen once (but the ``later`` actions, which
    the caller presses); each must change something. Screens a key opened are closed
    again. Returns the actions shown."""
    home = app.screen
    depth = len(app.screen_stack)
    keys = footer_keys(app)
    assert keys, f"{where}: the footer shows no key"
    for action, key in keys.items():
        if action.endswith("quit") or action in later:
            continue
        await pilot.pause()
        before = state(app)
        await pilot.press(key)
        await pilot.pause(0.1)
        assert state(app) != before, f"{where}: {key} ({action}) does nothing"
        while len(app.screen_stack) > depth:
            app.pop_screen()
            await pilot.pause()
        if app.screen is not home:  # escape went back: come again for the next key
            await app.push_screen(home)
            await pilot.pause()
        app.clear_notifications()
    return set(keys)


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A two-CPU scenario: a task on CPU 1 (lowcore has two CPUs to step through)."""
    return scenarios.build("irq-via-backchain", tmp_path_factory.mktemp("bindings") / "d")


@sync
async def test_every_key_of_a_plain_dump_works(dump: Path, tmp_path: Path) -> None:
    app = BackchainApp(str(dump), Options(), export_dir=str(tmp_path))
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        assert isinstance(app.screen, OverviewScreen)
        tried = await walk(app, pilot, "overview")
        assert {"app.help", "sort", "toggle_unreliable", "lowcore", "memory"} <= tried
        assert app.session is not None
        app.open_task(app.session.scan.by_pid(100)[0])  # the overview's rows are regrouped
        await pilot.pause()
        assert isinstance(app.screen, StackScreen)
        tried = await walk(app, pilot, "stack")
        assert {"next", "run", "export", "memory", "cfi"} <= tried  # g: in the walk subtitle
        assert "answer" not in tried and "debrief" not in tried  # no exercise
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LowcoreScreen)
        await walk(app, pilot, "lowcore")
        app.pop_screen()
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, MemoryScreen)
        await walk(app, pilot, "memory")


@sync
async def test_every_key_of_a_classroom_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKCHAIN_CACHE", str(tmp_path))
    app = BackchainApp(
        None, Options(), export_dir=str(tmp_path), picker=[scenarios.get("misaligned-sp")]
    )
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, ScenarioPicker)
        tried = await walk(app, pilot, "picker", later=("open",))  # enter: below
        assert "lowcore" not in tried and "memory" not in tried and "scenarios" not in tried
        await pilot.press("enter")
        for _ in range(200):  # enter builds and opens the exercise
            await pilot.pause(0.05)
            if isinstance(app.screen, StackScreen):
                break
        await wait_checked(app, pilot)
        stack = app.screen
        assert isinstance(stack, StackScreen) and stack.hidden
        tried = await walk(app, pilot, "exercise", later=("scenarios",))
        assert {"answer", "reveal", "debrief", "scenarios"} <= tried  # i: the situation
        assert stack.hidden  # R asked first; closing the question revealed nothing
        await pilot.press("R", "y")
        await pilot.pause()
        app.pop_screen()  # the debriefing
        await pilot.pause()
        assert app.screen is stack and not stack.hidden
        tried = await walk(app, pilot, "exercise answered", later=("scenarios",))
        assert "debrief" in tried and "answer" not in tried and "reveal" not in tried
        await pilot.press("o")  # back to the picker: the exercise is marked, and named now
        await pilot.pause()
        assert isinstance(app.screen, ScenarioPicker)
        option = app.screen.query_one("#picker").get_option_at_index(0)
        assert str(option.prompt).endswith("· revealed  misaligned-sp")


@sync
async def test_every_key_of_a_livepatch_exercise_works(tmp_path: Path) -> None:
    """Issue 21 item 4: a livepatch exercise asks about the whole dump, so the overview
    offers a, R and i too; after the answer they go (i stays: the debriefing) and k opens
    the livepatch screen."""
    from explorer.training import klp

    stalled = next((s for s in klp.catalog() if s.name == "livepatch-stalled"), None)
    if stalled is None:
        pytest.skip("no real livepatch sample bundled")
    dump = stalled.build(tmp_path / "dump")
    app = BackchainApp(str(dump), Options(), export_dir=str(tmp_path), scenario=stalled.name)
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot, timeout=60)
        assert isinstance(app.screen, OverviewScreen)
        tried = await walk(app, pilot, "livepatch exercise")
        assert {"answer", "reveal", "story", "sort"} <= tried
        assert "toggle_unreliable" not in tried
        assert app.session is not None
        app.open_task(app.session.scan.by_pid(43)[0])
        await pilot.pause()
        stack = app.screen
        assert isinstance(stack, StackScreen) and stack.hidden
        tried = await walk(app, pilot, "livepatch exercise's stack")
        assert {"answer", "reveal", "debrief", "next"} <= tried and "export" not in tried
        await pilot.press("R", "y")
        await pilot.pause()
        app.pop_screen()  # the debriefing
        await pilot.pause()
        assert app.screen is stack and not stack.hidden
        tried = await walk(app, pilot, "livepatch exercise revealed")
        assert "answer" not in tried and "reveal" not in tried and "export" in tried
        await pilot.press("escape")
        await pilot.pause()
        app.overview.action_clear_filter()  # the first walk left the filter focused
        await pilot.pause()
        tried = await walk(app, pilot, "livepatch exercise revealed, overview")
        assert "story" in tried and "answer" not in tried and "reveal" not in tried
