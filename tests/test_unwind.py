"""The unwinder and the reliability verdict on crafted stacks: one per rule and sub-kind,
in both eras, plus the normal endings and stack switches."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.model.tasks import find_tasks
from explorer.training.synthetic import KERNEL_PSW_MASK, USER_PSW_MASK, Frame, SyntheticKernel
from explorer.walk.analysis import analyse_task, unwind_context
from tests.helpers.kernels import (
    KTHREAD,
    NANOSLEEP,
    NANOSLEEP_NAMES,
    analyse,
    base_kernel,
    names,
    open_synthetic,
    sleeper,
)

ERAS = ["current", "v5.5"]


def _one(tmp_path: Path, era: str, build) -> tuple:
    """Build a base kernel, let ``build(k)`` add pid 100, open it and analyse pid 100."""
    k = base_kernel(era)
    build(k)
    kernel = open_synthetic(k, tmp_path)
    return kernel, analyse(kernel, 100)


@pytest.mark.parametrize("era", ERAS)
def test_user_task_in_syscall_is_reliable(tmp_path: Path, era: str) -> None:
    kernel, a = _one(tmp_path, era, lambda k: sleeper(k))
    assert a.walk.era == era
    assert names(kernel, a) == NANOSLEEP_NAMES
    assert a.walk.end.kind == "final_pt_regs" and a.walk.end.regs.user_mode
    assert a.verdict.reliable and a.verdict.rule is None
    assert len(a.verdict.entries) == 7
    assert a.livepatch == "sleep:100 can be switched to the new patch state"


@pytest.mark.parametrize("era", ERAS)
def test_kernel_thread_ends_at_kernel_pt_regs(tmp_path: Path, era: str) -> None:
    def build(k: SyntheticKernel) -> None:
        t = k.add_task(100, "kworker/0:1", "I", kthread=True)
        k.task_stack(t, KTHREAD, user=False)

    kernel, a = _one(tmp_path, era, build)
    assert names(kernel, a) == [
        "__schedule",
        "schedule",
        "worker_thread",
        "kthread",
        "__ret_from_fork",
        "ret_from_fork",
    ]
    assert a.walk.end.kind == "final_pt_regs" and not a.walk.end.regs.user_mode
    assert a.verdict.reliable


def test_idle_task_running_on_cpu(tmp_path: Path) -> None:
    kernel, _ = _one(tmp_path, "current", lambda k: sleeper(k))
    a = analyse(kernel, 0)
    assert a.cpu == 0
    assert names(kernel, a) == [
        "psw_idle_exit",
        "schedule_idle",
        "do_idle",
        "cpu_startup_entry",
        "start_kernel",
    ]
    assert a.walk.steps[0].how == "start_regs" and a.walk.end.kind == "final_pt_regs"
    assert (a.verdict.rule, a.verdict.reliable) == ("task_running", False)
    assert a.livepatch == "swapper/0:0 is running"
    assert a.verdict.as_current is not None and a.verdict.as_current.reliable


def _preempted(k: SyntheticKernel, psw_offset: int = 0x20, guess_offset: int = 0x10) -> list[int]:
    """pid 100 preempted in pipe_read by an external interrupt (kernel-mode pt_regs)."""
    t = k.add_task(100, "cat", "R")
    upper = [
        Frame("pipe_read", guess_offset),
        Frame("vfs_read", 0x80),
        Frame("ksys_read", 0x70),
        Frame("__do_syscall", 0x280, size=0x1E8),
        Frame("system_call", 0x78),
    ]
    sps_up = k.task_stack(t, upper)
    interrupted = sps_up[0]
    entry = interrupted - 0x200
    k.write_pt_regs(
        entry + 160,
        psw=(KERNEL_PSW_MASK, k.ip("pipe_read", psw_offset)),
        gprs={15: interrupted, 14: k.ip("vfs_read", 0x80)},
        int_code=0x1004,
    )
    lower = [
        Frame("__schedule", 0x43C),
        Frame("preempt_schedule_irq", 0x40),
        Frame("irqentry_exit", 0x60),
        Frame("ext_int_handler", 0xCC),
    ]
    sps_low = k.lay_frames(entry, lower)
    k.set_ksp(t, sps_low[0])
    return sps_low + sps_up


@pytest.mark.parametrize("era", ERAS)
def test_crossed_pt_regs(tmp_path: Path, era: str) -> None:
    kernel, a = _one(tmp_path, era, _preempted)
    assert names(kernel, a) == [
        "__schedule",
        "preempt_schedule_irq",
        "irqentry_exit",
        "ext_int_handler",
        "pipe_read",
        "(pipe_read)",
        "vfs_read",
        "ksys_read",
        "__do_syscall",
        "system_call",
    ]
    step = a.walk.steps[4]
    assert step.how == "pt_regs" and step.regs is not None and step.regs.code == 0x1004
    assert (a.verdict.rule, a.verdict.frame) == ("crossed_pt_regs", 4)
    assert a.walk.end.kind == "final_pt_regs"
    assert a.livepatch == "cat:100 has an unreliable stack"


def test_r14_guess_equal_to_psw_is_skipped_only_in_current_era(tmp_path: Path) -> None:
    def build(k: SyntheticKernel) -> None:
        _preempted(k, psw_offset=0x20, guess_offset=0x20)

    kernel, a = _one(tmp_path / "c", "current", build)
    assert "(pipe_read)" not in names(kernel, a)
    assert any(c.id == "r14_guess" and "equals the PSW" in c.reason for c in a.walk.steps[5].checks)
    kernel, a = _one(tmp_path / "o", "v5.5", build)
    assert names(kernel, a)[5] == "(pipe_read)"


@pytest.mark.parametrize("era", ERAS)
def test_return_address_not_text(tmp_path: Path, era: str) -> None:
    frames = list(NANOSLEEP)
    frames[2] = Frame("do_nanosleep", r14=0x0BAD0000)
    _kernel, a = _one(tmp_path, era, lambda k: sleeper(k, frames=frames))
    assert a.walk.steps[2].ip == 0x0BAD0000 and len(a.walk.steps) == 7
    assert (a.verdict.rule, a.verdict.frame) == ("return_address_not_text", 2)
    assert a.walk.end.kind == "final_pt_regs"  # the walk itself goes on


def test_kretprobe_trampoline_v55(tmp_path: Path) -> None:
    def build(k: SyntheticKernel) -> None:
        frames = list(NANOSLEEP)
        frames[3] = Frame("hrtimer_nanosleep", r14=k.ip("__kretprobe_trampoline"))
        sleeper(k, frames=frames)

    _kernel, a = _one(tmp_path, "v5.5", build)
    assert (a.verdict.rule, a.verdict.frame) == ("kretprobe_trampoline", 3)


def test_rethook_recovered_or_zero_in_current_era(tmp_path: Path) -> None:
    def build(k: SyntheticKernel, with_instance: bool) -> None:
        frames = list(NANOSLEEP)
        tramp = k.ip("arch_rethook_trampoline")
        frames[3] = Frame("hrtimer_nanosleep", r14=tramp)
        task, sps = sleeper(k, frames=frames)
        if with_instance:  # rethook_node: llist at 0x10, ret_addr 0x20, frame 0x28
            node = k.alloc(0x40)
            k.put_u64(node + 0x20, k.ip("hrtimer_nanosleep", 0x74))
            k.put_u64(node + 0x28, sps[3])
            k.put_u64(task.address + k.offsets["task_struct.kretprobe_instances"], node + 0x10)

    kernel, a = _one(tmp_path / "a", "current", lambda k: build(k, True))
    assert names(kernel, a) == NANOSLEEP_NAMES
    assert a.walk.steps[3].recovered_by == "rethook" and a.verdict.reliable
    kernel, a = _one(tmp_path / "b", "current", lambda k: build(k, False))
    assert a.walk.steps[3].ip == 0
    assert (a.verdict.rule, a.verdict.frame) == ("return_address_not_text", 3)


@pytest.mark.parametrize(
    ("resolved", "era"), [(True, "current"), (False, "current"), (True, "v5.5")]
)
def test_ftrace_graph_return_to_handler(tmp_path: Path, resolved: bool, era: str) -> None:
    def build(k: SyntheticKernel) -> None:
        frames = list(NANOSLEEP)
        frames[2] = Frame("do_nanosleep", r14=k.ip("return_to_handler"))
        task, sps = sleeper(k, frames=frames)
        o = k.offsets
        array = k.alloc(32 * 4)
        k.put_u64(array + o["ftrace_ret_stack.ret"], k.ip("do_nanosleep", 0x5E))
        k.put_u64(array + o["ftrace_ret_stack.retp"], sps[2] if resolved else 0x1234)
        k.put_u64(task.address + o["task_struct.ret_stack"], array)
        k.write(task.address + o["task_struct.curr_ret_stack"], (0).to_bytes(4, "big"))

    kernel, a = _one(tmp_path, era, build)
    step = a.walk.steps[2]
    assert step.raw_ip == kernel.symbols.address_of("return_to_handler")
    if resolved:
        assert names(kernel, a) == NANOSLEEP_NAMES and step.recovered_by == "ftrace_graph"
    else:
        assert names(kernel, a)[2] == "return_to_handler"
        assert any(c.id == "not_trampoline" and c.ok is None for c in step.checks)
    assert a.verdict.reliable  # the kernel accepts the trampoline as kernel text


@pytest.mark.parametrize("era", ERAS)
def test_too_many_entries(tmp_path: Path, era: str) -> None:
    deep = [Frame("__schedule", 0x43C, size=160)] + [Frame("kthread", 0x10, size=160)] * 98
    deep.append(Frame("system_call", 0x78, size=160))

    _, a = _one(tmp_path, era, lambda k: sleeper(k, frames=deep))
    assert len(a.walk.steps) == 100 and a.walk.end.kind == "final_pt_regs"
    assert (a.verdict.rule, a.verdict.frame) == ("too_many_entries", 99)
    _kernel, a = _one(tmp_path / "99", era, lambda k: sleeper(k, frames=deep[1:]))
    assert len(a.walk.steps) == 99 and a.verdict.reliable


def _bad_chain(index: int, value) -> callable:
    def build(k: SyntheticKernel) -> None:
        task, sps = sleeper(k)
        k.put_u64_va(sps[index] + 0x98, value(k, task, sps))

    return build


UNWIND_ERRORS = [
    ("sp_misaligned", 2, lambda k, t, sps: sps[3] + 4, 2),
    ("sp_outside_stack", 2, lambda k, t, sps: 0x3000000, 2),
    ("sp_not_increasing", 3, lambda k, t, sps: sps[1], 3),
    ("sp_not_increasing", 3, lambda k, t, sps: sps[3], 3),
    ("no_room_for_frame", 1, lambda k, t, sps: t.stack_top - 80, 1),
]


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(("detail", "index", "value", "frame"), UNWIND_ERRORS)
def test_unwind_errors(
    tmp_path: Path, era: str, detail: str, index: int, value, frame: int
) -> None:
    _kernel, a = _one(tmp_path, era, _bad_chain(index, value))
    assert a.walk.end.kind == "error" and a.walk.end.detail == detail
    assert len(a.walk.steps) == index + 1
    assert (a.verdict.rule, a.verdict.detail, a.verdict.frame) == ("unwind_error", detail, frame)
    assert any(c.ok is False for c in a.walk.end.checks)


@pytest.mark.parametrize("era", ERAS)
def test_pt_regs_outside_stack(tmp_path: Path, era: str) -> None:
    def build(k: SyntheticKernel) -> None:
        task, sps = sleeper(k)
        high = task.stack_top - 200  # room for a frame, not for frame + pt_regs
        k.write_frame(high, r14=k.ip("system_call", 0x78), back_chain=0)
        k.put_u64_va(sps[4] + 0x98, high)

    kernel, a = _one(tmp_path, era, build)
    assert names(kernel, a) == [*NANOSLEEP_NAMES[:5], "system_call"]
    assert a.walk.end.detail == "pt_regs_outside_stack"
    assert (a.verdict.rule, a.verdict.detail, a.verdict.frame) == (
        "unwind_error",
        "pt_regs_outside_stack",
        5,
    )


def test_unreadable_memory(tmp_path: Path) -> None:
    def build(k: SyntheticKernel) -> None:
        frames = list(NANOSLEEP)
        frames[4] = Frame("__do_sys_clock_nanosleep", 0xEC, size=0x1000)  # next page down
        _task, sps = sleeper(k, frames=frames)
        assert sps[4] >> 12 != sps[5] >> 12
        del k.pages[k.va_to_pa(sps[5]) & ~0xFFF]  # the page of the outer frames is lost

    _, a = _one(tmp_path, "current", build)
    assert len(a.walk.steps) == 5
    assert (a.verdict.rule, a.verdict.detail, a.verdict.frame) == (
        "unwind_error",
        "unreadable_memory",
        4,
    )


def test_exited_task_without_stack(tmp_path: Path) -> None:
    _kernel, a = _one(
        tmp_path, "current", lambda k: k.add_task(100, "zombie", "Z", with_stack=False)
    )
    assert a.task.state == "Z" and a.walk.steps == () and a.walk.end.kind == "no_stack"
    assert a.verdict.reliable


# -- stack switches of a running task -----------------------------------------------------------
def _irq_kernel(era: str, via: str) -> SyntheticKernel:
    """pid 100 running on CPU 1, interrupted in user mode, now in an IRQ handler."""
    k = base_kernel(era, cpus=1)
    task = k.add_task(100, "sh", "R", cpu=1)
    # Task stack: entry frame (back chain 0) with the user pt_regs above it.
    top = task.stack + k.stack_init_offset
    k.write_pt_regs(top + 160, psw=(USER_PSW_MASK, 0x10DBC64), gprs={15: 0x3FFC1DF95D0})
    irq_base = k.irq_stack(1) if len(k.cpu_stacks) > 1 else None
    k.cpu_stacks.append(
        {
            "irq": k.vmalloc(16384, 16384)[0],
            "nodat": k.alloc(16384, 16384),
            "restart": k.restart_stack,
            **({"mcck": k.vmalloc(16384, 16384)[0]} if k.has_mcck else {}),
        }
    )
    k._ncpus = 2
    irq_base = k.irq_stack(1)
    irq_top = k.stack_top_frame(irq_base)
    if via == "backchain":  # call_on_stack: the IRQ stack's top frame chains to the task stack
        task_sps = k.lay_frames(top, [Frame("do_ext_irq", 0xB2), Frame("ext_int_handler", 0xCC)])
        irq_sps = k.lay_frames(
            irq_top,
            [
                Frame("do_ext_interrupt", 0xAC),
                Frame("handle_irq_desc", 0x56),
                Frame("do_irq_async", 0x5A),
            ],
            last_back_chain=task_sps[0],
        )
    else:  # v5.5-style entry: pt_regs at the top of the IRQ stack point back to the task stack
        task_sps = k.lay_frames(
            top, [Frame("vfs_read", 0x80), Frame("ksys_read", 0x70), Frame("system_call", 0x78)]
        )
        k.write_pt_regs(
            irq_top + 160, psw=(KERNEL_PSW_MASK, k.ip("vfs_read", 0x40)), gprs={15: task_sps[0]}
        )
        irq_sps = k.lay_frames(
            irq_top,
            [
                Frame("do_ext_interrupt", 0xAC),
                Frame("do_irq_async", 0x5A),
                Frame("ext_int_handler", 0xCC),
            ],
        )
    k.run_on_cpu(
        1,
        task,
        (KERNEL_PSW_MASK, k.ip("do_ext_interrupt", 0x10)),
        {15: irq_sps[0], 14: k.ip("handle_irq_desc", 0x56)},
    )
    return k


@pytest.mark.parametrize("era", ERAS)
def test_irq_stack_to_task_stack_via_backchain(tmp_path: Path, era: str) -> None:
    kernel = open_synthetic(_irq_kernel(era, "backchain"), tmp_path)
    a = analyse(kernel, 100)
    assert a.cpu == 1
    assert names(kernel, a) == [
        "do_ext_interrupt",
        "(do_ext_interrupt)",
        "handle_irq_desc",
        "do_irq_async",
        "do_ext_irq",
        "ext_int_handler",
    ]
    stacks = [s.stack_type for s in a.walk.steps]
    assert stacks[0] == "irq" and stacks[-1] == "task"
    assert a.walk.end.kind == "final_pt_regs"
    assert a.verdict.rule == "task_running"
    assert a.verdict.as_current is not None and a.verdict.as_current.rule == "not_task_stack"


@pytest.mark.parametrize("era", ERAS)
def test_irq_stack_to_task_stack_via_pt_regs(tmp_path: Path, era: str) -> None:
    kernel = open_synthetic(_irq_kernel(era, "pt_regs"), tmp_path)
    a = analyse(kernel, 100)
    hows = [(s.stack_type, s.how) for s in a.walk.steps]
    assert ("task", "pt_regs") in hows
    assert names(kernel, a) == [
        "do_ext_interrupt",
        "(do_ext_interrupt)",
        "do_irq_async",
        "ext_int_handler",
        "vfs_read",
        "(vfs_read)",
        "ksys_read",
        "system_call",
    ]
    assert a.walk.end.kind == "final_pt_regs"


@pytest.mark.parametrize("era", ERAS)
def test_cpu_on_interrupt_entry_from_user_mode(tmp_path: Path, era: str) -> None:
    """A CPU stopped on the first instruction of ext_int_handler (PSW == external new PSW)
    still holds the user registers of the interrupted sh loop (rebuilt 5.10 dump, CPU 0):
    start from the user old PSW, i.e. no kernel frames, not an unwind error on user r15."""
    k = base_kernel(era, cpus=2)
    t = k.add_task(100, "sh", "R", cpu=1)
    k.task_stack(t, NANOSLEEP)
    entry = (0x0404C00180000000, k.ip("ext_int_handler"))
    k.run_on_cpu(1, t, entry, {15: 0x3FFF927EB68, 14: 0x1000D00})
    k.cpus[-1].lowcore["external_new_psw"] = entry
    k.cpus[-1].lowcore["external_old_psw"] = (USER_PSW_MASK, 0x1000D20)
    kernel = open_synthetic(k, tmp_path)
    a = analyse(kernel, 100)
    assert a.cpu == 1 and a.walk.steps == ()
    assert a.walk.end.kind == "user_regs" and a.walk.end.regs.psw.addr == 0x1000D20
    assert a.verdict.rule == "task_running"
    assert a.verdict.as_current is not None and a.verdict.as_current.reliable


@pytest.mark.parametrize("era", ERAS)
def test_cpu_on_lowcore_return_lpswe(tmp_path: Path, era: str) -> None:
    """A CPU stopped on the lpswe kept in the lowcore (PSW address 0x400) is returning to
    user space with the user's registers: start from lowcore.return_psw."""
    k = base_kernel(era, cpus=2)
    t = k.add_task(100, "dd", "R", cpu=1)
    k.task_stack(t, NANOSLEEP)
    k.run_on_cpu(
        1, t, (KERNEL_PSW_MASK & ~0x0300000000000000, 0x400), {15: 0x3FFF927EB68, 14: 0x1000D00}
    )
    k.cpus[-1].lowcore["return_psw"] = (USER_PSW_MASK, 0x1000E40)
    a = analyse(open_synthetic(k, tmp_path), 100)
    assert a.walk.steps == () and a.walk.end.kind == "user_regs"
    assert a.walk.end.regs.psw.addr == 0x1000E40


