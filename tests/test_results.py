"""Exercise results: the JSON lines an exercise appends, and ``scenarios results``' summary.

The TUI tests answer scenario dumps whose verdicts the scenarios themselves define
(explorer/training/scenarios.py, checked against the tool by tests/test_scenarios.py); the summary
tests count a hand-written file by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.kernel import Options
from explorer.training import results, scenarios
from explorer.tui.app import BackchainApp
from explorer.tui.screens.picker import ScenarioPicker
from explorer.tui.screens.prompt import Prompt
from explorer.tui.screens.stack import StackScreen
from tests.helpers.tui import SIZE, answer, sync, wait_checked

ROOT = Path(__file__).resolve().parent.parent


def _attempt(
    trainee: str,
    scenario: str,
    answer: str | None,
    correct: bool,
    hints: int,
    revealed: bool = False,
    session: str = "s1",
) -> results.Attempt:
    return results.Attempt(
        session,
        trainee,
        scenario,
        100,
        answer,
        correct,
        hints,
        "2026-11-27T17:00:00+00:00",
        1.0,
        revealed,
    )


#: Ada solves preempted on her 2nd answer and chain-loop at once; Bob reveals preempted
#: after one wrong answer, then answers right in another tab (too late: it stays revealed).
CLASS = [
    _attempt("Ada", "preempted", "reliable at #3", False, 0),
    _attempt("Bob", "preempted", "crossed_pt_regs at #3", False, 0, session="s2"),
    _attempt("Ada", "preempted", "crossed_pt_regs at #4", True, 1),
    _attempt("Bob", "preempted", None, False, 1, revealed=True, session="s2"),
    _attempt("Ada", "chain-loop", "unwind_error/sp_not_increasing at #3", True, 0),
    _attempt("Bob", "preempted", "crossed_pt_regs at #4", True, 0, session="s3"),
]


def test_summary_counts() -> None:
    """Trainees are a name and a session: Bob's second tab is another trainee (issue 23
    item 9: two who type the same name never merge); offered scenarios nobody tried are
    listed."""
    per_scenario, per_trainee = results.summarize(CLASS, ["preempted", "chain-loop", "too-deep"])
    assert per_scenario == [
        results.ScenarioSummary("preempted", 3, 2, 1, 1, 4, 1.5),
        results.ScenarioSummary("chain-loop", 1, 1, 1, 0, 1, 1.0),
        results.ScenarioSummary("too-deep", 0, 0, 0, 0, 0, None),
    ]
    assert per_trainee == [
        results.TraineeSummary("Ada", "s1", 2, 2, 0, 3, 1, 1),
        results.TraineeSummary("Bob", "s2", 1, 0, 1, 1, 1, 2),
        results.TraineeSummary("Bob", "s3", 1, 1, 0, 1, 0, 2),
    ]
    two_adas = [
        _attempt("Ada", "preempted", "crossed_pt_regs at #4", True, 0, session="aaaaaa1"),
        _attempt("Ada", "preempted", "reliable", False, 0, session="bbbbbb2"),
    ]
    ada1, ada2 = results.progress(two_adas)
    assert (ada1.who, ada1.solved, ada2.who, ada2.solved) == (
        "Ada · aaaaaa",
        True,
        "Ada · bbbbbb",
        False,
    )


def _write(path: Path, attempts: list[results.Attempt]) -> None:
    for a in attempts:
        results.append(str(path), a)


def test_results_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "r.jsonl"
    _write(path, CLASS)
    assert results.read(str(path)) == CLASS
    offered = ["--scenarios", "preempted,chain-loop,too-deep"]
    assert main(["scenarios", "results", str(path), *offered]) == 0
    out = capsys.readouterr().out
    assert "5 answers, 1 reveals, 3 trainees, 3 sessions; 1 of 3 scenarios not tried" in out
    rows = [line.split() for line in out.splitlines()]
    number = {name: str(scenarios.number(name)) for name in ("preempted", "chain-loop")}
    assert [number["preempted"], "preempted", "3", "2", "1", "1", "4", "1.5"] in rows
    assert [number["chain-loop"], "chain-loop", "1", "1", "1", "0", "1", "1"] in rows
    too_deep = str(scenarios.number("too-deep"))
    assert [too_deep, "too-deep", "0", "-", "-", "-", "-", "not", "tried"] in rows
    assert ["Ada", "·", "s1", "2", "2", "0", "3", "1", "1"] in rows
    assert ["Bob", "·", "s2", "1", "0", "1", "1", "1", "2"] in rows
    assert "reliable at #3 ✗; crossed_pt_regs at #4 ✓" in out  # both of Ada's answers
    assert main(["scenarios", "results", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["answers"] == 5 and doc["reveals"] == 1 and doc["sessions"] == 3
    assert len(doc["scenarios"]) == len(scenarios.CATALOG)  # the whole catalog by default
    assert doc["scenarios"][scenarios.number("preempted") - 1] == {
        "scenario": "preempted",
        "trainees": 3,
        "solved": 2,
        "first_try": 1,
        "revealed": 1,
        "answers": 4,
        "mean_answers_to_solve": 1.5,
    }
    assert doc["trainees"][1]["label"] == "Bob · s2"
    assert main(["scenarios", "results", str(path), "--markdown", *offered]) == 0
    md = capsys.readouterr().out
    assert f"| {number['preempted']} preempted | 3 | 2 | 1 | 1 | 4 | 1.5 |" in md
    assert "| Bob · s2 | 1 | 0 | 1 | 1 | 1 | 2 |" in md and "## Per trainee" in md
    assert f"| {too_deep} too-deep | 0 | - | - | - | - | not tried |" in md


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"session": "a"}\n', "line 1: not a results line (no 'trainee')"),
        ("\n" + "not json\n", "line 2: not a results line"),
        ("[1, 2]\n", "line 1: not a results line (not a JSON object)"),
        ('{"x": "' + "a" * 5000 + '"}\n', "line 1: too long"),
    ],
)
def test_bad_results_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(content)
    run = subprocess.run(
        [sys.executable, "-m", "explorer", "scenarios", "results", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith(f"backchain: {path}: {message}")
    assert run.stderr.count("\n") == 1


def test_wrong_type_is_refused() -> None:
    doc = _attempt("Ada", "preempted", "x", True, 0).to_json()
    for key, bad in (("pid", "100"), ("hints", True), ("correct", 1), ("answer", 3)):
        with pytest.raises(ValueError, match=key):
            results.Attempt.from_json({**doc, key: bad})


def test_appends_from_many_processes_stay_whole(tmp_path: Path) -> None:
    """Sessions are separate processes appending to one file: no torn lines."""
    path = tmp_path / "r.jsonl"
    code = (
        "import sys; from explorer.training import results as r\n"
        "a = r.Attempt(sys.argv[2], 'T' * 200, 'preempted', 100, 'x' * 300, False, 0, 't', 0.0)\n"
        "for _ in range(200): r.append(sys.argv[1], a)\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), f"s{i}"], cwd=ROOT)
        for i in range(4)
    ]
    assert all(p.wait(60) == 0 for p in procs)
    attempts = results.read(str(path))
    assert len(attempts) == 800
    assert {a.session for a in attempts} == {"s0", "s1", "s2", "s3"}


@pytest.fixture(scope="module")
def misaligned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scenarios.build("misaligned-sp", tmp_path_factory.mktemp("misaligned-sp"))


@sync
async def test_exercise_appends_answers_and_the_give_up(misaligned: Path, tmp_path: Path) -> None:
    """The trainee's name is asked first; each answer is a line, judged against the
    scenario's verdict (unwind_error/sp_misaligned at #2)."""
    path = tmp_path / "results.jsonl"
    os.environ[results.ENV_SESSION] = "sess-1234567"
    try:
        app = BackchainApp(str(misaligned), Options(), scenario="misaligned-sp", results=str(path))
    finally:
        del os.environ[results.ENV_SESSION]
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        assert isinstance(app.screen, Prompt)
        number = scenarios.number("misaligned-sp")
        total = len(scenarios.CATALOG)
        assert app.title == (
            f"exercise {number} of {total} · kernel 6.1.0-synthetic-s390x · rules current"
        )
        await pilot.press(*"Grace", "enter")
        await wait_checked(app, pilot)
        assert isinstance(app.screen, StackScreen)
        await pilot.press("r")  # the whole walk: every frame may be named
        await answer(pilot, "1", "unwind_error", "sp_misaligned")
        await answer(pilot, "2", "crossed_pt_regs")
        await pilot.press("a")
        await pilot.pause()
        assert "hint after your previous answer: right frame, wrong rule" in str(
            app.screen.query_one("#answer-hint").render()
        )
        await pilot.press("escape")
        await pilot.press("R", "y")  # gives up, confirmed
        await pilot.pause()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(d["answer"], d["correct"], d["hints"], d["revealed"]) for d in lines] == [
        ("unwind_error/sp_misaligned at #1", False, 0, False),
        ("crossed_pt_regs at #2", False, 1, False),
        (None, False, 2, True),
    ]
    assert {(d["session"], d["trainee"], d["scenario"], d["pid"]) for d in lines} == {
        ("sess-1234567", "Grace", "misaligned-sp", scenarios.get("misaligned-sp").pid)
    }


