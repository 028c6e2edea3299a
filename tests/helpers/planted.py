"""Copies of real dumps with planted damage: the sample converted to an uncompressed ELF
vmcore by ``backchain convert``, then 8 bytes overwritten at a physical address."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from explorer.cli import main

SAMPLES = Path(__file__).resolve().parent.parent.parent / "samples" / "real"


def _elf_offset(path: Path, physical: int) -> int:
    """The file offset of a physical address in an ELF vmcore (PT_LOAD segments)."""
    with path.open("rb") as f:
        head = f.read(64)
        assert head[:6] == b"\x7fELF\x02\x02"
        (phoff,) = struct.unpack_from(">Q", head, 32)
        phentsize, phnum = struct.unpack_from(">HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type, _, offset, _, paddr, filesz = struct.unpack_from(">IIQQQQ", table, i * phentsize)
        if p_type == 1 and paddr <= physical < paddr + filesz:
            return offset + physical - paddr
    raise AssertionError(f"physical 0x{physical:x} is in no PT_LOAD")


def copies_of(factory: pytest.TempPathFactory, names: list[str]) -> dict[str, Path]:
    """Each named real sample as an uncompressed ELF copy (made by ``backchain convert``)."""
    out = {}
    for name in names:
        path = factory.mktemp(name) / "vmcore"
        assert main(["convert", str(SAMPLES / name / "vmcore.zst"), "-o", str(path)]) == 0
        out[name] = path
    return out


def planted(base: Path, tmp: Path, slot: int, value: int, physical: int) -> Path:
    """A copy of ``base`` with the 8 bytes at virtual ``slot`` (physical ``physical``) set
    to ``value``; the companion System.map is linked beside it."""
    copy = tmp / "vmcore"
    data = bytearray(base.read_bytes())
    off = _elf_offset(base, physical)
    data[off : off + 8] = value.to_bytes(8, "big")
    copy.write_bytes(bytes(data))
    for companion in base.parent.iterdir():
        if companion.name != "vmcore" and not (tmp / companion.name).exists():
            (tmp / companion.name).symlink_to(companion)
    return copy
