"""The bundled real QEMU dumps as truth: what the guest printed before it was dumped
(facts.json: /proc, ps and the kernel's own sysrq-t Call Traces) against what we read."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from explorer.analysis import TaskAnalysis, analyse_task, unwind_context
from explorer.cli import main
from explorer.kernel import Kernel
from explorer.tasks import TaskScan, find_tasks

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAMES = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())

#: Tasks that ran or changed state between the guest's printout and the dump: init (it wrote
#: the sysrq trigger, then waits), the CPU hogs (sh loop, dd), and in the idle 6.1 guest the
#: RCU grace-period thread, which went from its fqs wait to waiting for the next period.
MOVED = {
    "bpo12-6.12-busy": {1, 158, 159},
    "bpo12-6.12-nmi": {1, 157, 158},
    "bpo12-6.12-panic": {1, 155, 156},
    "deb12-6.1-idle": {1, 14},
}


@cache
def _open(name: str) -> tuple[Kernel, TaskScan, dict, dict[int, TaskAnalysis]]:
    kernel = Kernel.open(str(SAMPLES / name / "vmcore.zst"))
    scan = find_tasks(kernel)
    facts = json.loads((SAMPLES / name / "facts.json").read_text())
    ctx = unwind_context(kernel)
    analyses = {}
    for task in scan.tasks:
        analyses.setdefault(task.pid, analyse_task(kernel, task, ctx))
    return kernel, scan, facts, analyses


def test_every_sample_is_listed() -> None:
    assert set(NAMES) == set(MOVED)


@pytest.mark.parametrize("name", NAMES)
def test_kernel_and_cpus(name: str) -> None:
    kernel, _, facts, _ = _open(name)
    assert kernel.release == facts["kernel_release"]
    assert len(kernel.cpus) == facts["cpus"]
    for cpu, truth in zip(kernel.cpus, facts["provenance"]["dump_cpus"], strict=True):
        assert cpu.number == truth["cpu"]
        assert cpu.registers.psw.mask == int(truth["psw_mask"], 16)
        assert cpu.registers.psw.addr == int(truth["psw_addr"], 16)
        assert cpu.lowcore is not None and cpu.lowcore.cpu_nr == truth["cpu"]
        # QEMU takes registers from the vCPU, not by store-status: the save area stays empty.
        assert cpu.lowcore.sa_prefix == 0 and cpu.registers.pid_swapped
        assert cpu.current_task and cpu.stack("irq") and cpu.stack("restart")
    if kernel.release.startswith("6.12"):
        assert kernel.layout.kind == "split" and kernel.kaslr_offset == 0x3FFFE854000
    else:
        assert kernel.layout.kind == "legacy"
    assert kernel.types is not None and kernel.thread_size == 16384
    assert kernel.pt_regs_size == 200


@pytest.mark.parametrize("name", NAMES)
def test_ps_matches_the_guest(name: str) -> None:
    _, scan, facts, _ = _open(name)
    found = {t.pid: t for t in scan.tasks}
    assert not scan.warnings
    for truth in facts["proc_stat"]:
        task = found[truth["pid"]]
        # task->comm holds 15 characters; ps appends a kworker's workqueue after "-".
        assert truth["comm"].startswith(task.comm) and len(task.comm) >= min(
            15, len(truth["comm"].split("-")[0])
        )
        if truth["pid"] not in MOVED[name] | {17}:
            assert task.state == truth["state"], truth
        assert task.ppid == truth["ppid"] or truth["pid"] == 1
    idle = [t for t in scan.tasks if t.pid == 0]
    assert sorted(t.comm for t in idle) == [f"swapper/{i}" for i in range(facts["cpus"])]


@pytest.mark.parametrize("name", NAMES)
def test_walks_match_the_kernels_own_call_traces(name: str) -> None:
    kernel, _, facts, analyses = _open(name)
    compared = 0
    for trace in facts["sysrq_t"]:
        pid = trace["pid"]
        if pid in MOVED[name] or pid not in analyses:
            continue
        a = analyses[pid]
        got = [kernel.symbols.lookup(s.ip).name for s in a.walk.steps]
        assert got == trace["functions"], (pid, trace["comm"])
        assert [s.reliable for s in a.walk.steps] == [f["reliable"] for f in trace["frames"]]
        assert a.walk.end.kind == "final_pt_regs"
        assert a.verdict.reliable, (pid, a.verdict)
        compared += 1
    assert compared >= 55
    names = [kernel.symbols.lookup(s.ip).name for s in analyses[2].walk.steps]  # kthreadd
    assert names == ["__schedule", "schedule", "kthreadd", "__ret_from_fork", "ret_from_fork"]


@pytest.mark.parametrize("name", NAMES)
def test_running_tasks_start_from_cpu_registers(name: str) -> None:
    kernel, scan, _, analyses = _open(name)
    for cpu in kernel.cpus:
        task = scan.by_address(cpu.current_task or 0)
        assert task is not None and task.cpu == cpu.number
        a = analyses[task.pid] if task.pid else None
        if a is not None and a.task.address == task.address:
            assert a.verdict.rule == "task_running"
            assert a.livepatch.endswith("is running")


def test_irq_stack_walk_in_busy_sample() -> None:
    """CPU 1 of the busy 6.12 guest was inside an external interrupt on the sh loop."""
    kernel, _, _, analyses = _open("bpo12-6.12-busy")
    a = analyses[158]
    stacks = [s.stack_type for s in a.walk.steps]
    assert stacks[:6] == ["irq"] * 6 and stacks[6:] == ["task", "task"]
    assert [kernel.symbols.lookup(s.ip).name for s in a.walk.steps[5:]] == [
        "do_irq_async",
        "do_ext_irq",
        "ext_int_handler",
    ]
    assert a.walk.end.kind == "final_pt_regs" and a.walk.end.regs.user_mode
    assert a.verdict.as_current is not None and a.verdict.as_current.rule == "not_task_stack"


def test_check_cli_gives_every_task_a_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", str(SAMPLES / "deb12-6.1-idle" / "vmcore.zst")]) == 0
    docs = json.loads(capsys.readouterr().out)
    _, scan, _, _ = _open("deb12-6.1-idle")
    assert len(docs) == len(scan.tasks)
    assert all(d["verdict"]["rule"] in (None, "task_running") for d in docs)
    assert sum(1 for d in docs if d["verdict"]["rule"] == "task_running") == 2


@pytest.mark.parametrize("name", NAMES)
def test_check_fast_path_equals_display_walk(name: str) -> None:
    kernel, scan, _, _ = _open(name)
    ctx = unwind_context(kernel)
    for task in scan.tasks:
        slow = analyse_task(kernel, task, ctx)
        fast = analyse_task(kernel, task, ctx, detailed=False)
        shape = [(s.sp, s.ip, s.stack_type, s.how, s.reliable) for s in slow.walk.steps]
        assert [(s.sp, s.ip, s.stack_type, s.how, s.reliable) for s in fast.walk.steps] == shape
        assert fast.verdict == slow.verdict


@pytest.mark.parametrize("name", NAMES)
def test_kernel_log(name: str) -> None:
    from explorer.printk import panic_info, read_log

    kernel, _, facts, _ = _open(name)
    log = read_log(kernel)
    assert log[0].text.startswith(f"Linux version {facts['kernel_release']} ")
    assert [r.seq for r in log] == sorted(r.seq for r in log)
    assert any("BACKCHAIN-READY" in r.text for r in log) or "sysrq: Show State" in "".join(
        r.text for r in log
    )
    panic = panic_info(kernel, log)
    if name.endswith("panic"):
        assert panic.cpu == 0
        assert panic.message == "Kernel panic - not syncing: sysrq triggered crash"
    else:
        assert panic.cpu is None and panic.message is None


def test_log_and_info_cli(capsys: pytest.CaptureFixture[str]) -> None:
    dump = str(SAMPLES / "bpo12-6.12-panic" / "vmcore.zst")
    assert main(["log", dump, "--grep", "Kernel panic", "--json"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert rec["text"] == "Kernel panic - not syncing: sysrq triggered crash"
    assert main(["info", dump]) == 0
    assert (
        "PANIC        on CPU 0 Kernel panic - not syncing: sysrq triggered crash"
        in capsys.readouterr().out
    )


@pytest.mark.parametrize("name", NAMES)
def test_no_modules_loaded(name: str) -> None:
    """The guests booted a busybox initramfs and loaded no module: the list is empty."""
    kernel, _, _, _ = _open(name)
    assert kernel.modules.modules == [] and kernel.modules.warnings == []
