"""DWARF call frame information (``.debug_frame``) of an s390x vmlinux: the CFA rule and the
saved-register rules at any code address (DWARF 5 section 6.4).

Only what an unwinder needs is decoded: CIEs and FDEs (32-bit format, 8-byte addresses, the
version 1/3/4 CIE forms gcc writes for s390x) and the row-building instructions; a rule
that is a DWARF expression is reported as such, never evaluated. On s390x the CFA is the
caller's stack pointer plus 160 (the caller's r15 is CFA - 160) and the return address is
r14 (readelf: ``ra=14``). Everything is bounded by the section's own size: a hostile file
yields a :class:`~parsers.errors.DumpError`, never a hang.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass

from parsers.dwarf.leb128 import sleb128, uleb128
from parsers.errors import DumpError

_CIE_ID = 0xFFFFFFFF
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
#: Row-building instructions per FDE, at most (a real FDE has tens).
_MAX_OPS = 100_000


@dataclass(frozen=True, slots=True)
class Rule:
    """How to find a register of the caller: ``offset`` (saved at CFA+value),
    ``val_offset`` (its value is CFA+value), ``register`` (in register value),
    ``same``, ``undefined``, ``expression`` (not evaluated)."""

    kind: str
    value: int = 0


@dataclass(frozen=True, slots=True)
class Row:
    """The unwind rules at one address.

    Attributes:
        start: the first address this row covers; end: one past its last.
        cfa_reg, cfa_offset: CFA = register + offset (cfa_reg -1: an expression).
        rules: register number -> rule (registers without one keep their value).
        fde_start: the function's first address (the FDE's initial location).
    """

    start: int
    end: int
    cfa_reg: int
    cfa_offset: int
    rules: dict[int, Rule]
    fde_start: int


@dataclass(frozen=True, slots=True)
class _Cie:
    code_align: int
    data_align: int
    ra: int
    initial: bytes


class DebugFrame:
    """The FDEs of one ``.debug_frame`` section, looked up by address.

    Args:
        data: the section's bytes (big-endian s390x).
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._cies: dict[int, _Cie] = {}
        fdes: list[tuple[int, int, int, int, int]] = []  # start, end, cie, ins_at, ins_end
        pos = 0
        size = len(data)
        while pos + 4 <= size:
            (length,) = _U32.unpack_from(data, pos)
            if length == 0xFFFFFFFF:
                raise DumpError(".debug_frame: 64-bit DWARF entries are not supported")
            end = pos + 4 + length
            if length < 4 or end > size:
                raise DumpError(f".debug_frame: entry at 0x{pos:x} runs past the section")
            (cie_id,) = _U32.unpack_from(data, pos + 4)
            if cie_id != _CIE_ID:
                if pos + 24 > end:
                    raise DumpError(f".debug_frame: FDE at 0x{pos:x} is too short")
                start, rng = struct.unpack_from(">QQ", data, pos + 8)
                if rng:
                    fdes.append((start, start + rng, cie_id, pos + 24, end))
            pos = end
        fdes.sort()
        self._fdes = fdes
        self._starts = [f[0] for f in fdes]

    def __len__(self) -> int:
        return len(self._fdes)

    def _cie(self, offset: int) -> _Cie:
        known = self._cies.get(offset)
        if known is not None:
            return known
        data = self.data
        if offset + 8 > len(data):
            raise DumpError(f".debug_frame: CIE pointer 0x{offset:x} outside the section")
        (length,) = _U32.unpack_from(data, offset)
        end = offset + 4 + length
        if end > len(data) or _U32.unpack_from(data, offset + 4)[0] != _CIE_ID:
            raise DumpError(f".debug_frame: no CIE at 0x{offset:x}")
        version = data[offset + 8]
        pos = data.index(b"\0", offset + 9, end) + 1  # augmentation string
        augmentation = data[offset + 9 : pos - 1]
        if augmentation not in (b"",):
            raise DumpError(f".debug_frame: CIE augmentation {augmentation!r} not supported")
        if version >= 4:
            pos += 2  # address_size, segment_selector_size
        code_align, pos = uleb128(data, pos)
        data_align, pos = sleb128(data, pos)
        if version == 1:
            ra, pos = data[pos], pos + 1
        else:
            ra, pos = uleb128(data, pos)
        cie = self._cies[offset] = _Cie(code_align, data_align, ra, data[pos:end])
        return cie

    def fde_range(self, address: int) -> tuple[int, int] | None:
        """``(start, end)`` of the FDE covering ``address``, or of the nearest FDE that
        starts at or below it (to say that a function's CFI ends before an address); None
        if no FDE starts at or below it."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0:
            return None
        start, end = self._fdes[i][:2]
        return start, end

    def row_at(self, address: int) -> Row | None:
        """The rules in force at ``address``, or None if no FDE covers it."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0:
            return None
        start, end, cie_at, ins_at, ins_end = self._fdes[i]
        if not start <= address < end:
            return None
        cie = self._cie(cie_at)
        state = _Machine(cie, start, end)
        state.run(cie.initial, None)
        state.initial = dict(state.rules)
        state.run(self.data[ins_at:ins_end], address)
        return Row(
            state.row_start, state.row_end, state.cfa_reg, state.cfa_offset, state.rules, start
        )


