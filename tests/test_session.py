"""A triage session as a crash user runs it (issue 15): default context, bt -a/--all, ps
options, sys, rd, and the rough edges a new user hit. Truth: the guests' own console logs
and /proc printouts (samples/real/*/console.log, facts.json) and System.map."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.kernel import Kernel
from explorer.model.opening import open_kernel
from explorer.model.tasks import TaskScan, find_tasks
from parsers.symbols.table import load_system_map
from tests.helpers.real import MOVED  # tasks that ran between printout and dump

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAMES = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())
BUSY = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
PANIC = str(SAMPLES / "bpo12-6.12-panic" / "vmcore.zst")


@cache
def _open(name: str) -> tuple[Kernel, TaskScan, dict]:
    kernel = open_kernel(str(SAMPLES / name / "vmcore.zst"))
    facts = json.loads((SAMPLES / name / "facts.json").read_text())
    return kernel, find_tasks(kernel), facts


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# -- rough edge 1: a mistyped command is a usage error, never the explorer ----------------------
def test_mistyped_command_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import explorer.cli as cli

    def no_tui(_args: object) -> int:
        raise AssertionError("the explorer must not start")

    monkeypatch.setattr(cli, "run_tui", no_tui)
    rc, _, err = _run(capsys, "nosuch")
    assert rc == 2 and "'nosuch' is neither a command nor an existing dump file" in err
    rc, _, err = _run(capsys, "chek")
    assert rc == 2 and "did you mean 'check'?" in err


# -- rough edge 2: --task must name a task of the task list ------------------------------------
def test_bt_task_not_in_the_task_list_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(capsys, "bt", BUSY, "--task", "0x1234")
    assert rc == 2 and out == "" and "no task at 0x1234 in the task list" in err
    rc, out, _ = _run(capsys, "bt", BUSY, "--task", "0x1234", "--force")
    assert rc == 0 and out.startswith("UNVETTED: 0x1234 is not in the task list")
    rc, out, _ = _run(capsys, "bt", BUSY, "--task", "0x1234", "--force", "--json")
    assert json.loads(out)["unvetted"] is True
    _kernel, scan, _ = _open("bpo12-6.12-busy")
    init = scan.by_pid(1)[0]
    rc, out, _ = _run(capsys, "bt", BUSY, "--task", f"{init.address:x}")
    assert rc == 0 and "UNVETTED" not in out and 'COMM: "init"' in out


# -- default context, bt -a, bt --all --state --------------------------------------------------
def test_bt_without_selector_is_the_panic_task(capsys: pytest.CaptureFixture[str]) -> None:
    console = (SAMPLES / "bpo12-6.12-panic" / "console.log").read_text(errors="replace")
    m = re.findall(r"CPU: (\d+) UID: \d+ PID: (\d+) Comm: (\S+)", console)[-1]
    rc, out, _ = _run(capsys, "bt", PANIC)
    assert rc == 0
    assert out.splitlines()[0].startswith(
        f"(no task named: the panic task (CPU {m[0]} called panic)"
    )
    assert f"PID: {m[1]} " in out.splitlines()[1] and f'COMM: "{m[2]}"' in out
    rc, out, _ = _run(capsys, "bt", PANIC, "--json")
    doc = json.loads(out)
    assert (doc["pid"], doc["comm"], doc["cpu"]) == (int(m[1]), m[2], int(m[0]))
    assert doc["context"].startswith("the panic task")


@pytest.mark.parametrize("name", NAMES)
def test_bt_active_is_each_cpus_current_task(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    kernel, _, _ = _open(name)
    rc, out, _ = _run(capsys, "bt", str(SAMPLES / name / "vmcore.zst"), "-a", "--json")
    docs = json.loads(out)
    assert rc == 0 and len(docs) == len(kernel.cpus)
    assert [int(d["task"], 16) for d in docs] == [c.current_task for c in kernel.cpus]
    assert [d["cpu"] for d in docs] == [c.number for c in kernel.cpus]


def test_bt_all_with_states(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, facts = _open("bpo12-6.12-busy")
    zombies = {p["pid"] for p in facts["ps"] if p["stat"].startswith("Z")}
    stopped = {p["pid"] for p in facts["ps"] if p["stat"].startswith("T")}
    rc, out, _ = _run(capsys, "bt", BUSY, "--all", "--state", "Z,T", "--json")
    docs = json.loads(out)
    assert rc == 0 and {d["pid"] for d in docs} == zombies | stopped and zombies and stopped
    rc, out, _ = _run(capsys, "bt", BUSY, "--all", "--json")
    assert len(json.loads(out)) == len(_open("bpo12-6.12-busy")[1].tasks)
    rc, _, err = _run(capsys, "bt", BUSY, "--state", "Q")
    assert rc == 2 and "not a task state" in err


# -- rough edge 8: one CPU column, one order, one bracket convention ----------------------------
def test_one_cpu_convention_in_ps_bt_and_check(capsys: pytest.CaptureFixture[str]) -> None:
    _kernel, scan, _ = _open("bpo12-6.12-busy")
    init = scan.by_pid(1)[0]
    assert init.cpu is None  # init sleeps in this sample
    mark = f"({init.last_cpu})"
    _, ps_out, _ = _run(capsys, "ps", BUSY)
    ps_rows = [line.split() for line in ps_out.splitlines()[1:]]
    ps_rows = [r[1:] if r[0] == ">" else r for r in ps_rows]
    assert next(r for r in ps_rows if r[0] == "1")[2] == mark
    _, bt_out, _ = _run(capsys, "bt", BUSY, "--pid", "1")
    assert f"CPU: {mark} " in bt_out.splitlines()[0]
    _, check_out, _ = _run(capsys, "check", BUSY, "--all")
    table = check_out.split(f"{'PID':>7} {'CPU':>4}")[1].splitlines()[1:]
    check_rows = [line.split() for line in table]
    assert next(r for r in check_rows if r[0] == "1")[1] == mark
    # same order, same CPU column, same brackets as ps
    assert [(r[0], r[1], r[3]) for r in check_rows] == [(r[0], r[2], r[5]) for r in ps_rows]
    running = [t for t in scan.tasks if t.cpu is not None]
    for t in running:
        assert any(r[0] == str(t.pid) and r[2] == str(t.cpu) for r in ps_rows)


# -- rough edge 9: check names pids, counts words right, warns, summarises first ----------------
def test_check_groups_pids_and_functions(capsys: pytest.CaptureFixture[str]) -> None:
    _, _, facts = _open("bpo12-6.12-busy")
    rc, out, err = _run(capsys, "check", BUSY, "--functions", "schedule,nosuchfunc")
    assert rc == 0
    assert "warning: --functions nosuchfunc: not a symbol of this kernel" in err
    assert "schedule" not in err
    assert " 1 tasks" not in out and "1 task, 1 reliable: pid " in out
    sleeps = {p["pid"] for p in facts["ps"] if p["comm"] == "sleep"}
    group = next(line for line in out.splitlines() if line.endswith("[sleep]"))
    m = re.match(r"\s+(\d+) tasks, \d+ reliable: pids ([\d, ]+)  \[sleep\]$", group)
    assert m is not None
    pids = {int(p) for p in m.group(2).split(", ")}
    known = {p["pid"] for p in facts["ps"]}
    assert len(pids) == int(m.group(1)) > 1 and pids & known <= sleeps and len(pids & known) > 1
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("livepatch transition"))
    assert re.match(
        r"livepatch transition for schedule, nosuchfunc: (\d+) tasks would block it: "
        r"(\d+) sleeping on schedule, (\d+) with an unreliable stack",
        lines[head],
    )
    assert lines[-1].startswith("  … and ") and lines[-1].endswith("more (--all lists them)")


# -- rough edge 13: convert says what it wrote and keeps the dump usable ------------------------
def test_convert_reports_and_brings_companions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two dumps of two kernels converted into one folder: each brings its own System.map,
    named after its output, and each opens with its own (issue 24: the second once kept the
    first one's map)."""
    outs = {}
    for name, out_name in (("deb12-6.1-idle", "a.elf"), ("bpo12-6.12-busy", "b.elf")):
        out_file = outs[name] = tmp_path / out_name
        rc, out, _ = _run(
            capsys, "convert", str(SAMPLES / name / "vmcore.zst"), "-o", str(out_file)
        )
        assert rc == 0 and out.startswith(f"wrote {out_file}: ELF vmcore, ")
        stem = out_name.split(".")[0]
        assert f"copied beside it: {stem}.System.map.zst" in out
        assert (tmp_path / f"{stem}.System.map.zst").read_bytes() == (
            SAMPLES / name / "System.map.zst"
        ).read_bytes()
    for name, out_file in outs.items():
        rc, out, err = _run(capsys, "info", str(out_file))
        assert "format       ELF vmcore (converted by backchain from elf vmcore.zst)" in out
        stem = out_file.name.split(".")[0]
        assert f"from System.map {tmp_path / stem}.System.map.zst" in out, out
        release = json.loads((SAMPLES / name / "facts.json").read_text())["kernel_release"]
        assert f"release      {release}" in out
        assert "skipped" not in err
    for out_file in outs.values():
        out_file.unlink()  # 128 MiB each: do not leave them in the shared temporary folder


