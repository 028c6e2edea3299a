"""Training scenarios: small synthetic dumps, each teaching one reason a stack is (not) reliable.

Every scenario is a deterministic function building a
:class:`~explorer.training.synthetic.SyntheticKernel` plus what a trainer needs: a title, a
story, what to look for, the task to examine and the answer the tool must give (the verdict
exactly as ``backchain bt --json`` prints it, the failing frame, how the walk ends).
``tests/test_scenarios.py`` builds every scenario and checks the tool against its answer, so
the catalog doubles as a regression suite of the unwinder.

Two eras of the kernel's rules are covered (see ``explorer.walk.unwind``): ``current`` (≈v5.18+,
release ``6.1.0-synthetic-s390x``) and ``v5.5`` (release ``5.5.0-synthetic-s390x``). A scenario
that exists in both eras has a ``-v5.5`` twin.

Usage::

    from explorer.training import scenarios
    s = scenarios.get("misaligned-sp")
    dump = s.build("/tmp/misaligned")          # vmcore + System.map + profile.json
    s.answer.label                             # 'unwind_error/sp_misaligned'

    python -m explorer.training.scenarios --markdown     # the catalog table of samples/README.md
    python -m explorer.training.scenarios --write-readme # refresh that table in place
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explorer.training.klp import catalog as klp_catalog
from explorer.training.synthetic import (
    KERNEL_PSW_MASK,
    KERNEL_WAIT_PSW_MASK,
    USER_PSW_MASK,
    Frame,
    SyntheticKernel,
    SyntheticTask,
)
from parsers.errors import DumpError

RELEASES = {"current": "6.1.0-synthetic-s390x", "v5.5": "5.5.0-synthetic-s390x"}
ERAS = tuple(RELEASES)

#: A disabled wait (no I/O, external or machine-check interrupts): a CPU stopped for good.
DISABLED_WAIT_PSW_MASK = 0x0402C00180000000
#: Where a user-space stack pointer typically is (the sh/dd loops of the real samples).
USER_SP = 0x3FFF0C78650


@dataclass(frozen=True)
class Answer:
    """What the tool must say about a scenario's task.

    Attributes:
        reliable: ``verdict.reliable`` of ``bt --json``.
        rule: ``verdict.rule`` (None when reliable).
        detail: ``verdict.detail`` (the unwind-error sub-kind).
        frame: ``verdict.frame``: index of the failing frame, None when reliable or running.
        end: how the walk ends: ``end.kind``, plus ``/end.detail`` for errors.
        as_current: for a running task, the label of the verdict judged as its CPU's current
            task (what would be wrong besides "is running"); None for a sleeping task.
        as_current_frame: the failing frame of that verdict.
    """

    reliable: bool
    rule: str | None = None
    detail: str | None = None
    frame: int | None = None
    end: str = "final_pt_regs"
    as_current: str | None = None
    as_current_frame: int | None = None

    @property
    def label(self) -> str:
        """``reliable``, the rule, or ``unwind_error/<sub-kind>`` (like ``Verdict.label``)."""
        if self.reliable:
            return "reliable"
        return f"{self.rule}/{self.detail}" if self.detail else str(self.rule)

    @property
    def summary(self) -> str:
        """One line: the label, the frame, and for a running task the as-current verdict."""
        text = self.label + ("" if self.frame is None else f" at #{self.frame}")
        if self.as_current is not None:
            at = "" if self.as_current_frame is None else f" at #{self.as_current_frame}"
            text += f" (as current: {self.as_current}{at})"
        return text

    def to_json(self) -> dict[str, Any]:
        """The answer as data (``verdict`` keys as ``bt --json`` names them)."""
        return {
            "label": self.label,
            "verdict": {
                "reliable": self.reliable,
                "rule": self.rule,
                "detail": self.detail,
                "frame": self.frame,
            },
            "end": self.end,
            "as_current": self.as_current,
            "as_current_frame": self.as_current_frame,
        }


@dataclass(frozen=True)
class Scenario:
    """One training scenario.

    Attributes:
        name: slug (``misaligned-sp``, ``misaligned-sp-v5.5``).
        era: unwinder rules: ``current`` or ``v5.5``.
        title: what it teaches, in one line.
        story: what a trainer tells (2-4 sentences).
        look_for: where to look in the walk.
        pid: the task to examine (``backchain bt DUMP --pid PID``).
        cpu: the CPU that task runs on, None if it sleeps.
        answer: what the tool must say.
        builder: builds the kernel for a release.
    """

    name: str
    era: str
    title: str
    story: str
    look_for: str
    pid: int
    cpu: int | None
    answer: Answer
    builder: Callable[[str], SyntheticKernel]

    @property
    def release(self) -> str:
        """The kernel release written into the dump."""
        return RELEASES[self.era]

    def kernel(self) -> SyntheticKernel:
        """Build the synthetic kernel (nothing written yet)."""
        return self.builder(self.release)

    @property
    def situation(self) -> str:
        """What happened to the machine, told before the exercise is answered: never where
        to look, never a rule's name or words (``tests/test_classroom.py`` checks)."""
        what = SITUATIONS[self.name.removesuffix("-v5.5")]
        return (
            f"{what} Livepatch waits to switch pid {self.pid}: would the kernel's unwinder "
            f"({self.era} rules) accept its stack, and if not, which frame fails first, and why?"
        )

    def build(self, folder: str | Path) -> Path:
        """Write ``vmcore``, ``System.map`` and ``profile.json`` into ``folder``.

        Returns:
            The path of the dump.
        """
        return self.kernel().save(folder)

    def to_json(self, answer: bool = True) -> dict[str, Any]:
        """The scenario as data. Without ``answer`` only what a trainee may know before
        answering (its number, kernel, task and situation): the name, title, CPU and story
        tell the answer."""
        out: dict[str, Any] = {
            "exercise": number(self.name),
            "era": self.era,
            "release": self.release,
            "pid": self.pid,
            "situation": self.situation,
        }
        if answer:
            out.update(
                name=self.name,
                title=self.title,
                cpu=self.cpu,
                story=self.story,
                look_for=self.look_for,
                answer=self.answer.to_json(),
            )
        return out


class UnknownScenarioError(DumpError):
    """No scenario has this name."""


def _reliable(end: str = "final_pt_regs") -> Answer:
    return Answer(True, end=end)


def _fails(rule: str, frame: int) -> Answer:
    return Answer(False, rule, None, frame)


