"""Kernel symbols from System.map or a vmlinux ``.symtab``: sorted arrays and bisect.

``lookup(addr)`` gives ``name+0xoff/0xsize`` the way the kernel prints ``%pS``; ``is_text``
approximates ``__kernel_text_address()`` for the core kernel (``_stext`` .. ``_etext`` and
``_sinittext`` .. ``_einittext``; module text is not known without module data).
"""

from __future__ import annotations

import bisect
import io
import itertools
import operator
import os
import struct
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from parsers.errors import DumpError, FormatError, SymbolError
from parsers.symbols.packed import PackedNames

#: System.map types that name an address in the kernel image (not absolute values).
_ADDRESS_TYPES = frozenset("TtDdBbRrVvWw")
_TEXT_TYPES = frozenset("TtWw")

_ELF_SYM = struct.Struct(">IBBHQQ")  # Elf64_Sym, big-endian


class NameIndex(Protocol):
    """Name -> index of its first symbol (a dict, or a cached table's sorted index)."""

    def get(self, name: str, /) -> int | None: ...

    def __contains__(self, name: object, /) -> bool: ...


@dataclass(frozen=True, slots=True)
class Symbol:
    """A symbol that contains an address: ``name+0x<offset>/0x<size>``.

    ``size`` runs to the next symbol at a higher address, as the kernel's
    ``kallsyms_lookup_size_offset()`` computes it (never the ELF ``st_size``).
    """

    name: str
    address: int
    offset: int
    size: int
    type: str = "T"
    module: str | None = None

    def __str__(self) -> str:
        text = f"{self.name}+0x{self.offset:x}/0x{self.size:x}"
        return f"{text} [{self.module}]" if self.module else text