# -- rough edge 14 -----------------------------------------------------------------------------
def test_small_wording_fixes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["info", "--help"])
    assert "compressed kdump" in " ".join(capsys.readouterr().out.split())
    rc, out, _ = _run(capsys, "log", PANIC, "--grep", "KERNEL PANIC", "-i", "--json")
    assert [r["text"] for r in json.loads(out)] == [
        "Kernel panic - not syncing: sysrq triggered crash"
    ]
    rc, out, _ = _run(capsys, "log", PANIC, "--grep", "KERNEL PANIC", "--json")
    assert json.loads(out) == []
    rc, _, err = _run(capsys, "rd", PANIC, "0xffffffffffff0000")
    assert rc == 2 and "not a kernel address" in err


def test_scenario_list_columns_line_up(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "scenarios", "list", "--answers")
    lines = [line for line in out.splitlines() if not line.startswith("(")]  # rows, no notes
    col = lines[0].index("TITLE")
    assert rc == 0 and all(line[col - 2 : col] == "  " and line[col] != " " for line in lines)


# -- sys ---------------------------------------------------------------------------------------
def _last_console_stamp(name: str) -> float:
    text = (SAMPLES / name / "console.log").read_text(errors="replace")
    return max(float(s) for s in re.findall(r"^\[\s*(\d+\.\d+)\]", text, re.M))


