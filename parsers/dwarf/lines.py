"""Source lines and inline chains from the DWARF of a vmlinux (or any ELF with debug info).

A vmlinux's ``.debug_info`` is 100+ MB: this module never decodes all of it. The file is
memory-mapped; ``.debug_aranges`` maps an address to its compile unit (CU); in that CU only
the top-level DIEs are stepped over (``DW_AT_sibling`` jumps over their children) to find the
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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.construct import ConstructError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from parsers.dwarf.leb128 import sleb128, uleb128
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
AT_STR_OFFSETS_BASE = 0x72
AT_ADDR_BASE = 0x73
AT_RNGLISTS_BASE = 0x74

#: Forms whose size is fixed (None: depends on the unit's address or offset size).
_FIXED = {
    0x0B: 1, 0x11: 1, 0x0C: 1, 0x25: 1, 0x29: 1,  # data1 ref1 flag strx1 addrx1
    0x05: 2, 0x12: 2, 0x26: 2, 0x2A: 2,  # data2 ref2 strx2 addrx2
    0x27: 3, 0x2B: 3,  # strx3 addrx3
    0x06: 4, 0x13: 4, 0x1C: 4, 0x28: 4, 0x2C: 4,  # data4 ref4 ref_sup4 strx4 addrx4
    0x07: 8, 0x14: 8, 0x20: 8, 0x24: 8,  # data8 ref8 ref_sig8 ref_sup8
    0x1E: 16, 0x19: 0, 0x21: 0,  # data16 flag_present implicit_const
}  # fmt: skip
_OFFSET_FORMS = {0x0E, 0x17, 0x1D, 0x1F, 0x1F20, 0x1F21}  # strp sec_offset strp_sup line_strp alt
_ULEB_FORMS = {0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02}
_REF_FORMS = {0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8, 0x15: 0}  # CU-relative references

_CACHE_GENERATION = 2


#: An abbreviation: tag, has children, (attribute, form, implicit constant) each.
_Abbrev = tuple[int, bool, tuple[tuple[int, int, int], ...]]


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
    offset: int  # of the unit header in .debug_info
    end: int
    version: int
    offset_size: int
    address_size: int
    abbrevs: dict[int, _Abbrev]
    die_offset: int  # of the unit DIE
    name: str | None = None
    comp_dir: str = ""
    stmt_list: int | None = None
    low_pc: int = 0
    str_offsets_base: int = 8
    addr_base: int = 8
    rnglists_base: int = 0
    functions: list[tuple[int, int, int]] | None = None  # (low, high, die offset), sorted
    lines: _LineTable | None = None


@dataclass(slots=True)
class _LineTable:
    directories: list[str]
    files: list[tuple[str, int]]  # (name, directory index); joined when first used
    starts: list[int] = field(default_factory=list)  # row address, sequences sorted
    rows: list[tuple[int, int, int, int]] = field(default_factory=list)  # addr file line seq_end


@dataclass(slots=True)
class _Die:
    offset: int
    tag: int
    children: bool
    attrs: dict[int, tuple[int, Any]]
    next: int  # offset after this DIE (its first child if it has children)


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
        self._uleb = partial(uleb128, self.data)  # (pos) -> (value, next pos), in C
        self._sleb = partial(sleb128, self.data)
        self._units: dict[int, _Unit] = {}
        self._cache_file = None
        if cache_dir is not None and self.build_id:
            self._cache_file = cache_dir / f"{self.build_id}.g{_CACHE_GENERATION}.lines.json"
        self._cached_functions: dict[int, list[tuple[int, int, int]]] = {}
        self._results: dict[int, Location] = {}  # answers, kept in the cache too
        self._dirty = False
        try:
            self._ranges = self._load_cache() or self._read_aranges()
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
        except _DAMAGE as error:
            raise FormatError(
                f"damaged DWARF near address 0x{address:x}: {type(error).__name__}", self.path
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
            for unit_offset in self._unit_offsets():
                cu = self._unit(unit_offset)
                top = self._die(cu, cu.die_offset)
                for low, high in self._die_ranges(cu, top):
                    ranges.append((low, high, unit_offset))
        ranges.sort()
        return ranges

    def _unit_offsets(self) -> Iterator[int]:
        base, size = self.sections[".debug_info"]
        pos = base
        while pos + 4 <= base + size:
            length, _, body = self._initial_length(pos)
            yield pos - base
            pos = body + length

    def _unit_for(self, address: int) -> int | None:
        ranges = self._ranges
        i = bisect.bisect_right(ranges, (address, 1 << 64, 1 << 64)) - 1
        for start, end, unit in ranges[max(0, i - 7) : i + 1][::-1]:  # overlaps are rare
            if start <= address < end:
                return unit
        return None

    # -- low-level reading -------------------------------------------------------------------------
    def _initial_length(self, pos: int) -> tuple[int, int, int]:
        (length,) = self._u32(self.data, pos)
        if length == 0xFFFFFFFF:
            (length,) = self._u64(self.data, pos + 4)
            return length, 8, pos + 12
        return length, 4, pos + 4

    def _off(self, pos: int, size: int) -> int:
        return int(self._u64(self.data, pos)[0] if size == 8 else self._u32(self.data, pos)[0])

    def _uint(self, pos: int, size: int) -> int:
        if size == 8:
            return int(self._u64(self.data, pos)[0])
        if size == 4:
            return int(self._u32(self.data, pos)[0])
        if size == 2:
            return int(self._u16(self.data, pos)[0])
        if size == 1:
            return self.data[pos]
        order: Literal["little", "big"] = "little" if self.little_endian else "big"
        return int.from_bytes(self.data[pos : pos + size], order)

    def _cstr(self, pos: int) -> tuple[str, int]:
        end = self.data.find(b"\0", pos)
        if end < 0:
            raise ValueError("unterminated string")
        return self.data[pos:end].decode("utf-8", "replace"), end + 1

    def _section_str(self, section: str, offset: int) -> str:
        base, size = self.sections[section]
        if offset >= size:
            raise ValueError(f"string offset past {section}")
        return self._cstr(base + offset)[0]

    # -- units and DIEs ----------------------------------------------------------------------------
    def _unit(self, offset: int) -> _Unit:
        unit = self._units.get(offset)
        if unit is not None:
            return unit
        base, size = self.sections[".debug_info"]
        pos = base + offset
        length, offset_size, body = self._initial_length(pos)
        end = body + length
        if end > base + size:
            raise ValueError("unit runs past .debug_info")
        version = self._u16(self.data, body)[0]
        if version >= 5:
            unit_type = self.data[body + 2]
            address_size = self.data[body + 3]
            abbrev_offset = self._off(body + 4, offset_size)
            die = body + 4 + offset_size
            if unit_type in (2, 6):  # type units: signature + type offset
                die += 8 + offset_size
            elif unit_type in (4, 5):  # skeleton / split: dwo id
                die += 8
        elif version >= 2:
            abbrev_offset = self._off(body + 2, offset_size)
            address_size = self.data[body + 2 + offset_size]
            die = body + 3 + offset_size
        else:
            raise ValueError(f"DWARF version {version}")
        if address_size not in (4, 8):
            raise ValueError(f"address size {address_size}")
        unit = _Unit(
            offset=offset,
            end=end,
            version=version,
            offset_size=offset_size,
            address_size=address_size,
            abbrevs=self._abbrevs(abbrev_offset),
            die_offset=die,
        )
        top = self._die(unit, die)
        if top.tag in (TAG_COMPILE_UNIT, TAG_PARTIAL_UNIT):
            for attr, target in (
                (AT_STR_OFFSETS_BASE, "str_offsets_base"),
                (AT_ADDR_BASE, "addr_base"),
                (AT_RNGLISTS_BASE, "rnglists_base"),
            ):
                if attr in top.attrs:
                    setattr(unit, target, top.attrs[attr][1])
            unit.name = self._string(unit, top.attrs.get(AT_NAME))
            unit.comp_dir = self._string(unit, top.attrs.get(AT_COMP_DIR)) or ""
            if AT_STMT_LIST in top.attrs:
                unit.stmt_list = top.attrs[AT_STMT_LIST][1]
            if AT_LOW_PC in top.attrs:
                unit.low_pc = self._address(unit, top.attrs[AT_LOW_PC])
        self._units[offset] = unit
        return unit

    def _abbrevs(self, offset: int) -> dict[int, _Abbrev]:
        base, _size = self.sections[".debug_abbrev"]
        pos = base + offset
        table: dict[int, _Abbrev] = {}
        while True:
            code, pos = self._uleb(pos)
            if code == 0:
                return table
            tag, pos = self._uleb(pos)
            children = self.data[pos] != 0
            pos += 1
            specs = []
            while True:
                attr, pos = self._uleb(pos)
                form, pos = self._uleb(pos)
                implicit = 0
                if form == 0x21:
                    implicit, pos = self._sleb(pos)
                if attr == 0 and form == 0:
                    break
                specs.append((attr, form, implicit))
            table[code] = (tag, children, tuple(specs))

    def _die(self, unit: _Unit, pos: int, wanted: frozenset[int] | None = None) -> _Die:
        """Read the DIE at absolute ``pos``; with ``wanted``, keep only those attributes."""
        start = pos
        code, pos = self._uleb(pos)
        if code == 0:
            return _Die(start, 0, False, {}, pos)
        tag, children, specs = unit.abbrevs[code]
        attrs: dict[int, tuple[int, Any]] = {}
        for attr, form, implicit in specs:
            while form == 0x16:  # indirect
                form, pos = self._uleb(pos)
            keep = wanted is None or attr in wanted
            size = _FIXED.get(form)
            if size is not None:
                if keep:
                    if form == 0x21:
                        value: Any = implicit
                    elif form == 0x19:
                        value = True
                    elif size <= 8:
                        value = self._uint(pos, size)
                    else:
                        value = None
                    attrs[attr] = (form, value)
                pos += size
            elif form in _OFFSET_FORMS:
                if keep:
                    attrs[attr] = (form, self._off(pos, unit.offset_size))
                pos += unit.offset_size
            elif form in _ULEB_FORMS:
                value, pos = self._uleb(pos)
                if keep:
                    attrs[attr] = (form, value)
            elif form == 0x01:  # addr
                if keep:
                    attrs[attr] = (form, self._uint(pos, unit.address_size))
                pos += unit.address_size
            elif form == 0x10:  # ref_addr
                size = unit.address_size if unit.version <= 2 else unit.offset_size
                if keep:
                    attrs[attr] = (form, self._uint(pos, size))
                pos += size
            elif form == 0x08:  # string
                text, pos = self._cstr(pos)
                if keep:
                    attrs[attr] = (form, text)
            elif form == 0x0D:  # sdata
                value, pos = self._sleb(pos)
                if keep:
                    attrs[attr] = (form, value)
            elif form in (0x09, 0x18):  # block, exprloc
                length, pos = self._uleb(pos)
                pos += length
            elif form in (0x0A, 0x03, 0x04):  # block1/2/4
                size = {0x0A: 1, 0x03: 2, 0x04: 4}[form]
                pos += size + self._uint(pos, size)
            else:
                raise ValueError(f"DWARF form 0x{form:x}")
        return _Die(start, tag, children, attrs, pos)

    def _skip_children(self, unit: _Unit, pos: int) -> int:
        """Return the offset after the children starting at ``pos`` (and their 0 end)."""
        depth = 1
        while depth:
            if pos >= unit.end:
                raise ValueError("children run past the unit")
            die = self._die(unit, pos, _SIBLING_ONLY)
            if die.tag == 0:
                depth -= 1
                pos = die.next
            elif die.children and AT_SIBLING in die.attrs:
                pos = self._sibling(unit, die)
            else:
                pos = die.next
                if die.children:
                    depth += 1
        return pos

    def _children(self, unit: _Unit, parent: _Die, wanted: frozenset[int]) -> Iterator[_Die]:
        if not parent.children:
            return
        pos = parent.next
        while pos < unit.end:
            die = self._die(unit, pos, wanted | _SIBLING_ONLY)
            if die.tag == 0:
                return
            yield die
            if not die.children:
                pos = die.next
            elif AT_SIBLING in die.attrs:
                pos = self._sibling(unit, die)
            else:
                pos = self._skip_children(unit, die.next)

    def _sibling(self, unit: _Unit, die: _Die) -> int:
        """Where ``die``'s next sibling starts (always forward, or the DWARF is damaged)."""
        pos = self._ref(unit, die.attrs[AT_SIBLING])
        if not die.next <= pos < unit.end:
            raise ValueError("DW_AT_sibling points backwards or out of the unit")
        return pos

    def _ref(self, unit: _Unit, value: tuple[int, Any]) -> int:
        """Absolute position of a reference attribute's DIE."""
        form, offset = value
        base = self.sections[".debug_info"][0]
        if form in _REF_FORMS:
            return base + unit.offset + int(offset)
        if form == 0x10:
            return base + int(offset)
        raise ValueError(f"reference form 0x{form:x}")

    def _unit_of_ref(self, unit: _Unit, value: tuple[int, Any]) -> _Unit:
        if value[0] != 0x10:
            return unit
        base = self.sections[".debug_info"][0]
        target = int(value[1])
        if unit.offset <= target < unit.end - base:
            return unit
        starts = sorted(self._ranges_units())
        i = bisect.bisect_right(starts, target) - 1
        return self._unit(starts[i])

    def _ranges_units(self) -> list[int]:
        if not hasattr(self, "_all_units"):
            self._all_units = list(self._unit_offsets())
        return self._all_units

    def _string(self, unit: _Unit, value: tuple[int, Any] | None) -> str | None:
        if value is None:
            return None
        form, raw = value
        if form == 0x08:
            return str(raw)
        if form == 0x0E:
            return self._section_str(".debug_str", raw)
        if form == 0x1F:
            return self._section_str(".debug_line_str", raw)
        if form in (0x1A, 0x25, 0x26, 0x27, 0x28, 0x1F02):
            base, _ = self.sections[".debug_str_offsets"]
            pos = base + unit.str_offsets_base + raw * unit.offset_size
            return self._section_str(".debug_str", self._off(pos, unit.offset_size))
        return None

    def _address(self, unit: _Unit, value: tuple[int, Any]) -> int:
        form, raw = value
        if form in (0x1B, 0x29, 0x2A, 0x2B, 0x2C, 0x1F01):
            base, _ = self.sections[".debug_addr"]
            return self._uint(base + unit.addr_base + raw * unit.address_size, unit.address_size)
        return int(raw)

    def _die_ranges(self, unit: _Unit, die: _Die) -> list[tuple[int, int]]:
        attrs = die.attrs
        if AT_LOW_PC in attrs and AT_HIGH_PC in attrs:
            low = self._address(unit, attrs[AT_LOW_PC])
            form, high = attrs[AT_HIGH_PC]
            if form in (0x01, 0x1B, 0x29, 0x2A, 0x2B, 0x2C, 0x1F01):
                high = self._address(unit, attrs[AT_HIGH_PC])
            else:
                high = low + int(high)
            return [(low, high)] if high > low else []
        if AT_RANGES in attrs:
            return self._range_list(unit, attrs[AT_RANGES])
        return []

    def _range_list(self, unit: _Unit, value: tuple[int, Any]) -> list[tuple[int, int]]:
        form, raw = value
        out: list[tuple[int, int]] = []
        size = unit.address_size
        top = (1 << (8 * size)) - 1
        if unit.version < 5:
            base_pos, _length = self.sections[".debug_ranges"]
            pos = base_pos + raw
            base = unit.low_pc
            while True:
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
        sec, _ = self.sections[".debug_rnglists"]
        if form == 0x23:  # rnglistx: an index into the offsets after rnglists_base
            pos = sec + unit.rnglists_base + raw * unit.offset_size
            pos = sec + unit.rnglists_base + self._off(pos, unit.offset_size)
        else:
            pos = sec + raw
        base = unit.low_pc
        while True:
            kind = self.data[pos]
            pos += 1
            if kind == 0:  # end_of_list
                return out
            if kind == 1:  # base_addressx
                index, pos = self._uleb(pos)
                base = self._address(unit, (0x1B, index))
            elif kind in (2, 3):  # startx_endx, startx_length
                first, pos = self._uleb(pos)
                second, pos = self._uleb(pos)
                start = self._address(unit, (0x1B, first))
                end = self._address(unit, (0x1B, second)) if kind == 2 else start + second
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
                raise ValueError(f"range list entry kind {kind}")

    # -- functions of a unit ---------------------------------------------------------------------
    def _functions(self, unit: _Unit) -> list[tuple[int, int, int]]:
        if unit.functions is not None:
            return unit.functions
        cached = self._cached_functions.get(unit.offset)
        if cached is not None:
            unit.functions = cached
            return cached
        functions = []
        for offset in self._top_subprograms(unit):
            die = self._die(unit, offset, _RANGE_ATTRS)
            for low, high in self._die_ranges(unit, die):
                functions.append((low, high, offset))
        functions.sort()
        unit.functions = functions
        self._dirty = True
        return functions

    def _top_subprograms(self, unit: _Unit) -> Iterator[int]:
        """Offsets of the subprograms among the unit DIE's children.

        The hot loop of a cold lookup (a kernel unit has 10,000+ top-level DIEs, most of them
        types): each abbreviation gets a plan once (its DIEs' fixed size, or where its
        DW_AT_sibling lies), so most DIEs are stepped over without decoding them.
        """
        plans = self._plans(unit)
        data = self.data
        top = self._die(unit, unit.die_offset)
        if not top.children:
            return
        pos, end = top.next, unit.end
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
            if code == 0:
                return
            tag, children, size, sibling = plans[code]
            if tag == TAG_SUBPROGRAM:
                yield start
            if sibling is not None:
                offset_pos, form = sibling
                die = self._die(unit, start, _SIBLING_ONLY) if form is None else None
                if die is not None:
                    pos = self._sibling(unit, die) if AT_SIBLING in die.attrs else die.next
                else:
                    target = self._ref(unit, (form, self._uint(pos + offset_pos, _REF_SIZE[form])))
                    if not pos <= target < end:
                        raise ValueError("DW_AT_sibling points backwards or out of the unit")
                    pos = target
                continue
            if size is not None and not children:
                pos += size
                continue
            die = self._die(unit, start, _SIBLING_ONLY)
            if not die.children:
                pos = die.next
            elif AT_SIBLING in die.attrs:
                pos = self._sibling(unit, die)
            else:
                pos = self._skip_children(unit, die.next)

    def _plans(self, unit: _Unit) -> dict[int, tuple[int, bool, int | None, Any]]:
        """Per abbreviation: tag, has children, fixed size of the attributes (or None), and
        (offset of DW_AT_sibling after the code, its form) when that offset is fixed (the
        form None when it is not)."""
        plans = {}
        for code, (tag, children, specs) in unit.abbrevs.items():
            size: int | None = 0
            sibling: Any = None
            for attr, form, _ in specs:
                width = _form_size(form, unit)
                if attr == AT_SIBLING and form in _REF_SIZE:
                    sibling = (size, form) if size is not None else (0, None)
                if width is None or size is None:
                    size = None
                else:
                    size += width
            plans[code] = (tag, children, size, sibling)
        return plans

    def _name(self, unit: _Unit, die: _Die, depth: int = 0) -> str | None:
        """A DIE's name, through its abstract origin or specification."""
        name = self._string(unit, die.attrs.get(AT_NAME))
        if name is not None or depth > 4:
            return name
        for attr in (AT_ABSTRACT_ORIGIN, AT_SPECIFICATION):
            if attr in die.attrs:
                target_unit = self._unit_of_ref(unit, die.attrs[attr])
                target = self._die(target_unit, self._ref(unit, die.attrs[attr]), _NAME_ATTRS)
                return self._name(target_unit, target, depth + 1)
        return None

    # -- lookup ----------------------------------------------------------------------------------
    def _lookup(self, address: int) -> Location:
        unit_offset = self._unit_for(address)
        if unit_offset is None:
            return Location(address, None, None, ())
        unit = self._unit(unit_offset)
        row = self._line(unit, address)
        chain: list[_Die] = []  # outermost first: the subprogram, then inline functions
        functions = self._functions(unit)
        i = bisect.bisect_right(functions, (address, 1 << 64, 1 << 64)) - 1
        for low, high, offset in functions[max(0, i - 7) : i + 1][::-1]:
            if low <= address < high:
                chain.append(self._die(unit, offset, _WALK_ATTRS))
                break
        if chain:
            self._descend(unit, chain, address)
        if not chain:
            return Location(address, None, row, (), unit.name)
        names = [self._name(unit, d) or "??" for d in chain]
        # Where in each function the address is: the innermost at the line row, each outer
        # one at the call site of the function inlined into it.
        places: list[SourceLine | None] = [row]
        for die in reversed(chain[1:]):
            places.append(self._call_site(unit, die))
        places.reverse()  # outermost first, like chain
        inlined = tuple(InlineFrame(names[k], places[k]) for k in range(len(chain) - 1, 0, -1))
        return Location(address, names[0], places[0], inlined, unit.name)

    def _descend(self, unit: _Unit, chain: list[_Die], address: int) -> None:
        """Append the inlined subroutines containing ``address`` below ``chain[-1]``."""
        parent = chain[-1]
        depth = 0
        while depth < 64:
            depth += 1
            for child in self._children(unit, parent, _WALK_ATTRS):
                if child.tag not in (TAG_INLINED_SUBROUTINE, TAG_LEXICAL_BLOCK):
                    continue
                if any(lo <= address < hi for lo, hi in self._die_ranges(unit, child)):
                    if child.tag == TAG_INLINED_SUBROUTINE:
                        chain.append(child)
                    parent = child
                    break
            else:
                return

    def _call_site(self, unit: _Unit, die: _Die) -> SourceLine | None:
        table = self._line_table(unit)
        if table is None or AT_CALL_FILE not in die.attrs:
            return None
        index = int(die.attrs[AT_CALL_FILE][1])
        line = int(die.attrs.get(AT_CALL_LINE, (0, 0))[1])
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
        pos = base + offset
        length, offset_size, body = self._initial_length(pos)
        end = body + length
        if end > base + size:
            raise ValueError("line program runs past .debug_line")
        version = self._u16(self.data, body)[0]
        pos = body + 2
        address_size = unit.address_size
        if version >= 5:
            address_size = self.data[pos]
            pos += 2
        header_length = self._off(pos, offset_size)
        pos += offset_size
        program = pos + header_length
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
            dirs, pos = self._entries(unit, pos, offset_size)
            files_raw, pos = self._entries(unit, pos, offset_size)
            directories = [d[0] for d in dirs]
            files = files_raw
        else:
            directories = [unit.comp_dir]
            while self.data[pos]:
                text, pos = self._cstr(pos)
                directories.append(text)
            pos += 1
            files = [("", 0)]  # file numbers start at 1
            while self.data[pos]:
                name, pos = self._cstr(pos)
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
        self, unit: _Unit, pos: int, offset_size: int
    ) -> tuple[list[tuple[str, int]], int]:
        """DWARF 5 directory or file entries: (path, directory index) each."""
        count = self.data[pos]
        pos += 1
        formats = []
        for _ in range(count):
            kind, pos = self._uleb(pos)
            form, pos = self._uleb(pos)
            formats.append((kind, form))
        n, pos = self._uleb(pos)
        out = []
        fake = _Unit(0, 0, 5, offset_size, unit.address_size, {}, 0)
        fake.str_offsets_base = unit.str_offsets_base
        for _ in range(n):
            path, index = "", 0
            for kind, form in formats:
                value, pos = self._form_value(fake, pos, form)
                if kind == 1:
                    path = self._string(fake, (form, value)) or ""
                elif kind == 2:
                    index = int(value)
            out.append((path, index))
        return out, pos

    def _form_value(self, unit: _Unit, pos: int, form: int) -> tuple[Any, int]:
        """One attribute value of ``form`` at ``pos`` (for line program headers)."""
        if form == 0x08:
            return self._cstr(pos)
        if form in _OFFSET_FORMS:
            return self._off(pos, unit.offset_size), pos + unit.offset_size
        if form in _ULEB_FORMS:
            return self._uleb(pos)
        size = _FIXED.get(form)
        if size is not None:
            return (self._uint(pos, size) if size <= 8 else None), pos + size
        if form in (0x09, 0x18):
            length, pos = self._uleb(pos)
            return None, pos + length
        raise ValueError(f"line header form 0x{form:x}")

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


def _form_size(form: int, unit: _Unit) -> int | None:
    """Bytes a value of ``form`` takes in ``unit``, or None when it varies."""
    size = _FIXED.get(form)
    if size is not None:
        return size
    if form in _OFFSET_FORMS:
        return unit.offset_size
    if form == 0x01:
        return unit.address_size
    if form == 0x10:
        return unit.address_size if unit.version <= 2 else unit.offset_size
    return None


#: What damaged DWARF raises while being read (turned into FormatError).
_DAMAGE = (IndexError, KeyError, struct.error, ValueError, RecursionError, ZeroDivisionError)
_SIBLING_ONLY = frozenset({AT_SIBLING})
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


def elf_symbol_value(elf: ELFFile, name: str) -> int | None:
    """The value of the first symbol called ``name`` (one pass, no symbol objects)."""
    section = elf.get_section_by_name(".symtab")
    if not isinstance(section, SymbolTableSection) or elf.elfclass != 64:
        return None
    strings = elf.get_section(section["sh_link"]).data()
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
