"""Rough edges 3, 4, 5, 7 (issue 15): frame marks agree with the verdict in every output;
checks are named by what they test, the failing one first; names are cut, numbers never;
the palette puts tasks before memory. Truth: the training scenarios' expected verdicts
(explorer/training/scenarios.py), built as small dumps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.tui.commands import rank
from explorer.tui.fit import fit_symbol


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name in ("preempted", "rethook-lost"):
        folder = tmp_path_factory.mktemp(name)
        assert main(["scenarios", "build", name, "-o", str(folder), "--force"]) == 0
        out[name] = folder / "vmcore"
    return out


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def _table(md: str) -> dict[int, list[str]]:
    rows = {}
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 6 and cells[0].isdigit():
            rows[int(cells[0])] = cells
    return rows


def test_markdown_marks_agree_with_the_verdict(
    scenarios: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run(capsys, "bt", str(scenarios["preempted"]), "--pid", "100", "--markdown", "--steps")
    rows = _table(out)
    assert rows[4][4] == "**no** (`crossed_pt_regs`)"  # the verdict's frame
    assert all(rows[i][4] == "yes" for i in range(4))
    assert all(rows[i][4] == "not checked" for i in rows if i > 4)
    assert "**Verdict: unreliable** (`crossed_pt_regs`, frame #4)" in out
    assert "pt_regs at frame #4:" in out and "KERNEL-MODE pt_regs at 0x" in out
    assert "pt_regs at the top of the stack (final):" in out
    assert "Checks of every step:" in out and "[  ok] on_known_stack" in out
    lost = _run(capsys, "bt", str(scenarios["rethook-lost"]), "--pid", "100", "--markdown")
    rows = _table(lost)
    assert rows[3][3] == "`(0x0)`" and rows[3][4] == "**no** (`return_address_not_text`)"


def test_text_and_steps_show_the_failing_frame(
    scenarios: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = _run(capsys, "bt", str(scenarios["preempted"]), "--pid", "100", "--steps")
    frame4 = next(line for line in out.splitlines() if line.startswith(" #4 "))
    assert "(pipe_read+0x1a0" in frame4 and frame4.endswith("<- UNRELIABLE: crossed_pt_regs")
    block = out.split(frame4)[1].split(" #5 ")[0]
    assert "        [FAIL] crossed_pt_regs: Frame #4 comes from the pt_regs" in block
    doc = json.loads(_run(capsys, "bt", str(scenarios["preempted"]), "--pid", "100", "--json"))
    assert [f["mark"] for f in doc["frames"]][:6] == [
        "yes",
        "yes",
        "yes",
        "yes",
        "no",
        "not checked",
    ]
    assert doc["frames"][4]["failing_rule"] == "crossed_pt_regs"


def test_fit_symbol_never_cuts_numbers() -> None:
    assert fit_symbol("update_process_times+0xa4/0x1b0", 40) == "update_process_times+0xa4/0x1b0"
    assert fit_symbol("update_process_times+0xa4/0x1b0", 25) == "update_process_times+0xa4"
    assert fit_symbol("update_process_times+0xa4/0x1b0", 20) == "update_process…+0xa4"
    assert fit_symbol("(update_process_times+0xa4)", 20) == "(update_proce…+0xa4)"
    assert fit_symbol("schedule+0x3e", 4) == "s…+0x3e"  # wider than asked: the number whole


def test_palette_puts_tasks_before_memory() -> None:
    def noop() -> None:
        return None

    commands = [
        ("Toggle unreliable only", noop, ""),
        ("Go to 158 in memory", noop, "0x158"),
        ("Open task 158 sh", noop, ""),
        ("Open task 159 dd", noop, ""),
        ("Open task 1 init", noop, ""),
    ]

    def match(query: str):  # a fuzzy matcher that likes exact text most, as Textual's does
        def score(name: str) -> float:
            return 1.0 if query in name else (0.5 if all(c in name for c in query) else 0.0)

        return score

    assert rank(commands, "158", match("158"))[0][1] == "Open task 158 sh"
    assert [h[1] for h in rank(commands, "158", match("158"))][-1] == "Go to 158 in memory"
    assert rank(commands, "dd", match("dd"))[0][1] == "Open task 159 dd"


def test_inspector_r14_keeps_its_offset() -> None:
    from types import SimpleNamespace

    from explorer.tui.widgets.inspector import frame_fields

    frame = SimpleNamespace(
        address=0x1000, empty=(0,) * 9, gprs=(0,) * 8 + (0x3FFFE9697B8, 0x2000), back_chain=0
    )
    step = SimpleNamespace(frame=frame)

    def symbolize(_: int) -> str:
        return "update_process_times+0xa4/0x1b0"

    wide = frame_fields(step, None, symbolize)  # type: ignore[arg-type]
    narrow = frame_fields(step, None, symbolize, width=50)  # type: ignore[arg-type]
    (wide_r14,) = [line.plain for line in wide if " r14 " in line.plain]
    (narrow_r14,) = [line.plain for line in narrow if " r14 " in line.plain]
    assert wide_r14.endswith("← update_process_times+0xa4")
    shown = narrow_r14.split("← ")[1]
    assert shown.endswith("…+0xa4") and len(shown) <= 50 - 34
