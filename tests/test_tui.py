"""The explorer driven with Pilot: real samples, a synthetic dump with a broken stack, and a
corrupt file. Every test waits for the workers (load, check) before it looks."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input

from explorer.training.synthetic import Frame
from explorer.tui.screens.help import HelpScreen
from explorer.tui.screens.lowcore import LowcoreScreen
from explorer.tui.screens.memory import MemoryScreen
from explorer.tui.screens.stack import StackScreen
from explorer.tui.widgets.checks import ChecksPane
from explorer.tui.widgets.error import ErrorPanel
from explorer.tui.widgets.hexview import HexView
from explorer.tui.widgets.lowcore import LowcoreTable
from explorer.tui.widgets.tasks import TaskTable
from explorer.tui.widgets.verdict import VerdictBar
from explorer.tui.widgets.walk import WalkTable
from tests.helpers.kernels import NANOSLEEP, base_kernel, sleeper
from tests.helpers.tui import (
    BUSY,
    PANIC,
    SIZE,
    cells,
    make_app,
    open_pid,
    plain,
    sync,
    wait_checked,
)


@pytest.fixture(scope="module")
def broken_dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic kernel: one good sleeper and one whose back chain points down."""
    k = base_kernel()
    sleeper(k, 100, "sleep")
    bad = [*NANOSLEEP[:2], Frame("do_nanosleep", 0x5E, back_chain=0x1000), *NANOSLEEP[3:]]
    sleeper(k, 200, "broken", bad)
    return k.save(tmp_path_factory.mktemp("tui-broken"))


@sync
async def test_busy_overview_filter_and_reliable_walk(tmp_path: Path) -> None:
    app = make_app(BUSY, tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        table = app.overview.query_one(TaskTable)
        assert table.row_count == len(app.session.tasks) == 78  # type: ignore[union-attr]
        summary = plain(app.overview.query_one("#summary"))
        assert "78 tasks: 76 reliable, 2 not" in summary
        # the filter: a function on the stack
        await pilot.press("slash")
        app.overview.query_one("#filter", Input).value = "fn:do_wait"
        await pilot.pause()
        pids = {cells(table, r)[0] for r in range(table.row_count)}
        assert "1" in pids and "0" not in pids
        await pilot.press("escape")
        assert table.row_count == 78
        stack = await open_pid(app, pilot, 1)
        walk = stack.query_one(WalkTable)
        assert walk.revealed == 1 and walk.row_count == 1
        assert cells(walk, 0)[3] == "__schedule+0x43c"
        await pilot.press("n", "space")
        assert walk.revealed == 3
        assert [cells(walk, r)[3] for r in range(3)] == [
            "__schedule+0x43c",
            "schedule+0x3e",
            "do_wait+0x84",
        ]
        assert "frame #2" in plain(stack.query_one(ChecksPane))
        await pilot.press("r")
        assert walk.revealed == walk.total == 8
        assert cells(walk, 7)[3] == "final user pt_regs"
        checks = plain(stack.query_one(ChecksPane))
        assert "✓ final_pt_regs" in checks and "✓ reliable" in checks
        assert stack.query_one(ChecksPane).failing is None
        assert plain(stack.query_one(VerdictBar)).startswith("RELIABLE")
        await pilot.press("p")
        assert walk.revealed == 7
        await pilot.press("0")
        assert walk.revealed == 1
        await pilot.press("g", "5", "enter")
        await pilot.pause()
        assert walk.revealed == 6 and walk.current == 5
        await pilot.press("x")  # no question: the export folder, a name the tool chose
        await pilot.pause()
        exported = tmp_path / "backchain-1-init.md"
        assert "### Stack of init (pid 1" in exported.read_text()
        assert app.screen is stack and "exported backchain-1-init.md" in stack.sub_title
        await pilot.press("escape")
        assert app.screen is app.overview
        await pilot.press("escape")  # clears the filter
        assert table.row_count == 78
        # group and sort
        await pilot.press("G")
        assert table.grouped and 0 < table.row_count < 78
        assert cells(table, 0)[0] == "20"  # the biggest group: kworkers in worker_thread
        await pilot.press("G", "s")
        assert table.sort_key == "pid"
        app.overview.action_sort()
        await pilot.pause()
        assert table.sort_key == "cpu"
        # PID CPU ST COMM, as ps and check --all list tasks
        assert [str(c.label).split()[0] for c in table.ordered_columns][:4] == [
            "PID",
            "CPU",
            "ST",
            "COMM",
        ]
        # running tasks first (their CPU bare), then the others by last CPU, in parentheses
        assert [cells(table, r)[1] for r in range(3)] == ["0", "1", "(0)"]
        # lowcore and memory
        await pilot.press("l")
        assert isinstance(app.screen, LowcoreScreen)
        lowcore = app.screen.query_one(LowcoreTable)
        rows = {cells(lowcore, r)[1]: cells(lowcore, r) for r in range(lowcore.row_count)}
        assert rows["current_task"][3] == "task dd:159"
        assert rows["external_old_psw"][3].startswith("fdget+0x80")
        assert "gpregs_save_area.r15" in rows
        await pilot.press("]")
        assert app.screen.cpu == 1
        rows = {cells(lowcore, r)[1]: cells(lowcore, r) for r in range(lowcore.row_count)}
        assert rows["current_task"][3] == "task sh:158"
        # a jump to a field by name (or offset)
        await pilot.press("g", *"kernel_stack", "enter")
        await pilot.pause()
        assert cells(lowcore, lowcore.cursor_row)[1] == "kernel_stack"
        await pilot.press("g", *"0x0", "enter")
        await pilot.pause()
        assert lowcore.cursor_row == 0
        await pilot.press("escape")
        stack = await open_pid(app, pilot, 1)
        sp = stack.analysis.walk.steps[0].sp
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, MemoryScreen)
        hexview = app.screen.query_one(HexView)
        assert hexview.cursor == sp
        assert hexview.notes[sp + 0x98] == "#0 back chain"
        await pilot.press("ctrl+g")
        app.screen.query_one(Input).value = "init_task"
        await pilot.press("enter")
        await pilot.pause()
        session = app.session
        assert session is not None
        assert hexview.cursor == session.resolve("init_task")
        # where the view now starts, and symbol+off under the cursor (System.map's init_task)
        title = plain(app.screen.query_one("#mem-title"))
        assert title.startswith(f"virtual addresses from 0x{hexview.cursor:x} (init_task+0x0)")
        await pilot.press("down")
        await pilot.pause()
        status = plain(app.screen.query_one("#mem-status"))
        assert status.startswith(f"0x{hexview.cursor:x} init_task+0x10 ")
        await pilot.press("up")
        await pilot.press("backspace")
        assert hexview.cursor == sp


