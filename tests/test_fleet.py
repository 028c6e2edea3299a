"""Many dumps: ``check DUMP... --jobs N`` groups identical stacks across dumps, ``diff A B``
compares two dumps (or two tasks) stack by stack. Truth: the kernel's own sysrq-t Call
Traces and ps listings printed by each guest (samples/real/*/facts.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from tests.helpers.real import MOVED

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
#: Three dumps of one kernel (6.12.95+deb12-s390x), three boots of the same guest.
THREE = ("bpo12-6.12-busy", "bpo12-6.12-nmi", "bpo12-6.12-panic")


def _dump(name: str) -> str:
    return str(SAMPLES / name / "vmcore.zst")


def _facts(name: str) -> dict:
    return json.loads((SAMPLES / name / "facts.json").read_text())


def _traces(name: str) -> dict[int, tuple[str, ...]]:
    """pid -> the kernel's own Call Trace (function names), for tasks that did not move."""
    return {
        t["pid"]: tuple(t["functions"])
        for t in _facts(name)["sysrq_t"]
        if t["pid"] not in MOVED[name]
    }


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    status = main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


def test_stacks_grouped_across_three_dumps(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [_dump(n) for n in THREE]
    status, out, _ = _run(capsys, ["check", *paths, "--jobs", "2", "--json"])
    assert status == 0
    doc = json.loads(out)
    assert [d["path"] for d in doc["dumps"]] == paths
    assert all(d["release"] == "6.12.95+deb12-s390x" and d["error"] is None for d in doc["dumps"])
    group_of: dict[tuple[str, int], int] = {}
    for i, g in enumerate(doc["stacks"]):
        assert g["dumps"] == len(g["members"]) == len({m["dump"] for m in g["members"]})
        assert g["tasks"] == sum(len(m["pids"]) for m in g["members"])
        for m in g["members"]:
            for pid in m["pids"]:
                group_of[(m["dump"], pid)] = i
    # Same group <=> the kernel printed the same Call Trace (tasks that did not move).
    truth = {(_dump(n), pid): trace for n in THREE for pid, trace in _traces(n).items()}
    keys = sorted(k for k in truth if k in group_of)
    assert len(keys) > 150
    for x in keys:
        for y in keys:
            assert (group_of[x] == group_of[y]) == (truth[x] == truth[y]), (x, y)
    # kthreadd sleeps the same way in every boot: its stack is in 3 of 3 dumps.
    kthreadd = doc["stacks"][group_of[(paths[0], 2)]]
    assert kthreadd["dumps"] == 3
    assert kthreadd["stack"] == list(truth[(paths[0], 2)])
    # A task blocks the patch exactly when its own check says it is not reliable.
    for path in paths:
        _run(capsys, ["check", path, "--json"])
    blocking = {(t["dump"], t["pid"]) for g in doc["stacks"] for t in g["blocking"]["tasks"]}
    expected = set()
    for path in paths:
        main(["check", path, "--json"])
        for task in json.loads(capsys.readouterr().out):
            if not task["verdict"]["reliable"]:
                expected.add((path, task["pid"]))
    assert blocking == expected and expected
    assert doc["blocked_dumps"] == len({d for d, _ in expected})


def test_grouping_names_the_dumps_a_stack_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [_dump(n) for n in THREE]
    status, text, _ = _run(capsys, ["check", *paths, "--functions", "do_nanosleep"])
    assert status == 0
    assert text.startswith("3 dumps, ")
    assert "livepatch transition for do_nanosleep: blocked in 3 of 3 dumps" in text
    # The sleepers in do_nanosleep (the guest's 'sleep' commands) block it in every dump.
    line = next(
        ln
        for ln in text.splitlines()
        if "this stack blocks the patch in 3 of 3 dumps (sleeping on do_nanosleep)" in ln
    )
    assert all(p in line for p in paths)
    _, jobs1, _ = _run(capsys, ["check", *paths, "--jobs", "1", "--json"])
    _, jobs2, _ = _run(capsys, ["check", *paths, "--jobs", "2", "--json"])
    assert jobs1 == jobs2


def test_a_bad_dump_is_named_and_the_rest_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "broken.vmcore"
    bad.write_bytes(b"not a dump at all" * 10)
    status, out, err = _run(capsys, ["check", _dump(THREE[0]), str(bad), "--json"])
    assert status == 2
    doc = json.loads(out)
    assert doc["dumps"][0]["tasks"] > 50 and doc["dumps"][1]["tasks"] == 0
    assert str(bad) in doc["dumps"][1]["error"]
    assert err.count("\n") == 1 and str(bad) in err and "Traceback" not in err


def _ps_names(name: str) -> dict[int, str]:
    """pid -> comm in the guest's ps, without the workqueue that /proc appends to a kworker's
    name (``kworker/0:1-events``; a rescuer's own name is ``kworker/R-ipv6_``)."""
    out = {}
    for p in _facts(name)["ps"]:
        comm = p["comm"]
        if comm.startswith("kworker/") and not comm.startswith("kworker/R-"):
            comm = comm.split("-", 1)[0]
        out[p["pid"]] = comm
    return out


def test_diff_of_two_dumps_of_one_kernel(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = THREE[0], THREE[1]
    status, out, _ = _run(capsys, ["diff", _dump(a), _dump(b), "--json"])
    assert status == 0
    doc = json.loads(out)
    # Two boots of one kernel: no task is in both; tasks are paired by pid and name.
    assert doc["same_boot"] is False and doc["paired_by"] == "pid and name"
    assert any("different boots" in w for w in doc["warnings"])
    ours = {}
    for side, name in (("a", a), ("b", b)):
        main(["check", _dump(name), "--json"])
        ours[side] = {t["pid"]: t["comm"] for t in json.loads(capsys.readouterr().out)}
    ps = {side: _ps_names(n) for side, n in (("a", a), ("b", b))}
    # Started or ended between the guest's ps and the dump (ps itself, the sysrq writer).
    moved = (ours["a"].keys() ^ ps["a"].keys()) | (ours["b"].keys() ^ ps["b"].keys())
    appeared = {c["b"]["pid"] for c in doc["appeared"]}
    disappeared = {c["a"]["pid"] for c in doc["disappeared"]}
    assert appeared - moved == ps["b"].keys() - ps["a"].keys() - moved and appeared
    assert disappeared - moved == ps["a"].keys() - ps["b"].keys() - moved and disappeared
    # A pid the guest's ps shows under two names is two tasks, never a "changed stack".
    reused = {c["a"]["pid"] for c in doc["reused_pid"]}
    both_ps = (ps["a"].keys() & ps["b"].keys()) - moved
    assert reused & both_ps == {p for p in both_ps if ps["a"][p] != ps["b"][p]} and reused
    # Stack changes of tasks in both dumps are exactly where the kernel's traces differ.
    ta, tb = _traces(a), _traces(b)
    changed = {c["a"]["pid"] for c in doc["changed"] + doc["changed_verdict"]}
    both = (ta.keys() & tb.keys()) - moved - reused
    assert len(both) > 40
    for pid in both:
        assert (pid in changed) == (ta[pid] != tb[pid]), pid
    assert not changed & reused
    in_both = len((ours["a"].keys() & ours["b"].keys()) - {0}) + 2  # and the 2 idle tasks
    compared = doc["same"] + len(doc["changed"]) + len(doc["changed_verdict"])
    assert compared + len(doc["reused_pid"]) == in_both


def test_diff_names_a_reused_pid_as_another_task(capsys: pytest.CaptureFixture[str]) -> None:
    """The 6.12 busy and panic boots: pid 34 is oom_reaper in one and a kworker in the other
    (the guests' own ps), which once read as 'oom_reaper changed to worker_thread'."""
    a, b = _dump("bpo12-6.12-busy"), _dump("bpo12-6.12-panic")
    comm = {n: _ps_names(n) for n in ("bpo12-6.12-busy", "bpo12-6.12-panic")}
    assert comm["bpo12-6.12-busy"][34] == "oom_reaper" != comm["bpo12-6.12-panic"][34]
    status, text, _ = _run(capsys, ["diff", a, b])
    assert status == 0
    assert "oom_reaper" not in text.split("pid reused by another task")[0]
    line = next(ln for ln in text.splitlines() if ln.startswith("  pid 34 "))
    assert "oom_reaper (started " in line and f"{comm['bpo12-6.12-panic'][34]} (started " in line
    status, text, _ = _run(capsys, ["diff", a, b, "--pid", "34"])
    assert "note: two different tasks: oom_reaper" in text
    # One dump against itself: one boot, every task the same.
    status, out, _ = _run(capsys, ["diff", a, a, "--json"])
    doc = json.loads(out)
    assert doc["same_boot"] is True and doc["warnings"] == [] and not doc["reused_pid"]
    assert doc["same"] == doc["a"]["tasks"]


def test_diff_warns_when_the_kernels_differ(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = _dump("deb12-6.1-idle"), _dump("bpo12-6.12-busy")
    status, out, _ = _run(capsys, ["diff", a, b, "--json"])
    doc = json.loads(out)
    assert status == 0 and doc["same_boot"] is False
    assert doc["a"]["release"] == _facts("deb12-6.1-idle")["kernel_release"]
    assert doc["b"]["release"] == _facts("bpo12-6.12-busy")["kernel_release"]
    assert len(doc["warnings"]) == 1 and "different kernels" in doc["warnings"][0]
    _, text, _ = _run(capsys, ["diff", a, b])
    assert text.splitlines()[2].startswith("warning: A and B run different kernels")


def test_diff_pairs_by_start_time_within_one_boot() -> None:
    """One boot: a pid with another start time is another task; an exec'd task keeps its
    start time and is the same task under a new name."""
    from explorer.fleet.diff import diff_dumps
    from explorer.fleet.walk import DumpResult, TaskOutcome

    def row(pid: int, comm: str, start: int, stack: tuple[str, ...]) -> TaskOutcome:
        return TaskOutcome(pid, comm, "S", None, True, "reliable", None, stack, None, "", start)

    init = row(1, "init", 100, ("schedule",))
    a = DumpResult("a", "r", "id", tasks=(init, row(7, "kworker/0:1", 200, ("x",))))
    b = DumpResult(
        "b", "r", "id", tasks=(init, row(7, "kworker/0:1", 900, ("y",)), row(8, "sh", 5, ()))
    )
    d = diff_dumps(a, b)
    assert d.same_boot is True and d.warnings == ()
    assert [(c.kind, (c.a or c.b).pid) for c in d.changes] == [
        ("reused_pid", 7),
        ("appeared", 8),
    ]
    b2 = DumpResult("b", "r", "id", tasks=(init, row(7, "bash", 200, ("y",))))
    assert [c.kind for c in diff_dumps(a, b2).changes] == ["changed"]


def test_diff_of_two_tasks_aligns_their_frames(capsys: pytest.CaptureFixture[str]) -> None:
    name = THREE[0]
    dump = _dump(name)
    traces = _traces(name)
    status, out, _ = _run(capsys, ["diff", dump, dump, "--pid", "2", "--pid", "3", "--json"])
    assert status == 0
    frames = json.loads(out)["frames"]
    a = [f["function"] for f in frames if f["mark"] in "=-"]
    b = [f["function"] for f in frames if f["mark"] in "=+"]
    assert tuple(a) == traces[2] and tuple(b) == traces[3]
    assert [f["function"] for f in frames if f["mark"] == "="][:2] == ["__schedule", "schedule"]
    status, text, _ = _run(capsys, ["diff", dump, dump, "--pid", "2", "--pid", "3"])
    assert "A: pid 2" in text and "- kthreadd" in text
    status, _, err = _run(capsys, ["diff", dump, dump, "--pid", "99999"])
    assert status == 2 and "no task with pid 99999" in err


def test_fleet_honours_types_and_refuses_what_it_cannot_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = [_dump(n) for n in THREE[:2]]
    # --types is every dump's: forced DWARF without a vmlinux is refused for each dump.
    status, out, err = _run(capsys, ["check", *paths, "--types", "dwarf", "--json"])
    assert status == 2
    doc = json.loads(out)
    assert all("--types dwarf" in d["error"] for d in doc["dumps"])
    assert err.count("--types dwarf") == 2
    # --lines reads one dump's debug information: refused in one line, not ignored.
    status, out, err = _run(capsys, ["check", *paths, "--lines"])
    assert status == 2 and out == "" and err.count("\n") == 1 and "--lines" in err


def test_fleet_force_warns_on_every_output(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [_dump(n) for n in THREE[:2]]
    other = str(SAMPLES / "deb12-6.1-idle" / "System.map.zst")  # another kernel's map
    status, out, _ = _run(capsys, ["check", *paths, "--map", other, "--json"])
    assert status == 2
    assert all("System.map" in d["error"] for d in json.loads(out)["dumps"])
    status, out, err = _run(capsys, ["check", *paths, "--map", other, "--force"])
    assert status == 0
    assert out.count("       warning: ") >= 2 and err.count("warning: ") >= 2
    status, out, _ = _run(capsys, ["check", *paths, "--map", other, "--force", "--json"])
    assert all(d["forced"] for d in json.loads(out)["dumps"])


def test_fleet_jsonl_and_all(capsys: pytest.CaptureFixture[str]) -> None:
    paths = [_dump(n) for n in THREE[:2]]
    status, out, _ = _run(capsys, ["check", *paths, "--jsonl"])
    assert status == 0
    records = [json.loads(line) for line in out.splitlines()]
    for path in paths:  # one line per task, the same verdicts as the dump's own check
        main(["check", path, "--json"])
        alone = {t["pid"]: t for t in json.loads(capsys.readouterr().out)}
        mine = {r["pid"]: r for r in records if r["dump"] == path}
        assert mine.keys() == alone.keys()
        for pid, r in mine.items():
            assert r["reliable"] == alone[pid]["verdict"]["reliable"]
            assert r["stack"] == [
                f["symbol"].split("+")[0] for f in alone[pid]["frames"] if f["symbol"]
            ]
    _, short, _ = _run(capsys, ["check", *paths])
    _, every, _ = _run(capsys, ["check", *paths, "--all"])
    assert "--all shows them all" in short and "--all shows them all" not in every
    assert "<- ..." in short and "<- ..." not in every


def test_a_dumps_result_crosses_a_process_whole() -> None:
    """What a --jobs process or a Dask worker sends back (pickled, each task as its values
    alone): equal field by field to what was sent, each task still frozen, and every task
    the kernel printed a Call Trace for carries that stack."""
    import dataclasses
    import pickle

    from explorer.fleet.walk import CheckOptions, TaskOutcome, check_dump

    sent = check_dump(_dump(THREE[0]), CheckOptions())
    back = pickle.loads(pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL))
    assert back == sent and len(back.tasks) > 50
    fields = [f.name for f in dataclasses.fields(TaskOutcome)]
    for a, b in zip(sent.tasks, back.tasks, strict=True):
        assert type(b) is TaskOutcome
        assert [getattr(b, f) for f in fields] == [getattr(a, f) for f in fields]
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.tasks[0].pid = 1  # type: ignore[misc]
    traces = _traces(THREE[0])
    by_pid = {t.pid: t for t in back.tasks}
    assert len(traces) > 50
    assert {pid: by_pid[pid].stack for pid in traces} == traces
