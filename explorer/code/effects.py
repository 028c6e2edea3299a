"""What one s390x instruction does to the stack: r15, the back chain, r14, control flow.

Read from Capstone's operand text (``lay %r15, -0x40(%r15)``, ``stg %r14, 0x98(%r15)``,
``xc 0x98(8, %r15), 0x98(%r15)``) and, for branches, from the encoding (mask and relative
target, :mod:`explorer.code.branches`). Only what the prologue analysis and the audit need:

* r15 moves: ``lay``/``la``/``aghi``/``agfi`` on %r15 (a decrement allocates a frame, an
  increment releases it), ``lgr`` to or from %r15, ``lmg ..%r15`` (restores the entry
  r15), ``lg %r15`` (another stack or the back chain).
* back-chain stores: ``stg``/``xc``/``mvghi`` at 152(%r15), ``struct stack_frame``'s
  ``back_chain`` in the packed-stack layout the Debian kernels use.
* r14: saved by ``stmg``/``stg`` (where), clobbered by a call or a load into it, restored
  by ``lmg``.
* control flow: fall through, branch targets, conditional or not, end of path (``br``,
  an indirect ``b``, a tail call, ``mc`` of ``BUG()``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from explorer.code.branches import relative_target
from explorer.code.callsite import is_call
from explorer.code.insn import Instruction

#: ``struct stack_frame`` with -mpacked-stack (arch/s390/include/asm/stacktrace.h): the
#: back chain at 152, the saved r14 (gprs[8]) at 136.
BACK_CHAIN = 152
SAVED_R14 = 136

_REG = re.compile(r"^%r(\d+)$")
_NUM = r"-?(?:0x[0-9a-f]+|\d+)"
_MEM = re.compile(rf"^({_NUM})?\((?:(?:%r(\d+)|{_NUM}),\s*)?%r(\d+)\)$")
_INDEXED_R15 = re.compile(rf"^({_NUM})?\(%r\d+,\s*%r15\)$")
_IMM = re.compile(r"^-?(?:0x[0-9a-f]+|\d+)$")
#: Mnemonics whose first register operand is only read (stores, compares, tests).
_READS_FIRST = ("st", "c", "tm", "cl", "br", "b", "j", "ex", "lpsw", "spm", "ssm", "mv")


def _split(operands: str) -> list[str]:
    """Operands split at top-level commas: ``0x98(8, %r15), 0x98(%r15)`` is two."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in operands:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if cur:
        parts.append("".join(cur).strip())
    return parts


def _reg(text: str) -> int | None:
    m = _REG.match(text)
    return int(m.group(1)) if m else None


def _mem(text: str) -> tuple[int, int] | None:
    """``D(B)`` or ``D(L, B)`` -> (displacement, base register); None for anything else,
    ``D(X, B)`` with an index register included (its address is not constant)."""
    m = _MEM.match(text)
    if m is None or (m.group(2) is not None and m.group(2) != "0"):
        return None
    return int(m.group(1) or "0", 0), int(m.group(3))


@dataclass(frozen=True, slots=True)
class Effect:
    """What an instruction does, as far as stack frames are concerned.

    Attributes:
        r15_add: r15 changes by this many bytes (negative: a frame is allocated).
        r15_from: r15 is loaded: ``copy:N`` (from register N), ``restore`` (lmg of the saved
            entry r15), ``chain`` (lg of the back chain), ``dynamic`` (decreased by a
            register: alloca, the random kstack offset), ``slot:B:D`` (``lg %r15,D(%rB)``:
            the saved entry r15 if that is where it was saved), ``other`` (anything else).
        copy_r15_to: register that receives a copy of r15 (``lgr %rN, %r15``).
        chain_store: the back-chain slot 152(%r15) is written (``zero`` or register N).
        r14_saved_at: displacement from r15 where r14 is stored.
        r15_saved_at: displacement from r15 where r15 itself is stored (``stmg ..%r15``).
        unpacked_chain: register stored at 0(%r15), where the unpacked (non-packed-stack)
            layout keeps the back chain: a back chain there if that register holds the old r15.
        r14_written: r14 gets a new value (call, load into r14), or ``restore`` (lmg).
        targets: branch targets (relative branches; those outside the function are tail
            calls and end the path there).
        falls_through: control may continue with the next instruction (False: return,
            unconditional jump, ``BUG()``).
        indirect: an unconditional indirect jump (``b D(X,B)``, a jump table): code after
            it may be reachable only through the table.
    """

    r15_add: int = 0
    r15_from: str | None = None
    copy_r15_to: int | None = None
    chain_store: str | None = None
    r14_saved_at: int | None = None
    r15_saved_at: int | None = None
    unpacked_chain: int | None = None
    r14_written: str | None = None
    targets: tuple[int, ...] = ()
    falls_through: bool = True
    indirect: bool = False


_PLAIN = Effect()


