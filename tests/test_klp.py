"""``backchain klp`` and explorer.livepatch on synthetic kernels whose livepatch state is
written the way kernel/livepatch/core.c links it (tests/helpers/klp_kernel.py); the expected
decisions are the ones klp_try_switch_task() makes by transition.c's rules."""

from __future__ import annotations

import json
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from explorer.cli import main
from explorer.livepatch.replay import replay
from explorer.livepatch.state import NoLivepatch, read_livepatch
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.training.synthetic import Frame
from tests.helpers.kernels import KTHREAD, NANOSLEEP, base_kernel, sleeper
from tests.helpers.klp_kernel import KLP_OFFSETS, Func, Livepatch

PIPE_READ = [
    Frame("__schedule", 0x43C),
    Frame("schedule", 0x3E),
    Frame("pipe_read", 0x1F0),
    Frame("vfs_read", 0x94),
    Frame("ksys_read", 0x78),
    Frame("__do_syscall", 0x280, size=0x1E8),
    Frame("system_call", 0x78),
]


def _stalled(folder: Path, target: int = 1) -> tuple[Path, Livepatch]:
    """A patch of do_nanosleep and pipe_read in transition: sleep (100) in do_nanosleep,
    cat (120) in pipe_read, a kworker (50) elsewhere, init (1) already switched, swapper/0
    running on CPU 0."""
    k = base_kernel()
    init, _ = sleeper(k, 1, "init")
    sleeper(k, 100, "sleep")
    cat = k.add_task(120, "cat", "S")
    k.task_stack(cat, PIPE_READ)
    worker = k.add_task(50, "kworker/0:1", "I", kthread=True)
    k.task_stack(worker, KTHREAD, user=False)
    lp = Livepatch(k)
    funcs = [Func("do_nanosleep", "livepatch_do_nanosleep"), Func("pipe_read", "lp_pipe_read")]
    patch = lp.add_patch("klp_sleep", funcs)
    lp.start_transition(patch, target, funcs, signals_cnt=31)
    for task in k.tasks:
        lp.task_state(task, 1 - target, pending=True)
    lp.task_state(init, target)
    return k.save(folder), lp


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_stalled_patching_names_each_task_in_kernel_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump, _ = _stalled(tmp_path)
    code, out, err = _run(capsys, "klp", str(dump))
    assert code == 0, err
    kernel_lines = [
        line.strip()
        for line in out.splitlines()
        if line.strip().startswith("klp_try_switch_task: ")
    ]
    assert kernel_lines == [
        "klp_try_switch_task: sleep:100 is sleeping on function do_nanosleep",
        "klp_try_switch_task: cat:120 is sleeping on function pipe_read",
        "klp_try_switch_task: swapper/0:0 is running",
    ]
    assert "kworker/0:1:50 would switch now" in out
    assert "3 tasks block the transition: 1 sleeping on function do_nanosleep" in out
    assert "transition in progress: klp_sleep, patching (klp_target_state 1)" in out
    assert "fake signals sent 2 times" in out  # klp_signals_cnt 31: at retries 15 and 30
    assert "returns to do_nanosleep+0x5e/0x1000: in the original do_nanosleep" in out


def test_json_round_trips_the_decisions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump, _ = _stalled(tmp_path)
    code, out, _ = _run(capsys, "klp", str(dump), "--json")
    assert code == 0
    data = json.loads(out)
    t = data["transition"]
    rows = [(r["pid"], r["cause"], (r["function"] or {}).get("old_name")) for r in t["tasks"]]
    assert rows == [
        (100, "sleeping_on", "do_nanosleep"),
        (120, "sleeping_on", "pipe_read"),
        (50, "would_switch", None),
        (0, "running", None),
    ]
    assert t["switched"] == 1 and t["blocking"] == 3
    assert data["patches"][0]["name"] == "klp_sleep"
    assert [f["old_name"] for f in data["patches"][0]["objects"][0]["funcs"]] == [
        "do_nanosleep",
        "pipe_read",
    ]
    from explorer.livepatch.report import render_klp

    code, text, _ = _run(capsys, "klp", str(dump))
    assert "\n".join(render_klp(data)) + "\n" == text


def test_unpatching_avoids_the_new_code(tmp_path: Path) -> None:
    """Target UNPATCHED: klp_check_stack_func() looks for the patch's own new_func; tasks in
    the original do_nanosleep are free to go back."""
    dump, _ = _stalled(tmp_path, target=0)
    kernel = open_kernel(str(dump))
    state = read_livepatch(kernel)
    assert not isinstance(state, NoLivepatch)
    result = replay(kernel, state, find_tasks(kernel))
    causes = {d.task.pid: d.cause for d in result.decisions}
    assert causes == {100: "would_switch", 120: "would_switch", 50: "would_switch", 0: "running"}


