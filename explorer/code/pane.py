"""The code around a frame's ip, as the frame inspector shows it: a few instructions before
and after the return address (the call highlighted, or its absence flagged) or the PSW
(with where its function stood), as data; the TUI only draws it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from explorer.code.branches import relative_target
from explorer.code.callsite import is_call, is_psw_swap

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel
    from explorer.walk.unwind import Step


@dataclass(frozen=True, slots=True)
class CodeRow:
    """One instruction of the pane.

    Attributes:
        role: ``call`` (the call the return address follows), ``swap`` (the PSW swap it
            follows, ``lpswe``), ``nocall`` (the instruction ending at a return address that
            is neither), ``mark`` (the instruction at
            the return address or PSW), ``inside`` (the address falls inside it), or ``""``.
    """

    address: int
    where: str | None
    text: str
    role: str = ""


@dataclass(frozen=True)
class CodeView:
    """What the code pane shows for one frame.

    Attributes:
        title: ``code at __schedule+0x43c (return address)``.
        rows: the instructions around it.
        notes: one-line findings (``returns after brasl %r14, __switch_to``; ``no call
            ends here``; where the PSW stood; the interrupted context).
        ok: False when something is flagged (no call before a return address, a PSW whose
            r15 does not lead to the caller), None when the code is unreadable.
    """

    title: str
    rows: tuple[CodeRow, ...]
    notes: tuple[str, ...]
    ok: bool | None


def code_view(kernel: Kernel, step: Step, before: int = 4, after: int = 3) -> CodeView:
    """The code pane of ``step``: ``before`` instructions before its ip and ``after`` from
    it."""
    from explorer.code.cache import analyzer_of, calls_of, code_of
    from explorer.code.interrupted import MISLEADING, cpu_of_step, interrupted_context, step_context

    ip = step.ip
    code = code_of(kernel)
    psw = step.how in ("start_regs", "pt_regs")
    cpu = cpu_of_step(kernel, step) if psw else None
    inter = interrupted_context(kernel, cpu) if cpu is not None else None
    what = "PSW" if psw else "return address"
    if inter is not None:  # show where the interrupted context stood, not the handler
        ip, what = inter.address, f"interrupted, {inter.source}"
    where = kernel.symbolize(ip) or f"0x{ip:x}"
    title = f"code at {where.partition('/')[0]} ({what})"
    func = code.function_at(ip)
    insns = analyzer_of(kernel).instructions(func) if func is not None else []
    if not insns:
        return CodeView(title, (), ("code not readable (not in the dump; give --vmlinux)",), None)
    k = next((n for n, i in enumerate(insns) if i.end > ip), len(insns) - 1)
    rows = []
    for n in range(max(0, k - before), min(len(insns), k + after)):
        insn = insns[n]
        role = ""
        if insn.address == ip:
            role = "mark"
        elif insn.address < ip < insn.end:
            role = "inside"
        elif not psw and insn.end == ip:
            role = "call" if is_call(insn) else "swap" if is_psw_swap(insn) else "nocall"
        text = insn.text
        target = relative_target(insn.address, insn.raw)
        name = None if target is None else code.where(target)
        if name is not None:
            text = f"{text} <{name.removesuffix('+0x0')}>"
        rows.append(CodeRow(insn.address, func.where(insn.address) if func else None, text, role))
    notes: list[str] = []
    ok: bool | None = True
    if not psw:
        calls = calls_of(kernel)
        site = calls.check(ip)
        if site.after_call:
            notes.append(f"returns after {calls.call_text(site)}")
        elif site.after == "psw_swap":
            ok = None
            notes.append(
                f"follows {calls.insn_text(site)}: the kernel loaded a PSW pointing here (an "
                "enabled wait, a restart), not a call"
            )
        elif site.after_call is False:
            notes.append("no call ends at this return address: it was not pushed by a call")
            ok = False
        else:
            ok = None
    else:
        ctx = inter or step_context(kernel, step)
        if inter is not None:
            handler = (kernel.symbolize(step.ip) or f"0x{step.ip:x}").partition("/")[0]
            notes.append(f"the CPU is on {handler}, a handler's first instruction")
        if ctx is not None:
            notes.append(ctx.state.text)
            if ctx.state.phase in MISLEADING and ctx.caller_sp is not None:
                ra = ctx.return_address
                shown = "?" if ra is None else (kernel.symbolize(ra) or f"0x{ra:x}")
                notes.append(
                    f"caller not on the back chain: sp 0x{ctx.caller_sp:x}, returns to {shown}"
                )
                ok = False
    return CodeView(title, tuple(rows), tuple(notes), ok)
