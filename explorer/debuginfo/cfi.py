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


@dataclass(frozen=True)
class Agreement:
    """Back chain and CFI side by side: ``pairs`` of (back-chain step or None, CFI frame or
    None) matched by sp and pc, and the number that agree."""

    pairs: tuple[tuple[Any, CfiFrame | None], ...]
    agree: int
    cfi_end: str


def compare(walk: Walk, cfi: CfiWalk) -> Agreement:
    """Match the walks frame by frame (by position: both start from the same registers)."""
    steps = list(walk.steps)
    frames = list(cfi.frames)
    pairs: list[tuple[Any, CfiFrame | None]] = []
    agree = 0
    for i in range(max(len(steps), len(frames))):
        s = steps[i] if i < len(steps) else None
        f = frames[i] if i < len(frames) else None
        if s is not None and f is not None and s.sp == f.sp and s.ip == f.pc:
            agree += 1
        pairs.append((s, f))
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


def side_by_side(kernel: Any, walk: Walk, cfi: CfiWalk) -> list[str]:
    """``bt --cfi``: the back chain and the CFI unwind, frame beside frame."""
    ag = compare(walk, cfi)
    lines = [
        f"CFI unwind (.debug_frame) beside the back chain: {ag.agree} of "
        f"{len(walk.steps)} frames agree",
        f"  {'#':>3}  {'back chain':<50} CFI",
    ]
    for i, (s, f) in enumerate(ag.pairs):
        left = _frame_text(kernel, s.sp, s.ip) if s is not None else "-"
        if f is None:
            right = "-"
        elif s is not None and s.sp == f.sp and s.ip == f.pc:
            right = "same"
        else:
            right = _frame_text(kernel, f.sp, f.pc)
        lines.append(f"  {i:>3}  {left:<50} {right}")
    lines.append(f"  CFI stopped: {cfi.end}")
    return lines


def cfi_json(kernel: Any, walk: Walk, cfi: CfiWalk) -> dict[str, Any]:
    """The ``cfi`` object of ``bt --cfi --json`` and ``check --cfi --json``."""
    ag = compare(walk, cfi)
    return {
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
