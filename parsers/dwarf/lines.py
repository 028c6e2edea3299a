"""Source lines and inline chains from the DWARF of a vmlinux (or any ELF with debug info).

A vmlinux's ``.debug_info`` is 100+ MB: this module never decodes all of it. The file is
memory-mapped, its units and DIEs read by :mod:`parsers.dwarf.reader` (the one reader);
``.debug_aranges`` maps an address to its compile unit (CU); in that CU only the top-level
DIEs are stepped over (``DW_AT_sibling`` jumps over their children) to find the
subprogram holding the address, and only that subprogram's subtree is read to find the
inlined subroutines around it. The CU's line program is run once when first needed. What was
found per CU (its functions' ranges, its line rows) is kept for the life of the reader, and
:class:`LineIndex` saves the address -> CU index and the touched CUs' function ranges in the
cache, by build-id.

Paths are as in the DWARF, relative to the build directory (the CU's ``DW_AT_comp_dir``):
``kernel/sched/core.c``, ``lines_mock.h``.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import mmap
import os
import posixpath
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.construct import ConstructError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from parsers.dwarf.leb128 import sleb128, uleb128
from parsers.dwarf.reader import (
    ADDRX_FORMS,
    FIXED_FORMS,
    FORM_ADDR,
    FORM_RNGLISTX,
    FORM_STRING,
    OFFSET_FORMS,
    REF_FORMS,
    ULEB_FORMS,
    Damaged,
    Die,
    DwarfReader,
    Span,
    Unit,
    Unsupported,
    form_size,
)
from parsers.elf.sections import build_id_in_notes
from parsers.errors import DumpError, FormatError, TypeInfoError

#: A line cache larger than this is not one this code wrote.
_MAX_CACHE_BYTES = 256 << 20

# -- DWARF constants (DWARF 5 §7) ----------------------------------------------------------------
TAG_COMPILE_UNIT = 0x11
TAG_PARTIAL_UNIT = 0x3C
TAG_SUBPROGRAM = 0x2E
TAG_INLINED_SUBROUTINE = 0x1D
TAG_LEXICAL_BLOCK = 0x0B
AT_SIBLING = 0x01
AT_NAME = 0x03
AT_STMT_LIST = 0x10
AT_LOW_PC = 0x11
AT_HIGH_PC = 0x12
AT_COMP_DIR = 0x1B
AT_ABSTRACT_ORIGIN = 0x31
AT_SPECIFICATION = 0x47
AT_RANGES = 0x55
AT_CALL_FILE = 0x58
AT_CALL_LINE = 0x59

#: 3: DIE offsets are offsets in .debug_info (2: in the file).
_CACHE_GENERATION = 3


# -- records --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SourceLine:
    """A place in the source: ``path`` relative to the build directory, 1-based ``line``."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True, slots=True)
class InlineFrame:
    """One inline function folded into a frame, and where in it the address is."""

    function: str
    source: SourceLine | None


@dataclass(frozen=True, slots=True)
class Location:
    """What the DWARF says about one (link-time) address.

    Attributes:
        address: the address looked up (already ``R-1`` for a return address).
        function: the subprogram containing it (its out-of-line function), or None.
        source: where in ``function`` the address is: the line row's place when nothing is
            inlined there, else the call site of the outermost inline function.
        inlined: inline functions at the address, innermost first, each with where in it
            the address is (the innermost: the line row; the others: the call site of the
            one inside).
        unit: the compile unit's name (``kernel/sched/core.c``), or None.
    """

    address: int
    function: str | None
    source: SourceLine | None
    inlined: tuple[InlineFrame, ...]
    unit: str | None = None


# -- the reader -----------------------------------------------------------------------------------
@dataclass(slots=True)
class _Unit:
    """What line lookups keep of a unit besides its header (:class:`Unit`)."""

    unit: Unit
    name: str | None = None
    comp_dir: str = ""
    stmt_list: int | None = None
    low_pc: int = 0
    functions: list[tuple[int, int, int]] | None = None  # (low, high, die offset), sorted
    lines: _LineTable | None = None

    @property
    def offset(self) -> int:
        return self.unit.offset

    @property
    def address_size(self) -> int:
        return self.unit.address_size


@dataclass(slots=True)
class _LineTable:
    directories: list[str]
    files: list[tuple[str, int]]  # (name, directory index); joined when first used
    starts: list[int] = field(default_factory=list)  # row address, sequences sorted
    rows: list[tuple[int, int, int, int]] = field(default_factory=list)  # addr file line seq_end


