"""struct, task, ps -l/-m and shell (issue 15) on the real samples: the kernel's own types
(the dump's BTF; the -dbg vmlinux's DWARF where it is in the cache) against what the guest
printed (facts.json, console.log) and System.map."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import main
from parsers.types.graph import DwarfTypes, members_flat, strip, type_name
from tests.helpers import oracles

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
BUSY = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
PANIC = str(SAMPLES / "bpo12-6.12-panic" / "vmcore.zst")
IDLE61 = str(SAMPLES / "deb12-6.1-idle" / "vmcore.zst")
MOCK = Path(__file__).parent / "data" / "types_mock.o"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_struct_task_struct_of_init_task(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "struct", BUSY, "task_struct", "init_task", "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["comm"] == "swapper/0" and doc["pid"] == 0
    assert doc["tasks"]["next"].startswith("0x")  # nested struct: member names as keys
    rc, out, _ = _run(capsys, "struct", BUSY, "task_struct", "init_task")
    assert rc == 0 and '  comm = "swapper/0",' in out and out.startswith("struct task_struct at")
    assert re.search(r"^  tasks = \{\n    next = 0x[0-9a-f]+,\n    prev = 0x", out, re.M)


def test_struct_layout_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "struct", BUSY, "list_head", "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["size"] == 16
    assert [(m["name"], m["offset"]) for m in doc["members"]] == [("next", 0), ("prev", 8)]
    rc, _, err = _run(capsys, "struct", BUSY, "no_such_struct", "init_task")
    assert rc == 2 and "no type 'no_such_struct'" in err
    rc, _, err = _run(capsys, "struct", IDLE61, "task_struct", "init_task")
    assert rc == 2 and "no BTF" in err and "--vmlinux" in err


def test_task_1_is_init(capsys: pytest.CaptureFixture[str]) -> None:
    facts = json.loads((SAMPLES / "bpo12-6.12-busy" / "facts.json").read_text())
    rc, out, _ = _run(capsys, "task", BUSY, "1", "--json")
    doc = json.loads(out)
    init = next(p for p in facts["ps"] if p["pid"] == 1)
    assert rc == 0 and doc["comm"] == init["comm"] == "init" and doc["pid"] == 1
    assert doc["tgid"] == 1
    rc, out, _ = _run(capsys, "task", BUSY, "1", "-m", "comm,sched_info.pcount")
    assert 'comm = "init",' in out and re.search(r"sched_info.pcount = \d+,", out)
    # no PID: the default context, like bt (the panic task on the panic sample)
    rc, out, _ = _run(capsys, "task", PANIC, "--json")
    assert json.loads(out)["comm"] == "init"
    rc, _, err = _run(capsys, "task", BUSY, "4242")
    assert rc == 2 and "no task with pid 4242" in err


def test_typegraph_from_dwarf_mock() -> None:
    graph = DwarfTypes(str(MOCK))
    try:
        tid = graph.find("task_struct")
        assert tid is not None
        names = dict(members_flat(graph, tid))
        # anonymous union/struct members are lifted, as C names them
        assert "on_cpu" in names and "comm" in names
        comm = strip(graph, names["comm"].type)
        assert comm.kind == "array" and comm.count == 16
        assert type_name(graph, names["tasks"].type) == "struct list_head"
    finally:
        graph.close()


def test_struct_from_dwarf_of_the_61_vmlinux(capsys: pytest.CaptureFixture[str]) -> None:
    vmlinux = oracles.debug_vmlinux("6.1.0-50-s390x")
    rc, out, err = _run(
        capsys, "struct", IDLE61, "task_struct", "init_task", "--vmlinux", str(vmlinux), "--json"
    )
    if rc == 2 and "does not belong to the dump" in err:
        pytest.skip(f"the cached -dbg vmlinux is not this dump's kernel: {err.strip()[:200]}")
    doc = json.loads(out)
    assert rc == 0 and doc["comm"] == "swapper/0" and doc["pid"] == 0


def test_ps_last_run(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = _run(capsys, "ps", BUSY, "-m", "--json")
    rows = json.loads(out)["tasks"]
    rc, sys_out, _ = _run(capsys, "sys", BUSY, "--json")
    uptime = json.loads(sys_out)["uptime_s"]
    assert rc == 0 and rows
    # newest first; running tasks ran just now; the runqueue clock is the TOD uptime
    arrivals = [r["last_arrival_ns"] for r in rows]
    assert arrivals == sorted(arrivals, reverse=True)
    running = [r for r in rows if r["cpu"] is not None]
    assert running and all(r["since_ns"] == 0 for r in running)
    assert all(abs(r["clock"] / 1e9 - uptime) < 1.0 for r in rows)
    assert all(0 <= r["since_ns"] <= r["clock"] for r in rows)
    rc, out, _ = _run(capsys, "ps", BUSY, "-m")
    assert re.match(r"\[\s+0 00:00:\d\d\.\d{3}\] ", out)


SCRIPT = """\
sys
ps -S
bt --pid 1
set 1
task -m comm
bt
struct list_head init_task
rd linux_banner 2
nosuch
quit
ps
"""


def test_shell_equals_one_shot_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(SCRIPT))
    rc, out, err = _run(capsys, "shell", PANIC)
    assert rc in (0, 2)
    assert "'nosuch' is not a shell command" in err
    expected = []
    for argv in (
        ["sys", PANIC],
        ["ps", PANIC, "-S"],
        ["bt", PANIC, "--pid", "1"],
    ):
        expected.append(_run(capsys, *argv)[1])
    expected.append("PID: 1       TASK: ")
    one_shot = "".join(expected[:3])
    assert out.startswith(one_shot)
    rest = out[len(one_shot) :]
    assert rest.startswith(expected[3]) and 'comm = "init",' in rest
    assert "(the task chosen with 'set': pid 1 init)" in rest
    tail = _run(capsys, "struct", PANIC, "list_head", "init_task")[1]
    tail += _run(capsys, "rd", PANIC, "linux_banner", "2")[1]
    assert rest.endswith(tail)  # nothing after quit


def test_shell_reads_stdin_in_a_subprocess() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "explorer", "shell", BUSY],
        input="ps --pid 1\nquit\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["PID", "PPID", "CPU", "TASK", "ST", "COMM"]
    assert lines[1].split()[-1] == "init" and len(lines) == 2


def test_shell_pipes_and_foreach_as_crash() -> None:
    """``bt | grep`` pipes to a shell command; ``foreach IN bt`` walks every task in S
    (crash's IN), as many as the guest's ps shows sleeping; a quoted | stays an argument."""
    import json as _json

    proc = subprocess.run(
        [sys.executable, "-m", "explorer", "shell", BUSY],
        input=(
            "bt --pid 2 | grep -c '^ #'\n"
            "foreach IN bt | grep -c '^PID:'\n"
            "ps --state S --json | grep -c '\"pid\"'\n"
            "sym 'a|b'\n"
            "quit\n"
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = proc.stdout.splitlines()
    facts = _json.loads((Path(BUSY).parent / "facts.json").read_text())
    kthreadd = next(t for t in facts["sysrq_t"] if t["pid"] == 2)
    assert lines[0] == str(len(kthreadd["functions"])) == "5"
    assert lines[1] == lines[2] and int(lines[1]) > 20
    assert "no symbol 'a|b'" in proc.stderr
