"""Which kernel stacks a task may use, and the kernel's ``get_stack_info()``.

A sleeping task owns one stack, its task stack. A task that is ``current`` on a CPU may also
be on that CPU's irq (async), nodat, restart and machine-check stacks
(arch/s390/kernel/dumpstack.c). Each stack type can be entered once per unwind (the
``visit_mask``).
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.model.kernel import Cpu
from parsers.s390.stacks import StackRange

# enum stack_type (arch/s390/include/asm/stacktrace.h); MCCK since ≈v5.12.
STACK_TYPE_ORDER = ("task", "irq", "nodat", "restart", "mcck")


@dataclass(frozen=True)
class StackRegions:
    """The stacks one unwind may visit.

    Attributes:
        task_stack: the task's own stack, None if it has none (an exited task).
        cpu_stacks: irq/nodat/restart/mcck of the CPU the task is current on (empty for a
            sleeping task: ``get_stack_info`` only looks at them when task == current).
        cpu: that CPU's number, or None.
    """

    task_stack: StackRange | None
    cpu_stacks: tuple[StackRange, ...] = ()
    cpu: int | None = None

    @property
    def all(self) -> tuple[StackRange, ...]:
        """Every region, task stack first."""
        return ((self.task_stack,) if self.task_stack else ()) + self.cpu_stacks

    def find(self, sp: int) -> StackRange | None:
        """The region holding ``sp`` in the kernel's order (task, irq, nodat, restart,
        mcck): ``begin <= sp < end``."""
        for region in self.all:
            if region.begin <= sp < region.end:
                return region
        return None


def regions_for(
    task_stack: StackRange | None, cpu: Cpu | None, with_mcck: bool = True
) -> StackRegions:
    """Stack regions of a task; ``cpu`` is the CPU it is current on, if any.

    Args:
        task_stack: the task stack.
        cpu: the CPU the task runs on (its per-CPU stacks become valid).
        with_mcck: whether the kernel has a machine-check stack type (≈v5.12+).
    """
    if cpu is None:
        return StackRegions(task_stack)
    stacks = tuple(s for s in cpu.stacks if with_mcck or s.stack_type != "mcck")
    order = {name: i for i, name in enumerate(STACK_TYPE_ORDER)}
    return StackRegions(
        task_stack, tuple(sorted(stacks, key=lambda s: order[s.stack_type])), cpu.number
    )
