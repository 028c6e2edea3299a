"""``check --json``/``--jsonl`` are written straight from the walks (explorer.reports.stream);
the truth they must match byte for byte is ``json.dumps`` of explorer.reports.walk.analysis_json,
the document ``bt --json`` prints, on every bundled real dump and every training scenario."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.reports.stream import TaskJson
from explorer.reports.walk import analysis_json
from explorer.training.scenarios import SCENARIOS, Scenario
from explorer.walk.analysis import analyse_task, unwind_context

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
REAL = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())


def _same_as_analysis_json(dump: Path) -> int:
    kernel = open_kernel(str(dump))
    ctx = unwind_context(kernel)
    to_json = TaskJson(kernel)
    n = 0
    for task in find_tasks(kernel).tasks:
        a = analyse_task(kernel, task, ctx, detailed=False)
        assert to_json(a) == json.dumps(analysis_json(kernel, a)), (task.pid, task.comm)
        n += 1
    return n


@pytest.mark.parametrize("name", REAL)
def test_real_dump_json_is_analysis_json(name: str) -> None:
    assert _same_as_analysis_json(SAMPLES / name / "vmcore.zst") > 50


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_json_is_analysis_json(tmp_path: Path, scenario: Scenario) -> None:
    assert _same_as_analysis_json(scenario.build(tmp_path)) >= 1


def test_jsonl_is_the_json_list_one_task_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    dump = str(SAMPLES / "deb12-6.1-idle" / "vmcore.zst")
    assert main(["check", dump, "--json"]) == 0
    listed = capsys.readouterr().out
    assert main(["check", dump, "--jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == json.loads(listed)
    # The list keeps its layout: one task per line between the brackets.
    assert listed.startswith("[\n  {") and listed.endswith("}\n]\n")
    assert listed.count("\n") == len(lines) + 2
    pids = [json.loads(line)["pid"] for line in lines]
    assert 1 in pids and len(pids) == len(set(pids)) + pids.count(0) - 1


def _shared_stacks_dump(tmp_path: Path) -> Path:
    """Five tasks asleep in one stack (each on its own stack pages: other sps), two in
    another, one whose comm needs escaping."""
    from explorer.training.synthetic import Frame
    from tests.helpers.kernels import base_kernel

    k = base_kernel("current")
    sleep = [Frame("__schedule", 0x43C), Frame("schedule", 0x3E), Frame("do_nanosleep", 0x5E)]
    sleep += [Frame("__do_syscall", 0x280, size=0x1E8), Frame("system_call", 0x78)]
    other = [Frame("__schedule", 0x43C), Frame("schedule", 0x3E)]
    other += [Frame("__do_syscall", 0x280, size=0x1E8), Frame("system_call", 0x78)]
    comms = [f"w{i}" for i in range(5)] + ["x0", 'x"%\x1b\x7f']
    for i, comm in enumerate(comms):
        task = k.add_task(100 + i, comm, "S")
        k.task_stack(task, sleep if i < 5 else other)
    return k.save(tmp_path)


def test_tasks_sharing_a_stack_share_its_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack's frames are made once and only their sps written per task (stream.py's
    task_frames): every task still equals json.dumps(analysis_json), as it does frame by
    frame when no stack may be remembered."""
    import explorer.reports.stream as stream

    kernel = open_kernel(str(_shared_stacks_dump(tmp_path)))
    ctx = unwind_context(kernel)
    walks = [analyse_task(kernel, t, ctx, detailed=False) for t in find_tasks(kernel).tasks]
    truth = [json.dumps(analysis_json(kernel, a)) for a in walks]
    to_json = TaskJson(kernel)
    assert [to_json(a) for a in walks] == truth
    # swapper runs (its registers are its own: frame by frame); two stacks for the others
    assert len(to_json._stacks) == 2
    sps = {json.loads(t)["frames"][0]["sp"] for t in truth}
    assert len(sps) == len(walks)  # the same stack, written with each task's own sps
    monkeypatch.setattr(stream, "STACK_BUDGET", 0)
    frame_by_frame = TaskJson(kernel)
    assert [frame_by_frame(a) for a in walks] == truth
    assert not frame_by_frame._stacks


@pytest.mark.parametrize("flag", ["--json", "--jsonl"])
def test_json_needs_no_terminal_escaping(
    tmp_path: Path, flag: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The JSON skips the terminal escaping (explorer.reports.printable.unescaped): every
    line of it is printable ASCII, a comm with ESC and DEL included, and reads back whole."""
    dump = str(_shared_stacks_dump(tmp_path))
    assert main(["check", dump, flag]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert all(line.isascii() and line.isprintable() for line in lines)
    docs = json.loads(out) if flag == "--json" else [json.loads(line) for line in lines]
    assert 'x"%\x1b\x7f' in {d["comm"] for d in docs}
