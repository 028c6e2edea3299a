"""The bundled real QEMU dumps as truth: what the guest printed before it was dumped
(facts.json: /proc, ps and the kernel's own sysrq-t Call Traces) against what we read."""

from __future__ import annotations

import json

import pytest

from explorer.cli import main
from explorer.walk.analysis import analyse_task, unwind_context
from explorer.walk.unwind import era_for_release
from parsers.s390.layouts import lowcore_era_for_release
from tests.helpers.real import (
    MOVED,
    NAMES,
    OWN_FILE,
    SAMPLES,
    check_ps,
    compare_walks,
    era_facts,
    open_sample,
)


def test_every_sample_is_listed() -> None:
    assert set(NAMES) | OWN_FILE == set(MOVED)


@pytest.mark.parametrize("name", NAMES)
def test_kernel_and_cpus(name: str) -> None:
    kernel, _, facts, _ = open_sample(name)
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
    size, layout, lowcore_era, rules, stacks = era_facts(kernel)
    assert kernel.types.size("pt_regs") == size and kernel.pt_regs_size == size
    assert kernel.pt_regs_layout == layout
    assert era_for_release(kernel.release) == rules == unwind_context(kernel).era
    # the lowcore layout comes from the kernel's types (bundled DWARF profile, BTF); the era
    # table of the release is only the fallback
    assert lowcore_era_for_release(kernel.release) == lowcore_era
    assert kernel.lowcore_source.startswith(("btf:", "dwarf:", "profile:"))
    assert kernel.pt_regs_source.startswith(("btf:", "dwarf:", "profile:"))
    for cpu in kernel.cpus:
        assert cpu.lowcore is not None and cpu.lowcore.era == kernel.lowcore_era
        assert [s.stack_type for s in cpu.stacks] == stacks
        assert (cpu.lowcore.mcck_stack is None) == ("mcck" not in stacks)
    # task_struct.state was a long until v5.14 renamed it to an unsigned int __state.
    state = kernel.types.first_of("task_struct.__state", "task_struct.state")
    assert (state, kernel.types.sizes[state]) == (
        ("task_struct.state", 8) if rules == "v5.5" else ("task_struct.__state", 4)
    )


@pytest.mark.parametrize("name", NAMES)
def test_ps_matches_the_guest(name: str) -> None:
    check_ps(name)


@pytest.mark.parametrize("name", NAMES)
def test_walks_match_the_kernels_own_call_traces(name: str) -> None:
    kernel, _, _, analyses = open_sample(name)
    compared = compare_walks(name)
    assert compared >= (54 if kernel.release.startswith("5.10.") else 55)
    names = [kernel.symbols.lookup(s.ip).name for s in analyses[2].walk.steps]  # kthreadd
    if kernel.release.startswith("5.10."):
        # Before generic entry (v5.12) ret_from_fork called the thread function itself.
        assert names == ["__schedule", "schedule", "kthreadd", "ret_from_fork"]
        final = analyses[2].walk.end.regs
        assert final is not None and not final.user_mode
        assert kernel.symbols.lookup(final.psw.addr).name == "kernel_thread_starter"
    else:
        assert names == ["__schedule", "schedule", "kthreadd", "__ret_from_fork", "ret_from_fork"]


@pytest.mark.parametrize("name", NAMES)
def test_running_tasks_start_from_cpu_registers(name: str) -> None:
    kernel, scan, _, analyses = open_sample(name)
    for cpu in kernel.cpus:
        task = scan.by_address(cpu.current_task or 0)
        assert task is not None and task.cpu == cpu.number
        a = analyses[task.pid] if task.pid else None
        if a is not None and a.task.address == task.address:
            assert a.verdict.rule == "task_running"
            assert a.livepatch.endswith("is running")


def test_irq_stack_walk_in_busy_sample() -> None:
    """CPU 1 of the busy 6.12 guest was inside an external interrupt on the sh loop."""
    kernel, _, _, analyses = open_sample("bpo12-6.12-busy")
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


