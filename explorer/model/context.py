"""Which task a command means when the user names none (crash's "current context").

The panic task first: the task running on ``panic_cpu``. Without a panic, the CPU that
stopped the machine: the one in a kernel disabled wait (``stop_run`` after
``smp_send_stop()``, or ``disabled_wait()``); the others were stopped by a SIGP wherever
they were. Failing both, the lowest-numbered CPU. The choice is returned with its reason,
so the faces can say which task they chose and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.model.kernel import Cpu, Kernel
from explorer.model.tasks import Task, TaskScan
from parsers.errors import DumpError


@dataclass(frozen=True, slots=True)
class Context:
    """The default task and why it was chosen.

    Attributes:
        task: the chosen task.
        cpu: the CPU it runs on.
        reason: one sentence, e.g. "the panic task (CPU 0 called panic)".
    """

    task: Task
    cpu: int
    reason: str


def _stopper(kernel: Kernel) -> Cpu | None:
    for cpu in kernel.cpus:
        psw = cpu.registers.psw
        if psw.wait and not (psw.io or psw.ext) and not psw.user_mode and cpu.current_task:
            return cpu
    return None


def default_context(kernel: Kernel, scan: TaskScan) -> Context:
    """The task a command means when none is named.

    Raises:
        DumpError: no CPU of the dump names a readable current task.
    """
    from explorer.model.printk import panic_info

    panic_cpu = panic_info(kernel).cpu
    choices: list[tuple[Cpu | None, str]] = []
    by_number = {c.number: c for c in kernel.cpus}
    if panic_cpu is not None:
        choices.append((by_number.get(panic_cpu), f"the panic task (CPU {panic_cpu} called panic)"))
    stopper = _stopper(kernel)
    if stopper is not None:
        choices.append(
            (
                stopper,
                f"no panic; CPU {stopper.number} stopped first (it stopped the others and "
                "waits in a disabled wait)",
            )
        )
    for first in sorted(kernel.cpus, key=lambda c: c.number):
        choices.append((first, f"no panic; current task of CPU {first.number}, the first CPU"))
    for cpu, reason in choices:
        if cpu is None or not cpu.current_task:
            continue
        task = scan.by_address(cpu.current_task)
        if task is not None:
            return Context(task, cpu.number, reason)
    raise DumpError("no CPU names a readable current task: name one (--pid, --task)", kernel.path)


def active_tasks(kernel: Kernel, scan: TaskScan) -> list[Task]:
    """The task each CPU runs (crash ``bt -a``), in CPU order; unreadable ones left out."""
    out = []
    for cpu in sorted(kernel.cpus, key=lambda c: c.number):
        task = scan.by_address(cpu.current_task or 0)
        if task is not None:
            out.append(task)
    return out


__all__ = ["Context", "active_tasks", "default_context"]
