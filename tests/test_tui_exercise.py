"""Exercise mode: verdicts hidden until the trainee names the failing frame and rule.

Scenario dumps are built in the test; the Pilot drives the answer form like a user (the
frame typed, the rule chosen in the Select) and looks at what the screen shows.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot
from textual.widgets import Button, Input, OptionList, Select

from explorer import cli
from explorer.model.kernel import Options
from explorer.training import scenarios
from explorer.training.exercise import PLACEHOLDER, Guess, judge, parse_frame
from explorer.tui.app import BackchainApp
from explorer.tui.screens.answer import AnswerForm
from explorer.tui.screens.prompt import Confirm
from explorer.tui.screens.scenario import DebriefScreen
from explorer.tui.screens.stack import StackScreen
from explorer.tui.widgets.checks import ChecksPane
from explorer.tui.widgets.tasks import TaskTable
from explorer.tui.widgets.verdict import VerdictBar
from explorer.walk.reliable import Verdict
from tests.helpers.tui import SIZE, answer, cells, plain, sync, wait_checked


@pytest.fixture(scope="module")
def scenario_dumps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The dumps of two scenarios, each in a folder named after it (stable labels)."""
    base = tmp_path_factory.mktemp("exercise")
    return {name: scenarios.build(name, base / name) for name in ("misaligned-sp", "syscall-sleep")}


def exercise_app(dump: Path, scenario: str, export_dir: Path | None = None) -> BackchainApp:
    """An app on a scenario dump, in exercise mode, animations off."""
    app = BackchainApp(str(dump), Options(), export_dir=str(export_dir or "."), scenario=scenario)
    app.animation_level = "none"
    return app