def _unwind(detail: str, frame: int) -> Answer:
    return Answer(False, "unwind_error", detail, frame, end=f"error/{detail}")


def _running(as_current: str, frame: int | None, end: str = "final_pt_regs") -> Answer:
    return Answer(False, "task_running", end=end, as_current=as_current, as_current_frame=frame)


# ------------------------------------------------------------------------------------------------
# Building blocks (frame offsets and sizes follow the real 6.1 dump's sysrq-t traces)
# ------------------------------------------------------------------------------------------------
#: `sleep 1000`: a task sleeping in clock_nanosleep, innermost first.
NANOSLEEP = (
    Frame("__schedule", 0x3F4, size=0x80),
    Frame("schedule", 0x62, size=0x30),
    Frame("do_nanosleep", 0x5E, size=0x58),
    Frame("hrtimer_nanosleep", 0x74, size=0xA8),
    Frame("__do_sys_clock_nanosleep", 0xEC, size=0xD0),
    Frame("__do_syscall", 0x1F6, size=0x3A8),
    Frame("system_call", 0x82),
)
#: An idle kworker.
KWORKER = (
    Frame("__schedule", 0x3F4, size=0x80),
    Frame("schedule", 0x62, size=0x30),
    Frame("worker_thread", 0xEA, size=0x60),
    Frame("kthread", 0x116, size=0x48),
    Frame("__ret_from_fork", 0x3C, size=0x30),
    Frame("ret_from_fork", 0xA),
)
#: The boot CPU's idle task, from the frame psw_idle saved into (arch_cpu_idle's).
IDLE = (
    Frame("arch_cpu_idle", 0x3A, size=0x38),
    Frame("default_idle_call", 0x54, size=0x20),
    Frame("do_idle", 0xB8, size=0x40),
    Frame("cpu_startup_entry", 0x40, size=0x30),
    Frame("rest_init", 0xC6, size=0x30),
    Frame("arch_call_rest_init", 0x7C),
)
#: pid 1 waiting for its children.
WAIT4 = (
    Frame("__schedule", 0x3F4, size=0x80),
    Frame("schedule", 0x62, size=0x30),
    Frame("do_wait", 0x1A8, size=0x58),
    Frame("kernel_wait4", 0x9E, size=0xA8),
    Frame("__do_sys_wait4", 0x76, size=0xD0),
    Frame("__do_syscall", 0x1F6, size=0x3A8),
    Frame("system_call", 0x82),
)
KTHREADD = (
    Frame("__schedule", 0x3F4, size=0x80),
    Frame("schedule", 0x62, size=0x30),
    Frame("kthreadd", 0x214, size=0x48),
    Frame("__ret_from_fork", 0x3C, size=0x30),
    Frame("ret_from_fork", 0xA),
)
#: `cat` reading an empty pipe, from the function the interrupt stopped outward.
PIPE_READ = (
    Frame("pipe_read", 0x1E4, size=0x90),
    Frame("vfs_read", 0x80, size=0x68),
    Frame("ksys_read", 0x70, size=0x50),
    Frame("__do_syscall", 0x1F6, size=0x3A8),
    Frame("system_call", 0x82),
)


def _kernel(release: str, cpus: int = 1) -> SyntheticKernel:
    """A kernel with swapper/0 idle on CPU 0, init (pid 1) and kthreadd (pid 2) asleep."""
    k = SyntheticKernel(release, cpus=cpus)
    swapper = k.add_task(0, "swapper/0", "R", kthread=True, idle=True, address=k.init_task)
    sps = k.task_stack(swapper, list(IDLE), user=False)
    k.run_on_cpu(0, swapper, (KERNEL_WAIT_PSW_MASK, k.ip("psw_idle_exit")), {15: sps[0]})
    k.task_stack(k.add_task(1, "init", "S"), list(WAIT4))
    k.task_stack(k.add_task(2, "kthreadd", "S", kthread=True), list(KTHREADD), user=False)
    return k


def _sleeper(
    k: SyntheticKernel, frames: Sequence[Frame] = NANOSLEEP, pid: int = 100, comm: str = "sleep"
) -> tuple[SyntheticTask, list[int]]:
    task = k.add_task(pid, comm, "S")
    return task, k.task_stack(task, list(frames))


def _entry_frame(k: SyntheticKernel, task: SyntheticTask, psw_addr: int, r15: int) -> int:
    """The top of a task stack for a task that entered from user space: the entry frame (back
    chain 0) and user-mode pt_regs above it; returns the entry frame's address."""
    top = k.stack_top_frame(task.stack)
    k.write_pt_regs(top + 160, psw=(USER_PSW_MASK, psw_addr), gprs={15: r15}, int_code=0x20072)
    return top


def _interrupt_in_kernel(
    k: SyntheticKernel,
    interrupted_sp: int,
    psw_addr: int,
    handler_frames: Sequence[Frame],
    int_code: int,
) -> list[int]:
    """An interrupt or exception taken in kernel mode on the task stack: the entry code puts
    pt_regs right below the interrupted sp and a frame with back chain 0 below them; the
    handler's frames go below that. Returns the handler frames' sps (innermost first)."""
    entry = interrupted_sp - (160 + k.pt_regs_size)
    k.write_pt_regs(
        entry + 160, psw=(KERNEL_PSW_MASK, psw_addr), gprs={15: interrupted_sp}, int_code=int_code
    )
    return k.lay_frames(entry, list(handler_frames))


# ------------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------------
def _syscall_sleep(release: str) -> SyntheticKernel:
    k = _kernel(release)
    _sleeper(k)
    return k


def _kthread(release: str) -> SyntheticKernel:
    k = _kernel(release)
    k.task_stack(k.add_task(100, "kworker/0:1", "I", kthread=True), list(KWORKER), user=False)
    return k


def _idle_running(release: str) -> SyntheticKernel:
    k = _kernel(release)
    _sleeper(k)
    return k