@sync
async def test_picker_opens_a_scenario_and_comes_back(tmp_path: Path) -> None:
    os.environ["BACKCHAIN_CACHE"] = str(tmp_path / "cache")
    try:
        offered = [scenarios.get("chain-loop"), scenarios.get("misaligned-sp")]
        app = BackchainApp(None, Options(), picker=offered, results=str(tmp_path / "r.jsonl"))
        app.animation_level = "none"
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("enter")  # no name: anonymous
            assert isinstance(app.screen, ScenarioPicker)
            await pilot.press("down", "enter")
            for _ in range(100):
                await pilot.pause(0.05)
                if isinstance(app.screen, StackScreen):
                    break
            await wait_checked(app, pilot)
            number = scenarios.number("misaligned-sp")
            kernel = "kernel 6.1.0-synthetic-s390x · rules current"
            assert (
                app.title == f"exercise {number} of {len(scenarios.CATALOG)} · {kernel}"
            )  # catalog numbers
            assert isinstance(app.screen, StackScreen) and app.screen.shown_task.pid == 100
            await pilot.press("r")
            await answer(pilot, "2", "unwind_error", "sp_misaligned")
            assert app.title == f"exercise {number} of {len(scenarios.CATALOG)}: misaligned-sp"
            await pilot.press("escape", "escape", "o")
            await pilot.pause()
            assert isinstance(app.screen, ScenarioPicker) and len(app.screen_stack) == 2
    finally:
        del os.environ["BACKCHAIN_CACHE"]
    (line,) = results.read(str(tmp_path / "r.jsonl"))
    assert (line.trainee, line.scenario, line.answer, line.correct) == (
        "anonymous",
        "misaligned-sp",
        "unwind_error/sp_misaligned at #2",
        True,
    )


