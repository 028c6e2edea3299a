"""The training scenarios: every one builds deterministically and the tool gives its answer;
the ``backchain scenarios`` command; the README table stays in sync with the catalog."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from explorer import cli
from explorer.model.kernel import Options
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.reports.walk import analysis_json, walk_markdown
from explorer.training import scenarios
from explorer.training.scenarios import CATALOG, SCENARIOS, Scenario
from explorer.walk.analysis import analyse_task, unwind_context
from explorer.walk.reliable import RULES, UNWIND_ERRORS

FILES = ("vmcore", "System.map", "profile.json")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_scenario_answer_and_determinism(tmp_path: Path, scenario: Scenario) -> None:
    dump = scenario.build(tmp_path / "a")
    again = scenario.build(tmp_path / "b")
    for name in FILES:
        assert (dump.parent / name).read_bytes() == (again.parent / name).read_bytes(), name

    kernel = open_kernel(str(dump), Options())
    assert kernel.release == scenario.release
    tasks = find_tasks(kernel).by_pid(scenario.pid)
    assert len(tasks) == 1
    a = analyse_task(kernel, tasks[0], unwind_context(kernel))
    doc = analysis_json(kernel, a)  # exactly what `bt --json` prints
    answer = scenario.answer
    verdict = {k: doc["verdict"][k] for k in ("reliable", "rule", "detail", "frame")}
    assert verdict == answer.to_json()["verdict"]
    end = doc["end"]["kind"] + (f"/{doc['end']['detail']}" if doc["end"]["detail"] else "")
    assert end == answer.end
    assert doc["era"] == scenario.era and doc["cpu"] == scenario.cpu
    current = a.verdict.as_current
    assert (current.label if current else None) == answer.as_current
    assert (current.frame if current else None) == answer.as_current_frame
    assert a.verdict.label == answer.label
    md = walk_markdown(kernel, a)  # the Markdown export works on every scenario
    assert f"`{answer.label}`" in md and md.startswith("### Stack of")


def test_catalog_shape() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) >= 16 and len(set(names)) == len(names)
    for s in SCENARIOS:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9.]+)*", s.name), s.name
        assert s.era in scenarios.ERAS
        assert s.name.endswith("-v5.5") == (s.era == "v5.5"), s.name
        assert s.title and s.look_for
        assert 2 <= len(re.findall(r"[.!?](\s|$)", s.story)) <= 4, s.name
        assert (s.answer.rule == "task_running") == (s.cpu is not None), s.name
        assert s.answer.reliable == (s.answer.rule is None)
    assert scenarios.get("misaligned-sp").era == "current"
    assert scenarios.get("misaligned-sp-v5.5").release == "5.5.0-synthetic-s390x"


def test_catalog_covers_every_rule_and_unwind_error() -> None:
    rules = {s.answer.rule for s in SCENARIOS} | {s.answer.as_current for s in SCENARIOS}
    assert set(RULES) <= rules
    ends = {s.answer.end.partition("/")[2] for s in SCENARIOS}
    assert set(UNWIND_ERRORS) - {"step_limit"} <= ends
    assert {"final_pt_regs", "no_stack"} <= {s.answer.end for s in SCENARIOS}


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(scenarios.UnknownScenarioError) as info:
        scenarios.get("misalinged-sp")
    assert "misaligned-sp" in str(info.value) and "\n" not in str(info.value)


def test_readme_table_is_generated_from_the_catalog() -> None:
    text = scenarios.README.read_text()
    assert "## Training scenarios" in text
    assert scenarios.readme_table(text) == scenarios.markdown_table(), (
        "run: python -m explorer.training.scenarios --write-readme"
    )
    assert "--markdown" in text


# -- the command ---------------------------------------------------------------------------------
def test_cli_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "scenarios", "list", "--json", "--answers")
    assert code == 0
    docs = json.loads(out)
    assert [d["name"] for d in docs] == [s.name for s in CATALOG]
    by_name = {d["name"]: d for d in docs}
    assert by_name["misaligned-sp"]["expected"] == "unwind_error/sp_misaligned"
    assert by_name["misaligned-sp-v5.5"]["era"] == "v5.5"
    assert by_name["preempted"]["answer"]["verdict"]["frame"] == 4
    code, out, _ = _run(capsys, "scenarios", "list", "--answers")
    assert code == 0 and len(out.splitlines()) == len(CATALOG) + 1
    assert out.startswith("EXERCISE") and "EXPECTED VERDICT" in out.splitlines()[0]
    number = scenarios.number("too-deep")
    assert re.search(rf"^{number}\s+current\s.*\stoo-deep\s+too_many_entries at #99", out, re.M)


def test_cli_list_keeps_the_answers_for_the_trainer(capsys: pytest.CaptureFixture[str]) -> None:
    """A trainee listing the scenarios sees no verdict (issue 17: --answers shows them), and
    no name or title either: they are the answer (issue 23 item 1)."""
    code, out, err = _run(capsys, "scenarios", "list")
    assert code == 0 and len(out.splitlines()) == len(CATALOG) + 1
    assert "EXPECTED" not in out and "scenarios list --answers" in err
    rows = out.splitlines()[1:]
    assert [row.split() for row in rows] == [  # a livepatch exercise asks about any task
        [str(n), s.era, s.release, "any" if s.pid is None else str(s.pid)]
        for n, s in enumerate(CATALOG, 1)
    ]
    code, out, _ = _run(capsys, "scenarios", "list", "--json")
    docs = json.loads(out)
    assert [d["exercise"] for d in docs] == list(range(1, len(CATALOG) + 1))
    told = {"answer", "expected", "name", "title"}
    assert all(not told & set(d) for d in docs)


def test_cli_show_hides_the_answer_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 23 item 2: without --answer, the situation only (no name, title, story or where
    to look); the number opens the same scenario as the name."""
    scenario = scenarios.get("chain-loop")
    number = str(scenarios.number("chain-loop"))
    code, out, _ = _run(capsys, "scenarios", "show", "chain-loop")
    assert code == 0 and "What to look for" not in out and "sp_not_increasing" not in out
    assert "chain-loop" not in out and scenario.title not in out and "#3" not in out
    assert scenario.situation[:40] in out and f"exercise {number} of {len(CATALOG)}" in out
    _, same, _ = _run(capsys, "scenarios", "show", number)
    assert same == out
    code, out, _ = _run(capsys, "scenarios", "show", "chain-loop", "--answer")
    assert code == 0 and "Answer: unwind_error/sp_not_increasing at #3" in out
    assert "What to look for" in out and "chain-loop" in out
    code, out, _ = _run(capsys, "scenarios", "show", "chain-loop", "--json")
    doc = json.loads(out)
    assert doc["pid"] == 100 and doc["situation"] and not {"answer", "story", "name"} & set(doc)
    _, out, _ = _run(capsys, "scenarios", "show", "chain-loop", "--json", "--answer")
    assert json.loads(out)["answer"]["label"] == "unwind_error/sp_not_increasing"


