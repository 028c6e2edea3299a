"""What the faces show of the code beside a frame: ``after_call`` and ``call`` of a return
address, where a PSW stood in its function, the interrupted context (text and JSON)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from explorer.code.cache import calls_of

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel
    from explorer.walk.unwind import Step


def call_fields(kernel: Kernel, step: Step) -> dict[str, Any]:
    """What ends at a frame's return address: ``after`` (``call``, ``psw_swap``, ``other``;
    null where the code is unreadable or the ip is a PSW, not a return address),
    ``after_call`` (true after a call, false only after neither a call nor a PSW swap),
    ``call`` (the call instruction, target named) and ``instruction`` (the call or the
    PSW swap)."""
    calls = calls_of(kernel)
    site = calls.for_step(step)
    if site is None:
        return {"after_call": None, "after": None, "call": None, "instruction": None}
    return {
        "after_call": site.after_call,
        "after": site.after,
        "call": calls.call_text(site),
        "instruction": calls.insn_text(site),
    }


def not_after_call(kernel: Kernel, step: Step) -> bool:
    """True if the frame's return address follows neither a call nor a PSW swap (the mark
    in listings)."""
    site = calls_of(kernel).for_step(step)
    return site is not None and site.after_call is False


def after_psw_swap(kernel: Kernel, step: Step) -> str | None:
    """The PSW swap (``lpswe 0xa0(%r15)``) a frame's return address follows, else None."""
    calls = calls_of(kernel)
    site = calls.for_step(step)
    if site is None or site.after != "psw_swap":
        return None
    return calls.insn_text(site) or "a PSW swap"


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


def _context_json(kernel: Kernel, ctx: Any) -> dict[str, Any]:
    state = ctx.state
    return {
        "source": ctx.source,
        "psw": f"0x{ctx.address:x}",
        "symbol": kernel.symbolize(ctx.address),
        "sp": f"0x{ctx.sp:x}",
        "state": state.phase,
        "state_text": state.text,
        "frame_size": state.frame_size,
        "return_address_in": state.return_address_in,
        "caller_sp": None if ctx.caller_sp is None else f"0x{ctx.caller_sp:x}",
        "return_address": None if ctx.return_address is None else f"0x{ctx.return_address:x}",
        "return_symbol": None
        if ctx.return_address is None
        else kernel.symbolize(ctx.return_address),
        "how": state.how,
    }


def psw_fields(kernel: Kernel, step: Step) -> dict[str, Any]:
    """``psw_state`` (where in its function a PSW frame's ip stood) and ``interrupted``
    (the context a CPU stopped on a handler's first instruction interrupted); null for
    frames whose ip is a return address."""
    if step.how not in ("start_regs", "pt_regs"):
        return {"psw_state": None, "interrupted": None}
    from explorer.code.interrupted import cpu_of_step, interrupted_context, step_context

    ctx = step_context(kernel, step)
    cpu = cpu_of_step(kernel, step)
    inter = interrupted_context(kernel, cpu) if cpu is not None else None
    return {
        "psw_state": None if ctx is None else _context_json(kernel, ctx),
        "interrupted": None if inter is None else _context_json(kernel, inter),
    }


def code_lines(kernel: Kernel, step: Step, width: int = 16) -> list[str]:
    """Lines ``bt`` prints under a PSW frame: the interrupted context of a CPU stopped on
    a handler's first instruction (a frame of its own), else where the PSW stood in its
    function; and, where r15 does not lead to the caller, where the caller is."""
    if step.how not in ("start_regs", "pt_regs"):
        return []
    from explorer.code.interrupted import MISLEADING, cpu_of_step, interrupted_context, step_context

    cpu = cpu_of_step(kernel, step)
    inter = interrupted_context(kernel, cpu) if cpu is not None else None
    lines = []
    if inter is not None:
        where = kernel.symbolize(inter.address) or "?"
        lines.append(
            f"     [0x{inter.sp:0{width}x}] {where} at 0x{inter.address:0{width}x}  "
            f"<- interrupted here ({inter.source}): {inter.state.text}"
        )
        ctx = inter
    else:
        ctx = step_context(kernel, step)  # type: ignore[assignment]
        if ctx is None or ctx.state.phase in ("unknown", "ambiguous"):
            return []
        where = kernel.symbolize(ctx.address) or f"0x{ctx.address:x}"
        lines.append(f"        PSW in {where.split('+')[0]}: {ctx.state.text}")
    if ctx.state.phase in MISLEADING and ctx.caller_sp is not None:
        ra = ctx.return_address
        name = "?" if ra is None else kernel.symbolize(ra) or f"0x{ra:x}"
        shown = "unknown" if ra is None else f"0x{ra:x} ({name})"
        lines.append(
            f"        the caller is not on the back chain from r15: its sp is "
            f"0x{ctx.caller_sp:x}, return address {shown}"
        )
    return lines