def _irq_via_backchain(release: str) -> SyntheticKernel:
    """sh (pid 100) spinning in user space on CPU 1, interrupted by the clock comparator:
    ext_int_handler runs on the task stack, do_ext_irq switches to the irq stack with
    call_on_stack(), whose top frame back-chains to do_ext_irq's frame."""
    k = _kernel(release, cpus=2)
    task = k.add_task(100, "sh", "R", cpu=1)
    top = _entry_frame(k, task, 0x10DBC64, USER_SP)
    task_sps = k.lay_frames(
        top, [Frame("do_ext_irq", 0xB2, size=0x60), Frame("ext_int_handler", 0xCC)]
    )
    k.set_ksp(task, task_sps[0])
    irq_sps = k.lay_frames(
        k.stack_top_frame(k.irq_stack(1)),
        [
            Frame("do_ext_interrupt", 0xAC, size=0x48),
            Frame("handle_irq_desc", 0x56, size=0x40),
            Frame("do_irq_async", 0x5A),
        ],
        last_back_chain=task_sps[0],
    )
    k.run_on_cpu(1, task, (KERNEL_PSW_MASK, k.ip("do_ext_interrupt", 0x4C)), {15: irq_sps[0]})
    return k


def _stack_revisited(release: str) -> SyntheticKernel:
    k = _irq_via_backchain(release)
    task = k.tasks[-1]
    irq_top = k.stack_top_frame(k.irq_stack(1))
    # do_ext_irq's frame on the task stack now chains back into the irq stack.
    k.put_u64_va(task.ksp + 0x98, irq_top - 0x48)
    return k


def _irq_v55(release: str, from_user: bool) -> SyntheticKernel:
    """v5.5 entry code: ext_int_handler switches to the irq stack itself and builds the
    pt_regs at its top; their gprs[15] is the interrupted r15."""
    k = _kernel(release, cpus=2)
    irq_top = k.stack_top_frame(k.irq_stack(1))
    if from_user:
        task = k.add_task(100, "sh", "R", cpu=1)
        k.set_ksp(task, _entry_frame(k, task, 0x10DBC64, USER_SP))
        k.write_frame(task.ksp, r14=k.ip("system_call", 0x82), back_chain=0)
        k.write_pt_regs(irq_top + 160, psw=(USER_PSW_MASK, 0x10DBC64), gprs={15: USER_SP})
    else:
        task = k.add_task(100, "cat", "R", cpu=1)
        task_sps = k.task_stack(task, list(PIPE_READ))
        k.write_pt_regs(
            irq_top + 160,
            psw=(KERNEL_PSW_MASK, k.ip("pipe_read", 0x1A0)),
            gprs={15: task_sps[0]},
            int_code=0x1004,
        )
    irq_sps = k.lay_frames(
        irq_top,
        [
            Frame("do_ext_interrupt", 0xAC, size=0x48),
            Frame("do_IRQ", 0x8A, size=0x40),
            Frame("ext_int_handler", 0x128),
        ],
    )
    k.run_on_cpu(1, task, (KERNEL_PSW_MASK, k.ip("do_ext_interrupt", 0x4C)), {15: irq_sps[0]})
    return k


def _preempted(release: str, guess: int = 0x1E4) -> SyntheticKernel:
    """cat (pid 100) preempted in pipe_read: the timer interrupt returned through
    preempt_schedule_irq, so the sleeping stack holds kernel-mode pt_regs."""
    k = _kernel(release)
    task = k.add_task(100, "cat", "R")
    frames = list(PIPE_READ)
    frames[0] = Frame("pipe_read", guess, size=0x90)
    upper = k.task_stack(task, frames)
    lower = _interrupt_in_kernel(
        k,
        upper[0],
        k.ip("pipe_read", 0x1A0),
        [
            Frame("__schedule", 0x3F4, size=0x80),
            Frame("preempt_schedule_irq", 0x4E, size=0x30),
            Frame("irqentry_exit", 0x64, size=0x40),
            Frame("ext_int_handler", 0xCC),
        ],
        0x1004,
    )
    k.set_ksp(task, lower[0])
    return k


def _page_fault_sleep(release: str) -> SyntheticKernel:
    """cat (pid 100) faulted copying a file page to user space and sleeps waiting for the
    page cache folio to be read in."""
    k = _kernel(release)
    task = k.add_task(100, "cat", "D")
    upper = k.task_stack(
        task,
        [
            Frame("_copy_to_iter", 0x1F0, size=0x70),
            Frame("copy_page_to_iter", 0xA6, size=0x48),
            Frame("filemap_read", 0x1D4, size=0x190),
            Frame("vfs_read", 0x80, size=0x68),
            Frame("ksys_read", 0x70, size=0x50),
            Frame("__do_syscall", 0x1F6, size=0x3A8),
            Frame("system_call", 0x82),
        ],
    )
    lower = _interrupt_in_kernel(
        k,
        upper[0],
        k.ip("_copy_to_iter", 0x2B8),
        [
            Frame("__schedule", 0x3F4, size=0x80),
            Frame("schedule", 0x62, size=0x30),
            Frame("io_schedule", 0x42, size=0x30),
            Frame("folio_wait_bit_common", 0x18C, size=0x90),
            Frame("filemap_fault", 0x3A0, size=0x88),
            Frame("__handle_mm_fault", 0x6C4, size=0xB0),
            Frame("handle_mm_fault", 0x88, size=0x48),
            Frame("do_exception", 0x1C4, size=0x60),
            Frame("__do_pgm_check", 0x140, size=0x48),
            Frame("pgm_check_handler", 0x11E),
        ],
        (6 << 16) | 0x11,  # MVCOS (6 bytes) hit a page-translation exception
    )
    k.set_ksp(task, lower[0])
    return k


def _mcck(release: str) -> SyntheticKernel:
    """dd (pid 100) in read() of /dev/zero on CPU 1 when a machine check with system damage
    arrives: s390_do_machine_check runs on the mcck stack and stops the CPU."""
    k = _kernel(release, cpus=2)
    task = k.add_task(100, "dd", "R", cpu=1)
    task_sps = k.task_stack(
        task,
        [
            Frame("iov_iter_zero", 0x120, size=0x58),
            Frame("read_iter_zero", 0x5C, size=0x48),
            Frame("vfs_read", 0x80, size=0x68),
            Frame("ksys_read", 0x70, size=0x50),
            Frame("__do_syscall", 0x1F6, size=0x3A8),
            Frame("system_call", 0x82),
        ],
    )
    mcck_top = k.stack_top_frame(k.cpu_stacks[1]["mcck"])
    k.write_pt_regs(
        mcck_top + 160,
        psw=(KERNEL_PSW_MASK, k.ip("iov_iter_zero", 0x1A0)),
        gprs={15: task_sps[0]},
    )
    mcck_sps = k.lay_frames(
        mcck_top,
        [
            Frame("s390_handle_damage", 0x4A, size=0x30),
            Frame("s390_do_machine_check", 0x2D2, size=0x70),
            Frame("mcck_int_handler", 0x10C),
        ],
    )
    k.run_on_cpu(
        1, task, (DISABLED_WAIT_PSW_MASK, k.ip("s390_handle_damage", 0x5E)), {15: mcck_sps[0]}
    )
    return k


