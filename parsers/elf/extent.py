"""How many bytes a file's own headers say it can need, from its first bytes: the bound a
decompressed copy is held to before anything is written (:mod:`parsers.compressed`)."""

from __future__ import annotations

import struct

from parsers.errors import FormatError

#: e_phnum meaning "the count is in section 0" (extended numbering): no bound from the head.
_PN_XNUM = 0xFFFF
_DUMP_MAGICS = (
    b"KDUMP   ",
    b"makedumpfile",
    bytes.fromhex("a8190173618f23fd"),
    bytes.fromhex("a8190173618f23fe"),
)


def elf_extent(head: bytes) -> int | None:
    """The end of the last byte a 64-bit ELF file's headers place: its program and section
    header tables and every segment the program headers give (those within ``head``).
    None when the head does not say (extended numbering, headers past ``head``).

    Raises:
        FormatError: not a 64-bit ELF file.
    """
    if head[:4] != b"\x7fELF" or len(head) < 64 or head[4] != 2 or head[5] not in (1, 2):
        raise FormatError("not a 64-bit ELF file")
    order = "<" if head[5] == 1 else ">"
    phoff, shoff = struct.unpack_from(order + "QQ", head, 32)
    phentsize, phnum, shentsize, shnum = struct.unpack_from(order + "HHHH", head, 54)
    if phnum == _PN_XNUM:
        return None
    end = max(64, phoff + phnum * phentsize, shoff + shnum * shentsize)
    if phnum and phoff + phnum * phentsize > len(head):
        return None
    for i in range(phnum if phentsize >= 56 else 0):
        offset, _, _, filesz = struct.unpack_from(order + "QQQQ", head, phoff + i * phentsize + 8)
        end = max(end, offset + filesz)
    return end


def dump_extent(head: bytes) -> int | None:
    """As :func:`elf_extent` for an ELF vmcore; None (no bound from the head) for the kdump
    and s390 formats.

    Raises:
        FormatError: not a dump format backchain reads.
    """
    if head[:4] == b"\x7fELF":
        return elf_extent(head)
    if head.startswith(_DUMP_MAGICS):
        return None
    raise FormatError("not a dump format backchain reads (expected an s390x ELF vmcore)")


__all__ = ["dump_extent", "elf_extent"]