def test_stacked_patch_avoids_the_previous_patch_code(tmp_path: Path) -> None:
    """Two patches of do_nanosleep: while the second is patched in, the code to avoid is the
    first patch's new function (list_next_entry on the func_stack), not the original."""
    k = base_kernel()
    lp = Livepatch(k)
    first = [Func("do_nanosleep", "lp1_do_nanosleep")]
    lp.add_patch("klp_one", first)
    sleeper(k, 100, "old")  # sleeps in the original do_nanosleep
    in_first = k.add_task(101, "first", "S")
    frames = list(NANOSLEEP)
    frames[2] = Frame("lp1_do_nanosleep", r14=first[0].new_func + 0x40)
    k.task_stack(in_first, frames)
    second = [Func("do_nanosleep", "lp2_do_nanosleep")]
    patch = lp.add_patch("klp_two", second)
    lp.start_transition(patch, 1, second)
    for task in k.tasks:
        lp.task_state(task, 0, pending=True)
    kernel = open_kernel(str(k.save(tmp_path)))
    state = read_livepatch(kernel)
    assert not isinstance(state, NoLivepatch)
    result = replay(kernel, state, find_tasks(kernel))
    by_pid = {d.task.pid: d for d in result.decisions}
    assert by_pid[100].cause == "would_switch"
    assert by_pid[101].cause == "sleeping_on"
    avoided = by_pid[101].avoided
    assert avoided is not None and avoided.code == "previous patch"
    assert avoided.owner is not None and avoided.owner.name == "klp_one"
    assert avoided.frame == 2
    assert [len(ops.func_stack) for ops in state.ops] == [2]


def test_no_transition_lists_patches_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    k = base_kernel()
    lp = Livepatch(k)
    lp.add_patch("klp_one", [Func("do_nanosleep", "lp1_do_nanosleep")])
    lp.add_patch("klp_two", [Func("do_nanosleep", "lp2_do_nanosleep")])
    code, out, _ = _run(capsys, "klp", str(k.save(tmp_path)))
    assert code == 0
    assert "2 livepatches loaded" in out
    assert "func_stack klp_two > klp_one" in out
    assert "no transition in progress" in out


def test_empty_klp_patches_is_no_livepatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    k = base_kernel()
    Livepatch(k)
    code, out, _ = _run(capsys, "klp", str(k.save(tmp_path)))
    assert (code, out) == (
        0,
        "no livepatch loaded: klp_patches is empty and klp_transition_patch is NULL\n",
    )


def _damaged(tmp_path: Path, how: str) -> Path:
    _, lp = _stalled(tmp_path / "good")
    k = lp.k
    if how == "loop":  # the first patch's list entry points back to itself
        node = lp._u64(lp.patches_head)
        k.put_u64(node, node)
    elif how == "text":
        func = lp._u64(lp._u64(lp._u64(lp.patches_head) - 32 + 112) - 128 + 112) - 96
        k.put_u64(func + KLP_OFFSETS["klp_func.old_func"], 0x7777000)
    elif how == "target":
        k.write(lp.target, struct.pack(">i", 12345))
    return k.save(tmp_path / how)


@pytest.mark.parametrize(
    ("how", "words"),
    [
        ("loop", "klp_patches: loops back to"),
        ("text", "func 'do_nanosleep': old_func 0x7777000 is not kernel text"),
        ("target", "klp_target_state is 12345"),
    ],
)
def test_damaged_state_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, words: str
) -> None:
    dump = _damaged(tmp_path, how)
    code, out, err = _run(capsys, "klp", str(dump))
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert words in err and "livepatch state damaged" in err


def test_sys_and_info_name_the_patch_and_its_transition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump, _ = _stalled(tmp_path)
    expected = "1 loaded: klp_sleep; transition in progress: klp_sleep patching"
    _, out, _ = _run(capsys, "sys", str(dump))
    assert f"   LIVEPATCH: {expected}" in out
    _, out, _ = _run(capsys, "info", str(dump))
    assert f"livepatch    {expected}" in out
    _, out, _ = _run(capsys, "info", str(dump), "--json")
    assert json.loads(out)["livepatch"].startswith(expected)


def test_sys_without_livepatch_has_no_livepatch_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    k = base_kernel()
    Livepatch(k)  # CONFIG_LIVEPATCH, nothing loaded
    dump = k.save(tmp_path)
    _, out, _ = _run(capsys, "sys", str(dump))
    assert "LIVEPATCH" not in out
    _, out, _ = _run(capsys, "info", str(dump), "--json")
    assert "livepatch" not in json.loads(out)