class _Machine:
    """The row-building state machine of one FDE."""

    def __init__(self, cie: _Cie, start: int, end: int) -> None:
        self.cie = cie
        self.loc = start
        self.row_start = start
        self.row_end = end
        self.cfa_reg = -1
        self.cfa_offset = 0
        self.rules: dict[int, Rule] = {}
        self.initial: dict[int, Rule] = {}
        self.stack: list[tuple[int, int, dict[int, Rule]]] = []

    def _advance(self, delta: int, target: int | None) -> bool:
        """Move the location; True if the target's row is complete (stop)."""
        new = self.loc + delta * self.cie.code_align
        if target is not None and new > target:
            self.row_end = new
            return True
        self.loc = self.row_start = new
        return False

    def run(self, ops: bytes, target: int | None) -> None:
        pos = 0
        da = self.cie.data_align
        count = 0
        while pos < len(ops):
            count += 1
            if count > _MAX_OPS:
                raise DumpError(".debug_frame: too many instructions in one FDE")
            op = ops[pos]
            pos += 1
            high, low = op >> 6, op & 0x3F
            if high == 1:  # advance_loc
                if self._advance(low, target):
                    return
            elif high == 2:  # offset
                off, pos = uleb128(ops, pos)
                self.rules[low] = Rule("offset", off * da)
            elif high == 3:  # restore
                self._restore(low)
            elif op == 0x00:  # nop
                pass
            elif op == 0x01:  # set_loc
                (new,) = _U64.unpack_from(ops, pos)
                pos += 8
                if target is not None and new > target:
                    self.row_end = new
                    return
                self.loc = self.row_start = new
            elif op in (0x02, 0x03, 0x04):  # advance_loc1/2/4
                width = {0x02: 1, 0x03: 2, 0x04: 4}[op]
                delta = int.from_bytes(ops[pos : pos + width], "big")
                pos += width
                if self._advance(delta, target):
                    return
            elif op in (0x05, 0x11, 0x14, 0x15):  # offset_extended(_sf), val_offset(_sf)
                reg, pos = uleb128(ops, pos)
                if op in (0x05, 0x14):
                    off, pos = uleb128(ops, pos)
                else:
                    off, pos = sleb128(ops, pos)
                self.rules[reg] = Rule("offset" if op in (0x05, 0x11) else "val_offset", off * da)
            elif op == 0x06:  # restore_extended
                reg, pos = uleb128(ops, pos)
                self._restore(reg)
            elif op in (0x07, 0x08):  # undefined, same_value
                reg, pos = uleb128(ops, pos)
                self.rules[reg] = Rule("undefined" if op == 0x07 else "same")
            elif op == 0x09:  # register
                reg, pos = uleb128(ops, pos)
                other, pos = uleb128(ops, pos)
                self.rules[reg] = Rule("register", other)
            elif op == 0x0A:  # remember_state
                self.stack.append((self.cfa_reg, self.cfa_offset, dict(self.rules)))
            elif op == 0x0B:  # restore_state
                if not self.stack:
                    raise DumpError(".debug_frame: restore_state without remember_state")
                self.cfa_reg, self.cfa_offset, self.rules = self.stack.pop()
            elif op in (0x0C, 0x12):  # def_cfa(_sf)
                self.cfa_reg, pos = uleb128(ops, pos)
                if op == 0x0C:
                    self.cfa_offset, pos = uleb128(ops, pos)
                else:
                    off, pos = sleb128(ops, pos)
                    self.cfa_offset = off * da
            elif op == 0x0D:  # def_cfa_register
                self.cfa_reg, pos = uleb128(ops, pos)
            elif op == 0x0E:  # def_cfa_offset
                self.cfa_offset, pos = uleb128(ops, pos)
            elif op == 0x13:  # def_cfa_offset_sf
                off, pos = sleb128(ops, pos)
                self.cfa_offset = off * da
            elif op == 0x0F:  # def_cfa_expression
                length, pos = uleb128(ops, pos)
                pos += length
                self.cfa_reg = -1
            elif op in (0x10, 0x16):  # expression, val_expression
                reg, pos = uleb128(ops, pos)
                length, pos = uleb128(ops, pos)
                pos += length
                self.rules[reg] = Rule("expression")
            elif op == 0x2E:  # GNU_args_size
                _, pos = uleb128(ops, pos)
            else:
                raise DumpError(f".debug_frame: unknown CFA instruction 0x{op:02x}")

    def _restore(self, reg: int) -> None:
        rule = self.initial.get(reg)
        if rule is None:
            self.rules.pop(reg, None)
        else:
            self.rules[reg] = rule
