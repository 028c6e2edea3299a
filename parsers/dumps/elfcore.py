"""ELF vmcore reader (kdump ``/proc/vmcore``, QEMU ``dump-guest-memory``, ``zgetdump -f elf``).

The ELF header and program headers are unpacked with ``struct`` (a core needs nothing else:
importing pyelftools would cost more than the whole header parse; ``tests/test_elfcore.py``
proves the same headers as pyelftools reads); memory is read through a read-only ``mmap``.
A core needs only its program headers, so section headers are never consulted: QEMU 7.2
writes them damaged (one little-endian inside a big-endian file).
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from parsers.dumps.physmem import MemoryRange, RangeIndex
from parsers.dumps.residency import ResidentBudget
from parsers.errors import DumpError, FormatError, TruncatedError, UnmappedError

EM_S390 = 22
PT_LOAD = 1
PT_NOTE = 4
NT_PRSTATUS = 1

#: A note larger than this is not plausible in a vmcore (VMCOREINFO is a few KiB,
#: the largest register note 256 bytes; 16 MiB leaves ample room).
MAX_NOTE_SIZE = 16 << 20
#: More program headers than this is not a dump we can believe.
MAX_SEGMENTS = 1 << 16

_NHDR = struct.Struct(">III")
#: Elf64_Ehdr after e_ident: e_type, e_machine, e_version, e_entry, e_phoff, e_shoff,
#: e_flags, e_ehsize, e_phentsize, e_phnum (big-endian).
_EHDR = struct.Struct(">HHIQQQIHHH")
#: Elf64_Phdr: p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align.
_PHDR = struct.Struct(">IIQQQQQQ")

#: What :func:`parse_notes` reads from.
Buffer = bytes | bytearray | memoryview | mmap.mmap


@dataclass(frozen=True, slots=True)
class Note:
    """One ELF note: owner name ("CORE", "LINUX", "VMCOREINFO"), type and descriptor."""

    name: str
    type: int
    desc: bytes
    offset: int


@dataclass(frozen=True, slots=True)
class LoadSegment:
    """A PT_LOAD: absolute memory ``[paddr, paddr + filesz)`` at ``offset`` in the file."""

    paddr: int
    vaddr: int
    offset: int
    filesz: int
    memsz: int


def open_file_checked(path: str) -> int:
    """Open ``path`` read-only, turning the usual OS failures into one-line DumpErrors.

    Only regular files: a FIFO, device or socket is refused, never opened blocking.

    Returns:
        The file descriptor (caller closes it).
    """
    from parsers.inputs import open_regular_fd

    return open_regular_fd(path, "dump file")


def map_readonly(path: str) -> tuple[mmap.mmap, int]:
    """Map ``path`` read-only (the input is never written); returns the map and its size.

    Raises:
        DumpError: missing, a directory, unreadable, empty or not mappable.
    """
    fd = open_file_checked(path)
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            raise FormatError("empty file", path)
        return mmap.mmap(fd, 0, access=mmap.ACCESS_READ), size
    except OSError as exc:
        raise DumpError(f"cannot map: {exc.strerror}", path) from None
    finally:
        os.close(fd)


_MACHINES = {
    3: "x86 (i386)",
    62: "x86_64",
    40: "ARM",
    183: "AArch64",
    21: "PowerPC64",
    20: "PowerPC",
    243: "RISC-V",
    8: "MIPS",
}
_TYPES = {
    0: "ET_NONE",
    1: "ET_REL (an object file)",
    2: "ET_EXEC (an executable, e.g. vmlinux)",
    3: "ET_DYN (a shared object)",
}


class ElfCore:
    """A 64-bit big-endian s390x ELF core file, read lazily.

    Args:
        path: the dump. It is opened read-only and never written.

    Raises:
        DumpError: the file is missing, unreadable, or not an s390x ELF core.
    """

    format = "elf"
    #: ELF cores carry registers in notes; see :class:`parsers.dumps.dumpfile.DumpFile`.
    cpu_registers: Sequence[Any] | None = None

    def __init__(self, path: str) -> None:
        self.path = path
        #: The file the user named (differs from ``path`` for a decompressed .zst copy).
        self.source_path = path
        self._map, self.file_size = map_readonly(path)
        #: Keeps the pages of the mapping resident in RSS bounded (parsers.dumps.residency).
        self.resident = ResidentBudget(self._map, path=path)
        try:
            self._parse()
        except DumpError:
            self.close()
            raise

    # -- parsing -------------------------------------------------------------------------
    def _parse(self) -> None:
        m = self._map
        ident = bytes(m[:16])
        if ident[:4] != b"\x7fELF":
            raise FormatError(
                "not an ELF file (and not another dump format backchain reads)", self.path
            )
        if len(ident) < 16 or self.file_size < 64:
            raise TruncatedError("ELF header is truncated", self.path)
        if ident[4] != 2:
            raise FormatError("32-bit ELF: s390x dumps are 64-bit ELF", self.path)
        if ident[5] != 2:
            machine = struct.unpack_from("<H", m, 18)[0]
            what = _MACHINES.get(machine, f"machine {machine}")
            raise FormatError(f"little-endian ELF for {what}: not an s390x dump", self.path)
        etype, machine, _, _, phoff, _, _, _, phentsize, phnum = _EHDR.unpack_from(m, 16)
        if machine != EM_S390:
            what = _MACHINES.get(machine, f"machine {machine}")
            raise FormatError(f"ELF for {what}, not s390x (EM_S390)", self.path)
        if etype != 4:
            what = _TYPES.get(etype, f"type {etype}")
            raise FormatError(f"ELF {what}, not a core dump (ET_CORE)", self.path)
        if phnum == 0:
            raise FormatError("ELF core has no program headers", self.path)
        if phnum >= MAX_SEGMENTS or phentsize < 56:
            raise FormatError(
                f"implausible program header table ({phnum} x {phentsize})", self.path
            )
        if phoff + phnum * phentsize > self.file_size:
            raise TruncatedError("program headers extend past the end of the file", self.path)
        loads: list[LoadSegment] = []
        self.notes: list[Note] = []
        for i in range(phnum):
            ptype, _, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, _ = _PHDR.unpack_from(
                m, phoff + i * phentsize
            )
            if ptype == PT_LOAD:
                seg = LoadSegment(p_paddr, p_vaddr, p_offset, p_filesz, p_memsz)
                if seg.offset + seg.filesz > self.file_size:
                    raise TruncatedError(
                        f"memory segment {i} (absolute 0x{seg.paddr:x}, {seg.filesz} bytes at "
                        f"file offset 0x{seg.offset:x}) extends past the end of the file "
                        f"({self.file_size} bytes): the dump is truncated",
                        self.path,
                    )
                loads.append(seg)
            elif ptype == PT_NOTE:
                if p_offset + p_filesz > self.file_size:
                    raise TruncatedError(
                        f"note segment {i} extends past the end of the file", self.path
                    )
                self.notes.extend(self._parse_notes(p_offset, p_filesz))
        if not loads:
            raise FormatError("ELF core has no memory (no PT_LOAD segment)", self.path)
        # QEMU 7.2 writes p_paddr 0 for every PT_LOAD: with several segments at 0, the
        # physical address is in p_vaddr (paging=false dumps).
        if len(loads) > 1 and sum(1 for s in loads if s.paddr == 0) > 1:
            loads = [LoadSegment(s.vaddr, s.vaddr, s.offset, s.filesz, s.memsz) for s in loads]
        self.segments: tuple[LoadSegment, ...] = tuple(sorted(loads, key=lambda s: s.paddr))
        self._index = RangeIndex(_disjoint(self.segments))
        self._ranges = self._index.ranges()

    def _parse_notes(self, offset: int, size: int) -> Iterator[Note]:
        return parse_notes(self._map, offset, size, self.path)

    # -- PhysicalMemory ------------------------------------------------------------------
    @property
    def ranges(self) -> Sequence[MemoryRange]:
        """Absolute memory held in the dump."""
        return self._ranges

    def read(self, address: int, size: int) -> bytes:
        """Read absolute memory across segment boundaries.

        Raises:
            UnmappedError: a byte of the request is not in any PT_LOAD (or lies in the
                zero-filled tail ``p_memsz > p_filesz`` that the file does not store).
        """
        self.resident.charge(size)
        idx = self._index
        i = idx.find(address)
        if i >= 0 and address + size <= idx.ends[i]:  # the common case: one segment
            off = idx.payloads[i] + address - idx.starts[i]
            return self._map[off : off + size]
        parts = []
        while size > 0:
            if i < 0:
                raise UnmappedError(address, path=self.path)
            take = min(size, idx.ends[i] - address)
            off = idx.payloads[i] + address - idx.starts[i]
            parts.append(self._map[off : off + take])
            address += take
            size -= take
            i = idx.find(address) if size else i
        return b"".join(parts)

    @property
    def vmcoreinfo_text(self) -> str | None:
        """The VMCOREINFO note's text, if the dump has one (kdump does, QEMU does not)."""
        for note in self.notes:
            if note.name == "VMCOREINFO":
                return note.desc.decode("utf-8", "replace").rstrip("\0")
        return None

    def format_facts(self) -> dict[str, object]:
        """ELF facts for ``backchain info``."""
        return {
            "file_size": self.file_size,
            "load_segments": len(self.segments),
            "notes": len(self.notes),
        }

    def close(self) -> None:
        """Unmap the file."""
        try:
            self._map.close()
        except (AttributeError, ValueError, BufferError):
            pass


