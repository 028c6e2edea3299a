"""The functions of an s390x ELF (vmlinux, a module ``.ko``, an object ``.o``) with their code.

pyelftools reads the section headers; ``.symtab`` is unpacked in one pass with
``struct.iter_unpack`` (pyelftools' per-symbol objects take seconds on a vmlinux). Code is
read from the file section by section, on demand.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from parsers.errors import FormatError

ET_REL, ET_EXEC, ET_DYN = 1, 2, 3
EM_S390 = 22
SHF_EXECINSTR = 0x4
SHT_PROGBITS = 1
STT_NOTYPE, STT_FUNC = 0, 2
_ELF_SYM = struct.Struct(">IBBHQQ")  # Elf64_Sym, big-endian
#: Functions larger than this are not believed (a corrupt size would read the whole file).
MAX_FUNCTION = 1 << 20


@dataclass(frozen=True, slots=True)
class CodeSection:
    """An executable PROGBITS section."""

    index: int
    name: str
    address: int
    size: int
    offset: int


@dataclass(frozen=True, slots=True)
class ElfFunction:
    """A function symbol: ``STT_FUNC`` (or ``STT_NOTYPE``, as asm entry code is in v6.12)
    with a size, in an executable section.

    Attributes:
        address: ``st_value`` (in a relocatable object: the offset in its section).
        section: the section holding it.
    """

    name: str
    address: int
    size: int
    section: CodeSection


class ElfCode:
    """Functions and code of one s390x ELF file.

    Raises:
        FormatError: not a readable 64-bit big-endian s390 ELF with a symbol table.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile

        self.path = os.fspath(path)
        try:
            with open(self.path, "rb") as f:
                elf = ELFFile(f)
                if elf.elfclass != 64 or elf.little_endian or elf["e_machine"] != "EM_S390":
                    raise FormatError("not a 64-bit big-endian s390x ELF", self.path)
                self.elf_type = {"ET_REL": ET_REL, "ET_EXEC": ET_EXEC, "ET_DYN": ET_DYN}.get(
                    elf["e_type"], 0
                )
                self.sections = {
                    i: CodeSection(i, s.name, s["sh_addr"], s["sh_size"], s["sh_offset"])
                    for i, s in enumerate(elf.iter_sections())
                    if s["sh_flags"] & SHF_EXECINSTR and s["sh_type"] == "SHT_PROGBITS"
                }
                symtab = elf.get_section_by_name(".symtab")
                if symtab is None:
                    raise FormatError("has no .symtab (stripped?)", self.path)
                sym_data = symtab.data()
                str_data = elf.get_section(symtab["sh_link"]).data()
        except OSError as exc:
            raise FormatError(f"cannot read: {exc.strerror or exc}", self.path) from None
        except ELFError as exc:
            raise FormatError(f"not a readable ELF ({exc})", self.path) from None
        self._symbols = sym_data
        self._strings = str_data
        self._data: dict[int, bytes] = {}

    @property
    def kind(self) -> str:
        """``vmlinux``, ``module`` (a .ko), ``object`` or ``shared object``."""
        if self.elf_type == ET_EXEC:
            return "vmlinux"
        if self.elf_type == ET_REL:
            return "module" if self.path.endswith(".ko") else "object"
        return "shared object"

    def functions(self) -> Iterator[ElfFunction]:
        """Every function symbol with a size in an executable section, by address."""
        n = len(self._symbols) // _ELF_SYM.size
        strings = self._strings
        seen = set()
        out = []
        for st_name, info, _other, shndx, value, size in _ELF_SYM.iter_unpack(
            self._symbols[: n * _ELF_SYM.size]
        ):
            section = self.sections.get(shndx)
            if section is None or info & 0xF not in (STT_FUNC, STT_NOTYPE) or not st_name:
                continue
            if not 0 < size <= MAX_FUNCTION:  # asm entry code is NOTYPE with a size in 6.12
                continue
            if (shndx, value) in seen:  # aliases
                continue
            seen.add((shndx, value))
            end = strings.find(b"\0", st_name)
            name = strings[st_name:end].decode("ascii", "replace")
            out.append(ElfFunction(name, value, size, section))
        out.sort(key=lambda f: (f.section.index, f.address))
        return iter(out)

    def read(self, func: ElfFunction) -> bytes:
        """The function's bytes (cut at its section's end)."""
        sec = self.section_data(func.section)
        start = func.address - (0 if self.elf_type == ET_REL else func.section.address)
        return sec[start : start + func.size]

    def section_data(self, section: CodeSection) -> bytes:
        """A whole code section (cached: most functions share a few sections)."""
        data = self._data.get(section.index)
        if data is None:
            with open(self.path, "rb") as f:
                f.seek(section.offset)
                data = self._data[section.index] = f.read(section.size)
        return data


def is_code_elf(path: str) -> bool:
    """True for an ELF that is not a core dump (vmlinux, .ko, .o)."""
    try:
        with open(path, "rb") as f:
            head = f.read(18)
    except OSError:
        return False
    if head[:4] != b"\x7fELF" or len(head) < 18:
        return False
    e_type = int.from_bytes(head[16:18], "big" if head[5] == 2 else "little")
    return e_type in (ET_REL, ET_EXEC, ET_DYN)