@sync
async def test_exercise_map_names_the_crossed_region_pt_regs(tmp_path: Path) -> None:
    """preempted crosses the timer interrupt's pt_regs (frame #4 comes from them): the map
    calls that region "pt_regs" (the kernel's word), never a rule name, while hidden."""
    from explorer.tui.widgets.regions import RegionsMap

    dump = scenarios.build("preempted", tmp_path / "preempted")
    app = BackchainApp(str(dump), Options(), scenario="preempted")
    app.animation_level = "none"
    async with app.run_test(size=(160, 50)) as pilot:
        await wait_checked(app, pilot)
        stack = app.screen
        assert isinstance(stack, StackScreen) and stack.hidden
        regions = stack.query_one(RegionsMap)
        assert [s.label for s in regions.slices] == ["#0 __schedule"]  # unfolds with the walk
        await pilot.press(*"nnnn")
        labels = [s.label for s in regions.slices if s.index == -1]
        assert labels == ["pt_regs"] and len(regions.slices) == 6
        await pilot.press("r")
        labels = [s.label for s in regions.slices if s.index == -1]
        assert labels == ["pt_regs", "final pt_regs"]
        regs = stack.analysis.walk.steps[4].regs
        assert regs is not None
        (crossed,) = [s for s in stack.query_one(RegionsMap).slices if s.label == "pt_regs"]
        assert crossed.begin == regs.address == 0x37F0002B848  # the debriefing's address


def test_too_many_lines_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "r.jsonl"
    _write(path, CLASS)
    monkeypatch.setattr(results, "MAX_ATTEMPTS", 5)
    with pytest.raises(results.ResultsError, match="more than 5 answers"):
        results.read(str(path))