def screen_text(app: BackchainApp) -> str:
    """Every character the current screen shows."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def test_judge_hints() -> None:
    bad = Verdict(False, "unwind_error", "sp_misaligned", 2, "")
    assert judge(bad, Guess(2, "unwind_error", "sp_misaligned")).right
    assert "later" in judge(bad, Guess(1, "unwind_error", "sp_misaligned")).hint
    assert "earlier" in judge(bad, Guess(3, "crossed_pt_regs")).hint
    assert judge(bad, Guess(2, "crossed_pt_regs")).hint == "right frame, wrong rule"
    assert "another kind" in judge(bad, Guess(2, "unwind_error", "sp_outside_stack")).hint
    assert not judge(bad, Guess(None, "reliable")).right
    # a running task: task_running is the answer, whatever the frame
    as_current = Verdict(False, "crossed_pt_regs", None, 1, "")
    running = Verdict(False, "task_running", None, None, "", as_current=as_current)
    assert judge(running, Guess(None, "task_running")).right
    assert judge(running, Guess(4, "task_running")).right
    assert "before it looks" in judge(running, Guess(1, "crossed_pt_regs")).hint
    good = Verdict(True, None, None, None, "")
    assert judge(good, Guess(None, "reliable")).right
    assert "nothing wrong at frame #0" in judge(good, Guess(0, "crossed_pt_regs")).hint
    assert parse_frame("#2", 3) == 2 and parse_frame("end", 3) == 2
    assert parse_frame("none", 3) is None and parse_frame("", 3) is None
    with pytest.raises(ValueError, match=r"#0..#2"):
        parse_frame("7", 3)
    # a frame not walked yet is refused without telling the walk's length
    with pytest.raises(ValueError, match="walk to frame #7 first") as refused:
        parse_frame("7", 9, seen=2)
    assert "9" not in str(refused.value) and "#8" not in str(refused.value)
    assert parse_frame("end", 9, seen=2) == 8


@sync
async def test_exercise_misaligned_sp(scenario_dumps: dict[str, Path], tmp_path: Path) -> None:
    app = exercise_app(scenario_dumps["misaligned-sp"], "misaligned-sp", tmp_path)
    notes: list[str] = []
    notify = app.notify
    app.notify = lambda message, **kw: notes.append(message) or notify(message, **kw)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        stack = app.screen
        assert isinstance(stack, StackScreen) and stack.shown_task.pid == 100
        assert not any("differ" in n for n in notes)  # the tool agrees with the scenario
        await pilot.press("r")
        # hidden: the placeholder, and no verdict anywhere on the screen
        text = screen_text(app)
        assert PLACEHOLDER in plain(stack.query_one(VerdictBar))
        assert PLACEHOLDER in plain(stack.query_one(ChecksPane))
        assert "RELIABLE" not in text and "sp_misaligned" not in text
        assert stack.query_one(ChecksPane).failing is None
        await pilot.press("x")  # the export would tell the answer
        assert not list(tmp_path.iterdir())
        # wrong guesses: hints, still hidden
        await answer(pilot, "1", "unwind_error", "sp_misaligned")
        assert app.screen is stack
        assert "right rule, but the failing frame is later" in plain(stack.query_one(VerdictBar))
        await answer(pilot, "2", "crossed_pt_regs")
        assert "right frame, wrong rule" in plain(stack.query_one(VerdictBar))
        assert "UNRELIABLE" not in screen_text(app)
        # the right answer: the debriefing, then the verdict and the failing check
        await answer(pilot, "2", "unwind_error", "sp_misaligned")
        assert isinstance(app.screen, DebriefScreen)
        story = scenarios.get("misaligned-sp").story
        assert story[:40] in app.screen.markdown and "Right:" in app.screen.markdown
        await pilot.press("escape")
        assert app.screen is stack
        verdict = plain(stack.query_one(VerdictBar))
        assert verdict.startswith("UNRELIABLE: unwind_error/sp_misaligned at frame #2")
        pane = stack.query_one(ChecksPane)
        assert pane.failing == "sp_aligned" and "✗ sp_aligned" in plain(pane)
        # the export: the scenario's title and story first; the notification names the file
        await pilot.press("x")  # the export folder, a name the tool chose
        await pilot.pause()
        path = tmp_path / "backchain-misaligned-sp-100-sleep.md"
        exported = path.read_text()
        assert exported.startswith("## Scenario misaligned-sp: A back chain that is not 8-byte")
        assert story in exported and "### Stack of sleep (pid 100" in exported
        assert any(str(path) in n for n in notes)
        # the overview shows this verdict now, the others stay hidden
        await pilot.press("escape")
        table = app.overview.query_one(TaskTable)
        verdicts = {cells(table, r)[0]: cells(table, r)[4] for r in range(table.row_count)}
        assert verdicts["100"] == "unwind_error/sp_misaligned #2"
        assert {v for pid, v in verdicts.items() if pid != "100"} == {"?"}
        assert "1 revealed" in plain(app.overview.query_one("#summary"))


@sync
async def test_exercise_reliable_and_reveal(scenario_dumps: dict[str, Path]) -> None:
    app = exercise_app(scenario_dumps["syscall-sleep"], "syscall-sleep")
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        stack = app.screen
        assert isinstance(stack, StackScreen)
        await answer(pilot, "3", "unwind_error", "sp_outside_stack")  # not walked yet
        assert isinstance(app.screen, AnswerForm)
        assert "walk to frame #3 first" in plain(app.screen.query_one("#answer-error"))
        await pilot.press("escape", "r")
        await answer(pilot, "3", "unwind_error", "sp_outside_stack")
        assert "nothing wrong at frame #3" in plain(stack.query_one(VerdictBar))
        assert "RELIABLE" not in screen_text(app)
        await pilot.press("R")  # give up: reveal, once confirmed
        assert isinstance(app.screen, Confirm)
        await pilot.press("enter")  # enter alone never confirms: Cancel has the focus
        assert app.screen is stack and stack.hidden
        await pilot.press("R", "y")
        assert isinstance(app.screen, DebriefScreen)
        assert "Revealed" in app.screen.markdown
        await pilot.press("escape")
        assert plain(stack.query_one(VerdictBar)).startswith("RELIABLE")
        await pilot.press("r")
        assert "✓ reliable" in plain(stack.query_one(ChecksPane))


def test_cli_exercise_flag_and_scenario_open(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[dict[str, Any]] = []

    def run(path: str, options: Options, **kwargs: Any) -> int:
        calls.append({"path": path, **kwargs})
        return 0

    monkeypatch.setattr("explorer.tui.app.run", run)
    monkeypatch.delenv("BACKCHAIN_CACHE", raising=False)  # it would win over XDG_CACHE_HOME
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    dump = tmp_path / "some.vmcore"  # the explorer starts only for an existing path
    dump.write_bytes(b"")
    assert cli.main([str(dump), "--exercise"]) == 0
    assert calls[-1] == {"path": str(dump), "exercise": True, "scenario": None, "results": None}
    args = cli.build_tui_parser().parse_args(["some.vmcore"])
    assert isinstance(args, argparse.Namespace) and not args.exercise
    assert cli.main(["scenarios", "open", "misaligned-sp"]) == 0
    assert calls[-1]["scenario"] == "misaligned-sp" and calls[-1]["exercise"]
    assert calls[-1]["path"].endswith("misaligned-sp/vmcore")
    results = str(tmp_path / "r.jsonl")
    assert cli.main(["scenarios", "open", "--only", "preempted", "--results", results]) == 0
    assert calls[-1]["path"] is None and calls[-1]["results"] == results
    assert [s.name for s in calls[-1]["picker"]] == ["preempted"]


async def check(pilot: Pilot[None], form: AnswerForm) -> None:
    """Press Check (the button itself: a click may land where an error line just moved it)."""
    form.query_one("#answer-check", Button).press()
    await pilot.pause()


@sync
async def test_the_answer_form_cannot_contradict_itself(
    scenario_dumps: dict[str, Path],
) -> None:
    """Issue 23 item 4: no rule is chosen for the trainee; reliable takes no frame; any
    other rule needs one; enter moves from field to field; keys typed in a burst apply in
    order (a backspace, then a digit, in a field holding 3: the browser test's lost frame)."""
    app = exercise_app(scenario_dumps["misaligned-sp"], "misaligned-sp")
    async with app.run_test(size=SIZE) as pilot:
        await wait_checked(app, pilot)
        stack = app.screen
        assert isinstance(stack, StackScreen)
        await pilot.press("r", "a")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, AnswerForm)
        assert form.query_one("#answer-rule", Select).value is Select.NULL
        assert not form.query_one("#answer-frame").display  # no rule yet: no frame either
        await check(pilot, form)
        assert "choose the rule" in plain(form.query_one("#answer-error"))
        # enter: the list; down: reliable; enter: chosen, and no frame to name: on to Check
        await pilot.press("enter", "down", "enter")
        await pilot.pause()
        assert not form.query_one("#answer-frame").display
        assert app.focused is form.query_one("#answer-check")
        # unwind_error instead: the frame and the kind appear, the frame is needed
        form.query_one("#answer-rule", Select).focus()
        await pilot.press("enter")  # the list opens (where its highlight starts varies)
        await pilot.pause()
        overlay = app.focused
        assert isinstance(overlay, OptionList)
        prompts = [str(overlay.get_option_at_index(i).prompt) for i in range(overlay.option_count)]
        overlay.highlighted = prompts.index("unwind_error")
        await pilot.press("enter")  # chosen: on to its frame
        await pilot.pause()
        assert form.rule == "unwind_error" and app.focused is form.query_one("#answer-frame")
        assert form.query_one("#answer-kind").display
        await check(pilot, form)
        assert "unwind_error fails at a frame" in plain(form.query_one("#answer-error"))
        field = form.query_one("#answer-frame", Input)
        field.value = "3"
        field.focus()
        await pilot.pause()
        # keys in one burst: nothing awaited between them
        for key in ("backspace", "2"):  # as the terminal driver delivers them
            app.post_message(events.Key(key, "2" if key == "2" else None))
        await pilot.pause()
        assert field.value == "2"
        await pilot.press("enter")  # on to the kind
        assert app.focused is form.query_one("#answer-kind")
        await check(pilot, form)
        assert "choose the kind" in plain(form.query_one("#answer-error"))
        form.query_one("#answer-kind", Select).value = "sp_misaligned"
        await pilot.pause()
        await check(pilot, form)
        await pilot.pause()
        assert isinstance(app.screen, DebriefScreen)
        assert app.exercise is not None
        assert app.exercise.guesses[stack.shown_task.address] == [
            Guess(2, "unwind_error", "sp_misaligned")
        ]