def _psw_restart(release: str) -> SyntheticKernel:
    """dd (pid 100) in user space on CPU 1 when the operator sent a PSW restart (QMP
    inject-nmi, or a stand-alone dump): the restart handler ran on the restart stack, called
    smp_call_ipl_cpu, which moved to the nodat stack with call_on_stack and stopped the CPU.
    As in the real 6.12 dump, the restart stack's top frame back-chains to the interrupted
    (user) r15."""
    k = _kernel(release, cpus=2)
    task = k.add_task(100, "dd", "R", cpu=1)
    k.set_ksp(task, _entry_frame(k, task, 0x1003F2A, USER_SP))
    k.write_frame(task.ksp, r14=k.ip("system_call", 0x82), back_chain=0)
    restart_top = k.stack_top_frame(k.cpu_stacks[1]["restart"])
    k.write_pt_regs(restart_top + 160, psw=(USER_PSW_MASK, 0x1003F2A), gprs={15: USER_SP})
    k.write_frame(restart_top, r14=k.ip("restart_int_handler", 0x72), back_chain=USER_SP)
    nodat_sps = k.lay_frames(
        k.stack_top_frame(k.cpu_stacks[1]["nodat"]),
        [
            Frame("smp_send_stop", 0x3C, size=0x48),
            Frame("__do_restart", 0x36, size=0x18),
            Frame("smp_call_ipl_cpu", 0x96),
        ],
        last_back_chain=restart_top,
    )
    k.run_on_cpu(1, task, (DISABLED_WAIT_PSW_MASK, k.ip("stop_run", 0x4E)), {15: nodat_sps[0]})
    return k


def _ftrace_graph(release: str, resolved: bool = True) -> SyntheticKernel:
    """The function-graph tracer hooked schedule(): do_nanosleep's saved r14 was replaced by
    return_to_handler and the real return address went to the task's shadow stack."""
    k = _kernel(release)
    frames = list(NANOSLEEP)
    frames[2] = Frame("do_nanosleep", r14=k.ip("return_to_handler"), size=0x58)
    task, sps = _sleeper(k, frames)
    o = k.offsets
    entries = k.alloc(k.sizes["ftrace_ret_stack"] * 4)
    k.put_u64(entries + o["ftrace_ret_stack.ret"], k.ip("do_nanosleep", 0x5E))
    k.put_u64(entries + o["ftrace_ret_stack.func"], k.ip("schedule"))
    # retp: where the hooked return address was stored. A stale entry (another frame) means
    # the tracer's bookkeeping and the stack disagree: the trampoline cannot be resolved.
    k.put_u64(entries + o["ftrace_ret_stack.retp"], sps[2] if resolved else sps[2] - 0x400)
    k.put_u64(task.address + o["task_struct.ret_stack"], entries)
    k.write(task.address + o["task_struct.curr_ret_stack"], (0).to_bytes(4, "big"))
    return k


def _kretprobe_v55(release: str) -> SyntheticKernel:
    k = _kernel(release)
    frames = list(NANOSLEEP)
    frames[3] = Frame("hrtimer_nanosleep", r14=k.ip("kretprobe_trampoline"), size=0xA8)
    _sleeper(k, frames)
    return k


def _rethook(release: str, with_instance: bool) -> SyntheticKernel:
    """A kretprobe on do_nanosleep (kretprobes run on rethook since v5.18): its return
    address in hrtimer_nanosleep's frame is the rethook trampoline; the real one is kept in
    a rethook_node on the task's list (llist at 0x10, ret_addr at 0x20, frame at 0x28)."""
    k = _kernel(release)
    frames = list(NANOSLEEP)
    frames[3] = Frame("hrtimer_nanosleep", r14=k.ip("arch_rethook_trampoline"), size=0xA8)
    task, sps = _sleeper(k, frames)
    if with_instance:
        node = k.alloc(0x40)
        k.put_u64(node + 0x20, k.ip("hrtimer_nanosleep", 0x74))
        k.put_u64(node + 0x28, sps[3])
        k.put_u64(task.address + k.offsets["task_struct.kretprobe_instances"], node + 0x10)
    return k


def _corrupt_chain(index: int, value: Callable[[SyntheticKernel, list[int]], int]) -> Any:
    def build(release: str) -> SyntheticKernel:
        k = _kernel(release)
        _task, sps = _sleeper(k)
        k.put_u64_va(sps[index] + 0x98, value(k, sps))
        return k

    return build


def _other_task_stack(k: SyntheticKernel, sps: list[int]) -> int:
    init = next(t for t in k.tasks if t.pid == 1)
    return init.ksp + 0x80  # init's schedule() frame: a perfect-looking frame on the wrong stack


def _return_not_text(release: str) -> SyntheticKernel:
    k = _kernel(release)
    frames = list(NANOSLEEP)
    frames[2] = Frame("do_nanosleep", r14=0x3FF8005A0E4, size=0x58)  # an unloaded module
    _sleeper(k, frames)
    return k


def _pre_v55_kthread(release: str) -> SyntheticKernel:
    """A kernel thread laid out the pre-v5.5 way: kernel_thread_starter's frame at the very
    top of the stack (THREAD_SIZE - 160), back chain 0, no pt_regs above it."""
    k = _kernel(release)
    task = k.add_task(100, "kworker/0:1", "I", kthread=True)
    sps = k.lay_frames(
        task.stack_top - 160,
        [
            Frame("__schedule", 0x3F4, size=0x80),
            Frame("schedule", 0x62, size=0x30),
            Frame("worker_thread", 0xEA, size=0x60),
            Frame("kthread", 0x116, size=0x48),
            Frame("kernel_thread_starter", 0x6),
        ],
    )
    k.set_ksp(task, sps[0])
    return k


def _lost_final_pt_regs(release: str) -> SyntheticKernel:
    """hrtimer_nanosleep's back chain was cleared by a stray write. Its frame holds locals
    above the register save area (the on-stack hrtimer_sleeper and, at +0x130, a pointer to
    current->restart_block); the unwinder reads them as pt_regs."""
    k = _kernel(release)
    frames = list(NANOSLEEP)
    frames[3] = Frame("hrtimer_nanosleep", 0x74, size=0x1A8)
    task, sps = _sleeper(k, frames)
    k.put_u64_va(sps[3] + 0x98, 0)
    # pt_regs at sps[3] + 160: gprs[15] (pt_regs + 0x90) is the local at frame + 0x130.
    k.put_u64_va(sps[3] + 0x130, task.address + 0x7A8)
    k.put_u64_va(sps[3] + 0xA8, k.ip("hrtimer_wakeup"))  # sleeper.timer.function: "psw.mask"
    return k


