"""LEB128 decoding shared by the DWARF readers. Truth: the examples of the DWARF 5
specification (§7.6, figures 22 and 23) and the encodings GNU as emits for .uleb128/.sleb128."""

from __future__ import annotations

import pytest

from parsers.dwarf.leb128 import Overlong, sleb128, uleb128

# DWARF 5 §7.6, figure 22: unsigned.
UNSIGNED = [
    (2, b"\x02"),
    (127, b"\x7f"),
    (128, b"\x80\x01"),
    (129, b"\x81\x01"),
    (130, b"\x82\x01"),
    (12857, b"\xb9\x64"),
    ((1 << 64) - 1, b"\xff" * 9 + b"\x01"),
]
# DWARF 5 §7.6, figure 23: signed.
SIGNED = [
    (2, b"\x02"),
    (-2, b"\x7e"),
    (127, b"\xff\x00"),
    (-127, b"\x81\x7f"),
    (128, b"\x80\x01"),
    (-128, b"\x80\x7f"),
    (129, b"\x81\x01"),
    (-129, b"\xff\x7e"),
    (-(1 << 63), b"\x80" * 9 + b"\x7f"),
]


@pytest.mark.parametrize(("value", "encoded"), UNSIGNED)
def test_unsigned(value: int, encoded: bytes) -> None:
    data = b"\xaa" + encoded + b"\x55"
    assert uleb128(data, 1) == (value, 1 + len(encoded))
    assert uleb128(memoryview(data), 1) == (value, 1 + len(encoded))


@pytest.mark.parametrize(("value", "encoded"), SIGNED)
def test_signed(value: int, encoded: bytes) -> None:
    data = b"\xaa" + encoded + b"\x55"
    assert sleb128(data, 1) == (value, 1 + len(encoded))


def test_damage_is_refused_not_read_past() -> None:
    with pytest.raises(Overlong):
        uleb128(b"\x80" * 11 + b"\x00", 0)
    with pytest.raises(Overlong):
        sleb128(b"\xff" * 11 + b"\x00", 0)
    with pytest.raises(IndexError):
        uleb128(b"\x80\x80", 0)
    assert issubclass(Overlong, ValueError)  # every reader's damage handling catches it