class SymbolTable:
    """Kernel symbols sorted by address, looked up the way kallsyms looks them up.

    Args:
        entries: (address, type letter, name, ELF size or 0) tuples of System.map or a vmlinux;
            the ELF size is ignored (the kernel's sizes run to the next symbol).
        source: where they came from, for messages.

    Symbols sharing an address are ordered as scripts/kallsyms.c orders them (weak ones last,
    then linker-script names such as ``__sched_text_start`` after others, then fewer leading
    underscores first, then file order); a look-up names the first one, as
    ``get_symbol_pos()`` does. A vmlinux's table keeps them in ``.symtab`` order instead and
    applies that rule (then the name, then ``.symtab`` order) to the few it is asked about:
    ranking all of them is a third of the time a first run takes to build the table.
    """

    def __init__(self, entries: Iterable[tuple[int, str, str, int]], source: str) -> None:
        rows = sorted(
            (a, *_alias_rank(t, n), i, n, t)
            for i, (a, t, n, _s) in enumerate(entries)
            if t in _ADDRESS_TYPES
        )
        self._setup(
            array("Q", (r[0] for r in rows)),
            "".join(r[6] for r in rows),
            [r[5] for r in rows],
            source,
        )

    @classmethod
    def from_kallsyms(
        cls,
        addrs: array[int],
        types: str,
        names: Sequence[str],
        source: str,
        delta: int = 0,
        check: bool = True,
        by_name: NameIndex | None = None,
        aliases_ordered: bool = True,
    ) -> SymbolTable:
        """A table already in kallsyms order (sorted by address).

        Args:
            delta: added to ``addrs`` to give runtime addresses (``kallsyms_relative_base``).
            check: verify the order (off only for a table this program wrote itself).
            by_name: an index of the names (:class:`parsers.symbols.packed.PackedNames`) instead
                of the dict built from ``names``.
            aliases_ordered: False when symbols at one address are in ``.symtab`` order, not
                yet in kallsyms' (a vmlinux's table): they are ranked when looked up.

        Raises:
            SymbolError: the addresses are not sorted (not a kallsyms table).
        """
        if check and not all(map(operator.le, addrs, itertools.islice(addrs, 1, None))):
            raise SymbolError(f"{source}: addresses are not sorted; not a kallsyms table")
        table = cls.__new__(cls)
        table._setup(addrs, types, names, source, by_name, aliases_ordered)
        if delta:
            table.relocate(delta)
        return table

    def _setup(
        self,
        addrs: array[int],
        types: str,
        names: Sequence[str],
        source: str,
        by_name: NameIndex | None = None,
        aliases_ordered: bool = True,
    ) -> None:
        self.source = source
        self.delta = 0
        self._aliases_ordered = aliases_ordered
        self._kallsyms_order: list[int] | None = None
        self._known: dict[str, int] = {}
        self._known_how: dict[str, str] = {}
        self._addrs = addrs
        self._names = names
        self._types = types
        # The first of equal names wins: build from the end so that earlier ones overwrite.
        self._by_name: NameIndex = (
            by_name
            if by_name is not None
            else dict(zip(reversed(names), range(len(names) - 1, -1, -1), strict=True))
        )
        self._find_bounds()

    def __len__(self) -> int:
        return len(self._names)

    def relocate(self, delta: int) -> None:
        """Apply a KASLR offset: runtime address = file address + ``delta``."""
        self.delta = delta
        self._find_bounds()

    def _find_bounds(self) -> None:
        out = []
        for first, last in (("_stext", "_etext"), ("_sinittext", "_einittext")):
            a, b = self.address_of(first), self.address_of(last)
            if a is not None and b is not None and a < b:
                out.append((a, b))
        if not out:  # no markers: the span of text symbols
            text = [a for a, t in zip(self._addrs, self._types, strict=True) if t in _TEXT_TYPES]
            if text:
                out.append((min(text) + self.delta, max(text) + self.delta + 1))
        self._text_ranges = out
        # kallsyms' last symbol ends at _end (KALLSYMS_ALL) or _etext; beyond it nothing.
        end = self.address_of("_end")
        self._has_end = end is not None
        if end is None and self._addrs:
            end = self._addrs[-1] + self.delta + 1
        self._end = end or 0
        self._einittext = self.address_of("_einittext")

    @property
    def has_data_symbols(self) -> bool:
        """False for a text-only table (kallsyms without ``CONFIG_KALLSYMS_ALL``: no ``_end``)."""
        return self._has_end

    def address_of(self, name: str) -> int | None:
        """Runtime address of ``name`` or None."""
        i = self._by_name.get(name)
        if i is None:
            return self._known.get(name)
        return self._addrs[i] + self.delta

    def add_known(self, name: str, address: int, how: str) -> None:
        """Make ``address_of(name)`` answer ``address`` (a runtime address found another way,
        e.g. VMCOREINFO's ``SYMBOL()``) for a name the table lacks; look-ups by address do not
        use it. ``how`` is kept for :meth:`known_by`."""
        if name not in self._by_name:
            self._known[name] = address
            self._known_how[name] = how

    def known_by(self, name: str) -> str:
        """Where ``address_of(name)`` comes from: the table's source or how it was added."""
        return self._known_how.get(name, self.source)

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
        """Size of ``name`` as kallsyms gives it (to the next higher address); 0 if unknown."""
        i = self._by_name.get(name)
        return 0 if i is None else self._size_at(i)

    def type_of(self, name: str) -> str | None:
        """The type letter of ``name`` (``T``, ``t``, ``D`` ...) or None."""
        i = self._index_of(name)
        return None if i is None else self._types[i]

    def _index_of(self, name: str) -> int | None:
        """The index of the first symbol called ``name`` in kallsyms' order."""
        i = self._by_name.get(name)
        if i is None or self._aliases_ordered:
            return i
        # the first by address; at that address, several of that name: kallsyms' first
        hi = bisect.bisect_right(self._addrs, self._addrs[i], lo=i)
        if hi - i == 1:
            return i
        names = self._names
        return min((j for j in range(i, hi) if names[j] == name), key=self._alias_key)

    def _first_alias(self, i: int) -> int:
        """The symbol kallsyms names at symbol ``i``'s address (``get_symbol_pos()``)."""
        addrs = self._addrs
        lo = bisect.bisect_left(addrs, addrs[i], hi=i)
        if self._aliases_ordered:
            return lo
        hi = bisect.bisect_right(addrs, addrs[i], lo=i)
        return lo if hi - lo == 1 else min(range(lo, hi), key=self._alias_key)

    def _alias_key(self, i: int) -> tuple[bool, bool, int, str]:
        """Symbol ``i``'s place among those at its address: :func:`_alias_rank`, then nm's
        order (by name); a tie keeps ``.symtab`` order (``min`` and ``sorted`` keep the
        first)."""
        name = self._names[i]
        return (*_alias_rank(self._types[i], name), name)

    def _order(self) -> Sequence[int] | None:
        """The table's indexes in kallsyms' order (None: the table's own order)."""
        if self._aliases_ordered:
            return None
        if self._kallsyms_order is None:
            addrs = self._addrs
            order = list(range(len(addrs)))
            shared = list(
                itertools.compress(
                    range(len(addrs) - 1), map(operator.eq, addrs, itertools.islice(addrs, 1, None))
                )
            )
            # every position in a run of equal addresses, ascending: a stable sort by
            # (address, rank) keeps the runs in place and ranks each
            at = sorted({*shared, *map((1).__add__, shared)})
            types, names = self._types, list(self._names)  # decoded at once, not one by one
            keys = {i: (addrs[i], *_alias_rank(types[i], names[i]), names[i]) for i in at}
            for p, i in zip(at, sorted(at, key=keys.__getitem__), strict=True):
                order[p] = i
            self._kallsyms_order = order
        return self._kallsyms_order

    def _size_at(self, i: int) -> int:
        base = self._addrs[i]
        j = bisect.bisect_right(self._addrs, base, lo=i)
        if j < len(self._addrs):
            return self._addrs[j] - base
        rel_end = self._end - self.delta
        if self._einittext is not None and base < self._einittext - self.delta <= rel_end:
            rel_end = self._einittext - self.delta
        return max(rel_end - base, 0)

    def lookup(self, address: int) -> Symbol | None:
        """The symbol containing ``address`` (``get_symbol_pos()``), or None."""
        if not self._addrs or address >= self._end:
            return None
        if not self._has_end and not self.is_text(address):
            return None  # text-only kallsyms (no KALLSYMS_ALL): is_ksym_addr() is text only
        rel = address - self.delta
        i = bisect.bisect_right(self._addrs, rel) - 1
        if i < 0:
            return None
        i = self._first_alias(i)
        base = self._addrs[i]
        return Symbol(
            self._names[i], base + self.delta, rel - base, self._size_at(i), self._types[i]
        )

    def format(self, address: int) -> str:
        """``name+0xoff/0xsize`` or the bare address."""
        sym = self.lookup(address)
        return str(sym) if sym else f"0x{address:016x}"

    def is_text(self, address: int) -> bool:
        """True if ``address`` lies in core kernel text (``__kernel_text_address``)."""
        return any(a <= address < b for a, b in self._text_ranges)

    def raw(self) -> tuple[array[int], str, Sequence[str]]:
        """File addresses (before :meth:`relocate`), type letters and names, in kallsyms'
        order."""
        order = self._order()
        if order is None:
            return self._addrs, self._types, self._names
        types, names = self._types, list(self._names)  # decoded at once, not one by one
        return (
            self._addrs,
            "".join(map(types.__getitem__, order)),
            list(map(names.__getitem__, order)),
        )

    def stored(self) -> tuple[array[int], str, Sequence[str], bool]:
        """:meth:`raw` as the table keeps it, and whether symbols at one address are in
        kallsyms' order there (False: in ``.symtab`` order, ranked when looked up)."""
        return self._addrs, self._types, self._names, self._aliases_ordered

    def names(self) -> Iterator[str]:
        """All names, in kallsyms' order (by address)."""
        return (name for _, _, name in self.rows())

    def rows(self) -> Iterator[tuple[int, str, str]]:
        """(runtime address, type, name) of every symbol, in kallsyms' order (by address)."""
        d = self.delta
        addrs, types, names = self._addrs, self._types, self._names
        order = self._order()
        if order is None:
            return ((a + d, t, n) for a, t, n in zip(addrs, types, names, strict=True))
        names = list(names)  # decoded at once, not one by one
        return ((addrs[i] + d, types[i], names[i]) for i in order)


