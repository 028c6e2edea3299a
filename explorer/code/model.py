"""One :class:`~explorer.code.text.CodeText` and one call checker per opened kernel, and
the frame fields the faces show (``after_call``, ``call``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from explorer.code.callsite import CallChecker, CallSite
from explorer.code.text import CodeText

if TYPE_CHECKING:
    from explorer.kernel import Kernel
    from explorer.unwind import Step

_CODE: WeakKeyDictionary[Any, CodeText] = WeakKeyDictionary()
_CALLS: WeakKeyDictionary[Any, CallChecker] = WeakKeyDictionary()


def code_of(kernel: Kernel) -> CodeText:
    """The kernel's code reader (shared: its page cache serves every face)."""
    code = _CODE.get(kernel)
    if code is None:
        code = _CODE[kernel] = CodeText(kernel)
    return code


def calls_of(kernel: Kernel) -> CallChecker:
    """The kernel's memoised call-site checker."""
    calls = _CALLS.get(kernel)
    if calls is None:
        calls = _CALLS[kernel] = CallChecker(code_of(kernel))
    return calls


def call_site(kernel: Kernel, step: Step) -> CallSite | None:
    """The call-site check of a frame's return address (None for a PSW frame)."""
    return calls_of(kernel).for_step(step)


def call_fields(kernel: Kernel, step: Step) -> dict[str, Any]:
    """``after_call`` (true/false; null where the code is unreadable or the ip is a PSW,
    not a return address) and ``call`` (the call instruction, target named)."""
    calls = calls_of(kernel)
    site = calls.for_step(step)
    if site is None:
        return {"after_call": None, "call": None}
    return {"after_call": site.after_call, "call": calls.call_text(site)}


def not_after_call(kernel: Kernel, step: Step) -> bool:
    """True if the frame's return address does not follow a call (the mark in listings)."""
    site = calls_of(kernel).for_step(step)
    return site is not None and site.after_call is False


def suspicious_lines(kernel: Kernel, found: list[tuple[Any, Step]]) -> list[str]:
    """``check``'s section "suspicious return addresses": each task and frame whose return
    address does not follow a call (advice: the verdicts above are the kernel's)."""
    if not found:
        return []
    lines = [
        "",
        f"suspicious return addresses ({len(found)}): kernel text, but no call ends there",
    ]
    for task, step in found:
        where = kernel.symbolize(step.ip) or "?"
        guess = " (r14 guess after pt_regs)" if step.how == "r14_guess" else ""
        lines.append(
            f"  pid {task.pid:<6} {task.comm:<16} #{step.index:<2} {where} at 0x{step.ip:x}{guess}"
        )
    return lines
