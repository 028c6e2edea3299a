"""Issue 21 item 4: livepatch exercises on the real livepatch samples, judged from the
kernel's own answer.

The truth is the guest's: ``facts.json`` ``livepatch.klp_debug_last_retry`` holds the kernel's
dynamic-debug ``klp_try_switch_task: COMM:PID is sleeping on function F`` lines of its last
retry (copied from the console, tests/test_klp_real.py checks that), and the order of its
``enabling patch`` lines. These tests check that backchain's replay agrees with that answer,
that the judge accepts it and refuses other tasks, causes and functions, and that nothing a
trainee sees before answering (the CLI's list and show, the explorer's title, situation,
task list, stack, footer, palette) names the blocking task or its cause.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from textual.command import CommandPalette

from explorer.cli import main
from explorer.livepatch.replay import Replay, replay
from explorer.livepatch.state import LivepatchState, read_livepatch
from explorer.model.kernel import Options
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.training import klp, scenarios
from explorer.training.klp import KlpGuess, KlpScenario, judge
from explorer.training.results import read
from explorer.tui.app import BackchainApp
from explorer.tui.screens.klp_answer import KlpAnswerForm
from explorer.tui.screens.livepatch import LivepatchScreen
from explorer.tui.screens.picker import ScenarioPicker
from explorer.tui.screens.prompt import Confirm
from explorer.tui.screens.scenario import DebriefScreen
from explorer.tui.screens.stack import StackScreen
from explorer.tui.widgets.tasks import TaskTable
from tests.helpers.tui import SIZE, cells, sync, wait_checked

EXERCISES = klp.catalog()
pytestmark = pytest.mark.skipif(not EXERCISES, reason="no real livepatch sample bundled")
BY_NAME = {s.name: s for s in EXERCISES}


@cache
def _state(name: str) -> tuple[LivepatchState, Replay | None]:
    s = BY_NAME[name]
    kernel = open_kernel(str(s.folder / "vmcore.zst"))
    state = read_livepatch(kernel)
    assert isinstance(state, LivepatchState)
    done = replay(kernel, state, find_tasks(kernel)) if state.transition_patch else None
    return state, done


def _console(s: KlpScenario) -> str:
    return (s.folder / "console.log").read_text(errors="replace")


# -- the expected answers are the kernel's ------------------------------------------------------
def test_all_three_samples_are_exercises() -> None:
    assert [s.sample for s in EXERCISES] == [
        "klp-6.12-stalled",
        "klp-6.12-reversed",
        "klp-6.12-stacked",
    ]
    # after the synthetic scenarios: their numbers stay
    assert [scenarios.number(s.name) for s in EXERCISES] == [
        len(scenarios.SCENARIOS) + i for i in (1, 2, 3)
    ]


@pytest.mark.parametrize("s", EXERCISES, ids=lambda s: s.name)
def test_the_answer_is_the_kernels_own_lines(s: KlpScenario) -> None:
    """Each expected blocker is a line the kernel printed on the console, and the facts'
    patch_state says that task has not switched."""
    facts = s.facts["livepatch"]
    console = _console(s)
    states = {e["pid"]: e["patch_state"] for e in facts["patch_state"]}
    for b in s.answer.blockers:
        assert f"livepatch: {b.line}" in console
        target = 1 if s.answer.direction == "patching" else 0
        assert states[b.pid] == 1 - target
    expected = {
        "livepatch-stalled": (
            "patching",
            [(43, "kworker/1:1", "sleeping_on", "busymod_work_func")],
        ),
        "livepatch-reversed": (
            "unpatching",
            [(133, "bcklp_new", "sleeping_on", "bcklp_sleep_func")],
        ),
        "livepatch-stacked": (None, []),
    }[s.name]
    assert (
        s.answer.direction,
        [(b.pid, b.comm, b.cause, b.function) for b in s.answer.blockers],
    ) == expected


@pytest.mark.parametrize("s", EXERCISES, ids=lambda s: s.name)
def test_our_replay_agrees_with_the_kernels_answer(s: KlpScenario) -> None:
    state, result = _state(s.name)
    if not s.answer.blockers:
        assert result is None and state.transition_patch is None
        # whose code runs: the top of the func_stack is the patch the kernel enabled last
        assert s.answer.top == ("cmdline_proc_show", "livepatch_sample")
        (ops,) = [o for o in state.ops if o.func_stack]
        top_patch, top_func = state.funcs_by_address[ops.func_stack[0]]
        assert (top_func.old_name, top_patch.name) == s.answer.top
        assert len(ops.func_stack) == 2
        # the guest's own cat /proc/cmdline: livepatch_sample's text (test_klp_livepatch's
        # would start with its module name)
        assert s.facts["livepatch"]["cmdline"] == "this has been live patched"
        return
    assert result is not None
    assert result.patch.name == s.answer.patch
    assert [f"klp_try_switch_task: {d.message}" for d in result.blocking] == list(
        s.answer.kernel_lines
    )
    for d, b in zip(result.blocking, s.answer.blockers, strict=True):
        assert (d.task.pid, d.cause) == (b.pid, b.cause)
        assert d.avoided is None or d.avoided.func.old_name == b.function


# -- the judge ----------------------------------------------------------------------------------
@pytest.mark.parametrize("s", EXERCISES, ids=lambda s: s.name)
def test_the_judge_accepts_the_kernels_answer_and_nothing_else(s: KlpScenario) -> None:
    a = s.answer
    if not a.blockers:
        assert a.top is not None
        assert judge(a, KlpGuess(None, patch=a.top[1])).right
        other = next(p for p in a.patches if p != a.top[1])
        wrong = [
            KlpGuess(None, patch=other),
            KlpGuess(None),
            KlpGuess(1, "sleeping_on", "cmdline_proc_show", a.top[1]),
            KlpGuess(1, "running", None, a.top[1]),
        ]
        assert not any(judge(a, g).right for g in wrong)
        return
    (b,) = a.blockers
    assert judge(a, KlpGuess(b.pid, b.cause, b.function)).right
    # typed as a frame shows it, or with parentheses: the same name
    assert judge(a, KlpGuess(b.pid, b.cause, f"{b.function}+0x56/0x80 [mod]")).right
    assert judge(a, KlpGuess(b.pid, b.cause, klp.function_name(f"{b.function}+0x56/0x80"))).right
    assert judge(a, KlpGuess(b.pid, b.cause, klp.function_name(f"{b.function}()"))).right
    wrong = {
        "another task": KlpGuess(1, b.cause, b.function),
        "no task": KlpGuess(None),
        "running": KlpGuess(b.pid, "running"),
        "unreliable": KlpGuess(b.pid, "unreliable"),
        "another function": KlpGuess(b.pid, b.cause, "msleep"),
        "the new code's name": KlpGuess(b.pid, b.cause, f"livepatch_{b.function}"),
    }
    hints = {}
    for what, g in wrong.items():
        j = judge(a, g)
        assert not j.right, what
        hints[what] = j.hint
    # a hint never tells the answer
    for hint in hints.values():
        assert str(b.pid) not in hint.replace("pid 1 ", "") and b.function not in hint
        assert "sleeping" not in hint and b.comm not in hint
    assert "name it patches" in hints["the new code's name"]


def test_pid_and_function_as_typed() -> None:
    assert klp.parse_pid(" 43 ") == 43 and klp.parse_pid("none") is None
    assert klp.parse_pid("") is None
    with pytest.raises(ValueError):
        klp.parse_pid("kworker")
    assert klp.function_name("busymod_work_func+0x56/0x80 [test_klp_callbacks_busy]") == (
        "busymod_work_func"
    )
    with pytest.raises(ValueError):
        klp.parse_line("livepatch: enabling patch 'x'")


# -- the command line: nothing told before the answer -------------------------------------------
def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def giveaways(s: KlpScenario) -> list[str]:
    """What must not be seen before the answer: each blocker's pid and comm as the kernel
    prints them, its cause in the kernel's words, the scenario's name and title."""
    out = [s.name, s.title]
    for b in s.answer.blockers:
        out += [f"{b.comm}:{b.pid}", f"pid {b.pid}", b.comm, "is sleeping on function"]
    out += [s.answer.top[1]] if s.answer.top else []
    return out


@pytest.mark.parametrize("s", EXERCISES, ids=lambda s: s.name)
def test_cli_show_and_list_tell_nothing(s: KlpScenario, capsys: pytest.CaptureFixture[str]) -> None:
    number = str(scenarios.number(s.name))
    code, out, _ = _run(capsys, "scenarios", "list")
    assert code == 0
    row = next(r for r in out.splitlines() if r.split()[0] == number)
    assert row.split() == [number, "current", "6.12.95-klp", "any"]
    code, out, _ = _run(capsys, "scenarios", "show", number)
    assert code == 0 and s.situation[:60] in out.replace("\n", " ")
    if s.answer.top is None:  # the stacked one names both patches: the question is which
        assert not [w for w in giveaways(s) if w in out], out
    else:
        assert s.name not in out and s.title not in out
    code, out, _ = _run(capsys, "scenarios", "show", number, "--json")
    doc = json.loads(out)
    assert doc["pid"] is None and "answer" not in doc and doc["kind"] == "livepatch"
    assert doc["exercise"] == int(number)
    code, out, _ = _run(capsys, "scenarios", "show", number, "--answer")
    for line in s.answer.kernel_lines:
        assert f"livepatch: {line}" in out
    code, out, _ = _run(capsys, "scenarios", "list", "--answers", "--json")
    doc = next(d for d in json.loads(out) if d["exercise"] == int(number))
    assert doc["answer"]["blockers"] == [
        {
            "pid": b.pid,
            "comm": b.comm,
            "cause": b.cause,
            "function": b.function,
            "kernel_line": b.line,
        }
        for b in s.answer.blockers
    ]


def test_cli_build_copies_the_dump(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = EXERCISES[0]
    number = str(scenarios.number(s.name))
    code, out, _ = _run(capsys, "scenarios", "build", number, "-o", str(tmp_path / "x"))
    assert code == 0 and "backchain klp" not in out  # the answer is not offered
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["System.map.zst", "vmcore.zst"]
    code, out, _ = _run(capsys, "ps", str(tmp_path / "x" / "vmcore.zst"), "--pid", "43")
    assert code == 0 and "kworker/1:1" in out


# -- the explorer ---------------------------------------------------------------------------------
def screen_text(app: BackchainApp) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


async def _fill(
    pilot: Any,
    app: BackchainApp,
    pid: str,
    cause: str | None,
    function: str = "",
    patch: str | None = None,
) -> None:
    form = app.screen
    assert isinstance(form, KlpAnswerForm)
    field = form.query_one("#klp-pid")
    field.value = pid
    await pilot.pause()
    if cause is not None:
        form.query_one("#klp-cause").value = cause
        await pilot.pause()
    if function:
        form.query_one("#klp-function").value = function
    if patch is not None:
        form.query_one("#klp-patch").value = patch
    await pilot.pause()
    form.query_one("#klp-check").press()
    await pilot.pause()
    await pilot.pause()


@sync
async def test_stalled_in_the_explorer_hides_then_judges(tmp_path: Path) -> None:
    """The stalled exercise: the overview stays (no task is singled out), every verdict is
    hidden, the livepatch screen is closed; wrong answers earn hints; the kernel's answer
    solves it, and then the verdicts, the kernel's line and the livepatch screen show."""
    s = BY_NAME["livepatch-stalled"]
    dump = s.build(tmp_path / "dump")
    results = tmp_path / "results.jsonl"
    app = BackchainApp(str(dump), Options(), scenario=s.name, results=str(results))
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press(*"Ada", "enter")
        await wait_checked(app, pilot, timeout=60)
        assert app.screen is app.overview
        number = scenarios.number(s.name)
        assert (
            app.title
            == f"exercise {number} of {len(scenarios.CATALOG)} · kernel 6.12.95-klp · rules current"
        )
        table = app.overview.query_one(TaskTable)
        rows = [" ".join(cells(table, r)) for r in range(table.row_count)]
        assert rows and all(" ? " in f" {r} " for r in rows)
        seen = {"overview": "\n".join(rows), "screen": screen_text(app)}
        footer = seen["screen"].splitlines()[-1]
        assert "Answer" in footer and "Reveal" in footer and "Story" in footer
        await pilot.press("k")  # closed: it names the blocking task
        await pilot.pause()
        assert not isinstance(app.screen, LivepatchScreen)
        await pilot.press("i")
        assert isinstance(app.screen, DebriefScreen)
        seen["situation"] = app.screen.markdown
        assert s.situation in app.screen.markdown
        await pilot.press("escape", "ctrl+p")
        await pilot.pause(0.3)
        assert isinstance(app.screen, CommandPalette)
        seen["palette"] = screen_text(app)
        await pilot.press("escape")
        await pilot.pause()
        # the blocking task's own stack: the walk unfolds, no verdict, no kernel line
        (task,) = app.session.scan.by_pid(43)
        app.open_task(task)
        await pilot.pause()
        stack = app.screen
        assert isinstance(stack, StackScreen) and stack.hidden
        await pilot.press("r")
        seen["stack"] = screen_text(app)
        assert "which task blocks the transition" in seen["stack"]
        for where, text in seen.items():
            low = text.lower()
            assert "blocks klp" not in low and "is sleeping on" not in low, where
            assert "kworker/1:1:43" not in text and s.name not in text, where
            if where == "situation":
                assert "kworker" not in low, where
        # answers: a wrong task, the wrong cause, then the kernel's answer
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, KlpAnswerForm)
        assert form.query_one("#klp-pid").value == "43"  # from the stack shown
        await _fill(pilot, app, "1", "sleeping_on", "busymod_work_func")
        assert app.screen is stack and stack.hidden
        await pilot.press("a")
        await _fill(pilot, app, "43", "running")
        assert stack.hidden
        assert "right task" in str(stack.query_one("#verdict").render())
        await pilot.press("a")
        await _fill(pilot, app, "43", "sleeping_on", "busymod_work_func")
        debrief = app.screen
        assert isinstance(debrief, DebriefScreen)
        assert "Right: pid 43 sleeping_on busymod_work_func (try 3)" in debrief.markdown
        assert "klp_try_switch_task: kworker/1:1:43 is sleeping on function busymod_work_func" in (
            debrief.markdown
        )
        assert debrief.markdown.count("kworker/1:1:43 is sleeping") == 2  # the kernel, our replay
        await pilot.press("escape")
        await pilot.pause()
        assert not stack.hidden and app.title.endswith(s.name)
        assert "is sleeping on function busymod_work_func" in str(
            stack.query_one("#verdict").render()
        )
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, LivepatchScreen)
    attempts = read(str(results))
    assert [(a.answer, a.correct) for a in attempts] == [
        ("pid 1 sleeping_on busymod_work_func", False),
        ("pid 43 running", False),
        ("pid 43 sleeping_on busymod_work_func", True),
    ]
    assert {a.scenario for a in attempts} == {s.name} and attempts[0].trainee == "Ada"