def test_cli_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    for action in ("show", "open"):
        code, out, err = _run(capsys, "scenarios", action, "preemted")
        assert code == 2 and out == ""
        assert len(err.strip().splitlines()) == 1 and "preempted" in err


def test_cli_build_then_bt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "out"
    code, out, _ = _run(capsys, "scenarios", "build", "misaligned-sp", "-o", str(folder))
    assert code == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert f"backchain bt {folder / 'vmcore'} --pid 100" in out
    # a non-empty folder needs --force
    code, out, err = _run(capsys, "scenarios", "build", "chain-loop", "-o", str(folder))
    assert code == 2 and "--force" in err and len(err.strip().splitlines()) == 1
    code, _, _ = _run(capsys, "scenarios", "build", "chain-loop", "-o", str(folder), "--force")
    assert code == 0
    code, out, _ = _run(capsys, "bt", str(folder / "vmcore"), "--pid", "100", "--json")
    assert code == 0
    verdict = json.loads(out)["verdict"]
    want = scenarios.get("chain-loop").answer
    assert (verdict["reliable"], verdict["rule"], verdict["detail"], verdict["frame"]) == (
        want.reliable,
        want.rule,
        want.detail,
        want.frame,
    )
    code, out, _ = _run(capsys, "bt", str(folder / "vmcore"), "--pid", "100", "--markdown")
    assert code == 0 and "`unwind_error/sp_not_increasing`, frame #3" in out


def test_cli_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    monkeypatch.delenv("BACKCHAIN_CACHE", raising=False)  # it would win over XDG_CACHE_HOME
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    seen: dict[str, Any] = {}

    def fake_tui(args: Any) -> int:
        seen["dump"], seen["scenario"] = args.dump, args.scenario
        return 0

    monkeypatch.setattr(cli, "run_tui", fake_tui)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    code, _, _ = _run(capsys, "scenarios", "open", "kthread")
    assert code == 0 and seen["scenario"] == "kthread"
    assert Path(seen["dump"]) == tmp_path / "backchain" / "scenarios" / "kthread" / "vmcore"
    assert Path(seen["dump"]).is_file()
    # without the explorer: bt of the scenario's task
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "explorer.tui.app" else real_find_spec(name, *a),
    )
    code, out, _ = _run(capsys, "scenarios", "open", "kthread-v5.5")
    assert code == 0 and "PID: 100" in out and "verdict: RELIABLE" in out