@pytest.mark.parametrize("era", ERAS)
def test_stack_revisited(tmp_path: Path, era: str) -> None:
    k = _irq_kernel(era, "backchain")
    kernel_k = k
    # The task stack's ext_int_handler frame chains back into the IRQ stack.
    irq_top = kernel_k.stack_top_frame(kernel_k.irq_stack(1))
    task = kernel_k.tasks[-1]
    outer = task.stack + kernel_k.stack_init_offset
    kernel_k.put_u64_va(outer + 0x98, irq_top - 0x10)
    kernel = open_synthetic(kernel_k, tmp_path)
    a = analyse(kernel, 100)
    assert a.walk.end.detail == "stack_revisited"
    assert a.verdict.as_current is not None
    assert a.verdict.as_current.rule == "not_task_stack"


def test_era_is_picked_from_release_and_overridable(tmp_path: Path) -> None:
    k = base_kernel("v5.5")
    sleeper(k)
    path = k.save(tmp_path)
    from explorer.model.kernel import Options
    from explorer.model.opening import open_kernel

    assert unwind_context(open_kernel(str(path))).era == "v5.5"
    kernel = open_kernel(str(path), Options(era="current"))
    assert unwind_context(kernel).era == "current"
    assert kernel.pt_regs_size == 184 and not any(c.stack("mcck") for c in kernel.cpus)