def _too_deep(release: str) -> SyntheticKernel:
    """A task sleeping at the bottom of a deep recursion: 100 frames."""
    k = _kernel(release)
    frames = [
        Frame("__schedule", 0x3F4, size=0xA0),
        Frame("schedule", 0x62, size=0xA0),
        Frame("rwsem_down_read_slowpath", 0x1D6, size=0xA0),
    ]
    frames += [Frame("tree_walk_node", 0x7E, size=0xA0)] * 93
    frames += [
        Frame("tree_ioctl", 0x4C, size=0xA0),
        Frame("__s390x_sys_ioctl", 0xA4, size=0xA0),
        Frame("__do_syscall", 0x1F6, size=0xA0),
        Frame("system_call", 0x82),
    ]
    assert len(frames) == 100
    _sleeper(k, frames, comm="treetool")
    return k


def _zombie(release: str) -> SyntheticKernel:
    k = _kernel(release)
    k.add_task(100, "sleep", "Z", with_stack=False)
    return k


def _missing_page(release: str) -> SyntheticKernel:
    k = _kernel(release)
    frames = list(NANOSLEEP)
    frames[4] = Frame("__do_sys_clock_nanosleep", 0xEC, size=0x1000)  # outer frames: next page
    _task, sps = _sleeper(k, frames)
    del k.pages[k.va_to_pa(sps[5]) & ~0xFFF]
    return k


# ------------------------------------------------------------------------------------------------
# The catalog
# ------------------------------------------------------------------------------------------------
#: What a trainee is told before answering, per scenario (both eras share one): what the
#: machine was doing when the dump was taken, as a support engineer would hear it.
_SCRIBBLED = "`sleep 1000` was asleep while a buggy driver wrote to memory it did not own."
SITUATIONS = {
    "syscall-sleep": "`sleep 1000` was started from a shell a while before the dump was taken.",
    "kthread": "A kworker thread had nothing to do when the dump was taken.",
    "idle-running": "The machine had nothing to do when the dump was taken: look at swapper/0.",
    "irq-via-backchain": "A shell loop, `while :; do :; done`, kept CPU 1 busy when the dump "
    "was taken.",
    "irq-via-pt-regs": "`cat` was reading from a pipe on CPU 1 when the dump was taken.",
    "irq-from-user": "A shell loop kept CPU 1 busy when the dump was taken.",
    "preempted": "`cat` was reading from a pipe whose writer had not written yet when the dump "
    "was taken.",
    "r14-guess-equals-psw": "`cat` was reading from a pipe when the dump was taken; compare "
    "what the two eras of rules make of it.",
    "page-fault-sleep": "`cat` was copying a file into a buffer its program had just "
    "allocated when the dump was taken.",
    "mcck": "`dd if=/dev/zero` was reading on CPU 1 when the hardware reported damage and the "
    "machine stopped.",
    "psw-restart": "The operator pressed the guest's restart button (QMP inject-nmi) while "
    "`dd` worked on CPU 1.",
    "ftrace-graph": "The function-graph tracer was enabled on schedule() before `sleep 1000` "
    "went to sleep.",
    "ftrace-graph-unresolved": "The function-graph tracer was enabled on schedule() while "
    "`sleep 1000` slept.",
    "kretprobe": "A probe on do_nanosleep's exit (perf probe) was in place when `sleep 1000` "
    "went to sleep.",
    "rethook-recovered": "A probe on do_nanosleep's exit (perf probe) was in place when "
    "`sleep 1000` went to sleep.",
    "rethook-lost": "A probe on do_nanosleep's exit was removed in a hurry while `sleep 1000` "
    "slept.",
    "misaligned-sp": _SCRIBBLED,
    "chain-outside-stack": _SCRIBBLED,
    "chain-past-stack-end": _SCRIBBLED,
    "chain-loop": _SCRIBBLED,
    "lost-final-pt-regs": _SCRIBBLED,
    "stack-revisited": "A shell loop kept CPU 1 busy while a buggy driver wrote to memory it "
    "did not own.",
    "return-not-text": "`sleep 1000` went to sleep while a test loaded and unloaded a module "
    "over and over.",
    "zero-chain-no-room": "A kworker thread of a kernel built the old way was idle when the "
    "dump was taken.",
    "too-deep": "`treetool` asked a driver to walk a deep tree and waited for a lock.",
    "zombie": "`sleep` had exited, and its parent had not collected it yet.",
    "missing-page": "The dump was taken with a filter that leaves out some pages; `sleep "
    "1000` was asleep.",
}


def _both(
    name: str,
    title: str,
    story: str,
    look_for: str,
    builder: Callable[[str], SyntheticKernel],
    answer: Answer,
    pid: int = 100,
    cpu: int | None = None,
    v55_answer: Answer | None = None,
) -> list[Scenario]:
    """The same scenario under the current and the v5.5 rules."""
    return [
        Scenario(name, "current", title, story, look_for, pid, cpu, answer, builder),
        Scenario(
            f"{name}-v5.5",
            "v5.5",
            title,
            story,
            look_for,
            pid,
            cpu,
            v55_answer or answer,
            builder,
        ),
    ]


def _one(
    name: str,
    era: str,
    title: str,
    story: str,
    look_for: str,
    builder: Callable[[str], SyntheticKernel],
    answer: Answer,
    pid: int = 100,
    cpu: int | None = None,
) -> list[Scenario]:
    return [Scenario(name, era, title, story, look_for, pid, cpu, answer, builder)]