def test_check_and_ps_mark_the_blocking_tasks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump, _ = _stalled(tmp_path)
    _, out, _ = _run(capsys, "check", str(dump), "--all")
    rows = {line.split()[0]: line for line in out.splitlines() if line[:7].strip().isdigit()}
    assert rows["100"].endswith(
        "reliable  [blocks livepatch: is sleeping on function do_nanosleep]"
    )
    assert rows["0"].endswith("task_running  [blocks livepatch: is running]")
    assert "blocks" not in rows["1"] and "blocks" not in rows["50"]
    assert (
        "livepatch transition in progress: klp_sleep, patching: 3 tasks block it: "
        "1 sleeping on function do_nanosleep, 1 sleeping on function pipe_read, 1 running"
    ) in out
    _, out, _ = _run(capsys, "ps", str(dump), "--json")
    marks = {t["pid"]: t.get("livepatch") for t in json.loads(out)["tasks"]}
    assert marks == {
        0: "blocks livepatch: is running",
        1: None,
        50: None,
        100: "blocks livepatch: is sleeping on function do_nanosleep",
        120: "blocks livepatch: is sleeping on function pipe_read",
    }


def test_check_patch_takes_the_functions_of_a_loaded_patch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump, _ = _stalled(tmp_path)
    _, by_name, _ = _run(capsys, "check", str(dump), "--functions", "do_nanosleep,pipe_read")
    _, by_patch, _ = _run(capsys, "check", str(dump), "--patch", "klp_sleep")
    assert (
        "livepatch transition for do_nanosleep, pipe_read: 4 tasks would block it: "
        "2 sleeping on do_nanosleep, 1 sleeping on pipe_read, 1 with an unreliable stack"
    ) in by_patch
    assert by_name == by_patch
    code, out, err = _run(capsys, "check", str(dump), "--patch", "nope")
    assert (code, out) == (2, "")
    assert "--patch nope: no such livepatch in the dump (loaded: klp_sleep)" in err


def test_damaged_state_is_a_note_in_ps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump = _damaged(tmp_path, "target")
    code, out, _ = _run(capsys, "ps", str(dump))
    assert code == 0
    assert out.splitlines()[-1] == (
        "note: livepatch state damaged: klp_target_state is 12345 (the kernel writes only "
        "-1, 0 or 1)"
    )


