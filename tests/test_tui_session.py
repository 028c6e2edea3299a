"""TUI rough edges of issue 15: checks named by what they test with the failing one first
(4), numbers never cut (5), footer keys that work (10), export into the working directory
by default (12). On a training scenario's dump (its expected verdict is the truth)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import Static

from explorer.cli import main
from explorer.model.kernel import Options
from explorer.tui.app import BackchainApp
from explorer.tui.export import export_name
from explorer.tui.screens.stack import StackScreen
from explorer.tui.widgets.checks import ChecksPane
from explorer.tui.widgets.inspector import FrameInspector
from explorer.tui.widgets.walk import WalkTable
from tests.helpers.tui import cells, plain, sync, wait_checked


@pytest.fixture(scope="module")
def preempted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("preempted")
    assert main(["scenarios", "build", "preempted", "-o", str(folder), "--force"]) == 0
    return folder / "vmcore"


async def _open_pid_100(app: BackchainApp, pilot) -> StackScreen:  # type: ignore[no-untyped-def]
    await wait_checked(app, pilot)
    task = next(t for t in app.session.tasks if t.pid == 100)  # type: ignore[union-attr]
    app.open_task(task)
    await pilot.pause()
    assert isinstance(app.screen, StackScreen)
    return app.screen


async def _open_pid(app: BackchainApp, pilot, pid: int) -> StackScreen:  # type: ignore[no-untyped-def]
    task = next(t for t in app.session.tasks if t.pid == pid)  # type: ignore[union-attr]
    app.open_task(task)
    await pilot.pause()
    assert isinstance(app.screen, StackScreen)
    return app.screen


@sync
async def test_failing_rule_first_and_named(preempted: Path) -> None:
    app = BackchainApp(str(preempted), Options())
    app.animation_level = "none"
    async with app.run_test(size=(120, 40)) as pilot:
        stack = await _open_pid_100(app, pilot)
        await pilot.press("g", "4", "enter")
        await pilot.pause()
        text = plain(stack.query_one(ChecksPane)).splitlines()
        assert text[0] == "fails here"
        assert text[1] == "✗ no pt_regs was crossed to reach it: fails (crossed_pt_regs)"
        assert "✓ the frame is on the task stack" in text
        assert not any(line.startswith("✓ crossed_pt_regs") for line in text)
        await pilot.press("g", "2", "enter")
        await pilot.pause()
        text = plain(stack.query_one(ChecksPane))
        assert "✓ no pt_regs was crossed to reach it" in text and "fails here" not in text
        # v cycles lower panes only in a narrow terminal: not in the footer at 120x40
        assert stack.check_action("cycle_pane", ()) is False


@sync
async def test_narrow_walk_cuts_names_not_numbers(preempted: Path) -> None:
    app = BackchainApp(str(preempted), Options())
    app.animation_level = "none"
    async with app.run_test(size=(80, 24)) as pilot:
        stack = await _open_pid_100(app, pilot)
        assert stack.check_action("cycle_pane", ()) is True
        await pilot.press("r")
        await pilot.pause()
        walk = stack.query_one(WalkTable)
        functions = [cells(walk, r)[3] for r in range(walk.row_count - 1)]
        symbols = [app.session.symbolize(s.ip) for s in stack.analysis.walk.steps]  # type: ignore[union-attr]
        for shown, full in zip(functions, symbols, strict=True):
            offset = full.split("+")[1].split("/")[0]
            assert f"+{offset}" in shown  # the whole offset, always
            name = full.split("+")[0]
            assert name in shown or "…+" in shown


@sync
async def test_export_writes_a_new_file_in_the_working_directory(
    preempted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 27 item 1, issue 23 item 6: ``x`` asks for no path (none from the user is ever
    used), writes beside nothing but the working directory, and never over a file (a second
    export, and a symbolic link planted under the next name, are left alone)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (work / "backchain-100-cat-2.md").symlink_to(victim)
    app = BackchainApp(str(preempted), Options())  # no export folder: the working directory
    app.animation_level = "none"
    async with app.run_test(size=(120, 40)) as pilot:
        stack = await _open_pid_100(app, pilot)
        await pilot.press("x")
        await pilot.pause()
        assert app.screen is stack  # no prompt
        first = work / "backchain-100-cat.md"
        assert "**Verdict: unreliable** (`crossed_pt_regs`, frame #4)" in first.read_text()
        await pilot.press("x")
        await pilot.pause()
    assert (work / "backchain-100-cat-3.md").read_text() == first.read_text()
    assert victim.read_text() == "keep"
    assert sorted(p.name for p in preempted.parent.iterdir() if p.suffix == ".md") == []


def test_export_name_is_chosen_by_the_tool() -> None:
    assert export_name(7, "../../etc/passwd[") == "backchain-7-_.._etc_passwd_.md"
    assert export_name(1, "init", "preempted", "abc123") == "backchain-abc123-preempted-1-init.md"
    assert export_name(2, "x" * 100).count("x") == 32 and "/" not in export_name(3, "/")


@sync
async def test_lowcore_names_old_psws_in_view() -> None:
    from explorer.reports.info import info_facts
    from explorer.tui.screens.lowcore import LowcoreScreen
    from explorer.tui.widgets.lowcore import LowcoreTable
    from tests.helpers.tui import BUSY

    app = BackchainApp(str(BUSY), Options())
    app.animation_level = "none"
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_checked(app, pilot)
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, LowcoreScreen)
        table = app.screen.query_one(LowcoreTable)
        labels = [str(c.label) for c in table.ordered_columns]
        assert labels[:4] == ["OFFSET", "FIELD", "VALUE", "POINTS TO"]  # before the meanings
        rows = {cells(table, r)[1]: cells(table, r) for r in range(table.row_count)}
        facts = info_facts(app.session.kernel)  # type: ignore[union-attr]
        external = facts["cpus"][0]["lowcore"]["last_interrupts"]["external"]["symbol"]
        assert external and rows["external_old_psw"][3] == external


@sync
async def test_80x24_keeps_callers_annotations_and_registers() -> None:
    from explorer.tui.screens.memory import MemoryScreen
    from explorer.tui.widgets.hexview import HexView
    from explorer.tui.widgets.inspector import regs_lines
    from explorer.tui.widgets.tasks import TaskTable
    from tests.helpers.tui import BUSY

    app = BackchainApp(str(BUSY), Options())
    app.animation_level = "none"
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_checked(app, pilot)
        await pilot.press("G")  # grouped: the callers (what a group is about) stay in view
        await pilot.pause()
        table = app.overview.query_one(TaskTable)
        labels = [str(c.label) for c in table.ordered_columns]
        assert labels[:4] == ["TASKS", "VERDICT", "TOP FUNCTION", "CALLERS"]
        await pilot.press("G")
        stack = await _open_pid(app, pilot, 158)
        end = stack.analysis.walk.end
        assert end.regs is not None
        # two registers a line at 80 columns: no row wraps
        lines = regs_lines(end.regs, app.session.symbolize, "final", per_row=2)  # type: ignore[union-attr]
        rows = [line.plain for line in lines if line.plain.startswith("r")]
        assert len(rows) == 8 and all(len(line) <= 8 + 2 * 17 for line in rows)
        assert stack.query_one(FrameInspector)._regs_per_row() == 2
        # the inspector under the walk (v): a frame's r14 named whole, not "kthr…"
        kthreadd = await _open_pid(app, pilot, 2)
        await pilot.press("n", "n", "v")
        await pilot.pause()
        fields = plain(kthreadd.query_one("#frame-fields", Static))
        assert "← kthreadd+0x236" in fields, fields
        await pilot.press("escape")
        stack = await _open_pid(app, pilot, 158)
        await pilot.press("r", "m")
        await pilot.pause()
        assert isinstance(app.screen, MemoryScreen)
        hexview = app.screen.query_one(HexView)
        text = "\n".join(hexview.render_line(y).text for y in range(hexview.size.height))
        assert "pt_regs psw.mask" in text  # not "pt_re": the ASCII column gives way


@sync
async def test_narrower_terminal_shrinks_the_walk_columns(preempted: Path) -> None:
    """Columns fit the rows shown now, not an earlier, wider fill: at 80 columns the names fit
    whole; at 50 they are cut, and the FUNCTION column shrinks with them, so the table never
    grows wider than its pane (which would push the offsets out of sight)."""
    app = BackchainApp(str(preempted), Options())
    app.animation_level = "none"
    async with app.run_test(size=(80, 24)) as pilot:
        stack = await _open_pid_100(app, pilot)
        await pilot.press("r")
        await pilot.pause()
        walk = stack.query_one(WalkTable)
        await pilot.resize_terminal(50, 24)
        await pilot.pause()
        await pilot.pause()
        functions = [cells(walk, r)[3] for r in range(walk.row_count - 1)]
        assert any("…+" in f for f in functions)  # 50 columns: some names are cut
        widest = max(len(f) for f in [*functions, cells(walk, walk.row_count - 1)[3]])
        assert walk.columns["fn"].content_width == max(widest, len("FUNCTION"))  # type: ignore[index]
        assert walk.virtual_size.width <= walk.scrollable_content_region.width


def _hostile_copy(preempted: Path, folder: Path, comm: bytes, suffix: str) -> Path:
    """The scenario's dump with pid 100's comm (16 bytes, ``cat``) replaced by ``comm`` and
    every text symbol of its System.map but the text bounds (a map without them is refused)
    ending in ``suffix``: what a user of the crashed machine (prctl(PR_SET_NAME)) or a symbol
    file can put there."""
    data = (preempted).read_bytes()
    old = b"cat".ljust(16, b"\0")
    assert data.count(old) == 1
    (folder / "vmcore").write_bytes(data.replace(old, comm.ljust(16, b"\0")[:16]))
    lines = []
    for line in (preempted.parent / "System.map").read_text().splitlines():
        address, kind, name = line.split()
        renamed = kind in "tT" and name not in ("_stext", "_etext")  # the map stays whole
        lines.append(f"{address} {kind} {name}{suffix if renamed else ''}")
    (folder / "System.map").write_text("\n".join(lines) + "\n")
    shutil.copy(preempted.parent / "profile.json", folder / "profile.json")
    return folder / "vmcore"


@pytest.mark.parametrize(
    ("comm", "suffix"), [(b"cat[", "["), (b"[/]cat[b", "[/]"), (b"$x[b $y]z", "[/b]")]
)
@sync
async def test_markup_in_dump_data_is_shown_as_text(
    preempted: Path, tmp_path: Path, comm: bytes, suffix: str
) -> None:
    """Issue 27 item 7: a process name ending in ``[`` (or any markup) and symbol names with
    markup open and show as the text they are, in the overview, triage card, stack title,
    frame inspector, checks and memory view (before: MarkupError on opening)."""
    from textual.command import CommandList

    from explorer.tui.screens.memory import MemoryScreen
    from explorer.tui.widgets.triage import TriageCard

    dump = _hostile_copy(preempted, tmp_path, comm, suffix)
    app = BackchainApp(str(dump), Options())
    app.animation_level = "none"
    async with app.run_test(size=(250, 50)) as pilot:
        stack = await _open_pid_100(app, pilot)
        title = plain(stack.query_one("#task-title"))
        assert f"PID 100 {comm.decode()} (" in title
        inspector = plain(stack.query_one("#frame-fields"))
        assert f"{suffix}+0x" in inspector  # the r14 symbol, markup and all
        for _ in range(6):
            await pilot.press("n")
        await pilot.press("m")
        await pilot.pause()
        assert isinstance(app.screen, MemoryScreen)
        await pilot.press("escape", "escape")
        await pilot.pause()
        assert app.screen is app.overview
        assert "CPU" in plain(app.overview.query_one(TriageCard))
        await pilot.press("ctrl+p", *"100")  # the palette lists the task with its name
        await pilot.pause(0.5)
        found = app.screen.query_one(CommandList)
        hits = [str(found.get_option_at_index(i).prompt) for i in range(found.option_count)]
        assert any(f"Open task 100 {comm.decode()}" in hit for hit in hits), hits
        await pilot.press("escape")
