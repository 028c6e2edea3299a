"""Kernel symbols from System.map or a vmlinux ``.symtab``: sorted arrays and bisect.

``lookup(addr)`` gives ``name+0xoff/0xsize`` the way the kernel prints ``%pS``; ``is_text``
approximates ``__kernel_text_address()`` for the core kernel (``_stext`` .. ``_etext`` and
``_sinittext`` .. ``_einittext``; module text is not known without module data).
"""

from __future__ import annotations

import bisect
import os
import struct
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from parsers.compressed import read_text_maybe_compressed
from parsers.errors import FormatError, SymbolError

#: System.map types that name an address in the kernel image (not absolute values).
_ADDRESS_TYPES = frozenset("TtDdBbRrVvWw")
_TEXT_TYPES = frozenset("TtWw")
#: A gap larger than this after the last symbol of a run is not attributed to it.
_MAX_IMPLIED_SIZE = 1 << 20

_ELF_SYM = struct.Struct(">IBBHQQ")  # Elf64_Sym, big-endian


@dataclass(frozen=True, slots=True)
class Symbol:
    """A symbol that contains an address: ``name+0x<offset>/0x<size>``."""

    name: str
    address: int
    offset: int
    size: int

    def __str__(self) -> str:
        return f"{self.name}+0x{self.offset:x}/0x{self.size:x}"


class SymbolTable:
    """Kernel symbols sorted by address.

    Args:
        entries: (address, type letter, name, size or 0 if unknown) tuples.
        source: where they came from, for messages.
        delta: added to every address (KASLR relocation) when looking up.
    """

    def __init__(self, entries: Iterable[tuple[int, str, str, int]], source: str) -> None:
        rows = sorted((a, n, t, s) for a, t, n, s in entries if t in _ADDRESS_TYPES)
        self.source = source
        self.delta = 0
        self._addrs = array("Q", (r[0] for r in rows))
        self._names = [r[1] for r in rows]
        self._types = "".join(r[2] for r in rows)
        sizes = array("Q", (r[3] for r in rows))
        for i in range(len(rows)):  # infer missing sizes from the next distinct address
            if sizes[i] == 0:
                j = bisect.bisect_right(self._addrs, self._addrs[i], lo=i)
                if j < len(rows):
                    gap = self._addrs[j] - self._addrs[i]
                    sizes[i] = gap if gap <= _MAX_IMPLIED_SIZE else 0
        self._sizes = sizes
        self._by_name: dict[str, int] = {}
        for i, name in enumerate(self._names):
            self._by_name.setdefault(name, i)
        self._text_ranges = self._find_text_ranges()

    def __len__(self) -> int:
        return len(self._names)

    def relocate(self, delta: int) -> None:
        """Apply a KASLR offset: runtime address = file address + ``delta``."""
        self.delta = delta
        self._text_ranges = self._find_text_ranges()

    def _find_text_ranges(self) -> list[tuple[int, int]]:
        out = []
        for start, end in (("_stext", "_etext"), ("_sinittext", "_einittext")):
            a, b = self.address_of(start), self.address_of(end)
            if a is not None and b is not None and a < b:
                out.append((a, b))
        if not out:  # no markers: the span of text symbols
            text = [a for a, t in zip(self._addrs, self._types, strict=True) if t in _TEXT_TYPES]
            if text:
                out.append((min(text) + self.delta, max(text) + self.delta + 1))
        return out

    def address_of(self, name: str) -> int | None:
        """Runtime address of ``name`` or None."""
        i = self._by_name.get(name)
        return None if i is None else self._addrs[i] + self.delta

    def require(self, name: str) -> int:
        """Runtime address of ``name``.

        Raises:
            SymbolError: the symbol is not in the table.
        """
        addr = self.address_of(name)
        if addr is None:
            raise SymbolError(f"symbol {name} not found in {self.source}")
        return addr

    def size_of(self, name: str) -> int:
        """Size of ``name`` (from .symtab, or implied by the next symbol); 0 if unknown."""
        i = self._by_name.get(name)
        return 0 if i is None else self._sizes[i]

    def lookup(self, address: int) -> Symbol | None:
        """The symbol containing ``address``, or None."""
        rel = address - self.delta
        if rel < 0:
            return None
        i = bisect.bisect_right(self._addrs, rel) - 1
        if i < 0:
            return None
        base = self._addrs[i]
        # Among symbols at the same address prefer a function over a section marker
        # (__sched_text_start, _stext ...), then a text symbol, then the first name.
        j = i
        while j > 0 and self._addrs[j - 1] == base:
            j -= 1
        best = min(
            range(j, i + 1),
            key=lambda k: (_is_marker(self._names[k]), self._types[k] not in _TEXT_TYPES, k),
        )
        size = self._sizes[best]
        if size and rel >= base + size:
            return None
        if not size and rel - base > _MAX_IMPLIED_SIZE:
            return None
        return Symbol(self._names[best], base + self.delta, rel - base, size)

    def format(self, address: int) -> str:
        """``name+0xoff/0xsize`` or the bare address."""
        sym = self.lookup(address)
        return str(sym) if sym else f"0x{address:016x}"

    def is_text(self, address: int) -> bool:
        """True if ``address`` lies in core kernel text (``__kernel_text_address``)."""
        return any(a <= address < b for a, b in self._text_ranges)

    def names(self) -> Iterator[str]:
        """All names, in address order."""
        return iter(self._names)