def test_walk_terminates_on_garbage(tmp_path: Path) -> None:
    """Random stack contents: every walk ends (error or not) within the bound."""
    import random

    k = base_kernel("current")
    task, _sps = sleeper(k)
    rnd = random.Random(7)
    for off in range(0, 16384, 8):
        value = rnd.choice(
            [
                rnd.getrandbits(64),
                task.stack + rnd.randrange(0, 16384),
                task.stack + rnd.randrange(0, 16384) & ~7,
                0,
            ]
        )
        k.put_u64_va(task.stack + off, value)
    kernel = open_synthetic(k, tmp_path)
    scan = find_tasks(kernel)
    ctx = unwind_context(kernel)
    for t in scan.tasks:
        a = analyse_task(kernel, t, ctx)
        assert len(a.walk.steps) < 200
        assert a.walk.end.kind in ("error", "final_pt_regs", "no_stack")
        fast = analyse_task(kernel, t, ctx, detailed=False)
        assert _shape(fast.walk) == _shape(a.walk) and fast.verdict == a.verdict


def _shape(walk) -> tuple:
    return (
        tuple((s.sp, s.ip, s.raw_ip, s.stack_type, s.how, s.reliable) for s in walk.steps),
        walk.end.kind,
        walk.end.detail,
    )