def parse_notes(buf: Buffer, offset: int, size: int, path: str, base: int = 0) -> Iterator[Note]:
    """Parse the ELF notes in ``buf[offset : offset + size]`` (shared by the dump readers).

    Args:
        buf: bytes (or an mmap) holding the notes.
        offset: where the notes start in ``buf``.
        size: bytes of notes.
        path: the file, for error messages.
        base: added to positions in ``buf`` to give the file offsets stored in
            :attr:`Note.offset` (when ``buf`` is a copy of part of the file).

    Raises:
        FormatError: a note declares an absurd size.
        TruncatedError: a note runs past the end of the notes.
    """
    pos, end = offset, offset + size
    while pos + 12 <= end:
        namesz, descsz, ntype = _NHDR.unpack_from(buf, pos)
        if namesz > 4096 or descsz > MAX_NOTE_SIZE:
            raise FormatError(
                f"ELF note at file offset 0x{pos + base:x} has an absurd size "
                f"(name {namesz}, descriptor {descsz} bytes)",
                path,
            )
        name_off = pos + 12
        desc_off = name_off + _align4(namesz)
        next_pos = desc_off + _align4(descsz)
        if next_pos > end:
            raise TruncatedError(
                f"ELF note at file offset 0x{pos + base:x} runs past its segment", path
            )
        name = bytes(buf[name_off : name_off + namesz]).split(b"\0", 1)[0]
        if namesz == 0 and descsz == 0 and ntype == 0:
            pos = next_pos  # the empty terminating note the kernel writes
            continue
        yield Note(
            name.decode("ascii", "replace"),
            ntype,
            bytes(buf[desc_off : desc_off + descsz]),
            pos + base,
        )
        pos = next_pos


