"""The frame inspector's code pane and the walk pane's mark, driven with Pilot on real
samples (truth: the instructions in the dump, see test_code_dis.py; the call-site and
prologue findings tested in test_code_callsite.py and test_code_prologue.py)."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from explorer.tui.widgets.walk import WalkTable
from tests.helpers.tui import SIZE, make_app, open_pid, plain, sync, wait_checked

REAL = Path(__file__).resolve().parent.parent / "samples" / "real"


@sync
async def test_code_pane_names_a_psw_swap_before_a_return_address() -> None:
    """The nmi sample's dd: frame #1 (the stale r14 guess smp_send_stop+0x3c) follows an
    lpswe, not a call: a kernel idiom the code pane names; the walk pane does not flag it."""
    app = make_app(REAL / "bpo12-6.12-nmi" / "vmcore.zst")
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        screen = await open_pid(app, pilot, 158)
        await pilot.press("n", "c")
        await pilot.pause()
        walk = screen.query_one(WalkTable)
        names = [plain_cell(walk, row) for row in range(walk.row_count)]
        assert names[0] == "stop_run+0x4e" and names[1] == "(smp_send_stop+0x3c)"
        text = plain(screen.query_one("#frame-code", Static))
        assert "code at smp_send_stop+0x3c (return address)" in text
        assert " psw smp_send_stop+0x38  lpswe 0xb8(%r15)" in text
        assert "=> smp_send_stop+0x3c  brasl %r14" in text
        assert "follows lpswe 0xb8(%r15): the kernel loaded a PSW pointing here" in text
        assert "no call ends" not in text


@sync
async def test_code_pane_shows_the_call_and_the_interrupted_context() -> None:
    """The busy sample's dd on CPU 0: frame #0 is ext_int_handler's first instruction, so
    the pane shows the interrupted fdget+0x80; frame #1 returns after brasl fdget."""
    app = make_app(REAL / "bpo12-6.12-busy" / "vmcore.zst")
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        screen = await open_pid(app, pilot, 159)
        text = plain(screen.query_one("#frame-code", Static))
        assert "code at fdget+0x80 (interrupted, external old PSW)" in text
        assert "=> fdget+0x80  stg %r1, 0(%r10)" in text
        assert "frame allocated and back chain stored" in text
        await pilot.press("n")
        await pilot.pause()
        text = plain(screen.query_one("#frame-code", Static))
        assert "call fdget_pos+0x24  brasl %r14, 0x3fffed09df0 <fdget>" in text
        assert "returns after brasl %r14, fdget" in text
        walk = screen.query_one(WalkTable)
        assert not any(plain_cell(walk, r).startswith("!") for r in range(walk.row_count))


def plain_cell(walk: WalkTable, row: int) -> str:
    """The FUNCTION cell of a walk row as text."""
    cell = walk.get_row_at(row)[3]
    return getattr(cell, "plain", str(cell))


@sync
async def test_walk_pane_shows_a_module_frame_as_the_cli_does() -> None:
    """jbd2/vda-8 of the 7.2 sample sleeps in kjournald2 of jbd2: the walk pane names the
    module (``kjournald2+0x2d0 [jbd2]``) as bt and the kernel's own Call Trace do."""
    import json

    facts = json.loads((REAL / "sid-7.2-modules" / "facts.json").read_text())
    jbd2 = next(t for t in facts["sysrq_t"] if t["comm"] == "jbd2/vda-8")
    frame = jbd2["frames"][2]
    expected = f"{frame['symbol'].partition('/')[0]} [{frame['module']}]"
    assert expected == "kjournald2+0x2d0 [jbd2]"
    app = make_app(REAL / "sid-7.2-modules" / "vmcore.zst")
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        screen = await open_pid(app, pilot, jbd2["pid"])
        await pilot.press("n", "n", "n")
        await pilot.pause()
        walk = screen.query_one(WalkTable)
        names = [plain_cell(walk, row) for row in range(walk.row_count)]
        assert names[2] == expected, names