def _catalog() -> tuple[Scenario, ...]:
    out: list[Scenario] = []
    out += _both(
        "syscall-sleep",
        "A task asleep in a system call: the walk ends at user-mode pt_regs",
        "`sleep 1000` sits in clock_nanosleep. Its kernel stack is the textbook case: every "
        "function stored its caller's stack pointer (the back chain), and the chain ends with "
        "a zero back chain right below the pt_regs that system_call saved on entry.",
        "Follow the back chains upward (sp grows with every frame); look at the last frame "
        "(system_call) and the USER-MODE pt_regs above it at the top of the task stack.",
        _syscall_sleep,
        _reliable(),
    )
    out += _both(
        "kthread",
        "A kernel thread ends at kernel-mode pt_regs, like every task since v5.5",
        "An idle kworker waits for work. Kernel threads never entered from user space, yet "
        "since v5.5 copy_thread gives them zeroed pt_regs at the top of the stack too, so "
        "their walk ends the same way as a user task's.",
        "The outermost frames __ret_from_fork and ret_from_fork, and the KERNEL-MODE pt_regs "
        "(zero registers) at the top of the task stack.",
        _kthread,
        _reliable(),
    )
    out += _both(
        "idle-running",
        "A running task is never checked: swapper/0 is in psw_idle on CPU 0",
        "The only CPU is idle in an enabled wait at psw_idle_exit. Livepatch never checks the "
        "stack of a task running on a CPU; it retries later. The walk starts from the CPU's "
        "registers instead of a saved ksp.",
        "Frame #0 comes from the CPU's PSW and r15; frame #1 is a guess from a saved r14 (in "
        "parentheses). The verdict is 'task_running', but judged as its own current task the "
        "stack would be fine.",
        _idle_running,
        _running("reliable", None),
        pid=0,
        cpu=0,
    )
    out += _one(
        "irq-via-backchain",
        "current",
        "An interrupt on the irq stack, linked back to the task stack by back chain",
        "`sh -c 'while :; do :; done'` spins in user space on CPU 1 when the clock comparator "
        "interrupt arrives. ext_int_handler runs on the task stack and do_ext_irq moves to "
        "the irq (async) stack with call_on_stack(), which stores the caller's frame as the "
        "back chain of the irq stack's top frame.",
        "The stack column switches from irq to task 'via back chain'; the walk still ends at "
        "the user pt_regs on the task stack. As its own current task the first frame already "
        "fails: it is not on the task stack.",
        _irq_via_backchain,
        _running("not_task_stack", 0),
        cpu=1,
    )
    out += _one(
        "irq-via-pt-regs-v5.5",
        "v5.5",
        "v5.5: an interrupt of kernel code, linked back to the task stack by pt_regs",
        "In v5.5 the assembler entry switched to the irq stack itself and saved the "
        "interrupted registers in pt_regs at its top. `cat` was in pipe_read on CPU 1 when "
        "the timer interrupt came: the pt_regs' gprs[15] is the interrupted stack pointer on "
        "the task stack.",
        "The zero back chain of ext_int_handler's frame, the KERNEL-MODE pt_regs at the top of "
        "the irq stack, the switch 'via pt_regs' and the unreliable r14 guess after it.",
        lambda release: _irq_v55(release, from_user=False),
        _running("not_task_stack", 0),
        cpu=1,
    )
    out += _one(
        "irq-from-user-v5.5",
        "v5.5",
        "v5.5: user-mode pt_regs at the top of the irq stack end the walk",
        "The same v5.5 entry code, but the interrupt hit the shell loop in user space: the "
        "pt_regs at the top of the irq stack hold a user PSW. 5.5-rc3 taught the unwinder to "
        "stop there gracefully (is_final_pt_regs) instead of following a user r15.",
        "The walk never reaches the task stack, yet it ends without an error: 'final pt_regs' "
        "on the irq stack.",
        lambda release: _irq_v55(release, from_user=True),
        _running("not_task_stack", 0),
        cpu=1,
    )
    out += _both(
        "preempted",
        "A preempted task: the walk crosses kernel-mode pt_regs",
        "`cat` was preempted by the timer interrupt in the middle of pipe_read: the interrupt "
        "returned through preempt_schedule_irq into the scheduler. Its sleeping stack holds "
        "the interrupt's pt_regs; what pipe_read had saved when it was stopped is unknown, so "
        "the kernel refuses the stack.",
        "Frame #4 comes from the pt_regs (interrupted PSW in pipe_read); frame #5 is a guess "
        "from a possibly stale r14, shown in parentheses.",
        _preempted,
        _fails("crossed_pt_regs", 4),
    )
    out += _both(
        "r14-guess-equals-psw",
        "After pt_regs the r14 guess is skipped when it repeats the PSW (current rules only)",
        "The same preempted `cat`, but pipe_read's saved r14 slot happens to hold the "
        "interrupted PSW address. Since ≈v5.18 the unwinder skips such a guess instead of "
        "reporting pipe_read twice; v5.5 reports it.",
        "Compare the two eras: the '(pipe_read)' frame after the pt_regs is there under v5.5 "
        "and gone under the current rules (see the r14_guess check with --steps). The verdict "
        "is the same.",
        lambda release: _preempted(release, guess=0x1A0),
        _fails("crossed_pt_regs", 4),
    )
    out += _one(
        "page-fault-sleep",
        "current",
        "A task sleeping inside a page fault: program-check pt_regs on the stack",
        "`cat` copied a file page to user space; the destination was not mapped, the MVCOS in "
        "_copy_to_iter took a page-translation exception, and the fault handler sleeps until "
        "the page-cache folio is read in. The program check's pt_regs lie between the "
        "scheduler frames and the read() frames.",
        "pgm_check_handler's frame with back chain 0, the pt_regs with code 0x11 (ilc 6), and "
        "frame #10: the interrupted _copy_to_iter.",
        _page_fault_sleep,
        _fails("crossed_pt_regs", 10),
    )
    out += _one(
        "mcck",
        "current",
        "A machine check on the mcck stack, back to the task stack by pt_regs",
        "`dd` was reading /dev/zero on CPU 1 when a machine check with system damage arrived. "
        "mcck_int_handler saved the registers as pt_regs at the top of the machine-check stack "
        "and s390_do_machine_check stopped the CPU in a disabled wait.",
        "Frames on the 'mcck' stack, the KERNEL-MODE pt_regs at its top whose gprs[15] leads "
        "back to the task stack, then iov_iter_zero and the read() path to the final pt_regs.",
        _mcck,
        _running("not_task_stack", 0),
        cpu=1,
    )
    out += _one(
        "psw-restart",
        "current",
        "A PSW restart: nodat stack, restart stack, then a back chain into user space",
        "The operator sent a restart interrupt (QMP inject-nmi) while `dd` ran in user space "
        "on CPU 1. restart_int_handler ran on the restart stack, smp_call_ipl_cpu moved to the "
        "nodat stack and the CPU stopped in stop_run. As in the real 6.12 dump "
        "(bpo12-6.12-nmi), the restart stack's top frame back-chains to the interrupted user "
        "r15, so the walk ends in an unwind error.",
        "The stack column nodat -> restart, and the end: 'sp_outside_stack' at a user-space "
        "address. The restart pt_regs (user PSW) are never read: the back chain is not zero.",
        _psw_restart,
        _running("not_task_stack", 0, end="error/sp_outside_stack"),
        cpu=1,
    )
    out += _both(
        "ftrace-graph",
        "Function-graph tracing: return_to_handler resolved from the shadow stack",
        "The function-graph tracer hooked schedule(): the return address into do_nanosleep "
        "was replaced by return_to_handler and saved in the task's shadow return stack. The "
        "unwinder asks ftrace_graph_ret_addr() for the real one.",
        "Frame #2: ip do_nanosleep, raw ip return_to_handler, 'recovered from ftrace_graph'.",
        _ftrace_graph,
        _reliable(),
    )
    out += _one(
        "ftrace-graph-unresolved",
        "current",
        "An unresolvable return_to_handler is still 'reliable' for the kernel",
        "The same hooked schedule(), but the shadow stack's entry belongs to another frame "
        "(its retp does not match). ftrace_graph_ret_addr() gives up and returns "
        "return_to_handler itself, which is kernel text: arch_stack_walk_reliable accepts it, "
        "although the real caller do_nanosleep is hidden from livepatch.",
        "Frame #2 is return_to_handler; the not_trampoline check is a note (no failure). A "
        "livepatch of do_nanosleep would not see this task sleeping in it.",
        lambda release: _ftrace_graph(release, resolved=False),
        _reliable(),
    )
    out += _one(
        "kretprobe-v5.5",
        "v5.5",
        "v5.5: a kretprobe trampoline makes the stack unreliable",
        "A kretprobe on do_nanosleep replaced its return address with kretprobe_trampoline. "
        "v5.5 could not find the real address, so arch_stack_walk_reliable refuses any stack "
        "with the trampoline in it.",
        "Frame #3 returns to kretprobe_trampoline.",
        _kretprobe_v55,
        _fails("kretprobe_trampoline", 3),
    )
    out += _one(
        "rethook-recovered",
        "current",
        "A kretprobe (rethook) trampoline resolved from the task's rethook list",
        "The same kretprobe on do_nanosleep, on a current kernel: kretprobes run on rethook "
        "now. The unwinder recovers the real return address from the rethook_node whose "
        "frame is hrtimer_nanosleep's, so the trampoline costs nothing.",
        "Frame #3: raw ip arch_rethook_trampoline, 'recovered from rethook'.",
        lambda release: _rethook(release, with_instance=True),
        _reliable(),
    )
    out += _one(
        "rethook-lost",
        "current",
        "A rethook trampoline without its instance: return address 0",
        "The trampoline is on the stack but the task's rethook list has no node for this "
        "frame. rethook_find_ret_addr() returns 0, which is not kernel text.",
        "Frame #3 has ip 0; the not_trampoline check fails.",
        lambda release: _rethook(release, with_instance=False),
        _fails("return_address_not_text", 3),
    )
    out += _both(
        "misaligned-sp",
        "A back chain that is not 8-byte aligned",
        "A stray increment hit do_nanosleep's back chain: it points 4 bytes into the next "
        "frame. The s390 ABI keeps every stack pointer 8-byte aligned, so since v5.5 the "
        "unwinder treats a misaligned sp as corruption.",
        "The end of the walk after frame #2 and the failing sp_aligned check.",
        _corrupt_chain(2, lambda k, sps: sps[3] + 4),
        _unwind("sp_misaligned", 2),
    )
    out += _both(
        "chain-outside-stack",
        "A back chain into another task's stack",
        "do_nanosleep's back chain points to a perfectly good frame, but on init's stack. A "
        "sleeping task may only use its own task stack: the per-CPU stacks and other tasks' "
        "stacks are out of bounds.",
        "The end after frame #2: 'lies in none of the stacks this task may use'.",
        _corrupt_chain(2, _other_task_stack),
        _unwind("sp_outside_stack", 2),
    )
    out += _both(
        "chain-past-stack-end",
        "A back chain so close to the end of the stack that no frame fits",
        "schedule's back chain points 80 bytes below the end of the task stack, into the "
        "final pt_regs. The address is on the right stack and above the current sp, but a "
        "160-byte frame there would run past the end of the stack.",
        "The end after frame #1 and the failing room_for_frame check.",
        _corrupt_chain(1, lambda k, sps: k.tasks[-1].stack_top - 80),
        _unwind("no_room_for_frame", 1),
    )
    out += _both(
        "chain-loop",
        "A back chain loop: the stack pointer must increase",
        "hrtimer_nanosleep's back chain points back down to schedule's frame. Followed "
        "blindly, the chain would loop forever; the unwinder requires every step on the same "
        "stack to move to a higher address.",
        "The end after frame #3: the new sp is below the current one.",
        _corrupt_chain(3, lambda k, sps: sps[1]),
        _unwind("sp_not_increasing", 3),
    )
    out += _one(
        "stack-revisited",
        "current",
        "A chain that returns to a stack it already left",
        "The shell interrupted on CPU 1 again, but do_ext_irq's frame on the task stack now "
        "back-chains into the irq stack. Every stack type may be entered once per walk (the "
        "visit mask), so going back to the irq stack is an unwind error.",
        "The stack column: irq, task, then the end 'stack_revisited'.",
        _stack_revisited,
        _running("not_task_stack", 0, end="error/stack_revisited"),
        cpu=1,
    )
    out += _both(
        "return-not-text",
        "A return address outside kernel text",
        "do_nanosleep's saved r14 points into a module that has since been unloaded. The walk "
        "itself goes on (the back chains are fine), but unwind_get_return_address() returns 0 "
        "for it and the reliable walker stops.",
        "Frame #2's address has no symbol; the ip_is_text check fails while the walk reaches "
        "the final pt_regs.",
        _return_not_text,
        _fails("return_address_not_text", 2),
    )
    out += _both(
        "zero-chain-no-room",
        "A zero back chain with no room for pt_regs (the pre-v5.5 kernel-thread layout)",
        "Before v5.5 a kernel thread's outermost frame, kernel_thread_starter, sat at the very "
        "top of its stack with a zero back chain and no pt_regs above it, and the unwinder "
        "simply stopped there. Since v5.5 every task ends in pt_regs at task_pt_regs, and a "
        "zero back chain without room for pt_regs is an error.",
        "The last frame (kernel_thread_starter) at THREAD_SIZE - 160, and the failing "
        "pt_regs_fit check.",
        _pre_v55_kthread,
        _unwind("pt_regs_outside_stack", 4),
    )
    out += _both(
        "lost-final-pt-regs",
        "A walk that never reaches the final pt_regs: a cleared back chain",
        "A stray write zeroed hrtimer_nanosleep's back chain. The unwinder takes the zero as "
        "'pt_regs follow' and decodes the frame's local variables as pt_regs; they are not the "
        "task's final pt_regs, and their 'gprs[15]' (a pointer to current->restart_block) is "
        "on no stack.",
        "Frame #3, the pt_regs_fit and final_pt_regs checks of the last step, and the "
        "'pt_regs' address: 160 bytes above frame #3, far below the top of the stack.",
        _lost_final_pt_regs,
        _unwind("sp_outside_stack", 3),
    )
    out += _both(
        "too-deep",
        "A stack deeper than livepatch's 100 entries",
        "treetool sleeps at the bottom of a 93-level recursion in a driver. The walk is "
        "perfect, but livepatch saves at most 100 return addresses and treats a full buffer "
        "as unreliable.",
        "The frame count: the 100th frame (#99) fails 'too_many_entries'.",
        _too_deep,
        _fails("too_many_entries", 99),
    )
    out += _one(
        "zombie",
        "current",
        "An exited task has no stack, and that is reliable",
        "A zombie `sleep` waits for its parent to reap it. Its kernel stack is freed already; "
        "try_get_task_stack() fails and the kernel reports an empty, reliable trace.",
        "No frames at all; the end is 'no_stack'.",
        _zombie,
        _reliable(end="no_stack"),
    )
    out += _one(
        "missing-page",
        "current",
        "A stack page missing from the dump",
        "The dump lacks the page holding the outer frames of `sleep` (a truncated or "
        "filtered dump). The kernel could have read it; an offline tool cannot, so the "
        "verdict is an unwind error of our own kind, not one of the kernel's rules.",
        "The walk stops after frame #4 at an address that is 'not in the dump'.",
        _missing_page,
        _unwind("unreadable_memory", 4),
    )
    return tuple(out)


