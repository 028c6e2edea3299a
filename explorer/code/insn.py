"""s390x instructions: lengths from the opcode, and decoding with Capstone that never stops.

Capstone 5 decodes s390x exactly where it decodes at all, but ``disasm_lite()`` silently stops
at the first opcode it does not know (privileged or newer instructions such as ``lric``).
:func:`decode` resynchronises with the instruction length the first opcode byte gives and
reports the unknown instruction as ``.insn`` with its bytes, so a listing is never cut short.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

#: Instruction length from the top two bits of the first opcode byte (z/Architecture
#: Principles of Operation, "Instruction Formats"): 00 -> 2, 01/10 -> 4, 11 -> 6 bytes.
_LENGTHS = (2, 4, 4, 6)
MAX_INSN = 6


def insn_length(first_byte: int) -> int:
    """Length in bytes of the instruction whose first byte is ``first_byte``."""
    return _LENGTHS[first_byte >> 6]


@dataclass(frozen=True, slots=True)
class Instruction:
    """One decoded instruction.

    Attributes:
        address: where it starts.
        raw: its bytes.
        mnemonic: Capstone's spelling (``brasl``, ``brcl``); ``.insn`` where Capstone does
            not know the opcode.
        operands: Capstone's operand text (``%r14, 0x3ffff4108d0``); for ``.insn`` the
            bytes as one hex number.
    """

    address: int
    raw: bytes
    mnemonic: str
    operands: str

    @property
    def size(self) -> int:
        """Length in bytes."""
        return len(self.raw)

    @property
    def end(self) -> int:
        """Address of the next instruction."""
        return self.address + len(self.raw)

    @property
    def decoded(self) -> bool:
        """False for an instruction Capstone does not know (shown as ``.insn``)."""
        return self.mnemonic != ".insn"

    @property
    def text(self) -> str:
        """``mnemonic operands``."""
        return f"{self.mnemonic} {self.operands}".rstrip()


@cache
def _capstone() -> Any:
    import capstone

    return capstone.Cs(capstone.CS_ARCH_SYSZ, capstone.CS_MODE_BIG_ENDIAN)


def load_decoder() -> None:
    """Load Capstone now (a first run that will decode does it while it waits for other
    work); nothing when it cannot be loaded (decoding says so when it is asked for)."""
    try:
        _capstone()
    except (ImportError, OSError):
        pass


def iter_decode(data: bytes, address: int) -> Iterator[Instruction]:
    """Decode ``data`` (code starting at ``address``) to the end, one instruction at a time.

    Unknown opcodes become ``.insn`` of the length their first byte gives; a last
    instruction cut off by the end of ``data`` becomes ``.insn`` of the bytes left.
    """
    cs = _capstone()
    pos = 0
    n = len(data)
    while pos < n:
        for addr, size, mnemonic, operands in cs.disasm_lite(data[pos:], address + pos):
            off = addr - address
            yield Instruction(addr, data[off : off + size], mnemonic, operands)
            pos = off + size
        if pos >= n:
            break
        size = min(insn_length(data[pos]), n - pos)
        raw = data[pos : pos + size]
        yield Instruction(address + pos, raw, ".insn", "0x" + raw.hex())
        pos += size


def decode(data: bytes, address: int) -> list[Instruction]:
    """All instructions of ``data`` starting at ``address`` (see :func:`iter_decode`)."""
    return list(iter_decode(data, address))


def decode_one(data: bytes, address: int) -> Instruction | None:
    """The instruction at the start of ``data``, or None if ``data`` is empty."""
    if not data:
        return None
    size = insn_length(data[0])
    return next(iter_decode(data[:size], address), None)
