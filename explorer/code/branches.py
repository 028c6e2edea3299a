"""Targets of relative branches and address loads, computed from the instruction bytes.

Capstone prints a relative operand as an absolute address but gives no flag telling which
operand it is (without the slow detail mode). The relative-immediate formats are few, so
the target is computed here from the encoding (z/Architecture Principles of Operation:
RI-b/c, RIL-b/c, RSI, RIE-b/c/e/f formats; the offset counts halfwords from the
instruction's own address).
"""

from __future__ import annotations

#: RI formats: (first byte, low nibble of the second byte) with a 16-bit offset in bytes 2-3
#: (brc/j*, bras, brct, brctg).
_RI16 = {0xA7: frozenset({0x4, 0x5, 0x6, 0x7})}
#: RIL formats with a 32-bit offset in bytes 2-5: larl, brcl/jg*, brasl; the c4 and c6
#: families (lrl, lgrl, stgrl, exrl, pfdrl, cgrl, ...); brcth.
_RIL32 = {
    0xC0: frozenset({0x0, 0x4, 0x5}),
    0xC4: frozenset({0x2, 0x4, 0x5, 0x6, 0x7, 0x8, 0xB, 0xC, 0xD, 0xE, 0xF}),
    0xC6: frozenset({0x0, 0x2, 0x4, 0x5, 0x6, 0x7, 0x8, 0xA, 0xC, 0xD, 0xE, 0xF}),
    0xCC: frozenset({0x6}),
}
#: RSI (brxh, brxle) with a 16-bit offset in bytes 2-3.
_RSI16 = frozenset({0x84, 0x85})
#: RIE compare-and-branch-relative and brxhg/brxlg (first byte 0xEC, last byte below).
_RIE16 = frozenset({0x44, 0x45, 0x64, 0x65, 0x76, 0x77, 0x7C, 0x7D, 0x7E, 0x7F})


def relative_target(address: int, raw: bytes) -> int | None:
    """The address a relative instruction at ``address`` refers to, or None."""
    if len(raw) < 4:
        return None
    op = raw[0]
    if op in _RSI16 or (op == 0xA7 and raw[1] & 0xF in _RI16[0xA7]):
        return address + 2 * int.from_bytes(raw[2:4], "big", signed=True)
    if len(raw) < 6:
        return None
    if op == 0xEC and raw[5] in _RIE16:
        return address + 2 * int.from_bytes(raw[2:4], "big", signed=True)
    codes = _RIL32.get(op)
    if codes is not None and raw[1] & 0xF in codes:
        return address + 2 * int.from_bytes(raw[2:6], "big", signed=True)
    return None
