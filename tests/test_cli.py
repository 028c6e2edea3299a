"""The CLI as a user runs it: ps, bt, check, profile on synthetic kernels; bad input."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.kernel import Kernel
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks, task_state_letter
from tests.helpers.kernels import KTHREAD, NANOSLEEP_NAMES, base_kernel, open_synthetic, sleeper


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """swapper/0 on CPU 0, a sleeper (100), a kernel thread (101), a zombie (102)."""
    k = base_kernel()
    sleeper(k, 100, "sleep")
    kt = k.add_task(101, "kworker/0:1", "I", kthread=True)
    k.task_stack(
        kt,
        KTHREAD,
        user=False,
    )
    k.add_task(102, "defunct", "Z", with_stack=False)
    return k.save(tmp_path_factory.mktemp("cli"))


def test_ps(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ps", str(dump)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["PID", "PPID", "CPU", "TASK", "ST", "COMM"]
    rows = [line.split() for line in lines[1:]]
    assert [r[-2:] for r in rows] == [
        ["R", "[swapper/0]"],
        ["S", "sleep"],
        ["I", "[kworker/0:1]"],
        ["Z", "defunct"],
    ]
    assert rows[0][0] == ">"  # running


def test_ps_json(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ps", "--json", str(dump)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(t["pid"], t["comm"], t["state"], t["cpu"]) for t in doc["tasks"]] == [
        (0, "swapper/0", "R", 0),
        (100, "sleep", "S", None),
        (101, "kworker/0:1", "I", None),
        (102, "defunct", "Z", None),
    ]
    assert doc["tasks"][3]["stack"] is None and doc["warnings"] == []


def test_bt_text(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bt", str(dump), "--pid", "100"]) == 0
    out = capsys.readouterr().out
    assert "PID: 100" in out and 'COMM: "sleep"' in out
    assert " #0  [" in out and "__schedule+0x43c/0x1000" in out
    assert "USER-MODE pt_regs at" in out and "-- end: final pt_regs" in out
    assert "verdict: RELIABLE" in out
    assert "livepatch: sleep:100 can be switched" in out


def test_bt_steps_and_json(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bt", str(dump), "--pid", "100", "--steps"]) == 0
    out = capsys.readouterr().out
    assert "[  ok] on_known_stack" in out and "[  ok] final_pt_regs" in out
    assert main(["bt", str(dump), "--pid", "100", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [f["symbol"].split("+")[0] for f in doc["frames"]] == NANOSLEEP_NAMES
    assert doc["verdict"] == {
        "reliable": True,
        "rule": None,
        "detail": None,
        "frame": None,
        "message": doc["verdict"]["message"],
    }
    assert doc["frames"][0]["sp"].startswith("0x") and doc["end"]["kind"] == "final_pt_regs"


def test_bt_cpu_task_and_sp(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bt", str(dump), "--cpu", "0"]) == 0
    out = capsys.readouterr().out
    assert "UNRELIABLE: task_running" in out and "swapper/0:0 is running" in out
    assert main(["bt", str(dump), "--cpu", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"]["rule"] == "task_running"
    assert doc["verdict"]["as_current"]["reliable"] is True
    kernel = open_kernel(str(dump))
    task = find_tasks(kernel).by_pid(101)[0]
    assert main(["bt", str(dump), "--task", f"{task.address:x}", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["comm"] == "kworker/0:1" and doc["verdict"]["reliable"]
    assert main(["bt", str(dump), "--sp", f"{task.ksp:x}", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["frames"][0]["symbol"].startswith("__schedule") and len(doc["frames"]) == 6


def test_bt_markdown(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bt", str(dump), "--pid", "100", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("### Stack of sleep (pid 100")
    assert "| 0 | `0x" in out and "**Verdict: reliable**" in out


def test_bt_unknown_pid(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bt", str(dump), "--pid", "4242"]) == 2
    assert "no task with pid 4242" in capsys.readouterr().err


def test_check_summary_and_functions(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(dump), "--functions", "do_nanosleep,foo", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "4 tasks: 3 reliable, 1 not (rules: current)"
    assert "      3  reliable" in out and "      1  task_running" in out
    assert "sleep:100 is sleeping on function do_nanosleep" in out
    assert "swapper/0:0 is running" in out
    assert (
        "livepatch transition for do_nanosleep, foo: 2 tasks would block it: "
        "1 sleeping on do_nanosleep, 1 with an unreliable stack" in out
    )


def test_check_json(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(dump), "--json"]) == 0
    docs = json.loads(capsys.readouterr().out)
    assert {d["pid"]: d["verdict"]["rule"] for d in docs} == {
        0: "task_running",
        100: None,
        101: None,
        102: None,
    }
    assert set(docs[1]) >= {"pid", "comm", "task", "cpu", "frames", "verdict"}


def test_task_state_letters() -> None:
    assert [task_state_letter(s, 0) for s in (0, 1, 2, 0x104, 8, 0x40, 0x402, 0x1000)] == [
        "R",
        "S",
        "D",
        "T",
        "t",
        "P",
        "I",
        "D",
    ]
    assert task_state_letter(0x80, 0x20) == "Z" and task_state_letter(0x80, 0x10) == "X"


def _corrupt_list(tmp_path: Path, how: str) -> Kernel:
    k = base_kernel()
    a, _ = sleeper(k, 100)
    b, _ = sleeper(k, 101)
    sleeper(k, 102)
    off = k.offsets["task_struct.tasks"]
    if how == "loop":  # 101 points back to 100 instead of on to 102
        k.put_u64(b.address + off, a.address + off)
    else:  # 101 points into nowhere
        k.put_u64(b.address + off, 0x5555_0000_0000)
    return open_synthetic(k, tmp_path)


@pytest.mark.parametrize(("how", "words"), [("loop", "loops back to"), ("bad", "unreadable")])
def test_corrupted_task_list_ends_with_a_warning(
    tmp_path: Path, how: str, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    kernel = _corrupt_list(tmp_path, how)
    scan = find_tasks(kernel)
    assert [t.pid for t in scan.tasks] == [0, 100, 101]
    assert len(scan.warnings) == 1 and words in scan.warnings[0]
    assert main(["ps", str(tmp_path / "vmcore")]) == 0
    captured = capsys.readouterr()
    assert "warning: init_task.tasks" in captured.err and "sleep" in captured.out


def test_profile_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = Path(__file__).parent / "data" / "types_mock.o"
    out = tmp_path / "p.profile.json"
    assert main(["profile", str(obj), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "needed" in text and str(out) in text
    assert json.loads(out.read_text())["format"] == "backchain-profile"


def test_prefix_outside_memory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    k = base_kernel()
    path = k.save(tmp_path)
    raw = bytearray(path.read_bytes())
    note = raw.find(b"LINUX\0\0\0")  # first NT_S390_PREFIX descriptor follows the name
    struct.pack_into(">I", raw, note + 8, 0x7FFFE000)
    path.write_bytes(bytes(raw))
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "prefix register 0x7fffe000 points outside" in err


def test_ps_verbose_names_offset_sources(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ps", "-v", str(dump)]) == 0
    err = capsys.readouterr().err
    assert "offset task_struct.pid = 0x788 (profile:" in err
    assert "offset task_struct.thread.ksp = 0xd50" in err
