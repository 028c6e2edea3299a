"""Synthetic kernels for the unwinder tests: one sleeping task per crafted stack."""

from __future__ import annotations

from pathlib import Path

from explorer.model.kernel import Kernel, Options
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.training.synthetic import (
    KERNEL_WAIT_PSW_MASK,
    Frame,
    SyntheticKernel,
    SyntheticTask,
)
from explorer.walk.analysis import TaskAnalysis, analyse_task, unwind_context

RELEASES = {"current": "6.1.0-synthetic-s390x", "v5.5": "5.5.0-synthetic-s390x"}

#: A task sleeping in nanosleep, innermost frame first (what sysrq-t shows for `sleep`).
NANOSLEEP = [
    Frame("__schedule", 0x43C),
    Frame("schedule", 0x3E),
    Frame("do_nanosleep", 0x5E),
    Frame("hrtimer_nanosleep", 0x74),
    Frame("__do_sys_clock_nanosleep", 0xEC),
    Frame("__do_syscall", 0x280, size=0x1E8),
    Frame("system_call", 0x78),
]
#: An idle kworker, innermost first.
KTHREAD = [
    Frame("__schedule", 0x43C),
    Frame("schedule", 0x3E),
    Frame("worker_thread", 0x1A0),
    Frame("kthread", 0xF0),
    Frame("__ret_from_fork", 0x3C),
    Frame("ret_from_fork", 0xA),
]
NANOSLEEP_NAMES = [
    "__schedule",
    "schedule",
    "do_nanosleep",
    "hrtimer_nanosleep",
    "__do_sys_clock_nanosleep",
    "__do_syscall",
    "system_call",
]


def base_kernel(era: str = "current", cpus: int = 1) -> SyntheticKernel:
    """A kernel with swapper/0 idle (running) on every CPU."""
    k = SyntheticKernel(RELEASES[era], cpus=cpus)
    swapper = k.add_task(0, "swapper/0", "R", kthread=True, idle=True, address=k.init_task)
    k.task_stack(
        swapper,
        [
            Frame("__schedule", 0x40),
            Frame("schedule_idle", 0x3E),
            Frame("do_idle", 0x100),
            Frame("cpu_startup_entry", 0x44),
            Frame("start_kernel", 0x5C0),
        ],
        user=False,
    )
    for cpu in range(cpus):
        idle = (
            swapper
            if cpu == 0
            else k.add_task(0, f"swapper/{cpu}", "R", kthread=True, idle=True, cpu=cpu)
        )
        k.run_on_cpu(
            cpu,
            idle,
            (KERNEL_WAIT_PSW_MASK, k.ip("psw_idle_exit")),
            {15: idle.stack + k.stack_init_offset - 0x200 if idle.stack else 0},
        )
    return k


def sleeper(
    k: SyntheticKernel, pid: int = 100, comm: str = "sleep", frames: list[Frame] | None = None
) -> tuple[SyntheticTask, list[int]]:
    """A task sleeping in a system call: returns it and its frames' sps (innermost first)."""
    task = k.add_task(pid, comm, "S")
    sps = k.task_stack(task, list(frames or NANOSLEEP))
    return task, sps


def open_synthetic(k: SyntheticKernel, folder: Path, era: str | None = None) -> Kernel:
    """Save ``k`` and open it (System.map and profile.json are found beside the dump)."""
    return open_kernel(str(k.save(folder)), Options(era=era))


def analyse(kernel: Kernel, pid: int, functions: tuple[str, ...] = ()) -> TaskAnalysis:
    """Walk and judge the task with ``pid`` (the first one found)."""
    scan = find_tasks(kernel)
    task = scan.by_pid(pid)[0]
    return analyse_task(kernel, task, unwind_context(kernel), functions)


def names(kernel: Kernel, analysis: TaskAnalysis) -> list[str]:
    """Function names of the walk's frames, unreliable ones in parentheses."""
    out = []
    for step in analysis.walk.steps:
        sym = kernel.symbols.lookup(step.ip) if kernel.symbols else None
        name = sym.name if sym else f"0x{step.ip:x}"
        out.append(name if step.reliable else f"({name})")
    return out
