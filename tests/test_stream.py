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
