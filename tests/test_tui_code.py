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
async def test_code_pane_flags_a_return_address_without_a_call() -> None:
    """The nmi sample's dd: frame #1 (the stale r14 guess smp_send_stop+0x3c) follows an
    lpswe, not a call: the walk pane marks it, the code pane flags the lpswe."""
    app = make_app(REAL / "bpo12-6.12-nmi" / "vmcore.zst")
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        screen = await open_pid(app, pilot, 158)
        await pilot.press("n", "c")
        await pilot.pause()
        walk = screen.query_one(WalkTable)
        names = [plain_cell(walk, row) for row in range(walk.row_count)]
        assert names[0] == "stop_run+0x4e" and names[1] == "! (smp_send_stop+0x3c)"
        text = plain(screen.query_one("#frame-code", Static))
        assert "code at smp_send_stop+0x3c (return address)" in text
        assert "!! smp_send_stop+0x38  lpswe 0xb8(%r15)" in text
        assert "=> smp_send_stop+0x3c  brasl %r14" in text
        assert "no call ends at this return address" in text


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
