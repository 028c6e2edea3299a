"""The section table of an ELF file, memory-mapped: what reading a vmlinux's symbols and types
needs without pyelftools' per-section and per-symbol objects.

A 200 MB vmlinux is never read whole: the file is mapped and a section's bytes are sliced out
(or searched in place, :meth:`ElfSections.find`) only when asked for.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass
from typing import Literal

from parsers.errors import DumpError, FormatError
from parsers.inputs import open_regular_fd

SHT_NOBITS = 8
SHT_NOTE = 7
SHT_RELA = 4
SHF_EXECINSTR = 0x4
SHF_MERGE = 0x10
SHF_STRINGS = 0x20
SHF_COMPRESSED = 0x800
ET_REL = 1
NT_GNU_BUILD_ID = 3
SHN_XINDEX = 0xFFFF


@dataclass(frozen=True, slots=True)
class Section:
    """One section header (Elf64_Shdr) with its name."""

    index: int
    name: str
    type: int
    flags: int
    address: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int


class ElfSections:
    """The sections of a 64-bit ELF file, over a read-only mapping of it.

    Use as a context manager (or call :meth:`close`).

    Raises:
        DumpError: the file cannot be opened.
        FormatError: not a 64-bit ELF file, or its section table is damaged.
    """

    def __init__(self, path: str | os.PathLike[str], what: str = "vmlinux") -> None:
        self.path = os.fspath(path)
        fd = open_regular_fd(self.path, what)
        try:
            size = os.fstat(fd).st_size
            if size < 64:
                raise FormatError("not an ELF file (shorter than an ELF header)", self.path)
            try:
                self.data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as error:
                raise DumpError(f"cannot map {what}: {error}", self.path) from None
        finally:
            os.close(fd)
        try:
            self._read_table(size)
        except BaseException:
            self.data.close()
            raise

    def _read_table(self, size: int) -> None:
        data = self.data
        if data[:4] != b"\x7fELF":
            raise FormatError("not an ELF file", self.path)
        if data[4] != 2:
            raise FormatError("not a 64-bit ELF file", self.path)
        if data[5] not in (1, 2):
            raise FormatError(f"unknown ELF byte order {data[5]}", self.path)
        self.little_endian = data[5] == 1
        self.order: Literal["little", "big"] = "little" if self.little_endian else "big"
        e = "<" if self.little_endian else ">"
        fields = struct.unpack_from(e + "HHIQQQIHHHHHH", data, 16)
        self.type, self.machine = fields[0], fields[1]
        shoff, shentsize, shnum, shstrndx = fields[5], fields[10], fields[11], fields[12]
        header = struct.Struct(e + "IIQQQQIIQQ")
        if shoff == 0:
            self.sections: list[Section] = []
            self.by_name: dict[str, Section] = {}
            return
        if shentsize != header.size or shoff + header.size > size:
            raise FormatError("damaged ELF section table", self.path)
        raw = [header.unpack_from(data, shoff)]
        if shnum == 0:  # more than 0xff00 sections: the count is in section 0
            shnum = raw[0][5]
        if shstrndx == SHN_XINDEX:
            shstrndx = raw[0][6]
        if shoff + shnum * header.size > size:
            raise FormatError("ELF section table runs past the end of the file", self.path)
        raw.extend(header.unpack_from(data, shoff + i * header.size) for i in range(1, shnum))
        for i, (_n, kind, _f, _a, offset, length, *_rest) in enumerate(raw):
            if kind != SHT_NOBITS and offset + length > size:
                raise FormatError(f"ELF section {i} runs past the end of the file", self.path)
        names = b""
        if 0 < shstrndx < shnum:
            _n, _k, _f, _a, offset, length, *_rest = raw[shstrndx]
            names = data[offset : offset + length]
        sections = []
        for i, (name, kind, flags, address, offset, length, link, info, _al, entsize) in enumerate(
            raw
        ):
            end = names.find(b"\0", name)
            text = names[name : end if end >= 0 else len(names)].decode("utf-8", "replace")
            sections.append(
                Section(i, text, kind, flags, address, offset, length, link, info, entsize)
            )
        self.sections = sections
        self.by_name = {}
        for section in sections:
            self.by_name.setdefault(section.name, section)

    def close(self) -> None:
        """Release the mapping."""
        self.data.close()

    def __enter__(self) -> ElfSections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, name: str) -> Section | None:
        """The first section called ``name``, or None."""
        return self.by_name.get(name)

    def bytes_of(self, section: Section) -> bytes:
        """A copy of the section's contents (empty for SHT_NOBITS)."""
        if section.type == SHT_NOBITS:
            return b""
        return self.data[section.offset : section.offset + section.size]

    def build_id(self) -> str | None:
        """The GNU build-id (hex) from the first SHT_NOTE section that has one."""
        for section in self.sections:
            if section.type != SHT_NOTE:
                continue
            found = build_id_in_notes(self.bytes_of(section), self.order)
            if found is not None:
                return found
        return None


def build_id_in_notes(notes: bytes, order: Literal["little", "big"]) -> str | None:
    """The GNU build-id (hex) in an ELF note section's bytes, or None (the one reader of
    build-ids: vmlinux files through :class:`ElfSections`, and the DWARF line reader)."""
    position = 0
    while position + 12 <= len(notes):
        namesz = int.from_bytes(notes[position : position + 4], order)
        descsz = int.from_bytes(notes[position + 4 : position + 8], order)
        kind = int.from_bytes(notes[position + 8 : position + 12], order)
        name_at = position + 12
        desc_at = name_at + ((namesz + 3) & ~3)
        following = desc_at + ((descsz + 3) & ~3)
        if following > len(notes) and desc_at + descsz > len(notes):
            return None
        if kind == NT_GNU_BUILD_ID and notes[name_at : name_at + namesz].rstrip(b"\0") == b"GNU":
            return notes[desc_at : desc_at + descsz].hex()
        position = following
    return None