def _is_marker(name: str) -> bool:
    """Linker-script markers that share an address with the first function of a section."""
    return name in _MARKERS or (name.startswith("__") and name.endswith(("_start", "_end")))


_MARKERS = frozenset({"_text", "_stext", "_etext", "_sinittext", "_einittext", "_end"})


def load_system_map(path: str | os.PathLike[str]) -> SymbolTable:
    """Read a System.map (plain or .zst).

    Raises:
        SymbolError: unreadable, or not a System.map (e.g. Debian's one-line placeholder).
    """
    text = read_text_maybe_compressed(path)
    entries = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            addr = int(parts[0], 16)
        except ValueError:
            raise SymbolError(f"line {lineno} is not 'address type name'", str(path)) from None
        if not 0 <= addr < 1 << 64:
            raise SymbolError(
                f"line {lineno}: address {parts[0]} is not a 64-bit address", str(path)
            )
        entries.append((addr, parts[1], parts[2], 0))
    if len(entries) < 3 or "System.map" in text[:200]:
        raise SymbolError(
            f"{len(entries)} symbol(s): not a real System.map (Debian's linux-image package "
            "ships a placeholder; the real one is in the -dbg package)",
            str(path),
        )
    return SymbolTable(entries, f"System.map {os.fspath(path)}")


def load_vmlinux_symbols(path: str | os.PathLike[str]) -> SymbolTable:
    """Read the ``.symtab`` of a vmlinux ELF in one pass (``struct.iter_unpack``).

    Raises:
        SymbolError: no .symtab, or not a 64-bit big-endian ELF.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            elf = ELFFile(f)
            if elf.elfclass != 64 or elf.little_endian:
                raise SymbolError("not a 64-bit big-endian (s390x) ELF", p)
            symtab = elf.get_section_by_name(".symtab")
            if symtab is None:
                raise SymbolError("has no .symtab (stripped vmlinux?)", p)
            strtab = elf.get_section(symtab["sh_link"])
            sym_data = symtab.data()
            str_data = strtab.data()
            shndx_text = {
                i
                for i, s in enumerate(elf.iter_sections())
                if s["sh_flags"] & 0x4  # SHF_EXECINSTR
            }
    except OSError as exc:
        raise SymbolError(f"cannot read: {exc.strerror or exc}", p) from None
    except (ELFError, FormatError) as exc:
        raise SymbolError(f"not a readable ELF ({exc})", p) from None
    n = len(sym_data) // _ELF_SYM.size
    entries = []
    for st_name, st_info, _other, shndx, value, size in _ELF_SYM.iter_unpack(
        sym_data[: n * _ELF_SYM.size]
    ):
        stype = st_info & 0xF
        if stype not in (0, 1, 2) or shndx == 0 or shndx >= 0xFF00 or not st_name:
            continue  # section/file symbols, undefined or absolute
        end = str_data.find(b"\0", st_name)
        name = str_data[st_name:end].decode("ascii", "replace")
        local = (st_info >> 4) == 0
        letter = "t" if shndx in shndx_text else "d"
        entries.append((value, letter if local else letter.upper(), name, size))
    if not entries:
        raise SymbolError("no usable symbols in .symtab", p)
    return SymbolTable(entries, f"vmlinux {p}")