def _disjoint(segments: Sequence[LoadSegment]) -> list[tuple[int, int, int]]:
    """(start, end, file offset) of the segments' bytes, overlaps cut off (sorted by paddr).

    Where PT_LOADs overlap (a damaged header, or a kernel-text segment inside a RAM one as
    x86 kdump writes), the bytes of the segment starting first are kept, so that
    :attr:`ElfCore.ranges` never overlap and every byte they list can be read.
    """
    out: list[tuple[int, int, int]] = []
    for s in segments:
        start, end, offset = s.paddr, s.paddr + s.filesz, s.offset
        if out and start < out[-1][1]:
            skip = out[-1][1] - start
            start, offset = start + skip, offset + skip
        if start < end:
            out.append((start, end, offset))
    return out


def _align4(n: int) -> int:
    return (n + 3) & ~3


def group_cpu_notes(notes: Sequence[Note]) -> list[list[Note]]:
    """Split the notes into per-CPU groups: each NT_PRSTATUS starts the next CPU."""
    groups: list[list[Note]] = []
    for note in notes:
        if note.name == "CORE" and note.type == NT_PRSTATUS:
            groups.append([note])
        elif groups and note.name in ("CORE", "LINUX") and note.type != 3:
            groups[-1].append(note)
    return groups


__all__ = [
    "ElfCore",
    "LoadSegment",
    "Note",
    "group_cpu_notes",
    "open_file_checked",
    "parse_notes",
]