#: Every synthetic scenario, in catalog order.
SCENARIOS: tuple[Scenario, ...] = _catalog()
#: Every exercise: the synthetic scenarios, then the livepatch exercises on real samples
#: (:mod:`explorer.training.klp`; only where the samples are, so they come last and the
#: synthetic ones keep their numbers).
CATALOG: tuple[Any, ...] = SCENARIOS + klp_catalog()
_BY_NAME = {s.name: s for s in CATALOG}


def names() -> list[str]:
    """The exercise names, in catalog order."""
    return [s.name for s in CATALOG]


def close_matches(name: str) -> list[str]:
    """Names that look like ``name`` (for error messages)."""
    found = difflib.get_close_matches(name, names(), n=5, cutoff=0.5)
    for n in names():
        if name and name in n and n not in found:
            found.append(n)
    return found[:5]


def number(name: str) -> int:
    """The scenario's exercise number: its place in the catalog, from 1 (what trainees see
    instead of the name, which would tell the answer)."""
    return names().index(name) + 1


def numbers() -> dict[str, int]:
    """Every scenario's exercise number, by name."""
    return {name: n for n, name in enumerate(names(), 1)}


def get(name: str) -> Any:
    """The scenario called ``name``, or numbered ``name`` (``"7"``: exercise 7): a
    :class:`Scenario`, or a livepatch exercise (:class:`explorer.training.klp.KlpScenario`).

    Raises:
        UnknownScenarioError: no such scenario (the message names close matches).
    """
    if name.isdigit():
        if 1 <= int(name) <= len(CATALOG):
            return CATALOG[int(name) - 1]
        raise UnknownScenarioError(
            f"no exercise {name}: they are numbered 1 to {len(CATALOG)}"
        ) from None
    try:
        return _BY_NAME[name]
    except KeyError:
        near = close_matches(name)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise UnknownScenarioError(
            f"unknown scenario {name!r}{hint} (see 'backchain scenarios list')"
        ) from None