def _alias_rank(kind: str, name: str) -> tuple[bool, bool, int]:
    """scripts/kallsyms.c's order of symbols at one address: weak ones (``W``/``w``) last,
    then linker-script names, then more leading underscores."""
    return kind in "Ww", _linker_provided(name), len(name) - len(name.lstrip("_"))


def _linker_provided(name: str) -> bool:
    """scripts/kallsyms.c ``may_be_linker_script_provide_symbol()``: ``__start_*``,
    ``__stop_*``, ``__end_*``, ``__*_start``, ``__*_end`` (8 characters or more)."""
    return (
        len(name) >= 8
        and name.startswith("__")
        and (
            name.startswith(("__start_", "__stop_", "__end_")) or name.endswith(("_start", "_end"))
        )
    )


#: A System.map is a few MiB (Debian 6.1: 2.7 MiB, 92,000 symbols); a larger one is refused
#: before its lines cost memory.
MAX_SYSTEM_MAP_BYTES = 32 << 20


def load_system_map(path: str | os.PathLike[str]) -> SymbolTable:
    """Read a System.map (plain or .zst).

    Raises:
        SymbolError: unreadable, or not a System.map (e.g. Debian's one-line placeholder).
    """
    from parsers.compressed import read_text_maybe_compressed  # not for a vmlinux's table

    text = read_text_maybe_compressed(path, limit=MAX_SYSTEM_MAP_BYTES)
    entries = []
    for lineno, line in enumerate(io.StringIO(text), 1):  # one line at a time, not a list
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
    """Read the ``.symtab`` of a vmlinux ELF in one pass over the mapped file.

    Sections, undefined, absolute and file symbols are left out; the type letter is ``nm``'s
    (``t``/``T`` in executable sections, ``d``/``D`` elsewhere, ``W``/``V`` weak). Symbols
    are ordered as the kernel's kallsyms orders them (see :class:`SymbolTable`), after ``nm
    -n``'s order of names at one address.

    Raises:
        SymbolError: no .symtab, or not a 64-bit big-endian ELF.
    """
    from parsers.elf.sections import SHF_EXECINSTR, ElfSections
    from parsers.symbols.symtab import table_of_symbols

    p = os.fspath(path)
    try:
        with ElfSections(p) as elf:
            if elf.little_endian:
                raise SymbolError("not a 64-bit big-endian (s390x) ELF", p)
            symtab = elf.get(".symtab")
            if symtab is None:
                raise SymbolError("has no .symtab (stripped vmlinux?)", p)
            if not 0 < symtab.link < len(elf.sections):
                raise SymbolError(".symtab names no string table", p)
            count = symtab.size // _ELF_SYM.size
            raw = elf.data[symtab.offset : symtab.offset + count * _ELF_SYM.size]
            str_data = elf.bytes_of(elf.sections[symtab.link])
            text_sections = {s.index for s in elf.sections if s.flags & SHF_EXECINSTR}
            section_count = len(elf.sections)
    except FormatError as exc:
        raise SymbolError(f"not a readable ELF ({exc.message})", p) from None
    except DumpError as exc:
        raise SymbolError(exc.message, p) from None
    table = table_of_symbols(raw, str_data, text_sections, section_count)
    if table is None:
        raise SymbolError("no usable symbols in .symtab", p)
    return symtab_table(table, f"vmlinux {p}")


def symtab_table(table: tuple[array[int], str, Sequence[str]], source: str) -> SymbolTable:
    """The table of :func:`parsers.symbols.symtab.table_of_symbols`' addresses, types and
    names (symbols at one address in ``.symtab`` order, ranked when looked up)."""
    addrs, types, names = table
    by_name = names if isinstance(names, PackedNames) else None
    return SymbolTable.from_kallsyms(
        addrs, types, names, source, check=False, by_name=by_name, aliases_ordered=False
    )
