"""The walk pane's CFI toggle (f, issue 25): the DWARF CFI unwinder's frame beside each
back-chain frame, the pairing ``bt --cfi`` prints, on real samples with their -dbg vmlinux
(skipped, saying why, without it); without a vmlinux the pane says why there is none.

The truth is ``bt --cfi --json`` (whose CFI frames tests/test_cfi.py checks against drgn's):
every frame the pane shows, and where it shows none, must be that command's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from explorer.cli import main
from explorer.model.kernel import Options
from explorer.tui.app import BackchainApp
from explorer.tui.fit import short_symbol
from explorer.tui.widgets.checks import ChecksPane
from explorer.tui.widgets.walk import WalkTable
from tests.helpers import oracles
from tests.helpers.tui import BUSY, PANIC, SIZE, cells, open_pid, plain, wait_checked

NARROW = (80, 24)


def _joined(text: str) -> str:
    """``text`` without its spaces and line breaks (the checks pane wraps, within names)."""
    return "".join(text.split())


def _pairing(cfi: Any, steps: list[tuple[int, int]]) -> list[int | None]:
    """Which of bt's CFI frames is beside each back-chain step, as bt pairs them: by
    position (``bt --cfi`` side by side), or, where the JSON lists its ``differences``,
    those pairs and every other step beside the CFI frame equal to it."""
    frames = [(int(f["sp"], 16), int(f["pc"], 16)) for f in cfi["frames"]]
    if "differences" not in cfi:
        return [i if i < len(frames) else None for i in range(len(steps))]
    out: list[int | None] = [frames.index(s) if s in frames else None for s in steps]
    for d in cfi["differences"]:
        if d["back_chain"] is not None:
            out[d["back_chain"]] = d["cfi"]
    return out


def _bt_cfi(dump: Path, vmlinux: Path, pid: int, capsys: pytest.CaptureFixture[str]) -> Any:
    capsys.readouterr()
    argv = ["bt", str(dump), "--vmlinux", str(vmlinux), "--pid", str(pid), "--cfi", "--json"]
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


async def _shown(dump: Path, vmlinux: Path | None, pid: int, size: tuple[int, int]) -> Any:
    """Open ``pid``'s stack, run the walk, press f; the CFI column's cells, each row's CFI
    lines in the checks pane, and the walk pane's subtitle."""
    app = BackchainApp(str(dump), Options(vmlinux=str(vmlinux) if vmlinux else None))
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        await wait_checked(app, pilot)
        stack = await open_pid(app, pilot, pid)
        await pilot.press("r", "f")
        await pilot.pause()
        walk = stack.query_one(WalkTable)
        keys = [str(c.key.value) for c in walk.ordered_columns]
        column = keys.index("cfi") if "cfi" in keys else None
        shown, notes = [], []
        for row in range(walk.row_count):
            if column is not None:
                shown.append(cells(walk, row)[column])
            stack.show_row(row)
            notes.append(plain(stack.query_one(ChecksPane)))
        subtitle = str(walk.border_subtitle)
        await pilot.press("f")  # hides the column again
        await pilot.pause()
        gone = "cfi" not in [str(c.key.value) for c in walk.ordered_columns]
        return shown, notes, subtitle, gone, stack.analysis


@pytest.mark.parametrize(
    ("dump", "pid", "size"),
    [(PANIC, 1, SIZE), (PANIC, 1, NARROW), (BUSY, 1, SIZE), (BUSY, 158, NARROW)],
    ids=["panic-init-120", "panic-init-80", "busy-init-120", "busy-sh-80"],
)
def test_cfi_frames_shown_are_bt_cfi_json(
    dump: Path, pid: int, size: tuple[int, int], capsys: pytest.CaptureFixture[str]
) -> None:
    """Row by row: ``same`` where bt has a CFI frame equal to the back chain's (sp and pc),
    else the paired CFI frame's function (cut only by "…", its sp in the checks pane), or
    ``–`` where CFI has none beside it; every CFI frame bt prints is shown once (beside a
    frame or, if only CFI has it, at the end); the count that agree and why CFI stopped,
    as bt says them. Independent of how the comparison pairs frames that differ."""
    vmlinux = oracles.debug_vmlinux_of(dump.parent.name)
    doc = _bt_cfi(dump, vmlinux, pid, capsys)
    cfi = doc["cfi"]
    shown, notes, subtitle, gone, a = asyncio.run(_shown(dump, vmlinux, pid, size))
    steps = a.walk.steps
    assert len(shown) == len(steps) + 1  # every frame and the end
    assert f"CFI: {cfi['agree']}/{len(steps)} agree" in subtitle
    frames = [
        (int(f["sp"], 16), int(f["pc"], 16), short_symbol(f["symbol"])) for f in cfi["frames"]
    ]
    paired = _pairing(cfi, [(s.sp, s.ip) for s in steps])
    for i, s in enumerate(steps):
        cell, note = shown[i], _joined(notes[i])
        j = paired[i]
        if j is None:  # no CFI frame beside this one
            assert cell == "–", (i, cell)
            assert _joined(f"CFI has no frame beside #{i}") in note
            continue
        sp, pc, name = frames[j]
        if (sp, pc) == (s.sp, s.ip):
            assert cell == "same", (i, cell)
            assert _joined(f"frame #{i} is the same: 0x{sp:x} {name}") in note
        else:  # another frame: its function in the cell (cut only by "…"), sp in the pane
            body = cell.removeprefix("≠ ")
            assert cell.startswith("≠ ") and body.endswith("+" + name.partition("+")[2]), (i, cell)
            assert name.startswith(body.partition("+")[0].rstrip("…")), (i, cell, name)
            assert _joined(f"frame #{i} differs: CFI has 0x{sp:x} {name}") in note, (i, note)
    end = _joined(notes[-1])
    only = [f for j, f in enumerate(frames) if j not in paired]  # no step beside them
    assert shown[-1] == (f"+{len(only)}" if only else "")
    for sp, _, name in only:
        assert _joined(f"only CFI has: 0x{sp:x} {name}") in end
    assert _joined(f"CFI stopped: {cfi['end']}") in end
    assert _joined(f"{cfi['agree']} of {len(steps)} frames agree") in end
    assert gone


def test_panic_init_disagrees_where_the_r14_guess_is(capsys: pytest.CaptureFixture[str]) -> None:
    """The sample the test above checks has a disagreement to show: frame #1 is the back
    chain's r14 guess after an interrupted frame, which CFI steps over; frame #0 agrees."""
    vmlinux = oracles.debug_vmlinux_of(PANIC.parent.name)
    agree = _bt_cfi(PANIC, vmlinux, 1, capsys)["cfi"]["agree"]
    shown, _, subtitle, _, a = asyncio.run(_shown(PANIC, vmlinux, 1, SIZE))
    assert a.walk.steps[1].how == "r14_guess"
    assert shown[0] == "same" and shown[1] != "same"
    assert 0 < agree < len(a.walk.steps) and f"CFI: {agree}/14 agree" in subtitle


def test_without_a_vmlinux_the_pane_says_why() -> None:
    """No -dbg vmlinux (none beside the bundled sample): no column, no crash; the walk pane
    and the checks pane say what is missing and how to give it."""
    shown, notes, subtitle, gone, _ = asyncio.run(_shown(BUSY, None, 1, SIZE))
    assert shown == [] and gone
    assert "vmlinux" in subtitle and subtitle.startswith("f: no CFI")
    assert all("--vmlinuxFILE" in _joined(n) for n in notes)