def effect_of(insn: Instruction) -> Effect:
    """The stack-relevant effect of ``insn`` (the plain effect for most instructions)."""
    m, ops = insn.mnemonic, insn.operands
    raw = insn.raw
    op0 = raw[0]
    # -- control flow, from the encoding --------------------------------------------------
    if op0 == 0x07 or op0 == 0x47:  # bcr M,R / bc M,D(X,B)
        mask = raw[1] >> 4
        if mask == 15:
            return Effect(falls_through=False, indirect=op0 == 0x47)
        return _PLAIN
    if is_call(insn):
        # The link register is R1 (second byte's high nibble) in every call format; ftrace's
        # brasl %r0 leaves r14 alone.
        return Effect(r14_written="call") if raw[1] >> 4 == 14 else _PLAIN
    target = relative_target(insn.address, raw)
    if target is not None:
        if (op0 == 0xA7 and raw[1] & 0xF == 0x4) or (op0 == 0xC0 and raw[1] & 0xF == 0x4):
            mask = raw[1] >> 4  # brc / brcl
            if mask == 15:
                return Effect(targets=(target,), falls_through=False)
            return Effect(targets=(target,))  # conditional, or a jump-label nop: both ways
        if op0 in (0xA7, 0xC0) and raw[1] & 0xF == 0x5:
            # bras/brasl with a link register other than r14: asm jumping over inline data.
            return Effect(targets=(target,), falls_through=False)
        if op0 == 0xC0 and raw[1] & 0xF == 0x0:  # larl: an address load, not a branch
            reg = raw[1] >> 4
            return Effect(r14_written="load") if reg == 14 else _PLAIN
        if op0 in (0xC4, 0xC6):  # lrl/lgrl/stgrl/exrl/...: data, not control
            reg, loads = raw[1] >> 4, raw[1] & 0xF in (0x8, 0xC, 0xD)  # lgrl, lgfrl, lrl
            if loads and reg == 15:
                return Effect(r15_from="other")
            return Effect(r14_written="load") if loads and reg == 14 else _PLAIN
        return Effect(targets=(target,))  # compare-and-branch, brct, brxh: conditional
    if m == "mc":  # BUG(): monitor call, then unreachable
        return Effect(falls_through=False)
    # -- registers, from the operand text --------------------------------------------------
    parts = _split(ops)
    if not parts:
        return _PLAIN
    first = _reg(parts[0])
    if m in ("stmg", "stm") and len(parts) == 3:
        lo, hi, mem = _reg(parts[0]), _reg(parts[1]), _mem(parts[2])
        if lo is not None and hi is not None and mem is not None and mem[1] == 15:
            return Effect(
                r14_saved_at=mem[0] + 8 * (14 - lo) if lo <= 14 <= hi else None,
                r15_saved_at=mem[0] + 8 * (15 - lo) if lo <= 15 <= hi else None,
            )
        return _PLAIN
    if m in ("lmg", "lm") and len(parts) == 3:
        lo, hi, mem = _reg(parts[0]), _reg(parts[1]), _mem(parts[2])
        if lo is None or hi is None:
            return _PLAIN
        r14 = "restore" if lo <= 14 <= hi else None
        if hi == 15 or lo == 15:
            return Effect(r15_from="restore", r14_written=r14)
        return Effect(r14_written=r14) if r14 else _PLAIN
    if m in ("stg", "mvghi", "xc") and parts:
        mem = _mem(parts[0] if m != "stg" else parts[1] if len(parts) > 1 else "")
        if mem is not None and mem == (BACK_CHAIN, 15):
            if m == "stg":
                return Effect(chain_store=f"r{first}")
            if m == "mvghi" and len(parts) == 2 and parts[1] == "0":
                return Effect(chain_store="zero")
            if m == "xc" and len(parts) == 2 and _mem(parts[1]) == mem:
                return Effect(chain_store="zero")
            return Effect(chain_store="other")
        if m == "stg" and first == 14 and mem is not None and mem[1] == 15:
            return Effect(r14_saved_at=mem[0])
        if m == "stg" and first == 15 and mem is not None and mem[1] == 15:
            return Effect(r15_saved_at=mem[0])
        if m == "stg" and mem == (0, 15) and first is not None:
            return Effect(unpacked_chain=first)
        return _PLAIN
    if first == 15 and len(parts) >= 2:
        if m in ("lay", "la"):
            mem = _mem(parts[1])
            if mem is not None and mem[1] == 15:
                return Effect(r15_add=mem[0])
            if _INDEXED_R15.match(parts[1]):
                return Effect(r15_from="dynamic")  # r15 plus a register (asm: la %r15,0(%r1,%r15))
            return Effect(r15_from="other")
        if m in ("aghi", "agfi", "aghik", "afi", "ahi") and _IMM.match(parts[-1]):
            if m == "aghik" and _reg(parts[1]) != 15:
                return Effect(r15_from="other")
            return Effect(r15_add=int(parts[-1], 0))
        if m in ("slgfi", "slfi") and _IMM.match(parts[-1]):
            return Effect(r15_add=-int(parts[-1], 0))
        if m == "lgr":
            src = _reg(parts[1])
            return Effect(r15_from=f"copy:{src}")
        if m in ("sgr", "slgr", "slgfr", "sgfr", "sgrk", "slgrk"):
            return Effect(r15_from="dynamic")  # alloca, random kstack offset: size unknown
        if m == "lg":
            mem = _mem(parts[1])
            if mem is None:
                return Effect(r15_from="other")
            if mem == (BACK_CHAIN, 15):
                return Effect(r15_from="chain")
            return Effect(r15_from=f"slot:{mem[1]}:{mem[0]}")  # maybe the saved entry r15
        if not m.startswith(_READS_FIRST):
            return Effect(r15_from="other")
        return _PLAIN
    if m == "lgr" and len(parts) == 2 and _reg(parts[1]) == 15 and first is not None:
        return Effect(copy_r15_to=first, r14_written="load" if first == 14 else None)
    if first == 14 and not m.startswith(_READS_FIRST):
        return Effect(r14_written="load")
    return _PLAIN
