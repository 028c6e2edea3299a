"""LEB128 numbers (DWARF's variable-length integers), read from any indexable bytes.

One definition for every DWARF reader (:mod:`parsers.dwarf.reader`, :mod:`parsers.dwarf.lines`).
A 64-bit value needs at most 10 bytes; a longer run of continuation bytes is damage
(:class:`Overlong`), never a loop to the end of the section. The line-program interpreter of
:mod:`parsers.dwarf.lines` keeps its own inlined copy of the unsigned loop in its hot path.
"""

from __future__ import annotations

from typing import Any


class Overlong(ValueError):
    """A LEB128 number longer than 10 bytes: the data is damaged."""


def uleb128(data: Any, pos: int) -> tuple[int, int]:
    """The unsigned LEB128 at ``pos`` and the position after it.

    Raises:
        Overlong: more than 10 bytes.
        IndexError: the number runs past the end of ``data``.
    """
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    result = byte & 0x7F
    shift = 7
    while True:
        pos += 1
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos + 1
        shift += 7
        if shift > 70:
            raise Overlong("a ULEB128 longer than 10 bytes")


def sleb128(data: Any, pos: int) -> tuple[int, int]:
    """The signed LEB128 at ``pos`` and the position after it.

    Raises:
        Overlong: more than 10 bytes.
        IndexError: the number runs past the end of ``data``.
    """
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if byte & 0x40:
                result -= 1 << shift
            return result, pos
        if shift > 70:
            raise Overlong("a SLEB128 longer than 10 bytes")


__all__ = ["Overlong", "sleb128", "uleb128"]
