"""Write s390x ELF vmcores laid out like QEMU's ``dump-guest-memory``.

Used by the tests and by the training scenarios: a memory image (absolute addresses) plus
per-CPU notes becomes a deterministic ELF64 big-endian ET_CORE file: one PT_NOTE, then one
PT_LOAD per memory run. The ELF and program headers are built with pyelftools' own
structure definitions; the note descriptors are built by the caller with
:mod:`parsers.s390.structs` in build mode.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from elftools.construct.lib import Container
from elftools.elf.structs import ELFStructs

from parsers.s390.structs import build_note

_EHDR_SIZE = 64
_PHDR_SIZE = 56
_ALIGN = 0x1000


@dataclass(frozen=True)
class NoteSpec:
    """A note to write: owner name, type and descriptor bytes."""

    name: str
    type: int
    desc: bytes


def encode_note(note: NoteSpec) -> bytes:
    """Elf64_Nhdr + NUL-terminated name padded to 4 + descriptor padded to 4."""
    return build_note(note.name, note.type, note.desc)


def _structs() -> ELFStructs:
    s = ELFStructs(little_endian=False, elfclass=64)
    s.create_basic_structs()
    s.create_advanced_structs("ET_CORE", "EM_S390", "ELFOSABI_SYSV")
    return s


def build_elf_header(phnum: int) -> bytes:
    """The 64-byte ELF header of an s390x core with ``phnum`` program headers at 0x40."""
    ident = Container(
        EI_MAG=[0x7F, ord("E"), ord("L"), ord("F")],
        EI_CLASS="ELFCLASS64",
        EI_DATA="ELFDATA2MSB",
        EI_VERSION="EV_CURRENT",
        EI_OSABI="ELFOSABI_SYSV",
        EI_ABIVERSION=0,
    )
    hdr = Container(
        e_ident=ident,
        e_type="ET_CORE",
        e_machine="EM_S390",
        e_version="EV_CURRENT",
        e_entry=0,
        e_phoff=_EHDR_SIZE,
        e_shoff=0,
        e_flags=0,
        e_ehsize=_EHDR_SIZE,
        e_phentsize=_PHDR_SIZE,
        e_phnum=phnum,
        e_shentsize=0,
        e_shnum=0,
        e_shstrndx=0,
    )
    return bytes(_structs().Elf_Ehdr.build(hdr))


def build_phdr(ptype: str, offset: int, paddr: int, size: int) -> bytes:
    """One Elf64_Phdr (PT_NOTE or PT_LOAD); p_vaddr = p_paddr = absolute address."""
    ph = Container(
        p_type=ptype,
        p_flags=0,
        p_offset=offset,
        p_vaddr=paddr,
        p_paddr=paddr,
        p_filesz=size,
        p_memsz=size,
        p_align=0,
    )
    return bytes(_structs().Elf_Phdr.build(ph))


def memory_runs(image: dict[int, bytes], merge_gap: int = 0) -> list[tuple[int, bytes]]:
    """Turn page-granular ``{address: bytes}`` into sorted contiguous runs."""
    runs: list[tuple[int, bytearray]] = []
    for addr in sorted(image):
        data = image[addr]
        if runs and runs[-1][0] + len(runs[-1][1]) + merge_gap >= addr:
            start, buf = runs[-1]
            end = addr - start
            if end > len(buf):
                buf.extend(b"\0" * (end - len(buf)))
            buf[end : end + len(data)] = data
        else:
            runs.append((addr, bytearray(data)))
    return [(a, bytes(b)) for a, b in runs]


def write_elf_core(
    out: str | os.PathLike[str] | BinaryIO,
    segments: Sequence[tuple[int, bytes]],
    notes: Iterable[NoteSpec],
) -> None:
    """Write an ELF vmcore.

    Args:
        out: a path or a binary file object.
        segments: (absolute address, bytes) runs of memory, non-overlapping.
        notes: notes in order (per CPU: CORE PRSTATUS, CORE FPREGSET, LINUX S390_*).
    """
    note_blob = b"".join(encode_note(n) for n in notes)
    segs = sorted(segments)
    phnum = 1 + len(segs)
    offset = _EHDR_SIZE + phnum * _PHDR_SIZE
    note_off = offset
    offset = (offset + len(note_blob) + _ALIGN - 1) & ~(_ALIGN - 1)
    headers = [build_phdr("PT_NOTE", note_off, 0, len(note_blob))]
    placed = []
    for addr, data in segs:
        headers.append(build_phdr("PT_LOAD", offset, addr, len(data)))
        placed.append((offset, data))
        offset += (len(data) + _ALIGN - 1) & ~(_ALIGN - 1)
    with contextlib.ExitStack() as stack:
        if isinstance(out, (str, os.PathLike)):
            f: BinaryIO = stack.enter_context(open(out, "wb"))
        else:
            f = out
        head = build_elf_header(phnum) + b"".join(headers)
        f.write(head)
        f.write(note_blob)
        pos = len(head) + len(note_blob)
        for off, data in placed:
            f.write(b"\0" * (off - pos))
            f.write(data)
            pos = off + len(data)
