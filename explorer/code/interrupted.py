"""Interrupted code: where a PSW stood in its function, and the context a CPU stopped on an
interrupt handler's first instruction has not saved yet.

A CPU whose PSW equals one of its lowcore's new PSWs took that interrupt and has run none of
the handler: its registers are still the interrupted context's, and the lowcore's old PSW
says where that context was ("interrupted at fdget+0x80 (external old PSW)"). The walk
starts at the handler's first instruction (as the kernel's unwinder would, from those
registers); this module adds the interrupted frame beside it, with its prologue state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from explorer.code.cache import analyzer_of
from explorer.code.prologue import PrologueState

if TYPE_CHECKING:
    from explorer.model.kernel import Cpu, Kernel
    from explorer.walk.unwind import Step

#: Interrupts whose first-level handler is entered through a new PSW.
_NAMES = {
    "external": "external",
    "io": "I/O",
    "svc": "supervisor call",
    "program": "program check",
    "mcck": "machine check",
    "restart": "restart",
}
#: Where execution stood, judged for PSW frames only: ``phase`` values whose r15 does not
#: lead to the caller through a stored back chain.
MISLEADING = frozenset({"no_frame", "before_frame", "no_back_chain", "epilogue"})


@dataclass(frozen=True)
class PswContext:
    """A PSW with the registers of its context, judged.

    Attributes:
        source: where the PSW comes from (``external old PSW``, ``CPU PSW``, ``pt_regs``).
        address: the PSW address.
        sp: r15 of that context.
        state: the prologue state at the address.
        caller_sp: the caller's sp (the entry r15), when the state tells it.
        return_address: the return address into the caller, when the state tells it.
    """

    source: str
    address: int
    sp: int
    state: PrologueState
    caller_sp: int | None
    return_address: int | None


def judge(kernel: Kernel, source: str, address: int, gprs: tuple[int, ...]) -> PswContext:
    """The prologue state at ``address`` with the context's registers ``gprs``."""
    state = analyzer_of(kernel).state_at(address)
    caller_sp, ra = state.caller(gprs, kernel.space.read_u64)
    return PswContext(source, address, gprs[15] if len(gprs) > 15 else 0, state, caller_sp, ra)


def interrupted_context(kernel: Kernel, cpu: Cpu) -> PswContext | None:
    """The kernel context a CPU stopped on a handler's first instruction interrupted.

    None if the CPU is not on a new PSW, or the old PSW is a user PSW (then the walk
    already starts from it, see :func:`explorer.walk.analysis.cpu_regs`).
    """
    lc = cpu.lowcore
    psw = cpu.registers.psw
    if lc is None or psw.user_mode:
        return None
    for name, new in lc.new_psws.items():
        old = lc.old_psws.get(name)
        if new.addr != psw.addr or new.mask != psw.mask or old is None:
            continue
        if old.user_mode or not old.addr or not kernel.is_text(old.addr):
            return None
        return judge(kernel, f"{_NAMES.get(name, name)} old PSW", old.addr, cpu.registers.gprs)
    return None


def step_context(kernel: Kernel, step: Step) -> PswContext | None:
    """For a frame whose ip is a PSW: the prologue state there (None for return
    addresses)."""
    regs = step.regs
    if regs is None or step.how not in ("start_regs", "pt_regs"):
        return None
    source = "pt_regs" if step.how == "pt_regs" else "CPU PSW"
    return judge(kernel, source, step.ip, tuple(regs.gprs))


def cpu_of_step(kernel: Kernel, step: Step) -> Cpu | None:
    """The CPU whose registers a walk's first frame started from."""
    if step.how != "start_regs" or step.regs is None:
        return None
    for cpu in kernel.cpus:
        r = cpu.registers
        if r.psw.addr == step.ip and tuple(r.gprs) == tuple(step.regs.gprs):
            return cpu
    return None