class DwarfLines:
    """Address -> function, source line and inline chain, from one ELF file's DWARF.

    Use :func:`open_dwarf_lines`; close it (or use ``with``) to release the mapping.
    """

    def __init__(self, path: str, cache_dir: Path | None = None) -> None:
        self.path = path
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        except OSError as error:
            raise DumpError(f"cannot read vmlinux: {error.strerror}", path) from None
        try:
            self._open(cache_dir)
        except BaseException:
            self._file.close()
            raise

    def _open(self, cache_dir: Path | None) -> None:
        try:
            elf = ELFFile(self._file)
            self.little_endian = elf.little_endian
            self.elf_type = elf["e_type"]
            self.sections: dict[str, tuple[int, int]] = {}
            compressed = []
            for section in elf.iter_sections():
                if section.name.startswith(".debug_"):
                    if section["sh_flags"] & 0x800:  # SHF_COMPRESSED
                        compressed.append(section.name)
                    self.sections[section.name] = (section["sh_offset"], section["sh_size"])
            order: Literal["little", "big"] = "little" if elf.little_endian else "big"
            self.build_id = next(
                (
                    found
                    for section in elf.iter_sections(type="SHT_NOTE")
                    if (found := build_id_in_notes(section.data(), order)) is not None
                ),
                None,
            )
            self._stext = elf_symbol_value(elf, "_stext")
        except (ELFError, ELFParseError, struct.error) as error:
            raise FormatError(f"cannot read ELF: {error}", self.path) from None
        except (OSError, AssertionError, IndexError, KeyError, ValueError, ConstructError) as error:
            # pyelftools asserts and seeks where a damaged header says
            raise FormatError(f"damaged ELF ({type(error).__name__}: {error})", self.path) from None
        if ".debug_info" not in self.sections or ".debug_line" not in self.sections:
            raise TypeInfoError(
                "has no DWARF line information; use the vmlinux of the kernel's -dbg package",
                self.path,
            )
        if compressed:
            raise TypeInfoError(
                f"has compressed DWARF ({', '.join(compressed)}); decompress it with "
                "'objcopy --decompress-debug-sections'",
                self.path,
            )
        if self.elf_type == "ET_REL":
            raise TypeInfoError(
                "is a relocatable object: link it first (its DWARF addresses are not final)",
                self.path,
            )
        size = os.fstat(self._file.fileno()).st_size
        for name, (offset, length) in self.sections.items():
            if offset + length > size:
                raise FormatError(f"section {name} runs past the end of the file", self.path)
        self.data = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        e = "<" if self.little_endian else ">"
        self._u16 = struct.Struct(e + "H").unpack_from
        self._u32 = struct.Struct(e + "I").unpack_from
        self._u64 = struct.Struct(e + "Q").unpack_from
        self._uleb = partial(uleb128, self.data)  # (pos) -> (value, next pos)
        self._sleb = partial(sleb128, self.data)
        spans = {name: Span(offset, size) for name, (offset, size) in self.sections.items()}
        try:
            self.dwarf = DwarfReader(self.data, spans, self.little_endian)
        except Unsupported as why:
            self.data.close()
            raise TypeInfoError(f"has DWARF backchain does not read ({why})", self.path) from None
        self._units: dict[int, _Unit] = {}
        self._cache_file = None
        if cache_dir is not None and self.build_id:
            self._cache_file = cache_dir / f"{self.build_id}.g{_CACHE_GENERATION}.lines.json"
        self._cached_functions: dict[int, list[tuple[int, int, int]]] = {}
        self._results: dict[int, Location] = {}  # answers, kept in the cache too
        self._dirty = False
        try:
            self._ranges = self._load_cache() or self._read_aranges()
        except Unsupported as why:
            self.data.close()
            raise TypeInfoError(f"has DWARF backchain does not read ({why})", self.path) from None
        except _DAMAGE as error:
            raise FormatError(
                f"damaged DWARF address index: {type(error).__name__}", self.path
            ) from None

    # -- public ----------------------------------------------------------------------------------
    @property
    def stext(self) -> int | None:
        """Link-time address of ``_stext`` (to relocate KASLR addresses), if the ELF has it."""
        return self._stext

    def close(self) -> None:
        """Save what was learned to the cache and release the file."""
        self.save()
        with contextlib.suppress(Exception):
            self.data.close()
        self._file.close()

    def __enter__(self) -> DwarfLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lookup(self, address: int) -> Location:
        """What the DWARF says about the (link-time) ``address``.

        Raises:
            FormatError: the DWARF around the address is damaged.
        """
        known = self._results.get(address)
        if known is not None:
            return known
        try:
            found = self._results[address] = self._lookup(address)
        except Damaged as error:
            raise FormatError(
                f"damaged DWARF near address 0x{address:x}: {error}", self.path
            ) from None
        except _DAMAGE as error:
            raise FormatError(
                f"damaged DWARF near address 0x{address:x}: {type(error).__name__}", self.path
            ) from None
        except Unsupported as why:
            raise TypeInfoError(
                f"has DWARF backchain does not read near address 0x{address:x} ({why})",
                self.path,
            ) from None
        self._dirty = True
        return found

    def save(self) -> None:
        """Write the address index and the touched CUs' function ranges to the cache."""
        if self._cache_file is None or not self._dirty:
            return
        functions = dict(self._cached_functions)
        for offset, unit in self._units.items():
            if unit.functions is not None:
                functions[offset] = unit.functions
        doc = {
            "build_id": self.build_id,
            "ranges": self._ranges,
            "functions": {str(k): v for k, v in functions.items()},
            "lookups": {str(a): _location_json(loc) for a, loc in self._results.items()},
        }
        from parsers.cache import write_checked

        # a read-only cache only costs the next run the indexing
        if write_checked(self._cache_file, json.dumps(doc, separators=(",", ":")).encode()):
            self._dirty = False

    # -- cache -----------------------------------------------------------------------------------
    def _load_cache(self) -> list[tuple[int, int, int]] | None:
        if self._cache_file is None:
            return None
        try:
            from parsers.cache import read_checked

            doc = json.loads(read_checked(self._cache_file, _MAX_CACHE_BYTES) or b"{}")
            if doc.get("build_id") != self.build_id:
                return None
            ranges = [(int(a), int(b), int(c)) for a, b, c in doc["ranges"]]
            self._cached_functions = {
                int(k): [(int(a), int(b), int(c)) for a, b, c in v]
                for k, v in doc["functions"].items()
            }
            self._results = {
                int(a): _location_from_json(int(a), v) for a, v in doc["lookups"].items()
            }
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            AttributeError,
            RecursionError,
        ):
            self._cached_functions, self._results = {}, {}
            return None
        return ranges

    # -- address -> unit -------------------------------------------------------------------------
    def _read_aranges(self) -> list[tuple[int, int, int]]:
        """(start, end, unit offset) sorted by start, from .debug_aranges, else the units'
        own ranges."""
        self._dirty = True
        ranges: list[tuple[int, int, int]] = []
        if ".debug_aranges" in self.sections:
            base, size = self.sections[".debug_aranges"]
            pos, end = base, base + size
            while pos + 4 <= end:
                length, offset_size, pos = self._initial_length(pos)
                next_set = pos + length
                if length == 0 or next_set > end:
                    break
                unit = self._off(pos + 2, offset_size)
                address_size = self.data[pos + 2 + offset_size]
                if address_size not in (4, 8):
                    raise ValueError(f"address size {address_size}")
                header = 2 + offset_size + 2
                tuple_size = 2 * address_size
                entry = pos + header
                start_of_set = pos - (12 if offset_size == 8 else 4)
                rel = (entry - start_of_set) % tuple_size
                if rel:
                    entry += tuple_size - rel
                read = self._u64 if address_size == 8 else self._u32
                while entry + tuple_size <= next_set:
                    (start,) = read(self.data, entry)
                    (length_,) = read(self.data, entry + address_size)
                    entry += tuple_size
                    if start == 0 and length_ == 0:
                        break
                    if length_:
                        ranges.append((start, start + length_, unit))
                pos = next_set
        if not ranges:
            for unit_offset in self.dwarf.all_unit_offsets():
                cu = self._unit(unit_offset)
                top = self.dwarf.die(cu.unit, cu.unit.die_offset, _RANGE_ATTRS)
                if top is not None:
                    for low, high in self._die_ranges(cu, top):
                        ranges.append((low, high, unit_offset))
        ranges.sort()
        return ranges

    def _unit_for(self, address: int) -> int | None:
        ranges = self._ranges
        i = bisect.bisect_right(ranges, (address, 1 << 64, 1 << 64)) - 1
        for start, end, unit in ranges[max(0, i - 7) : i + 1][::-1]:  # overlaps are rare
            if start <= address < end:
                return unit
        return None

    # -- low-level reading (outside .debug_info: aranges, range lists, line programs) ----------
    def _initial_length(self, pos: int) -> tuple[int, int, int]:
        (length,) = self._u32(self.data, pos)
        if length == 0xFFFFFFFF:
            (length,) = self._u64(self.data, pos + 4)
            return length, 8, pos + 12
        return length, 4, pos + 4

    def _off(self, pos: int, size: int) -> int:
        return int(self._u64(self.data, pos)[0] if size == 8 else self._u32(self.data, pos)[0])

    def _uint(self, pos: int, size: int) -> int:
        return self.dwarf.uint(self.data, pos, size)

    def _cstr(self, pos: int, limit: int) -> tuple[str, int]:
        end = self.data.find(b"\0", pos, limit)
        if end < 0:
            raise ValueError("unterminated string")
        return self.data[pos:end].decode("utf-8", "replace"), end + 1

    # -- units and DIEs (parsers.dwarf.reader) ---------------------------------------------------
    def _unit(self, offset: int) -> _Unit:
        cu = self._units.get(offset)
        if cu is not None:
            return cu
        dwarf = self.dwarf
        unit = dwarf.unit(offset)
        cu = _Unit(unit)
        top = dwarf.die(unit, unit.die_offset, _TOP_ATTRS) if unit.die_offset < unit.end else None
        if top is not None and top.tag in (TAG_COMPILE_UNIT, TAG_PARTIAL_UNIT):
            cu.name = dwarf.text(unit, top.attrs.get(AT_NAME))
            cu.comp_dir = dwarf.text(unit, top.attrs.get(AT_COMP_DIR)) or ""
            if AT_STMT_LIST in top.attrs:
                cu.stmt_list = top.attrs[AT_STMT_LIST][1]
            if AT_LOW_PC in top.attrs:
                cu.low_pc = dwarf.address(unit, top.attrs[AT_LOW_PC])
        self._units[offset] = cu
        return cu

    def _die_ranges(self, unit: _Unit, die: Die) -> list[tuple[int, int]]:
        attrs = die.attrs
        if AT_LOW_PC in attrs and AT_HIGH_PC in attrs:
            low = self.dwarf.address(unit.unit, attrs[AT_LOW_PC])
            high_pc = attrs[AT_HIGH_PC]
            if high_pc[0] == FORM_ADDR or high_pc[0] in ADDRX_FORMS:
                high = self.dwarf.address(unit.unit, high_pc)
            else:
                high = low + int(high_pc[1])
            return [(low, high)] if high > low else []
        if AT_RANGES in attrs:
            return self._range_list(unit, attrs[AT_RANGES])
        return []

    def _range_list(self, cu: _Unit, value: tuple[int, Any, int]) -> list[tuple[int, int]]:
        form, raw = value[0], value[1]
        unit = cu.unit
        out: list[tuple[int, int]] = []
        size = unit.address_size
        top = (1 << (8 * size)) - 1
        if unit.version < 5:
            span = self.dwarf.span(".debug_ranges")
            if not 0 <= raw < span.size:
                raise Damaged("a range list past .debug_ranges")
            pos = span.base + raw
            base = cu.low_pc
            while True:
                if pos + 2 * size > span.end:
                    raise Damaged("a range list runs past .debug_ranges")
                start = self._uint(pos, size)
                end = self._uint(pos + size, size)
                pos += 2 * size
                if start == 0 and end == 0:
                    return out
                if start == top:
                    base = end
                    continue
                if end > start:
                    out.append((base + start, base + end))
        span = self.dwarf.span(".debug_rnglists")
        if form == FORM_RNGLISTX:  # an index into the offsets after rnglists_base
            at = unit.rnglists_base + raw * unit.offset_size
            offset = unit.rnglists_base + self.dwarf.offset_in(
                ".debug_rnglists", at, unit.offset_size
            )
        else:
            offset = raw
        if not 0 <= offset < span.size:
            raise Damaged("a range list past .debug_rnglists")
        pos = span.base + offset
        base = cu.low_pc
        while True:
            if pos >= span.end:
                raise Damaged("a range list runs past .debug_rnglists")
            kind = self.data[pos]
            pos += 1
            if kind == 0:  # end_of_list
                return out
            if kind == 1:  # base_addressx
                index, pos = self._uleb(pos)
                base = self.dwarf.address_at(unit, index)
            elif kind in (2, 3):  # startx_endx, startx_length
                first, pos = self._uleb(pos)
                second, pos = self._uleb(pos)
                start = self.dwarf.address_at(unit, first)
                end = self.dwarf.address_at(unit, second) if kind == 2 else start + second
                out.append((start, end))
            elif kind == 4:  # offset_pair
                first, pos = self._uleb(pos)
                second, pos = self._uleb(pos)
                out.append((base + first, base + second))
            elif kind == 5:  # base_address
                base = self._uint(pos, size)
                pos += size
            elif kind == 6:  # start_end
                out.append((self._uint(pos, size), self._uint(pos + size, size)))
                pos += 2 * size
            elif kind == 7:  # start_length
                start = self._uint(pos, size)
                length_, pos = self._uleb(pos + size)
                out.append((start, start + length_))
            else:
                raise Damaged(f"range list entry kind {kind}")

    # -- functions of a unit ---------------------------------------------------------------------
    def _functions(self, unit: _Unit) -> list[tuple[int, int, int]]:
        if unit.functions is not None:
            return unit.functions
        cached = self._cached_functions.get(unit.offset)
        if cached is not None:
            unit.functions = cached
            return cached
        functions = []
        for offset in self._top_subprograms(unit.unit):
            die = self.dwarf.die(unit.unit, offset, _RANGE_ATTRS)
            if die is None:
                continue
            for low, high in self._die_ranges(unit, die):
                functions.append((low, high, offset))
        functions.sort()
        unit.functions = functions
        self._dirty = True
        return functions

    def _top_subprograms(self, unit: Unit) -> Iterator[int]:
        """Offsets of the subprograms among the unit DIE's children.

        The hot loop of a cold lookup (a kernel unit has 10,000+ top-level DIEs, most of them
        types): each abbreviation gets a plan once (its DIEs' fixed size, or where its
        DW_AT_sibling lies), so most DIEs are stepped over without decoding them.
        """
        dwarf = self.dwarf
        plans = self._plans(unit)
        data, base = dwarf.info, dwarf.info_base
        top = dwarf.die(unit, unit.die_offset, _SIBLING_ONLY)
        if top is None or not top.has_children:
            return
        pos, end = base + top.next, base + unit.end
        while pos < end:
            start = pos
            code = data[pos]
            pos += 1
            if code >= 0x80:
                code &= 0x7F
                shift = 7
                while True:
                    byte = data[pos]
                    pos += 1
                    code |= (byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80:
                        break
                    if shift > 70:
                        raise Damaged("an abbreviation code longer than 10 bytes")
            if code == 0:
                return
            plan = plans.get(code)
            if plan is None:
                raise Damaged(f"abbreviation {code} is not in the unit's table")
            tag, children, size, sibling = plan
            if tag == TAG_SUBPROGRAM:
                yield start - base
            if sibling is not None:
                offset_pos, form = sibling
                if form is None:
                    die = dwarf.die(unit, start - base, _SIBLING_ONLY)
                    if die is None:
                        raise Damaged("a null entry where a DIE was planned")
                    pos = base + dwarf.after(die)
                    continue
                target = unit.offset + dwarf.uint(data, pos + offset_pos, REF_FORMS[form])
                if not pos - base <= target < unit.end:
                    raise Damaged("DW_AT_sibling points backwards or out of the unit")
                pos = base + target
                continue
            if size is not None and not children:
                pos += size
                continue
            die = dwarf.die(unit, start - base, _SIBLING_ONLY)
            if die is None:
                raise Damaged("a null entry where a DIE was planned")
            pos = base + dwarf.after(die)

    def _plans(self, unit: Unit) -> dict[int, tuple[int, bool, int | None, Any]]:
        """Per abbreviation: tag, has children, fixed size of the attributes (or None), and
        (offset of DW_AT_sibling after the code, its form) when that offset is fixed (the
        form None when it is not)."""
        plans = {}
        for code, (tag, children, specs) in self.dwarf.abbrevs(unit).items():
            size: int | None = 0
            sibling: Any = None
            for attr, form, _ in specs:
                width = form_size(form, unit)
                if attr == AT_SIBLING and form in _REF_SIZE:
                    sibling = (size, form) if size is not None else (0, None)
                if width is None or size is None:
                    size = None
                else:
                    size += width
            plans[code] = (tag, children, size, sibling)
        return plans

    def _name(self, die: Die, depth: int = 0) -> str | None:
        """A DIE's name, through its abstract origin or specification."""
        name = self.dwarf.name(die)
        if name is not None or depth > 4:
            return name
        for attr in (AT_ABSTRACT_ORIGIN, AT_SPECIFICATION):
            if attr in die.attrs:
                target = self.dwarf.target(die, attr, _NAME_ATTRS)
                return None if target is None else self._name(target, depth + 1)
        return None

    # -- lookup ----------------------------------------------------------------------------------
    def _lookup(self, address: int) -> Location:
        unit_offset = self._unit_for(address)
        if unit_offset is None:
            return Location(address, None, None, ())
        unit = self._unit(unit_offset)
        row = self._line(unit, address)
        chain: list[Die] = []  # outermost first: the subprogram, then inline functions
        functions = self._functions(unit)
        i = bisect.bisect_right(functions, (address, 1 << 64, 1 << 64)) - 1
        for low, high, offset in functions[max(0, i - 7) : i + 1][::-1]:
            if low <= address < high:
                die = self.dwarf.die(unit.unit, offset, _WALK_ATTRS)
                if die is not None:
                    chain.append(die)
                break
        if chain:
            self._descend(chain, address)
        if not chain:
            return Location(address, None, row, (), unit.name)
        names = [self._name(d) or "??" for d in chain]
        # Where in each function the address is: the innermost at the line row, each outer
        # one at the call site of the function inlined into it.
        places: list[SourceLine | None] = [row]
        for die in reversed(chain[1:]):
            places.append(self._call_site(unit, die))
        places.reverse()  # outermost first, like chain
        inlined = tuple(InlineFrame(names[k], places[k]) for k in range(len(chain) - 1, 0, -1))
        return Location(address, names[0], places[0], inlined, unit.name)

    def _descend(self, chain: list[Die], address: int) -> None:
        """Append the inlined subroutines containing ``address`` below ``chain[-1]``."""
        parent = chain[-1]
        unit = self._unit(parent.unit.offset)
        depth = 0
        while depth < 64:
            depth += 1
            for child in self.dwarf.children(parent, _WALK_ATTRS):
                if child.tag not in (TAG_INLINED_SUBROUTINE, TAG_LEXICAL_BLOCK):
                    continue
                if any(lo <= address < hi for lo, hi in self._die_ranges(unit, child)):
                    if child.tag == TAG_INLINED_SUBROUTINE:
                        chain.append(child)
                    parent = child
                    break
            else:
                return

    def _call_site(self, unit: _Unit, die: Die) -> SourceLine | None:
        table = self._line_table(unit)
        if table is None or AT_CALL_FILE not in die.attrs:
            return None
        index = int(die.attrs[AT_CALL_FILE][1])
        line = int(die.attrs.get(AT_CALL_LINE, (0, 0, 0))[1])
        path = self._file_path(unit, table, index)
        return None if path is None else SourceLine(path, line)

    # -- line programs -------------------------------------------------------------------------
    def _line(self, unit: _Unit, address: int) -> SourceLine | None:
        table = self._line_table(unit)
        if table is None:
            return None
        i = bisect.bisect_right(table.starts, address) - 1
        if i < 0:
            return None
        _addr, file, line, end = table.rows[i]
        if end or line == 0:
            return None
        path = self._file_path(unit, table, file)
        return None if path is None else SourceLine(path, line)

    def _file_path(self, unit: _Unit, table: _LineTable, index: int) -> str | None:
        if not 0 <= index < len(table.files) or not table.files[index][0]:
            return None
        name, directory = table.files[index]
        return self._join(unit, table.directories, name, directory)

    def _line_table(self, unit: _Unit) -> _LineTable | None:
        if unit.lines is not None:
            return unit.lines
        if unit.stmt_list is None:
            return None
        unit.lines = self._run_line_program(unit, unit.stmt_list)
        return unit.lines

    def _run_line_program(self, unit: _Unit, offset: int) -> _LineTable:
        base, size = self.sections[".debug_line"]
        if not 0 <= offset <= size - 4:
            raise Damaged("a line program past .debug_line")
        pos = base + offset
        length, offset_size, body = self._initial_length(pos)
        end = body + length
        if end > base + size:
            raise Damaged("a line program runs past .debug_line")
        version = self._u16(self.data, body)[0]
        pos = body + 2
        address_size = unit.address_size
        if version >= 5:
            address_size = self.data[pos]
            pos += 2
        header_length = self._off(pos, offset_size)
        pos += offset_size
        program = pos + header_length
        if program > end:
            raise Damaged("a line program header runs past its program")
        min_inst = self.data[pos]
        pos += 1
        if version >= 4:
            pos += 1  # maximum_operations_per_instruction (VLIW only)
        default_is_stmt = self.data[pos]
        line_base = struct.unpack_from("b", self.data, pos + 1)[0]
        line_range = self.data[pos + 2]
        opcode_base = self.data[pos + 3]
        pos += 4
        lengths = list(self.data[pos : pos + opcode_base - 1])
        pos += opcode_base - 1
        del default_is_stmt
        if version >= 5:
            dirs, pos = self._entries(unit, pos, offset_size, program)
            files_raw, pos = self._entries(unit, pos, offset_size, program)
            directories = [d[0] for d in dirs]
            files = files_raw
        else:
            directories = [unit.comp_dir]
            while pos < program and self.data[pos]:
                text, pos = self._cstr(pos, program)
                directories.append(text)
            pos += 1
            files = [("", 0)]  # file numbers start at 1
            while pos < program and self.data[pos]:
                name, pos = self._cstr(pos, program)
                index, pos = self._uleb(pos)
                _, pos = self._uleb(pos)
                _, pos = self._uleb(pos)
                files.append((name, index))
        table = _LineTable(directories, files)
        sequences: list[list[tuple[int, int, int, int]]] = []
        rows: list[tuple[int, int, int, int]] = []
        prog = bytes(self.data[program:end])  # indexing bytes is faster than the mapping
        # Special opcodes, precomputed: how far each moves the address and the line.
        step_addr = [0] * 256
        step_line = [0] * 256
        for op in range(opcode_base, 256):
            step_addr[op] = ((op - opcode_base) // line_range) * min_inst
            step_line[op] = line_base + (op - opcode_base) % line_range
        const_add = step_addr[255]
        order: Literal["little", "big"] = "little" if self.little_endian else "big"
        pos, size = 0, len(prog)
        address, file, line = 0, 1, 1
        append = rows.append
        while pos < size:
            op = prog[pos]
            pos += 1
            if op >= opcode_base:
                address += step_addr[op]
                line += step_line[op]
                append((address, file, line, 0))
                continue
            if op == 5 or op == 4 or op == 2 or op == 3:  # operand: one LEB128
                # parsers.dwarf.leb128 inlined: this loop runs for every row of every line
                # program (a call per number costs ~30% here); the program's end bounds it.
                value = shift = 0
                while True:
                    byte = prog[pos]
                    pos += 1
                    value |= (byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80:
                        break
                if op == 3:  # advance_line (signed)
                    if byte & 0x40:
                        value -= 1 << shift
                    line += value
                elif op == 4:  # set_file
                    file = value
                elif op == 2:  # advance_pc
                    address += value * min_inst
                continue  # 5: set_column
            if op == 0:
                value = shift = 0
                while True:
                    byte = prog[pos]
                    pos += 1
                    value |= (byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80:
                        break
                sub = prog[pos]
                if sub == 1:  # end_sequence
                    append((address, file, line, 1))
                    sequences.append(rows)
                    rows = []
                    append = rows.append
                    address, file, line = 0, 1, 1
                elif sub == 2:  # set_address
                    address = int.from_bytes(prog[pos + 1 : pos + 1 + address_size], order)
                pos += value
            elif op == 1:  # copy
                append((address, file, line, 0))
            elif op == 8:  # const_add_pc
                address += const_add
            elif op == 9:  # fixed_advance_pc
                address += int.from_bytes(prog[pos : pos + 2], order)
                pos += 2
            else:  # negate_stmt, set_prologue_end, ...: skip their operands
                for _ in range(lengths[op - 1]):
                    while prog[pos] & 0x80:
                        pos += 1
                    pos += 1
        # Sequences sorted by start; empty ones (start == end) and those at address 0 (code
        # the linker dropped) left out.
        sequences = [s for s in sequences if len(s) > 1 and s[0][0] < s[-1][0] and s[0][0]]
        sequences.sort(key=lambda s: s[0][0])
        for seq in sequences:
            if table.rows and table.rows[-1][0] > seq[0][0]:
                continue  # overlaps the previous sequence: keep the first
            table.rows.extend(seq)
        table.starts = [r[0] for r in table.rows]
        return table

    def _entries(
        self, cu: _Unit, pos: int, offset_size: int, limit: int
    ) -> tuple[list[tuple[str, int]], int]:
        """DWARF 5 directory or file entries (before ``limit``): (path, directory index)."""
        if pos >= limit:
            raise Damaged("line program entries run past their header")
        count = self.data[pos]
        pos += 1
        formats = []
        for _ in range(count):
            kind, pos = self._uleb(pos)
            form, pos = self._uleb(pos)
            formats.append((kind, form))
        n, pos = self._uleb(pos)
        if n > limit - pos:  # each entry has a path, at least a byte
            raise Damaged("more line program entries than their header holds")
        out = []
        unit = replace(cu.unit, offset_size=offset_size)
        for _ in range(n):
            path, index = "", 0
            for kind, form in formats:
                value, pos = self._form_value(unit, pos, form, limit)
                if kind == 1:
                    path = self.dwarf.text(unit, (form, value, 0)) or ""
                elif kind == 2:
                    index = int(value)
            out.append((path, index))
        return out, pos

    def _form_value(self, unit: Unit, pos: int, form: int, limit: int) -> tuple[Any, int]:
        """One attribute value of ``form`` at ``pos`` (for line program headers)."""
        if pos >= limit:
            raise Damaged("line program entries run past their header")
        if form == FORM_STRING:
            end = self.data.find(b"\0", pos, limit)
            if end < 0:
                raise Damaged("an unterminated string in a line program header")
            return bytes(self.data[pos:end]), end + 1
        if form in OFFSET_FORMS:
            return self._off(pos, unit.offset_size), pos + unit.offset_size
        if form in ULEB_FORMS:
            return self._uleb(pos)
        size = FIXED_FORMS.get(form)
        if size is not None:
            return (self._uint(pos, size) if size <= 8 else None), pos + size
        if form in (0x09, 0x18):
            length, pos = self._uleb(pos)
            return None, pos + length
        raise Damaged(f"line header form 0x{form:x}")

    def _join(self, unit: _Unit, directories: list[str], name: str, index: int) -> str:
        """A file's path relative to the build directory (the unit's comp_dir)."""
        directory = directories[index] if 0 <= index < len(directories) else ""
        path = name if posixpath.isabs(name) else posixpath.join(directory, name)
        comp_dir = unit.comp_dir
        if not posixpath.isabs(path) and comp_dir and posixpath.isabs(comp_dir):
            path = posixpath.join(comp_dir, path)
        path = posixpath.normpath(path) if path else path
        if comp_dir:
            root = posixpath.normpath(comp_dir)
            if path.startswith(root + "/"):
                return path[len(root) + 1 :]
        return path


#: Sizes of the CU-relative reference forms DW_AT_sibling uses (ref1/2/4/8).
_REF_SIZE = {0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8}


#: What damaged DWARF raises while being read (turned into FormatError).
_DAMAGE = (
    Damaged,
    IndexError,
    KeyError,
    struct.error,
    ValueError,
    RecursionError,
    ZeroDivisionError,
)
_SIBLING_ONLY = frozenset({AT_SIBLING})
_TOP_ATTRS = frozenset({AT_NAME, AT_COMP_DIR, AT_STMT_LIST, AT_LOW_PC})
_RANGE_ATTRS = frozenset({AT_LOW_PC, AT_HIGH_PC, AT_RANGES})
_NAME_ATTRS = frozenset({AT_NAME, AT_ABSTRACT_ORIGIN, AT_SPECIFICATION})
_WALK_ATTRS = _RANGE_ATTRS | _NAME_ATTRS | {AT_CALL_FILE, AT_CALL_LINE}


def _source_json(source: SourceLine | None) -> list[Any] | None:
    return None if source is None else [source.path, source.line]


def _source_from_json(value: Any) -> SourceLine | None:
    return None if value is None else SourceLine(str(value[0]), int(value[1]))


def _location_json(loc: Location) -> list[Any]:
    inlined = [[f.function, _source_json(f.source)] for f in loc.inlined]
    return [loc.function, _source_json(loc.source), inlined, loc.unit]


def _location_from_json(address: int, value: list[Any]) -> Location:
    function, source, inlined, unit = value
    return Location(
        address,
        None if function is None else str(function),
        _source_from_json(source),
        tuple(InlineFrame(str(f), _source_from_json(s)) for f, s in inlined),
        None if unit is None else str(unit),
    )


_SHF_COMPRESSED = 0x800


def elf_symbol_value(elf: ELFFile, name: str) -> int | None:
    """The value of the first symbol called ``name`` (one pass, no symbol objects)."""
    section = elf.get_section_by_name(".symtab")
    if not isinstance(section, SymbolTableSection) or elf.elfclass != 64:
        return None
    linked = elf.get_section(section["sh_link"])
    if (section["sh_flags"] | linked["sh_flags"]) & _SHF_COMPRESSED:
        return None  # pyelftools would allocate the size the header claims: not for a symbol
    strings = linked.data()
    wanted = set()
    needle = name.encode() + b"\0"
    hit = strings.find(b"\0" + needle)
    while hit >= 0:
        wanted.add(hit + 1)
        hit = strings.find(b"\0" + needle, hit + 1)
    if not wanted:
        return None
    entry = struct.Struct(("<" if elf.little_endian else ">") + "IBBHQQ")
    data = section.data()
    for st_name, _info, _other, _shndx, value, _size in entry.iter_unpack(
        data[: len(data) // entry.size * entry.size]
    ):
        if st_name in wanted:
            return int(value)
    return None


def default_cache_dir() -> Path:
    """The ``debuginfo`` folder of the cache (:func:`parsers.cache.cache_dir`)."""
    from parsers.cache import cache_dir

    return cache_dir("debuginfo")


def open_dwarf_lines(
    path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
) -> DwarfLines:
    """Open the DWARF of ``path`` for line lookups (cheap: maps the file, reads the index).

    Args:
        path: a linked ELF file with DWARF (a -dbg vmlinux).
        cache_dir: where to keep the index by build-id; default :func:`default_cache_dir`.

    Raises:
        DumpError: the file cannot be read. FormatError: not ELF or damaged.
        TypeInfoError: no DWARF line information.
    """
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return DwarfLines(os.fspath(path), directory)


__all__ = [
    "DwarfLines",
    "InlineFrame",
    "Location",
    "SourceLine",
    "elf_symbol_value",
    "open_dwarf_lines",
]