@pytest.mark.parametrize("era", ERAS)
def test_fast_path_equals_display_path(tmp_path: Path, era: str) -> None:
    k = _irq_kernel(era, "pt_regs")
    sleeper(k, 200)
    _preempted_task = _preempted(k)
    kernel = open_synthetic(k, tmp_path)
    ctx = unwind_context(kernel)
    for t in find_tasks(kernel).tasks:
        slow, fast = analyse_task(kernel, t, ctx), analyse_task(kernel, t, ctx, detailed=False)
        assert _shape(fast.walk) == _shape(slow.walk)
        assert fast.verdict == slow.verdict


def test_return_address_in_module_text_is_text(tmp_path: Path) -> None:
    """__kernel_text_address() accepts a loaded module's code (is_module_text_address)."""

    def build(k: SyntheticKernel, load: bool) -> None:
        frames = list(NANOSLEEP)
        text = k.add_module("dummy_drv") if load else k.vmalloc(0x4000)[0]
        frames[2] = Frame("do_nanosleep", r14=text + 0x40)
        sleeper(k, frames=frames)

    kernel, a = _one(tmp_path / "loaded", "current", lambda k: build(k, True))
    assert [m.name for m in kernel.modules.modules] == ["dummy_drv"]
    assert kernel.symbolize(a.walk.steps[2].ip) == "[dummy_drv]+0x40"
    assert a.verdict.reliable
    _, a = _one(tmp_path / "unloaded", "current", lambda k: build(k, False))
    assert (a.verdict.rule, a.verdict.frame) == ("return_address_not_text", 2)
