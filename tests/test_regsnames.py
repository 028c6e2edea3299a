"""Names for raw pt_regs values and lowcore PSW addresses, against the kernel's own code
(copy_thread() in arch/s390/kernel/process.c) and the guests' facts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"


def test_a_kernel_threads_final_pt_regs_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    """kthreadd's final pt_regs: copy_thread() left PSW address 0, r9 = the thread function
    (kthreadd, its own sysrq-t trace's function), orig_gpr2 -1, last_break 1."""
    dump = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
    facts = json.loads((SAMPLES / "bpo12-6.12-busy" / "facts.json").read_text())
    trace = next(t for t in facts["sysrq_t"] if t["pid"] == 2)
    assert trace["functions"][2] == "kthreadd"
    assert main(["bt", dump, "--pid", "2"]) == 0
    out = capsys.readouterr().out
    (psw,) = [ln for ln in out.splitlines() if "PSW:" in ln]
    assert psw.endswith(
        "0x0000000000000000 (none: a kernel thread's, from copy_thread(), never returned to; "
        "r9 = kthreadd)"
    )
    assert "last_break 0x0000000000000001 (1 from copy_thread(): no break yet)" in out
    assert "(?)" not in out


def test_a_psw_in_the_lowcore_is_named_by_its_field(capsys: pytest.CaptureFixture[str]) -> None:
    """The 7.2 guest's CPUs stopped on the lpswe the kernel keeps at lowcore offset 0x400
    (struct lowcore.return_lpswe in the dump's own BTF)."""
    from explorer.model.opening import open_kernel

    dump = str(SAMPLES / "sid-7.2-modules" / "vmcore.zst")
    kernel = open_kernel(dump)
    assert kernel.types is not None and kernel.types.offset("lowcore.return_lpswe") == 0x400
    assert main(["info", dump, "--json"]) == 0
    cpus = json.loads(capsys.readouterr().out)["cpus"]
    assert [c["psw"]["addr"] for c in cpus] == ["0x400", "0x400"]
    assert {c["psw"]["symbol"] for c in cpus} == {"return_lpswe (lowcore+0x400)"}


def test_task_shows_an_address_kept_in_an_unsigned_long_in_hex(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """thread.ksp is an unsigned long holding a stack pointer: hex (the same value ps --json
    reports); a counter next to it (system_timer) stays decimal."""
    dump = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
    assert main(["ps", dump, "--pid", "1", "--json"]) == 0
    ksp = json.loads(capsys.readouterr().out)["tasks"][0]["ksp"]
    assert main(["task", dump, "1", "-m", "thread.ksp,thread.system_timer"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == f"thread.ksp = {ksp},"
    assert lines[2].startswith("thread.system_timer = ") and lines[2][22:-1].isdigit()
