"""s390's kernel stacks as ranges: the task stack and the per-CPU irq, nodat, restart and
machine-check stacks (``enum stack_type`` and ``struct stack_info`` of
arch/s390/include/asm/stacktrace.h)."""

from __future__ import annotations

from dataclasses import dataclass

#: Stack types as the kernel names them (enum stack_type, stack_type_name()).
STACK_TYPES = ("task", "irq", "nodat", "restart", "mcck")


@dataclass(frozen=True, slots=True)
class StackRange:
    """One kernel stack ``[begin, end)`` of a ``stack_type`` (task, irq, nodat, ...)."""

    stack_type: str
    begin: int
    end: int

    def on_stack(self, address: int, length: int = 0) -> bool:
        """The kernel's ``on_stack()``: ``begin <= address`` and ``address + length <= end``."""
        return self.begin <= address and address + length <= self.end


__all__ = ["STACK_TYPES", "StackRange"]
