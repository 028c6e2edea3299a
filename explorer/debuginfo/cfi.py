"""A second unwinder: DWARF CFI (``.debug_frame`` of the -dbg vmlinux), started from the
same registers as the back-chain walk, and its agreement with it.

On s390x the CFA is the caller's r15 plus 160 and the return address is r14: each step
takes the row at the frame's pc (pc-1 for a return address, which may end a function),
computes CFA = r15 + offset, reads the saved r14 from its slot (``c-24``: the caller's
frame + 136, where the back chain walk reads it too) and continues with r15 = CFA - 160.
It stops where the code has no CFI (assembly: ``system_call``, ``ret_from_fork``), where
the return address was never saved (still in r14), or where the memory is not in the dump.
Nothing here judges reliability: the verdict is the back chain's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from parsers.dwarf.cfi import DebugFrame
from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.walk.unwind import Walk

#: The caller's r15 is CFA - 160 (the s390x ABI's register save area).
CFA_BIAS = 160
_R14, _R15 = 14, 15
_MAX_FRAMES = 128


@dataclass(frozen=True, slots=True)
class CfiFrame:
    """One frame of the CFI unwind: the r15 in the frame and the pc."""

    index: int
    sp: int
    pc: int


@dataclass(frozen=True)
class CfiWalk:
    """The CFI unwind of one stack.

    Attributes:
        frames: innermost first.
        end: why it stopped, in words (``no CFI at system_call+0x78 (assembly)``).
    """

    frames: tuple[CfiFrame, ...]
    end: str


def cfi_walk(
    table: DebugFrame,
    delta: int,
    read_u64: Callable[[int], int],
    pc: int,
    regs: dict[int, int],
    symbolize: Callable[[int], str | None],
    return_address: bool = True,
    in_module: Callable[[int], bool] = lambda pc: False,
) -> CfiWalk:
    """Unwind from ``pc`` and the known registers ``regs`` (r15 at least; runtime addresses,
    the table's are ``delta`` lower). Callee-saved registers are carried from frame to
    frame by their rules (a frame whose CFA is another register, r11 under
    ``add_random_kstack_offset()``'s alloca, needs it); a register without a rule keeps its
    value, a call-clobbered one (r0-r5) is forgotten after the first frame.

    Args:
        return_address: ``pc`` is a return address (look the row up at pc-1).
        in_module: whether a pc is module text (no CFI in the vmlinux for it).
    """
    regs = dict(regs)
    frames = [CfiFrame(0, regs[_R15], pc)]
    while True:
        if len(frames) >= _MAX_FRAMES:
            return CfiWalk(tuple(frames), "step limit")
        at = pc - 1 if return_address else pc
        where = symbolize(pc) or f"0x{pc:x}"
        try:
            row = table.row_at(at - delta)
        except DumpError as exc:
            return CfiWalk(tuple(frames), f"CFI of {where} unreadable: {exc.message}")
        if row is None:
            why = (
                "module code: the vmlinux's CFI is the core kernel's"
                if in_module(pc)
                else "assembly code has none"
            )
            return CfiWalk(tuple(frames), f"no CFI at {where} ({why})")
        base = regs.get(row.cfa_reg)
        if base is None:
            what = "an expression" if row.cfa_reg < 0 else f"r{row.cfa_reg}, not known here"
            return CfiWalk(tuple(frames), f"CFA of {where} is {what}")
        sp = regs[_R15]
        cfa = base + row.cfa_offset
        caller = {r: v for r, v in regs.items() if 6 <= r <= 15}
        try:
            for reg, rule in row.rules.items():
                if rule.kind == "offset":
                    caller[reg] = read_u64(cfa + rule.value)
                elif rule.kind == "val_offset":
                    caller[reg] = cfa + rule.value
                elif rule.kind == "register" and rule.value in regs:
                    caller[reg] = regs[rule.value]
                elif rule.kind in ("undefined", "expression"):
                    caller.pop(reg, None)
        except DumpError:
            return CfiWalk(tuple(frames), f"stack at 0x{cfa:x} not in the dump")
        rule14 = row.rules.get(_R14)
        if rule14 is None or rule14.kind == "same":
            ra = regs.get(_R14)
            if ra is None or len(frames) > 1:
                return CfiWalk(tuple(frames), f"return address of {where} not saved (in r14)")
        else:
            ra = caller.get(_R14)
        new_sp = cfa - CFA_BIAS
        if new_sp <= sp and len(frames) > 1:
            return CfiWalk(tuple(frames), f"CFA of {where} does not move up the stack")
        if not ra:
            return CfiWalk(
                tuple(frames), f"return address of {where} is 0 (a stack switch, no CFI)"
            )
        caller[_R15] = new_sp
        regs, pc, return_address = caller, ra, True
        frames.append(CfiFrame(len(frames), new_sp, pc))


_TABLES: WeakKeyDictionary[Any, DebugFrame | None] = WeakKeyDictionary()


def debug_frame_of(kernel: Any) -> DebugFrame | None:
    """The ``.debug_frame`` of the kernel's ``--vmlinux``, or None without one.

    Raises:
        DumpError: the vmlinux has no ``.debug_frame`` or it is damaged.
    """
    if kernel in _TABLES:
        return _TABLES[kernel]
    path = kernel.options.vmlinux
    table = None
    if path:
        from parsers.elf.sections import ElfSections

        with ElfSections(path) as elf:
            section = elf.get(".debug_frame")
            if section is None:
                raise DumpError(f"{path}: no .debug_frame (a -dbg vmlinux has one)")
            table = DebugFrame(elf.bytes_of(section))
    _TABLES[kernel] = table
    return table


def cfi_for_walk(kernel: Any, table: DebugFrame, walk: Walk) -> CfiWalk | None:
    """The CFI unwind from the registers the back-chain walk started with: a sleeping task's
    r6-r15 as ``__switch_to`` saved them at its ksp (+72), or a CPU's registers; None for
    an empty walk."""
    if not walk.steps:
        return None
    first = walk.steps[0]
    delta = kernel.symbols.delta if kernel.symbols is not None else 0
    psw = first.how == "start_regs"
    regs: dict[int, int] = {}
    if psw and first.regs is not None:
        regs = dict(enumerate(first.regs.gprs))
    elif first.how == "start":
        try:
            raw = kernel.read(first.sp + 72, 80)
            regs = {6 + i: int.from_bytes(raw[8 * i : 8 * i + 8], "big") for i in range(10)}
        except DumpError:
            regs = {}
    regs[_R15] = first.sp
    if not psw:
        regs[_R14] = first.ip
    return cfi_walk(
        table,
        delta,
        kernel.space.read_u64,
        first.ip,
        regs,
        kernel.symbolize,
        return_address=not psw,
        in_module=lambda pc: kernel.modules.module_at(pc) is not None,
    )


#: Why a frame differs between the back chain and the CFI unwind, by kind (the words of
#: ``check --cfi``'s counts). Each is derived from evidence by
#: :func:`explorer.reports.cfiexplain.explain`: the function's instruction bytes (its
#: prologue) or the CFI rows (the FDE's range, the rules at the pc).
EXPLANATION_KINDS = {
    "r14_guess": "a frame without a back chain that CFI steps over",
    "no_frame_yet": "a function that had not stored its back chain: only CFI sees its caller",
    "cfi_ends_early": "a function whose CFI ends before its return address",
    "assembly": "an assembly frame without CFI",
    "module": "module code, which the vmlinux's CFI does not cover",
    "stack_switch": "a stack switch (the return-address slot is 0)",
    "pt_regs": "a pt_regs boundary",
    "back_chain_ended": "the back chain stopped where CFI goes on",
    "unexplained": "not explained by any known cause",
}


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why one frame differs between the back chain and the CFI unwind.

    Attributes:
        kind: a key of :data:`EXPLANATION_KINDS`.
        words: the cause in plain words, with its evidence.
        at: the code address the evidence is about (a PSW, or a return address).
        row_at: where that frame's CFI row is looked up (``at``, or ``at - 1`` for a
            return address), a runtime address.
        sp: the stack pointer of that frame.
    """

    kind: str
    words: str
    at: int
    row_at: int
    sp: int

    @property
    def label(self) -> str:
        """The kind in words (``an assembly frame without CFI``)."""
        return EXPLANATION_KINDS.get(self.kind, self.kind)

    @property
    def text(self) -> str:
        """Kind and cause in one line, as ``bt --cfi`` prints them."""
        return f"{self.label}: {self.words}"


@dataclass(frozen=True)
class Agreement:
    """Back chain and CFI side by side: ``pairs`` of (back-chain step or None, CFI frame or
    None) matched by sp and pc, and the number that agree.

    The back-chain steps appear in walk order, so ``pairs[i][0]`` is ``walk.steps[i]``
    unless CFI has a frame the back chain lacks before it (``no_frame_yet``: a PSW before
    a prologue; never on the bundled samples); :meth:`beside` looks a step up exactly.

    Attributes:
        explanations: one per pair when explained (None where the pair agrees), else empty.
    """

    pairs: tuple[tuple[Any, CfiFrame | None], ...]
    agree: int
    cfi_end: str
    explanations: tuple[Explanation | None, ...] = ()

    def beside(self, index: int) -> tuple[CfiFrame | None, Explanation | None]:
        """The CFI frame paired with back-chain step ``index`` (None: none, CFI stopped
        before it or steps over it) and why they differ (None: they agree, or not
        explained)."""
        for i, (s, f) in enumerate(self.pairs):
            if s is not None and s.index == index:
                why = self.explanations[i] if i < len(self.explanations) else None
                return f, why
        return None, None


def same_frame(step: Any, frame: CfiFrame | None) -> bool:
    """Whether a back-chain step and a CFI frame are the same frame (sp and pc)."""
    return step is not None and frame is not None and step.sp == frame.sp and step.ip == frame.pc


def compare(walk: Walk, cfi: CfiWalk) -> Agreement:
    """Match the walks frame by frame: equal frames (sp and pc) are paired in order; a frame
    only one side has is paired with None (a frame the back chain reads from a stale slot,
    a caller only CFI sees); where both differ at the same place they are paired."""
    from difflib import SequenceMatcher

    steps = list(walk.steps)
    frames = list(cfi.frames)
    ours = [(s.sp, s.ip) for s in steps]
    theirs = [(f.sp, f.pc) for f in frames]
    pairs: list[tuple[Any, CfiFrame | None]] = []
    agree = 0
    matcher = SequenceMatcher(None, ours, theirs, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pairs.extend(zip(steps[i1:i2], frames[j1:j2], strict=True))
            agree += i2 - i1
            continue
        left: list[Any] = steps[i1:i2]
        right: list[CfiFrame | None] = list(frames[j1:j2])
        if op == "replace":  # same place, different frames: side by side while both last
            n = min(len(left), len(right))
            pairs.extend(zip(left[:n], right[:n], strict=True))
            left, right = left[n:], right[n:]
        pairs.extend((s, None) for s in left)
        pairs.extend((None, f) for f in right)
    return Agreement(tuple(pairs), agree, cfi.end)


def table_or_error(kernel: Any) -> DebugFrame:
    """The ``.debug_frame`` for ``--cfi``.

    Raises:
        DumpError: no vmlinux given or found (one line the user can act on).
    """
    table = debug_frame_of(kernel)
    if table is None:
        raise DumpError(
            "--cfi needs the kernel's -dbg vmlinux (its .debug_frame): give --vmlinux FILE",
            kernel.path,
        )
    return table


def _frame_text(kernel: Any, sp: int, pc: int) -> str:
    return f"0x{sp:016x} {kernel.symbolize(pc) or f'0x{pc:x}'}"


def side_by_side(
    kernel: Any, walk: Walk, cfi: CfiWalk, agreement: Agreement | None = None
) -> list[str]:
    """``bt --cfi``: the back chain and the CFI unwind, frame beside frame; with an explained
    ``agreement`` (:func:`explorer.reports.cfiexplain.explain`), why each differing frame
    differs, once per cause."""
    ag = agreement if agreement is not None else compare(walk, cfi)
    lines = [
        f"CFI unwind (.debug_frame) beside the back chain: {ag.agree} of "
        f"{len(walk.steps)} frames agree",
        f"  {'#':>3}  {'back chain':<50} CFI",
    ]
    whys: dict[Explanation, list[int]] = {}
    for i, (s, f) in enumerate(ag.pairs):
        left = _frame_text(kernel, s.sp, s.ip) if s is not None else "-"
        why = ag.explanations[i] if i < len(ag.explanations) else None
        if f is None:
            right = "-"
        elif same_frame(s, f):
            right = "same"
        else:
            right = _frame_text(kernel, f.sp, f.pc)
        if why is not None:
            whys.setdefault(why, []).append(i)
            right += f"  [{why.kind}]"
        lines.append(f"  {i:>3}  {left:<50} {right}")
    lines.append(f"  CFI stopped: {cfi.end}")
    if whys:
        lines.append("  why they differ:")
        for why, rows in whys.items():
            lines.append(f"    {_spans(rows):>5}  {why.label}: {why.words}")
    return lines


def _spans(rows: list[int]) -> str:
    """``7-8,10`` of [7, 8, 10]."""
    out: list[str] = []
    start = prev = rows[0]
    for r in [*rows[1:], None]:
        if r is not None and r == prev + 1:
            prev = r
            continue
        out.append(f"{start}" if start == prev else f"{start}-{prev}")
        if r is not None:
            start = prev = r
    return ",".join(out)


def explanation_json(why: Explanation | None) -> dict[str, Any] | None:
    """One explanation as JSON (kind, label, words, evidence addresses)."""
    if why is None:
        return None
    return {
        "kind": why.kind,
        "label": why.label,
        "words": why.words,
        "at": f"0x{why.at:x}",
        "row_at": f"0x{why.row_at:x}",
        "sp": f"0x{why.sp:x}",
    }


def cfi_json(
    kernel: Any, walk: Walk, cfi: CfiWalk, agreement: Agreement | None = None
) -> dict[str, Any]:
    """The ``cfi`` object of ``bt --cfi --json`` and ``check --cfi --json``; with an
    explained ``agreement``, ``differences``: each differing pair with its explanation."""
    ag = agreement if agreement is not None else compare(walk, cfi)
    out: dict[str, Any] = {
        "frames": [
            {
                "index": f.index,
                "sp": f"0x{f.sp:x}",
                "pc": f"0x{f.pc:x}",
                "symbol": kernel.symbolize(f.pc),
            }
            for f in cfi.frames
        ],
        "end": cfi.end,
        "agree": ag.agree,
    }
    if ag.explanations:
        out["differences"] = [
            {
                "pair": i,
                "back_chain": None if s is None else s.index,
                "cfi": None if f is None else f.index,
                "why": explanation_json(ag.explanations[i]),
            }
            for i, (s, f) in enumerate(ag.pairs)
            if not same_frame(s, f)
        ]
    return out