def build(name: str, folder: str | Path) -> Path:
    """Build scenario ``name`` into ``folder``; returns the dump's path."""
    return get(name).build(folder)


def markdown_table() -> str:
    """The catalog as the Markdown table of samples/README.md."""
    rows = [
        "| scenario | rules | pid | what it teaches | expected verdict | walk ends |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for s in SCENARIOS:
        a = s.answer
        verdict = f"`{a.label}`" + ("" if a.frame is None else f" at #{a.frame}")
        if a.as_current is not None:
            at = "" if a.as_current_frame is None else f" at #{a.as_current_frame}"
            verdict += f" (as current: `{a.as_current}`{at})"
        rows.append(f"| `{s.name}` | {s.era} | {s.pid} | {s.title} | {verdict} | `{a.end}` |")
    return "\n".join(rows) + "\n"


README = Path(__file__).resolve().parents[2] / "samples" / "README.md"  # a checkout's
TABLE_BEGIN = (
    "<!-- scenarios:begin (generated: python -m explorer.training.scenarios --write-readme) -->"
)
TABLE_END = "<!-- scenarios:end -->"


def readme_table(text: str) -> str:
    """The generated table between the markers of a README text ('' if there is none)."""
    if TABLE_BEGIN not in text or TABLE_END not in text:
        return ""
    return text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].lstrip("\n")


def write_readme(path: Path = README) -> None:
    """Replace the table between the markers of ``path`` with :func:`markdown_table`."""
    text = path.read_text()
    head, rest = text.split(TABLE_BEGIN, 1)
    _old, tail = rest.split(TABLE_END, 1)
    path.write_text(f"{head}{TABLE_BEGIN}\n{markdown_table()}{TABLE_END}{tail}")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m explorer.training.scenarios [--markdown | --write-readme]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m explorer.training.scenarios")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--markdown", action="store_true", help="print the catalog table")
    group.add_argument("--write-readme", action="store_true", help="refresh samples/README.md")
    args = parser.parse_args(argv)
    if args.write_readme:
        write_readme()
        return 0
    if args.markdown:
        sys.stdout.write(markdown_table())
        return 0
    for s in SCENARIOS:
        print(f"{s.name:<28} {s.era:<8} {s.answer.summary}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
