"""Names for the raw values of a pt_regs that are no code address, so that no face shows a
bare ``0x0 (?)``.

A kernel thread's pt_regs at the top of its stack are written by ``copy_thread()``
(arch/s390/kernel/process.c): zeroed, a kernel PSW mask with address 0, the thread function
in r9 and its argument in r10, ``orig_gpr2`` -1 and ``last_break`` 1. The thread never
returns through them (``__ret_from_fork`` calls the function, which exits).
"""

from __future__ import annotations

from collections.abc import Callable

from parsers.s390.records import PtRegs

Symbolize = Callable[[int], str | None]


def kthread_regs(regs: PtRegs) -> bool:
    """True for a kernel thread's pt_regs as ``copy_thread()`` leaves them."""
    return (
        not regs.user_mode
        and regs.psw.addr == 0
        and regs.orig_gpr2 == 0xFFFFFFFFFFFFFFFF
        and regs.gprs[9] != 0
    )


def psw_where(regs: PtRegs, symbolize: Symbolize) -> str:
    """What a pt_regs' PSW address is: ``user space``, its symbol, a kernel thread's
    never-used PSW (naming the thread function in r9), or ``?``."""
    if regs.user_mode:
        return "user space"
    name = symbolize(regs.psw.addr)
    if name is not None:
        return name
    if kthread_regs(regs):
        fn = symbolize(regs.gprs[9]) or f"0x{regs.gprs[9]:x}"
        fn = fn.split("+0x0/", 1)[0]  # the function itself: r9 is its entry
        return f"none: a kernel thread's, from copy_thread(), never returned to; r9 = {fn}"
    if regs.psw.mask == 0 and regs.psw.addr == 0 and not any(regs.gprs):
        return "none: all zero, never used"
    return "?"


def last_break_where(regs: PtRegs, symbolize: Symbolize) -> str:
    """What ``last_break`` holds: its symbol, copy_thread()'s 1, or not kernel text."""
    if regs.last_break is not None:
        name = symbolize(regs.last_break)
        if name is not None:
            return name
        if regs.last_break == 1 and kthread_regs(regs):
            return "1 from copy_thread(): no break yet"
    return "not kernel text"