def test_v5_irq_entry_builds_pt_regs_at_the_top_of_the_irq_stack() -> None:
    """Rebuilt 5.10, CPU 0: the sh loop took an external interrupt in user mode. Before the
    v5.12 generic-entry rework, ext_int_handler itself switched to the async stack and put
    the user-mode pt_regs at its top; the v5.5 rules end the walk there (is_final_pt_regs)."""
    kernel, _, _, analyses = open_sample("rebuilt-5.10-busy")
    a = analyses[171]
    assert a.cpu == 0
    assert [kernel.symbols.lookup(s.ip).name for s in a.walk.steps] == [
        "__hrtimer_next_event_base",
        "hrtimer_interrupt",
        "do_IRQ",
        "ext_int_handler",
    ]
    assert {s.stack_type for s in a.walk.steps} == {"irq"}
    irq = kernel.cpus[0].stack("irq")
    end = a.walk.end
    assert irq is not None and end.kind == "final_pt_regs" and end.regs.user_mode
    assert end.regs.address == irq.end - 184
    assert a.verdict.as_current is not None and a.verdict.as_current.rule == "not_task_stack"


def test_cpu_stopped_on_svc_entry_from_user_mode() -> None:
    """Rebuilt 5.10, CPU 1: dd was stopped on system_call+0 (the SVC new PSW) with its user
    registers still loaded: no kernel frames, not an unwind error on its user r15."""
    kernel, _, _, analyses = open_sample("rebuilt-5.10-busy")
    cpu = kernel.cpus[1]
    assert kernel.symbols.lookup(cpu.registers.psw.addr).name == "system_call"
    a = analyses[172]
    assert a.cpu == 1 and a.walk.steps == () and a.walk.end.kind == "user_regs"
    assert a.walk.end.regs.psw == cpu.lowcore.old_psws["svc"]


def test_check_cli_gives_every_task_a_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--json", str(SAMPLES / "deb12-6.1-idle" / "vmcore.zst")]) == 0
    docs = json.loads(capsys.readouterr().out)
    _, scan, _, _ = open_sample("deb12-6.1-idle")
    assert len(docs) == len(scan.tasks)
    assert all(d["verdict"]["rule"] in (None, "task_running") for d in docs)
    assert sum(1 for d in docs if d["verdict"]["rule"] == "task_running") == 2


@pytest.mark.parametrize("name", NAMES)
def test_check_fast_path_equals_display_walk(name: str) -> None:
    kernel, scan, _, _ = open_sample(name)
    ctx = unwind_context(kernel)
    for task in scan.tasks:
        slow = analyse_task(kernel, task, ctx)
        fast = analyse_task(kernel, task, ctx, detailed=False)
        shape = [(s.sp, s.ip, s.stack_type, s.how, s.reliable) for s in slow.walk.steps]
        assert [(s.sp, s.ip, s.stack_type, s.how, s.reliable) for s in fast.walk.steps] == shape
        assert fast.verdict == slow.verdict


@pytest.mark.parametrize("name", NAMES)
def test_kernel_log(name: str) -> None:
    from explorer.model.printk import panic_info, read_log

    kernel, _, facts, _ = open_sample(name)
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


#: The samples whose guest loaded no module (the *-modules ones: tests/test_real_modules.py).
WITHOUT_MODULES = [
    n for n in NAMES if "modules" not in json.loads((SAMPLES / n / "facts.json").read_text())
]


@pytest.mark.parametrize("name", WITHOUT_MODULES)
def test_no_modules_loaded(name: str) -> None:
    """The guests booted a busybox initramfs and loaded no module: the list is empty."""
    kernel, _, facts, _ = open_sample(name)
    assert "modules" not in facts
    assert kernel.modules.modules == [] and kernel.modules.warnings == []
