"""SVG snapshots of the explorer's screens (pytest-textual-snapshot).

Fixed terminal size, animations off, workers awaited before the picture is taken; the dump
is named by its folder and file name only, so the pictures do not depend on the machine.
Update the baselines with ``pytest tests/test_tui_snapshots.py --snapshot-update`` after
reading the report.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from explorer.model.kernel import Options
from explorer.training import scenarios
from explorer.tui.app import BackchainApp
from tests.helpers.tui import BUSY, PANIC, SIZE, make_app, open_pid, wait_checked

Script = Callable[[Pilot[None]], Awaitable[None]]


def script(*keys: str, pid: int | None = None) -> Script:
    """Wait for the workers, optionally open ``pid``'s stack, then press ``keys``."""

    async def run(pilot: Pilot[None]) -> None:
        app: Any = pilot.app
        await wait_checked(app, pilot)
        if pid is not None:
            await open_pid(app, pilot, pid)
        if keys:
            await pilot.press(*keys)
            # what a key starts (a table rebuilt, its columns sized) settles over several
            # rounds of messages; an idle wait alone is fooled on a loaded machine (CI once
            # caught the grouped table before its columns were sized)
            await app.workers.wait_for_complete()
            await pilot.pause()
            await pilot.pause(0.1)
        await pilot.pause()

    return run


def snap(snap_compare: Any, path: Path, run_before: Script, size: tuple[int, int] = SIZE) -> bool:
    return bool(snap_compare(make_app(path), terminal_size=size, run_before=run_before))


def test_overview(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script())


def test_stack_reliable(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script("n", "n", "n", pid=1))


def test_stack_unreliable(snap_compare: Any) -> None:
    assert snap(snap_compare, PANIC, script("n", pid=1))


def test_stack_narrow(snap_compare: Any) -> None:
    assert snap(snap_compare, PANIC, script("r", pid=1), size=(80, 24))


def test_lowcore(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script("l"))


def test_help(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script("question_mark"))


def test_exercise_hidden(snap_compare: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """``backchain scenarios open misaligned-sp`` with the walk run: no verdict yet."""
    dump = scenarios.build("misaligned-sp", tmp_path_factory.mktemp("snap") / "misaligned-sp")
    app = BackchainApp(str(dump), Options(), scenario="misaligned-sp")
    app.animation_level = "none"
    assert snap_compare(app, terminal_size=SIZE, run_before=script("r"))


# -- 80x24 (issue 15, rough edge 6): every primary key in the footer, no cut numbers --------------
NARROW = (80, 24)


def test_overview_80x24(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script(), size=NARROW)


def test_lowcore_80x24(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script("l"), size=NARROW)


def test_exercise_80x24(snap_compare: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The exercise keys (a, R) stay in the footer beside esc, ? and q."""
    dump = scenarios.build("misaligned-sp", tmp_path_factory.mktemp("snap") / "misaligned-sp")
    app = BackchainApp(str(dump), Options(), scenario="misaligned-sp")
    app.animation_level = "none"
    assert snap_compare(app, terminal_size=NARROW, run_before=script("r"))


# -- a livepatch exercise (issue 21 item 4): nothing tells the blocking task ----------------------
def _klp_exercise(tmp_path_factory: pytest.TempPathFactory) -> BackchainApp:
    from explorer.training import klp

    stalled = next((s for s in klp.catalog() if s.name == "livepatch-stalled"), None)
    if stalled is None:
        pytest.skip("no real livepatch sample bundled")
    dump = stalled.build(tmp_path_factory.mktemp("snap") / "dump")
    app = BackchainApp(str(dump), Options(), scenario=stalled.name)
    app.animation_level = "none"
    return app


def _quiet(run: Script) -> Script:
    """``run``, then without the opening notification (its timeout makes it come and go)."""

    async def quiet(pilot: Pilot[None]) -> None:
        await run(pilot)
        pilot.app.clear_notifications()
        await pilot.pause()

    return quiet


def test_klp_exercise_overview(snap_compare: Any, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every verdict '?', the exercise's keys (a, R, i) in the footer, no klp mark."""
    app = _klp_exercise(tmp_path_factory)
    assert snap_compare(app, terminal_size=SIZE, run_before=_quiet(script()))


def test_klp_exercise_stack_80x24(
    snap_compare: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The blocking task's stack at 80 columns: its walk run, the question, no verdict."""
    app = _klp_exercise(tmp_path_factory)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_quiet(script("r", pid=43)))


# -- every screen at both sizes (issue 24): nothing important cut while space is free --------------
KLP = BUSY.parents[1] / "klp-6.12-stalled" / "vmcore.zst"


def test_stack_120x40_walk_run(snap_compare: Any) -> None:
    """The whole walk of a stack with an irq-to-task switch: STACK kept, names whole."""
    assert snap(snap_compare, BUSY, script("r", pid=158))


def test_inspector_80x24(snap_compare: Any) -> None:
    """The frame pane (v) at 80 columns: kthreadd's r14 named whole under the hex."""
    assert snap(snap_compare, BUSY, script("n", "n", "v", pid=2), size=NARROW)


def test_inspector_120x40(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script("n", "n", pid=2))


def test_grouped(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script("G"))


def test_grouped_80x24(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script("G"), size=NARROW)


def test_memory(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script("m"))


def test_memory_80x24(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script("m"), size=NARROW)


def _klp_script() -> Script:
    async def run(pilot: Pilot[None]) -> None:
        app: Any = pilot.app
        await wait_checked(app, pilot, timeout=60)
        await pilot.press("k")
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()

    return run


def test_livepatch(snap_compare: Any) -> None:
    assert snap(snap_compare, KLP, _klp_script())


def test_livepatch_80x24(snap_compare: Any) -> None:
    assert snap(snap_compare, KLP, _klp_script(), size=NARROW)


def _picker(snap_compare: Any, size: tuple[int, int]) -> bool:
    app = BackchainApp(None, Options(), picker=scenarios.CATALOG)
    app.animation_level = "none"

    async def run(pilot: Pilot[None]) -> None:
        await pilot.pause()

    return bool(snap_compare(app, terminal_size=size, run_before=run))


def test_picker(snap_compare: Any) -> None:
    assert _picker(snap_compare, SIZE)


def test_picker_80x24(snap_compare: Any) -> None:
    assert _picker(snap_compare, NARROW)


def test_help_80x24(snap_compare: Any) -> None:
    assert snap(snap_compare, BUSY, script("question_mark"), size=NARROW)


def test_lowcore_points_to_80x24(snap_compare: Any) -> None:
    """At 80 columns what the old PSWs and pointers point to is seen whole (two lines)."""
    assert snap(snap_compare, BUSY, script("l", "g", *"external_old", "enter"), size=NARROW)
