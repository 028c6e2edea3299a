"""Virtual -> absolute translation: identity layouts and a DAT walk over built tables."""

from __future__ import annotations

import struct

import pytest

from parsers.dumps.memory import AddressSpace, VaLayout
from parsers.errors import TranslationError, UnmappedError


class FakeMemory:
    """Absolute memory from a dict of pages (unwritten pages are holes)."""

    path = "fake"

    def __init__(self) -> None:
        self.pages: dict[int, bytearray] = {}

    @property
    def ranges(self):
        return []

    def page(self, addr: int) -> bytearray:
        return self.pages.setdefault(addr & ~0xFFF, bytearray(4096))

    def write(self, addr: int, data: bytes) -> None:
        for i, byte in enumerate(data):
            self.page(addr + i)[(addr + i) & 0xFFF] = byte

    def put(self, addr: int, value: int) -> None:
        self.write(addr, struct.pack(">Q", value))

    def read(self, address: int, size: int) -> bytes:
        out = bytearray()
        for a in range(address, address + size):
            page = self.pages.get(a & ~0xFFF)
            if page is None:
                raise UnmappedError(a)
            out.append(page[a & 0xFFF])
        return bytes(out)

    def close(self) -> None:
        pass


def _tables(mem: FakeMemory, fill_invalid: bool = True):
    """A region-third table at 0x10000 (ASCE type 1, length 4 KiB*4) and helpers."""
    rtt, sgt, pgt = 0x10000, 0x20000, 0x30000
    if fill_invalid:
        for i in range(2048):
            mem.put(rtt + i * 8, 0x20 | (1 << 2))  # invalid region-third entries
            mem.put(sgt + i * 8, 0x20)  # invalid segment entries
    asce = rtt | (1 << 2) | 3  # DT=region-third, TL=3 (2048 entries)
    return asce, rtt, sgt, pgt


def test_dat_walk_4k_1m_2g_and_invalid() -> None:
    mem = FakeMemory()
    asce, rtt, sgt, pgt = _tables(mem)
    va_4k = (5 << 31) | (7 << 20) | (0x23 << 12) | 0x456
    va_1m = (5 << 31) | (8 << 20) | 0x12345
    va_2g = (6 << 31) | 0x7654321
    mem.put(rtt + 5 * 8, sgt | (0 << 6) | 3 | (1 << 2))  # -> segment table, TF=0 TL=3
    mem.put(rtt + 6 * 8, 0x80000000 | 0x400 | (1 << 2))  # 2 GiB frame at 2 GiB
    mem.put(sgt + 7 * 8, pgt)  # -> page table
    mem.put(sgt + 8 * 8, 0x300000 | 0x400)  # 1 MiB frame at 3 MiB
    for i in range(256):
        mem.put(pgt + i * 8, 0x400)  # invalid ptes
    mem.put(pgt + 0x23 * 8, 0x777000 | 0x1)  # 4 KiB page at 0x777000 (+ sw bits)
    space = AddressSpace(mem, None, asce)
    assert space.translate(va_4k) == 0x777456
    assert space.translate(va_1m) == 0x312345
    assert space.translate(va_2g) == 0x87654321
    steps: list = []
    space.dat_walk(va_4k, steps)
    assert [(s.level, s.index) for s in steps] == [
        ("region-third", 5),
        ("segment", 7),
        ("page", 0x23),
    ]
    with pytest.raises(TranslationError, match="page table entry 36 is invalid"):
        space.translate(va_4k + 0x1000)
    with pytest.raises(TranslationError, match="segment table entry 9 is invalid"):
        space.translate((5 << 31) | (9 << 20))
    with pytest.raises(TranslationError, match="region-third table entry 4 is invalid"):
        space.translate(4 << 31)
    with pytest.raises(TranslationError, match="beyond the region-third table"):
        space.translate(1 << 42)


def test_table_length_and_missing_table() -> None:
    mem = FakeMemory()
    asce, rtt, _, _ = _tables(mem)
    asce_short = (asce & ~3) | 0  # TL=0: only indices 0..511
    space = AddressSpace(mem, None, asce_short)
    with pytest.raises(TranslationError, match="outside the region-third table length"):
        space.translate(600 << 31)
    mem.put(rtt + 1 * 8, 0x900000 | 3 | (1 << 2))  # segment table not in the dump
    with pytest.raises(TranslationError, match="is not in the dump"):
        AddressSpace(mem, None, asce).translate(1 << 31)


def test_wrong_table_type_is_rejected() -> None:
    mem = FakeMemory()
    asce, rtt, sgt, _ = _tables(mem)
    mem.put(rtt + 2 * 8, sgt | 3 | (2 << 2))  # claims to be a region-second entry
    with pytest.raises(TranslationError, match="wrong table type"):
        AddressSpace(mem, None, asce).translate(2 << 31)


def test_identity_layouts_and_prefix() -> None:
    mem = FakeMemory()
    mem.put(0x5000, 0x1122334455667788)
    legacy = AddressSpace(mem, VaLayout("legacy", 0, 0x100000))
    assert legacy.translate(0x5000) == 0x5000
    assert legacy.read_u64(0x5000) == 0x1122334455667788
    split = AddressSpace(
        mem, VaLayout("split", 0x100000000, 0x100000, 0x3FFE0000000, 0x4000, 0x2000)
    )
    assert split.translate(0x100005000) == 0x5000
    assert split.translate(0x3FFE0001000) == 0x5000
    with pytest.raises(TranslationError, match="no kernel ASCE"):
        split.translate(0x3FFE0003000)  # past the image, no ASCE: cannot translate
    space = AddressSpace(mem, None, 0x20, prefix=0x7E000)  # real-space ASCE
    assert space.translate(0x10) == 0x7E010
    assert space.translate(0x7E010) == 0x10


def test_reads_cross_pages() -> None:
    mem = FakeMemory()
    asce, rtt, sgt, pgt = _tables(mem)
    mem.put(rtt, sgt | 3 | (1 << 2))
    mem.put(sgt, pgt)
    mem.put(pgt, 0x50000)  # va page 0 -> 0x50000
    mem.put(pgt + 8, 0x40000)  # va page 1 -> 0x40000 (not contiguous)
    mem.write(0x50FFC, b"ABCD")
    mem.write(0x40000, b"EFGH")
    space = AddressSpace(mem, None, asce)
    assert space.read(0xFFC, 8) == b"ABCDEFGH"
    assert space.readable(0xFFC, 8)
    assert not space.readable(0x2000, 8)