@pytest.mark.parametrize("name", NAMES)
def test_sys_agrees_with_the_guest(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, facts = _open(name)
    rc, out, _ = _run(capsys, "sys", str(SAMPLES / name / "vmcore.zst"), "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["release"] == facts["kernel_release"]
    assert doc["machine"] == "s390x" and doc["cpus"] == facts["cpus"] == doc["cpus_online"]
    assert doc["total_ram"] == facts["mem_total_kb"] * 1024
    last = _last_console_stamp(name)
    assert last <= doc["uptime_s"] < last + 5  # the dump came seconds after the last message
    assert len(doc["load_average"]) == 3 and all(x >= 0 for x in doc["load_average"])
    assert facts["linux_banner"].endswith(doc["version"])
    if name.endswith("panic"):
        assert doc["panic_cpu"] == 0
        assert doc["panic_message"] == "Kernel panic - not syncing: sysrq triggered crash"
    else:
        assert doc["panic_cpu"] is None


def test_sys_text(capsys: pytest.CaptureFixture[str]) -> None:
    _rc, out, _ = _run(capsys, "sys", PANIC)
    assert "PANIC: on CPU 0: Kernel panic - not syncing: sysrq triggered crash" in out
    assert "UPTIME: 00:00:21." in out and "MACHINE: s390x" in out


# -- rd ----------------------------------------------------------------------------------------
def test_rd_words_ascii_and_symbols(capsys: pytest.CaptureFixture[str]) -> None:
    kernel, _, facts = _open("bpo12-6.12-panic")
    rc, out, _ = _run(capsys, "rd", PANIC, "linux_banner", "4")
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 2
    assert "".join(line[-16:] for line in lines) == facts["linux_banner"][:32]
    smap = load_system_map(str(SAMPLES / "bpo12-6.12-panic" / "System.map.zst"))
    delta = kernel.symbols.delta
    stack_off = kernel.types.offset("task_struct.stack")
    init_task = smap.address_of("init_task") + delta
    rc, out, _ = _run(capsys, "rd", PANIC, f"{init_task + stack_off:x}", "--json")
    word = json.loads(out)["words"][0]
    assert int(word["value"], 16) == smap.address_of("init_stack") + delta
    rc, out, _ = _run(capsys, "rd", PANIC, f"init_task+{stack_off:#x}", "-s")
    assert out.split()[1].split("+")[0] in {"init_stack", "__start_init_stack"}
    rc, _, err = _run(capsys, "rd", PANIC, "nosuchsymbol")
    assert rc == 2 and "neither a hex address nor a symbol" in err


# -- ps ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_ps_children_and_parents_match_the_guest(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, scan, facts = _open(name)
    dump = str(SAMPLES / name / "vmcore.zst")
    rc, out, _ = _run(capsys, "ps", dump, "-c", "--pid", "1", "--json")
    kids = {c["pid"] for c in json.loads(out)["children"][0]["children"]}
    in_dump = {t.pid for t in scan.tasks}
    both = [p for p in facts["ps"] if p["pid"] in in_dump and p["pid"] not in MOVED[name]]
    assert rc == 0 and any(p["ppid"] == 1 for p in both)
    assert {p["pid"] for p in both if p["ppid"] == 1} == kids & {p["pid"] for p in both}
    rc, out, _ = _run(capsys, "ps", dump, "-p", "--pid", "2", "--json")
    chain = json.loads(out)["parents"][0]["parents"]
    assert [p["pid"] for p in chain] == [0]  # kthreadd's parent is swapper/0


def test_ps_filters_summary_and_tree(capsys: pytest.CaptureFixture[str]) -> None:
    _, scan, facts = _open("bpo12-6.12-busy")
    rc, out, _ = _run(capsys, "ps", BUSY, "-S", "--json")
    doc = json.loads(out)
    assert (
        rc == 0
        and doc["total"] == len(scan.tasks)
        and sum(doc["states"].values()) == len(scan.tasks)
    )
    assert doc["states"]["Z"] == sum(1 for p in facts["ps"] if p["stat"].startswith("Z"))
    _rc, out, _ = _run(capsys, "ps", BUSY, "--comm", "kworker/0:*", "--state", "I", "--json")
    tasks = json.loads(out)["tasks"]
    assert tasks and all(t["comm"].startswith("kworker/0:") and t["state"] == "I" for t in tasks)
    _rc, out, _ = _run(capsys, "ps", BUSY, "--tree")
    lines = out.splitlines()
    assert lines[0] == "[swapper/0](0)" and lines[1] == "├─ init(1)"
    assert "└─ [kthreadd](2)" in lines
    assert sum(1 for line in lines if "(" in line) >= len(scan.tasks) - len(
        [t for t in scan.tasks if t.pid == 0]
    )
