"""Why the CFI unwind and the back-chain walk differ, frame by frame, from evidence.

For each pair :func:`explorer.debuginfo.cfi.compare` leaves unequal, one
:class:`~explorer.debuginfo.cfi.Explanation`:

- a back-chain frame at the same sp as a PSW frame (the kernel reads the r14 slot of that
  frame after starting from registers): ``r14_guess`` when the PSW's function had already
  saved its own r14 in its caller's frame (its prologue, decoded from the instruction
  bytes, says so, and the CFI row at the PSW saves r14 too), so the slot holds what a
  callee that has returned left there and CFI steps over it;
- a CFI frame the back chain lacks after a PSW frame: ``no_frame_yet`` when the prologue
  had not stored the frame's back chain (the return address is still in r14);
- back-chain frames after the CFI unwind stopped: where it stopped, from the CFI rows —
  ``assembly`` (no FDE covers the pc and the function has none), ``cfi_ends_early`` (the
  function's FDE ends at or before the address), ``module`` (module code: the vmlinux's
  CFI is the core kernel's), ``stack_switch`` (the row saves r14, and the slot it names
  holds 0: the stack was set up by assembly); a back-chain frame taken from a pt_regs
  PSW is ``pt_regs``;
- CFI frames after the back-chain walk ended: ``back_chain_ended``;
- anything else: ``unexplained`` (never seen on the real samples; a test says so).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from explorer.debuginfo.cfi import Agreement, CfiFrame, CfiWalk, Explanation, compare
from parsers.dwarf.cfi import DebugFrame
from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel
    from explorer.walk.unwind import Step, Walk

_PSW_HOWS = ("start_regs", "pt_regs")
#: Where a function saves its r14 in its caller's frame (``stmg %r6,%r15,48(%r15)`` puts r14
#: at 48 + 8*8 = 112; with -mpacked-stack at 136): the CFI row says where; this is only the
#: back-chain walk's slot, ``sf->gprs[8]``.
_GUESS_SLOT = 136


def explain(kernel: Kernel, table: DebugFrame, walk: Walk, cfi: CfiWalk) -> Agreement:
    """:func:`~explorer.debuginfo.cfi.compare` with an explanation for every pair that
    differs (None where the pair agrees)."""
    ag = compare(walk, cfi)
    ctx = _Context(kernel, table, walk, cfi, ag.pairs)
    whys: list[Explanation | None] = []
    pairs = ag.pairs
    last_cfi = max((i for i, (_, f) in enumerate(pairs) if f is not None), default=-1)
    last_bc = max((i for i, (s, _) in enumerate(pairs) if s is not None), default=-1)
    for i, (s, f) in enumerate(pairs):
        if s is not None and f is not None and s.sp == f.sp and s.ip == f.pc:
            whys.append(None)
        elif s is not None and f is None and i > last_cfi:
            whys.append(ctx.after_cfi_stop(s))
        elif s is None and f is not None and i > last_bc:
            whys.append(ctx.after_walk_end(f))
        elif s is not None and f is None:
            whys.append(ctx.back_chain_only(i, s))
        elif s is None and f is not None:
            whys.append(ctx.cfi_only(i, f))
        elif s is not None and f is not None:
            whys.append(ctx.both_differ(i, s, f))
        else:  # compare() never pairs None with None
            whys.append(ctx.unexplained(s, f, "neither unwinder has a frame here"))
    return replace(ag, explanations=tuple(whys))


class _Context:
    """What the explanations of one walk share: the kernel, the table and the stop cause."""

    def __init__(
        self,
        kernel: Kernel,
        table: DebugFrame,
        walk: Walk,
        cfi: CfiWalk,
        pairs: tuple[tuple[Any, CfiFrame | None], ...],
    ) -> None:
        self.kernel = kernel
        self.table = table
        self.walk = walk
        self.cfi = cfi
        self.delta = kernel.symbols.delta if kernel.symbols is not None else 0
        self._stop: Explanation | None = None
        self._pairs = pairs

    def name(self, pc: int) -> str:
        return self.kernel.symbolize(pc) or f"0x{pc:x}"

    def unexplained(self, s: Step | None, f: CfiFrame | None, what: str) -> Explanation:
        at = s.ip if s is not None else f.pc if f is not None else 0
        sp = s.sp if s is not None else f.sp if f is not None else 0
        return Explanation("unexplained", what, at, at, sp)

    # -- back-chain frames after the CFI unwind stopped -------------------------------------

    def after_cfi_stop(self, s: Step) -> Explanation:
        stop = self.stop()
        if s.how == "pt_regs" and s.regs is not None:
            where = f" at 0x{s.regs.address:x}" if s.regs.address else ""
            return Explanation(
                "pt_regs",
                f"the back chain took this frame from the PSW of the pt_regs{where} that "
                "entry code saved below a zero back chain; CFI reads no pt_regs, and it "
                f"had stopped already at {self.name(stop.at)} ({stop.kind})",
                s.ip,
                s.ip,
                s.sp,
            )
        return stop

    def stop(self) -> Explanation:
        """Why the CFI unwind stopped at its last frame (the same for every frame after)."""
        if self._stop is None:
            self._stop = self._stop_cause()
        return self._stop

    def _stop_cause(self) -> Explanation:
        frames = self.cfi.frames
        last = frames[-1]
        psw_start = bool(self.walk.steps) and self.walk.steps[0].how == "start_regs"
        is_return = last.index > 0 or not psw_start
        row_at = last.pc - 1 if is_return else last.pc
        name = self.name(last.pc)
        what = "return address" if is_return else "PSW"
        try:
            row = self.table.row_at(row_at - self.delta)
        except DumpError as exc:
            return Explanation("unexplained", exc.message, last.pc, row_at, last.sp)
        if row is None:
            return self._no_row(last, row_at, name, what)
        # The row exists: what stopped the unwind is what it says about the caller.
        rule = row.rules.get(14)
        if row.cfa_reg == 15 and rule is not None and rule.kind == "offset":
            cfa = last.sp + row.cfa_offset
            slot = cfa + rule.value
            try:
                word = self.kernel.space.read_u64(slot)
            except DumpError:
                word = None
            if word == 0:
                nxt = self._bc_after(last)
                where = (
                    f"; the back chain goes on to 0x{nxt.sp:x} on the {nxt.stack_type} stack"
                    if nxt is not None
                    else ""
                )
                return Explanation(
                    "stack_switch",
                    f"the CFI row of {name} (CFA = r15+{row.cfa_offset}, r14 at CFA"
                    f"{rule.value:+d}) names the slot 0x{slot:x}, which holds 0: {name} runs "
                    "on a stack that assembly (call_on_stack, the entry code) set up, and "
                    f"no CFI describes the switch{where}",
                    last.pc,
                    row_at,
                    last.sp,
                )
        return Explanation(
            "unexplained",
            f"CFI stopped at {name} with a row covering the {what}: {self.cfi.end}",
            last.pc,
            row_at,
            last.sp,
        )

    def _no_row(self, last: CfiFrame, row_at: int, name: str, what: str) -> Explanation:
        if self.kernel.modules.module_at(last.pc) is not None:
            return Explanation(
                "module",
                f"{name} is module code; the vmlinux's .debug_frame covers the core kernel "
                "only, so CFI stops there and the back chain goes on",
                last.pc,
                row_at,
                last.sp,
            )
        sym = self.kernel.symbols.lookup(last.pc) if self.kernel.symbols is not None else None
        if sym is not None:
            fde = self.table.fde_range(row_at - self.delta)
            start = sym.address - self.delta
            if fde is not None and fde[0] <= start < fde[1] <= row_at - self.delta:
                return Explanation(
                    "cfi_ends_early",
                    f"the FDE of {sym.name} covers 0x{fde[0] + self.delta:x}-"
                    f"0x{fde[1] + self.delta:x}, which ends before its {what} "
                    f"0x{last.pc:x} ({name}): CFI has no row there",
                    last.pc,
                    row_at,
                    last.sp,
                )
        return Explanation(
            "assembly",
            f"no FDE covers the {what} {name}: assembly without CFI, so CFI stops there; "
            "the back chain goes on by the back chain word the code stores",
            last.pc,
            row_at,
            last.sp,
        )

    def _bc_after(self, frame: CfiFrame) -> Step | None:
        """The back-chain step after the one equal to ``frame``."""
        steps = self.walk.steps
        for k, s in enumerate(steps):
            if s.sp == frame.sp and s.ip == frame.pc:
                return steps[k + 1] if k + 1 < len(steps) else None
        return None

    # -- CFI frames after the back chain ended ----------------------------------------------

    def after_walk_end(self, f: CfiFrame) -> Explanation:
        end = self.walk.end
        detail = f" ({end.detail})" if end.detail else ""
        return Explanation(
            "back_chain_ended",
            f"the back-chain walk ended at 0x{end.sp:x}: {end.kind}{detail}; CFI goes on",
            f.pc,
            f.pc - 1,
            f.sp,
        )

    # -- a frame only one side has, both going on ------------------------------------------

    def _psw_before(self, i: int) -> Step | None:
        """The back-chain step just before pair ``i`` if it is a PSW frame."""
        for s, _ in reversed(self._pairs[:i]):
            if s is not None:
                return s if s.how in _PSW_HOWS else None
        return None

    def back_chain_only(self, i: int, s: Step) -> Explanation:
        psw = self._psw_before(i)
        if psw is None or s.sp != psw.sp:
            return self.unexplained(s, None, "a back-chain frame CFI has not, after no PSW")
        state = self._state(psw.ip)
        row = self._row(psw.ip)
        r14 = row.rules.get(14) if row is not None else None
        name = self.name(psw.ip)
        if (
            state is not None
            and state.return_address_in in ("saved", "both")
            and r14 is not None
            and r14.kind == "offset"
        ):
            return Explanation(
                "r14_guess",
                f"{name} had saved its own r14 (its prologue, decoded: "
                f"{state.text}, {state.frame_size} bytes; CFI at the PSW: r14 at CFA"
                f"{r14.value:+d}), so the slot the back chain reads at 0x{psw.sp:x}+"
                f"{_GUESS_SLOT} holds what a callee that has returned left there "
                f"({self.name(s.raw_ip)}); CFI steps over it to the saved return address",
                psw.ip,
                psw.ip,
                psw.sp,
            )
        why = state.text if state is not None else "no code"
        return self.unexplained(
            s, None, f"a frame from the r14 slot after {name}, whose prologue state is: {why}"
        )

    def cfi_only(self, i: int, f: CfiFrame) -> Explanation:
        psw = self._psw_before(i)
        if psw is not None:
            why = self._not_saved(psw, f)
            if why is not None:
                return why
        return self.unexplained(None, f, "a CFI frame the back chain has not, after no PSW")

    def both_differ(self, i: int, s: Step, f: CfiFrame) -> Explanation:
        """Both have a frame here, at the same sp with different pcs: after a PSW in a
        function that has not saved its r14, the back chain's r14 guess reads a stale slot
        and CFI takes r14 itself."""
        psw = self._psw_before(i)
        if psw is not None and s.sp == f.sp == psw.sp and s.how == "r14_guess":
            why = self._not_saved(psw, f)
            if why is not None:
                return why
        return self.unexplained(s, f, "both unwinders have a frame here, different ones")

    def _not_saved(self, psw: Step, f: CfiFrame) -> Explanation | None:
        state = self._state(psw.ip)
        row = self._row(psw.ip)
        r14 = row.rules.get(14) if row is not None else None
        if (
            state is None
            or state.return_address_in not in ("r14", "both")
            or state.back_chain_stored is True
            or (r14 is not None and r14.kind == "offset")
        ):
            return None
        name = self.name(psw.ip)
        return Explanation(
            "no_frame_yet",
            f"{name} had not saved its r14 nor stored a back chain ({state.text}); its "
            f"return address is still in r14 (CFI at the PSW: r14 not saved), so CFI finds "
            f"{self.name(f.pc)} where the back chain reads a slot no one wrote for it or "
            "skips to the caller's caller",
            psw.ip,
            psw.ip,
            psw.sp,
        )

    def _state(self, pc: int) -> Any:
        from explorer.code.cache import analyzer_of

        try:
            return analyzer_of(self.kernel).state_at(pc)
        except DumpError:
            return None

    def _row(self, pc: int) -> Any:
        try:
            return self.table.row_at(pc - self.delta)
        except DumpError:
            return None


__all__ = ["explain"]