def test_unreliable_stack_names_the_rule_and_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A back chain pointing down: "has an unreliable stack", with the rule check gives."""
    k = base_kernel()
    bad = [*NANOSLEEP[:2], Frame("do_nanosleep", 0x5E, back_chain=0x1000), *NANOSLEEP[3:]]
    broken, _ = sleeper(k, 200, "broken", bad)
    lp = Livepatch(k)
    funcs = [Func("pipe_read", "lp_pipe_read")]
    patch = lp.add_patch("klp_pipe", funcs)
    lp.start_transition(patch, 1, funcs)
    lp.task_state(broken, 0, pending=True)
    dump = k.save(tmp_path)
    _, out, _ = _run(capsys, "check", str(dump), "--all")
    check_row = next(line for line in out.splitlines() if line.split()[:1] == ["200"])
    _, out, _ = _run(capsys, "klp", str(dump), "--json")
    row = json.loads(out)["transition"]["tasks"][0]
    assert (row["pid"], row["cause"]) == (200, "unreliable")
    assert row["message"] == "klp_try_switch_task: broken:200 has an unreliable stack"
    assert f"{row['rule']} at #{row['frame']}" in check_row  # the same verdict as check
    assert row["bt"].endswith("--pid 200")
    assert row["unblock"][0].startswith("the kernel sends it a fake signal")


def test_check_functions_follow_the_kernels_loop_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """klp_check_stack() tries the patch's functions in order, each against the whole stack:
    with do_nanosleep listed first it is named although schedule is the inner frame."""
    k = base_kernel()
    sleeper(k, 100, "sleep")
    dump = k.save(tmp_path)
    for functions, named in (
        ("do_nanosleep,schedule", "do_nanosleep"),
        ("schedule,do_nanosleep", "schedule"),
    ):
        _, out, _ = _run(capsys, "check", str(dump), "--functions", functions)
        assert f"sleep:100 is sleeping on function {named}" in out


def test_bt_gives_the_kernels_decision_during_a_transition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dump, _ = _stalled(tmp_path)
    lines = {}
    for pid in (100, 1, 50):
        _, out, _ = _run(capsys, "bt", str(dump), "--pid", str(pid))
        lines[pid] = out.splitlines()[-1]
    assert lines[100] == (
        "livepatch: klp_try_switch_task: sleep:100 is sleeping on function do_nanosleep "
        "(frame #2: in the original do_nanosleep); transition of klp_sleep, patching: "
        "'backchain klp' says more"
    )
    assert lines[1] == (
        "livepatch: init:1 is patched already (patch_state 1; transition of klp_sleep, patching)"
    )
    assert lines[50] == (
        "livepatch: kworker/0:1:50 would switch now (transition of klp_sleep, patching)"
    )


def _explore(tmp_path: Path, then: Callable[[Any, Any], Awaitable[Any]]) -> Any:
    """Open the stalled dump in the explorer, wait for every verdict, then run ``then``."""
    import asyncio

    from tests.helpers.tui import make_app, wait_checked

    dump, _ = _stalled(tmp_path)

    async def run() -> Any:
        app = make_app(dump, tmp_path)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_checked(app, pilot)
            return await then(app, pilot)

    return asyncio.run(run())


def test_explorer_livepatch_screen_shows_the_report(tmp_path: Path) -> None:
    from explorer.tui.screens.livepatch import LivepatchScreen
    from tests.helpers.tui import plain

    async def screen(app: Any, pilot: Any) -> str:
        await pilot.press("k")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, LivepatchScreen)
        return plain(app.screen.query_one("#klp-text"))

    text = _explore(tmp_path, screen)
    assert "klp_try_switch_task: sleep:100 is sleeping on function do_nanosleep" in text
    assert "3 tasks block the transition" in text


def test_explorer_stack_view_gives_the_kernels_decision(tmp_path: Path) -> None:
    from explorer.tui.widgets.verdict import VerdictBar
    from tests.helpers.tui import open_pid, plain

    async def bar(app: Any, pilot: Any) -> str:
        stack = await open_pid(app, pilot, 100)
        return plain(stack.query_one(VerdictBar))

    text = " ".join(_explore(tmp_path, bar).split())
    assert (
        "livepatch: klp_try_switch_task: sleep:100 is sleeping on function do_nanosleep "
        "(frame #2: in the original do_nanosleep)"
    ) in text


def test_explorer_task_table_marks_the_blocking_tasks(tmp_path: Path) -> None:
    from explorer.tui.widgets.tasks import TaskTable
    from tests.helpers.tui import cells

    async def table(app: Any, pilot: Any) -> dict[str, str]:
        rows = app.overview.query_one(TaskTable)
        return {cells(rows, r)[0]: cells(rows, r)[4] for r in range(rows.row_count)}

    verdicts = _explore(tmp_path, table)
    assert {pid for pid, v in verdicts.items() if v.endswith("· blocks klp")} == {"0", "100", "120"}


def test_report_names_the_patch_and_its_transition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The triage's livepatch finding is the klp command's summary (explorer.livepatch sits
    below the reports), pointing to ``klp``."""
    dump, _ = _stalled(tmp_path)
    _, out, _ = _run(capsys, "report", str(dump), "--json")
    found = [f for f in json.loads(out)["findings"] if f["id"] == "livepatch"]
    assert len(found) == 1
    assert found[0]["headline"].startswith(
        "1 loaded: klp_sleep; transition in progress: klp_sleep patching"
    )
    assert found[0]["command"] == "backchain klp DUMP"


def _summaries(dump: Path) -> tuple[str | None, str | None, bool]:
    """The light summary (explorer.livepatch.summary), the full reader's, and whether the
    light one answered without importing the reader."""
    from explorer.livepatch import state, summary

    kernel = open_kernel(str(dump))
    return (
        summary.livepatch_summary(kernel),
        state.livepatch_summary(kernel),
        summary.nothing_loaded(kernel),
    )


def test_the_light_summary_is_the_readers(tmp_path: Path) -> None:
    """``info``/``sys`` import the livepatch reader only when a patch may be loaded: their
    line is the reader's for no livepatch, an empty list, a stalled transition, a damaged
    list and a transition pointer left with an empty list."""
    none = base_kernel()
    empty = base_kernel()
    Livepatch(empty)
    dangling = base_kernel()
    lp = Livepatch(dangling)
    dangling.put_u64(lp.transition, 0x5000)  # klp_transition_patch set, klp_patches empty
    stalled, _ = _stalled(tmp_path / "stalled")
    cases = {
        "none": (none.save(tmp_path / "none"), True),
        "empty": (empty.save(tmp_path / "empty"), True),
        "dangling": (dangling.save(tmp_path / "dangling"), False),
        "stalled": (stalled, False),
        "loop": (_damaged(tmp_path, "loop"), False),
    }
    for name, (dump, light) in cases.items():
        ours, theirs, skipped = _summaries(dump)
        assert ours == theirs, name
        assert skipped == light, name
    assert str(_summaries(stalled)[0]).startswith(
        "1 loaded: klp_sleep; transition in progress: klp_sleep patching"
    )
    assert _summaries(cases["dangling"][0])[0] is not None  # the reader refuses it: a line