@sync
async def test_panic_init_is_running_and_unreliable() -> None:
    app = make_app(PANIC)
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        await pilot.press("u")
        table = app.overview.query_one(TaskTable)
        assert table.row_count == 2
        assert {cells(table, r)[4] for r in range(2)} == {"task_running"}
        stack = await open_pid(app, pilot, 1)
        verdict = plain(stack.query_one(VerdictBar))
        assert verdict.startswith("UNRELIABLE: task_running")
        assert "init:1 is running" in verdict
        assert stack.query_one(ChecksPane).failing == "task_running"
        await pilot.press("n")
        walk = stack.query_one(WalkTable)
        assert cells(walk, 1)[3] == "(lgr_info_log+0x58)"  # an r14 guess after pt_regs
        assert "• r14_guess" in plain(stack.query_one(ChecksPane))
        # the command palette opens a task by pid and name
        await pilot.press("ctrl+p")
        await pilot.pause()
        app.screen.query_one(Input).value = "open task 156 dd"
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, StackScreen)
        assert app.screen.shown_task.pid == 156


@sync
async def test_synthetic_broken_back_chain(broken_dump: Path) -> None:
    app = make_app(broken_dump)
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        table = app.overview.query_one(TaskTable)
        verdicts = {cells(table, r)[3]: cells(table, r)[4] for r in range(table.row_count)}
        assert verdicts["sleep"] == "reliable"
        assert verdicts["broken"].startswith("unwind_error/")
        stack = await open_pid(app, pilot, 200)
        await pilot.press("r")
        walk = stack.query_one(WalkTable)
        assert cells(walk, walk.row_count - 1)[3].startswith("unwind error: ")
        pane = stack.query_one(ChecksPane)
        assert pane.failing is not None and pane.failing != "unwind_error"
        assert "✗ unwind_error" in plain(pane)
        assert plain(stack.query_one(VerdictBar)).startswith("UNRELIABLE: unwind_error/")
        # other unwinder rules: every task is judged again
        rows = table.row_count
        app.set_era("v5.5")
        await wait_checked(app, pilot)
        assert app.screen is app.overview
        assert app.session is not None and app.session.era == "v5.5"
        assert table.row_count == rows
        assert "rules v5.5" in plain(app.overview.query_one("#summary"))


@sync
async def test_corrupt_dump_shows_an_error_and_keeps_running(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.vmcore"
    garbage.write_bytes(b"this is not a dump\n" * 100)
    app = make_app(garbage)
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        panel = app.overview.query_one(ErrorPanel)
        assert panel.display
        assert "not a dump format" in plain(panel)
        assert str(tmp_path) not in plain(panel)  # file names, not absolute paths
        assert app.is_running
        await pilot.press("l")  # nothing open: a notification, no crash
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert app.screen is app.overview