@sync
async def test_stacked_and_reveal_through_the_picker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The picker offers the livepatch exercises by number; the stacked one is answered
    from the overview ("none", and whose code runs), the reversed one revealed."""
    monkeypatch.setenv("BACKCHAIN_CACHE", str(tmp_path / "cache"))
    app = BackchainApp(None, Options(), picker=EXERCISES)
    app.animation_level = "none"
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, ScenarioPicker)
        text = screen_text(app)
        total = len(scenarios.CATALOG)
        for s in EXERCISES:
            assert f"exercise {scenarios.number(s.name)} of {total}  kernel 6.12.95-klp" in text
            assert s.name not in text
        await pilot.press("down", "down", "enter")  # the stacked one
        for _ in range(200):
            await pilot.pause(0.05)
            if app.exercise is not None and app.exercise.scenario is not None:
                break
        await wait_checked(app, pilot, timeout=60)
        stacked = BY_NAME["livepatch-stacked"]
        assert app.exercise.scenario is stacked
        await pilot.press("a")
        form = app.screen
        assert isinstance(form, KlpAnswerForm)
        assert form.query_one("#klp-pid").value == ""  # no task chosen for the trainee
        await _fill(pilot, app, "none", None, patch="test_klp_livepatch")
        assert app.screen is app.overview and app.exercise.klp_hint
        await pilot.press("a")
        await _fill(pilot, app, "none", None, patch="livepatch_sample")
        assert isinstance(app.screen, DebriefScreen)
        assert "No transition was in progress" in app.screen.markdown
        await pilot.press("escape", "o")
        await pilot.pause()
        assert isinstance(app.screen, ScenarioPicker)
        assert "✓ solved" in screen_text(app) and "livepatch-stacked" in screen_text(app)
        await pilot.press("down", "enter")  # the reversed one
        for _ in range(200):
            await pilot.pause(0.05)
            if app.exercise.scenario is BY_NAME["livepatch-reversed"]:
                break
        await wait_checked(app, pilot, timeout=60)
        await pilot.press("R")
        assert isinstance(app.screen, Confirm)
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, DebriefScreen)
        assert "bcklp_new:133 is sleeping on function bcklp_sleep_func" in app.screen.markdown
        assert app.done == {"livepatch-stacked": "solved", "livepatch-reversed": "revealed"}
        assert re.search(r"\?", " ".join(cells(app.overview.query_one(TaskTable), 0))) is None
