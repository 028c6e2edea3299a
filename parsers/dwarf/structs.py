"""The DIEs of a few named structs in a vmlinux's DWARF, found without reading the rest.

A -dbg vmlinux has 130-200 MB of ``.debug_info``; the structs a type profile needs are a dozen
DIEs in it. A struct named X is a DIE whose ``DW_AT_name`` is either the inline string
``X\\0`` or a 4-byte offset of ``X\\0`` in ``.debug_str`` (the linker merges string tails,
so every occurrence of ``X\\0`` counts): those byte strings are searched for in the mapped
section, in growing windows from its start (definitions sit in the first units, which include
most headers), and each hit is tried as the name attribute of a DIE, decoding only the unit's
abbreviation table and that DIE. Only the found structs' members (and the types they refer
to) are decoded afterwards.

Whatever this reader does not handle (DW_FORM_strx names, type units, compressed sections,
64-bit DWARF, relocations other than R_390_32/64) raises :class:`Unsupported`, so that the
caller can use a general reader instead.
"""

from __future__ import annotations

import bisect
import heapq
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from parsers.dwarf.leb128 import Overlong
from parsers.dwarf.leb128 import sleb128 as _sleb
from parsers.dwarf.leb128 import uleb128 as _uleb
from parsers.elf.sections import (
    ET_REL,
    SHF_COMPRESSED,
    SHF_MERGE,
    SHF_STRINGS,
    SHT_RELA,
    ElfSections,
    Section,
)

# DWARF 5 §7.5: tags, attributes and forms used here.
TAG_ARRAY = 0x01
TAG_MEMBER = 0x0D
TAG_STRUCT = 0x13
TAG_SUBRANGE = 0x21
TAG_UNION = 0x17
TAG_VARIABLE = 0x34
QUALIFIER_TAGS = frozenset({0x16, 0x26, 0x35, 0x37, 0x47})  # typedef const volatile restrict atomic
AGGREGATE_TAGS = frozenset({TAG_STRUCT, TAG_UNION})
AT_SIBLING = 0x01
AT_NAME = 0x03
AT_BYTE_SIZE = 0x0B
AT_BIT_SIZE = 0x0D
AT_UPPER_BOUND = 0x2F
AT_COUNT = 0x37
AT_DATA_MEMBER_LOCATION = 0x38
AT_DECLARATION = 0x3C
AT_DECL_FILE = 0x3A
AT_TYPE = 0x49

FORM_STRING = 0x08
FORM_STRP = 0x0E
FORM_LINE_STRP = 0x1F
FORM_SDATA = 0x0D
FORM_IMPLICIT_CONST = 0x21
FORM_REF_ADDR = 0x10
#: Forms of a fixed size.
_FIXED = {
    0x0B: 1, 0x11: 1, 0x0C: 1,  # data1 ref1 flag
    0x05: 2, 0x12: 2,  # data2 ref2
    0x06: 4, 0x13: 4,  # data4 ref4
    0x07: 8, 0x14: 8,  # data8 ref8
    0x1E: 16, 0x19: 0, 0x21: 0,  # data16 flag_present implicit_const
    0x29: 1, 0x2A: 2, 0x2B: 3, 0x2C: 4,  # addrx1-4 (an index into .debug_addr)
}  # fmt: skip
#: Forms holding one ULEB128: udata ref_udata addrx loclistx rnglistx.
_ULEB_FORMS = frozenset({0x0F, 0x15, 0x1B, 0x22, 0x23})
_REF_FORMS = frozenset({0x11, 0x12, 0x13, 0x14, 0x15})  # CU-relative references
_OFFSET_FORMS = frozenset({FORM_STRP, 0x17, FORM_LINE_STRP})  # strp sec_offset line_strp
_BLOCK_FORMS = {0x0A: 1, 0x03: 2, 0x04: 4}  # block1 block2 block4
#: Strings by index (strx*, GNU_str_index), type signatures, supplementary and split files.
_UNSUPPORTED_FORMS = frozenset(
    {0x1A, 0x25, 0x26, 0x27, 0x28, 0x1F02, 0x20, 0x1C, 0x24, 0x1D, 0x1F01, 0x1F20, 0x1F21}
)
R_390_32, R_390_64 = 4, 22
#: A DIE's abbreviation code is a ULEB128 just before its name; longer ones do not occur.
_PROBE_BACK = 4
#: Qualifier, array and nesting chains longer than this are damage, not C.
MAX_NESTING = 16


class Unsupported(Exception):
    """The DWARF uses something this reader does not decode (not damage: use another)."""


class Damaged(Exception):
    """The DWARF contradicts itself where this reader looked."""


@dataclass(frozen=True, slots=True)
class Unit:
    """A compile unit's header."""

    offset: int  # of the header, in .debug_info
    end: int  # offset after the unit
    version: int
    address_size: int
    abbrev_offset: int
    die_offset: int  # of the unit's DIE


@dataclass(frozen=True, slots=True)
class Die:
    """A decoded DIE: ``attrs`` maps each attribute to (form, value, value's offset)."""

    unit: Unit
    offset: int
    tag: int
    has_children: bool
    attrs: dict[int, tuple[int, Any, int]]
    next: int  # offset after the DIE (its first child, if it has children)

    def int_attr(self, attr: int) -> int | None:
        """An attribute's value if it is a constant (as pyelftools gives it), else None."""
        found = self.attrs.get(attr)
        if found is None or not isinstance(found[1], int) or isinstance(found[1], bool):
            return None
        return found[1]


_Abbrev = tuple[int, bool, tuple[tuple[int, int, int], ...]]


class DwarfStructs:
    """The ``.debug_info`` of a mapped ELF file, read DIE by DIE where asked.

    Raises:
        Unsupported: sections this reader does not decode (compressed, 64-bit DWARF...).
    """

    def __init__(self, elf: ElfSections) -> None:
        self.elf = elf
        info = elf.get(".debug_info")
        abbrev = elf.get(".debug_abbrev")
        strings = elf.get(".debug_str")
        if info is None or abbrev is None:
            raise Unsupported("no .debug_info or .debug_abbrev")
        if elf.get(".debug_str_offsets") is not None or elf.get(".debug_types") is not None:
            raise Unsupported("string offsets or type units")
        for section in (info, abbrev, strings):
            if section is not None and section.flags & SHF_COMPRESSED:
                raise Unsupported("compressed DWARF")
        self.little_endian = elf.little_endian
        e = "<" if elf.little_endian else ">"
        self._u16 = struct.Struct(e + "H").unpack_from
        self._u32 = struct.Struct(e + "I").unpack_from
        self._u64 = struct.Struct(e + "Q").unpack_from
        self.data: Any = elf.data
        self.info_base = info.offset
        if elf.type == ET_REL:
            self.data = self._relocated(info)
            self.info_base = 0
        self.info_size = info.size
        self.abbrev_base, self.abbrev_size = abbrev.offset, abbrev.size
        self.str_base, self.str_size = (strings.offset, strings.size) if strings else (0, 0)
        merge = SHF_MERGE | SHF_STRINGS
        self.merged_strings = strings is not None and strings.flags & merge == merge
        self.unit_offsets: list[int] = []  # of the unit headers read so far, in order
        self._walked = 0  # where the unit after the last one read starts
        self._units_until(0)
        self._units: dict[int, Unit] = {}
        self._abbrevs: dict[int, dict[int, _Abbrev]] = {}

    # -- sections ---------------------------------------------------------------------------
    def _relocated(self, info: Section) -> bytes:
        """``.debug_info`` of a relocatable object with its RELA relocations applied."""
        elf = self.elf
        patched = bytearray(elf.bytes_of(info))
        e = "<" if elf.little_endian else ">"
        rela = struct.Struct(e + "QQq")
        sym = struct.Struct(e + "IBBHQQ")
        for section in elf.sections:
            if section.type != SHT_RELA or section.info != info.index:
                continue
            if not 0 < section.link < len(elf.sections):
                raise Unsupported("relocations without a symbol table")
            symbols = elf.bytes_of(elf.sections[section.link])
            for offset, r_info, addend in rela.iter_unpack(elf.bytes_of(section)):
                kind, index = r_info & 0xFFFFFFFF, r_info >> 32
                value = sym.unpack_from(symbols, index * sym.size)[4] + addend
                size = {R_390_32: 4, R_390_64: 8}.get(kind)
                if size is None:
                    raise Unsupported(f"relocation type {kind}")
                if offset + size > len(patched):
                    raise Damaged("a relocation outside .debug_info")
                field = value & ((1 << 8 * size) - 1)
                patched[offset : offset + size] = field.to_bytes(size, elf.order)
        return bytes(patched)

    def _units_until(self, offset: int) -> None:
        """Learn the unit headers up to the one holding ``offset`` (only those: each one
        read maps its page of the file, and a vmlinux has thousands of units)."""
        walked = self._walked
        while walked <= offset and walked + 11 <= self.info_size:
            (length,) = self._u32(self.data, self.info_base + walked)
            if length >= 0xFFFFFFF0:
                raise Unsupported("64-bit DWARF")
            self.unit_offsets.append(walked)
            walked += 4 + length
        self._walked = walked

    def unit_at(self, offset: int) -> Unit:
        """The unit holding ``offset`` of .debug_info."""
        if offset >= self._walked:
            self._units_until(offset)
        i = bisect.bisect_right(self.unit_offsets, offset) - 1
        if i < 0:
            raise Damaged("offset before the first unit")
        return self.unit(self.unit_offsets[i])

    def unit(self, offset: int) -> Unit:
        """The unit whose header is at ``offset``."""
        unit = self._units.get(offset)
        if unit is not None:
            return unit
        data, pos = self.data, self.info_base + offset
        (length,) = self._u32(data, pos)
        end = offset + 4 + length
        if end > self.info_size:
            raise Damaged("a unit runs past .debug_info")
        (version,) = self._u16(data, pos + 4)
        if version >= 5:
            unit_type, address_size = data[pos + 6], data[pos + 7]
            (abbrev_offset,) = self._u32(data, pos + 8)
            if unit_type not in (1, 3):  # compile, partial
                raise Unsupported(f"unit type {unit_type}")
            die = offset + 12
        elif version >= 2:
            (abbrev_offset,) = self._u32(data, pos + 6)
            address_size = data[pos + 10]
            die = offset + 11
        else:
            raise Damaged(f"DWARF version {version}")
        unit = Unit(offset, end, version, address_size, abbrev_offset, die)
        self._units[offset] = unit
        return unit

    def _abbrev_table(self, unit: Unit) -> dict[int, _Abbrev]:
        table = self._abbrevs.get(unit.abbrev_offset)
        if table is not None:
            return table
        data, pos = self.elf.data, self.abbrev_base + unit.abbrev_offset
        end = self.abbrev_base + self.abbrev_size
        table = {}
        while True:
            if pos >= end:
                raise Damaged("abbreviations run past .debug_abbrev")
            code, pos = _uleb(data, pos)
            if code == 0:
                break
            tag, pos = _uleb(data, pos)
            children = data[pos] != 0
            pos += 1
            specs = []
            while True:
                attr, pos = _uleb(data, pos)
                form, pos = _uleb(data, pos)
                implicit = 0
                if form == FORM_IMPLICIT_CONST:
                    implicit, pos = _sleb(data, pos)
                if attr == 0 and form == 0:
                    break
                specs.append((attr, form, implicit))
                if pos >= end:
                    raise Damaged("abbreviations run past .debug_abbrev")
            table[code] = (tag, children, tuple(specs))
        self._abbrevs[unit.abbrev_offset] = table
        return table

    # -- DIEs -------------------------------------------------------------------------------
    def die(self, unit: Unit, offset: int) -> Die | None:
        """The DIE at ``offset`` of .debug_info (None for a null entry)."""
        data, base = self.data, self.info_base
        pos = base + offset
        code, pos = _uleb(data, pos)
        if code == 0:
            return None
        abbrev = self._abbrev_table(unit).get(code)
        if abbrev is None:
            raise Damaged(f"abbreviation {code} is not in the unit's table")
        tag, children, specs = abbrev
        attrs: dict[int, tuple[int, Any, int]] = {}
        for attr, form, implicit in specs:
            at = pos
            while form == 0x16:  # indirect
                form, pos = _uleb(data, pos)
                at = pos
            size = _FIXED.get(form)
            value: Any
            if size is not None:
                if form == FORM_IMPLICIT_CONST:
                    value = implicit
                elif form == 0x19:
                    value = True
                elif size == 1:
                    value = data[pos]
                elif size == 2:
                    value = self._u16(data, pos)[0]
                elif size == 4:
                    value = self._u32(data, pos)[0]
                elif size == 8:
                    value = self._u64(data, pos)[0]
                else:
                    value = bytes(data[pos : pos + size])
                pos += size
            elif form in _OFFSET_FORMS:
                value = self._u32(data, pos)[0]
                pos += 4
            elif form in _ULEB_FORMS:
                value, pos = _uleb(data, pos)
            elif form == FORM_SDATA:
                value, pos = _sleb(data, pos)
            elif form == FORM_STRING:
                end = data.find(b"\0", pos)
                if end < 0:
                    raise Damaged("an unterminated string")
                value = bytes(data[pos:end])
                pos = end + 1
            elif form == 0x01:  # addr
                value = int.from_bytes(data[pos : pos + unit.address_size], self.elf.order)
                pos += unit.address_size
            elif form == FORM_REF_ADDR:
                size = unit.address_size if unit.version <= 2 else 4
                value = int.from_bytes(data[pos : pos + size], self.elf.order)
                pos += size
            elif form in (0x09, 0x18):  # block exprloc
                length, pos = _uleb(data, pos)
                value = bytes(data[pos : pos + length])
                at, pos = pos, pos + length
            elif form in _BLOCK_FORMS:
                size = _BLOCK_FORMS[form]
                length = int.from_bytes(data[pos : pos + size], self.elf.order)
                value = bytes(data[pos + size : pos + size + length])
                at, pos = pos + size, pos + size + length
            elif form in _UNSUPPORTED_FORMS:
                raise Unsupported(f"DWARF form 0x{form:x}")
            else:
                raise Damaged(f"unknown DWARF form 0x{form:x}")
            attrs[attr] = (form, value, at - base)
        if pos - base > unit.end:
            raise Damaged("a DIE runs past its unit")
        return Die(unit, offset, tag, children, attrs, pos - base)

    def children(self, die: Die) -> Iterator[Die]:
        """The DIEs directly under ``die``."""
        if not die.has_children:
            return
        pos = die.next
        while True:
            if pos >= die.unit.end:
                raise Damaged("children run past their unit")
            child = self.die(die.unit, pos)
            if child is None:
                return
            yield child
            pos = self._after(child)

    def _after(self, die: Die, depth: int = 0) -> int:
        """Where the DIE after ``die`` and its children starts."""
        if not die.has_children:
            return die.next
        sibling = die.attrs.get(AT_SIBLING)
        if sibling is not None:
            target = self.reference(die, sibling)
            if not die.next <= target <= die.unit.end:
                raise Damaged("DW_AT_sibling points out of its unit")
            return target
        if depth > 4 * MAX_NESTING:
            raise Damaged("DIEs nest too deep")
        pos = die.next
        while True:
            if pos >= die.unit.end:
                raise Damaged("children run past their unit")
            child = self.die(die.unit, pos)
            if child is None:
                return _uleb(self.data, self.info_base + pos)[1] - self.info_base
            pos = self._after(child, depth + 1)

    def reference(self, die: Die, value: tuple[int, Any, int]) -> int:
        """The .debug_info offset a reference attribute points to."""
        form, raw, _ = value
        if form in _REF_FORMS:
            return die.unit.offset + int(raw)
        if form == FORM_REF_ADDR:
            return int(raw)
        if form == 0x20:
            raise Unsupported("type signature references")
        raise Damaged(f"form 0x{form:x} is not a reference")

    def target(self, die: Die, attr: int = AT_TYPE) -> Die | None:
        """The DIE an attribute (DW_AT_type by default) refers to; None without one."""
        value = die.attrs.get(attr)
        if value is None:
            return None
        offset = self.reference(die, value)
        unit = die.unit
        if not unit.offset <= offset < unit.end:
            unit = self.unit_at(offset)
        if offset < unit.die_offset:
            raise Damaged("a reference into a unit header")
        found = self.die(unit, offset)
        if found is None:
            raise Damaged("a reference to a null entry")
        return found

    def name(self, die: Die) -> str | None:
        """The DIE's DW_AT_name."""
        value = die.attrs.get(AT_NAME)
        if value is None:
            return None
        raw = self.string(value)
        return None if raw is None else raw.decode("utf-8", "replace")

    def string(self, value: tuple[int, Any, int]) -> bytes | None:
        """The bytes of a string attribute."""
        form, raw, _ = value
        if form == FORM_STRING:
            return bytes(raw)
        if form == FORM_STRP:
            if raw >= self.str_size:
                raise Damaged("a string offset past .debug_str")
            start = self.str_base + raw
            end = self.elf.data.find(b"\0", start, self.str_base + self.str_size)
            if end < 0:
                raise Damaged("an unterminated string in .debug_str")
            return bytes(self.elf.data[start:end])
        return None

    # -- finding named DIEs -----------------------------------------------------------------
    def needles(self, name: str) -> list[bytes]:
        """The byte strings a DIE named ``name`` holds as its name: the offset of any
        occurrence of the name in .debug_str (string tails are merged), or the name inline.

        When the linker merges .debug_str (flags ``MS``), GCC writes a string inline only
        if it is not longer than the 4-byte offset that would replace it (dwarf2out.cc,
        ``find_string_form()``), and clang never writes names inline: so the inline form
        of a name of 4 bytes or more is not looked for, and a name absent from .debug_str
        costs no search of .debug_info at all.
        """
        text = name.encode() + b"\0"
        found = [] if self.merged_strings and len(text) > 4 else [text]
        data, start, stop = self.elf.data, self.str_base, self.str_base + self.str_size
        position = data.find(text, start, stop)
        while position >= 0:
            found.append((position - start).to_bytes(4, self.elf.order))
            position = data.find(text, position + 1, stop)
        return found

    def find(
        self,
        wanted: Mapping[str, tuple[str, ...]],
        accept: Callable[[Die], bool],
        start_window: int = 1 << 16,
    ) -> tuple[dict[str, Die], dict[str, list[int]]]:
        """The first DIE (in file order) named like each entry of ``wanted`` and accepted,
        probed where its name's bytes occur, in windows that double from the start.

        Returns:
            The DIEs found by key, and for the keys not found the units in which their
            names occur (where a scan of top-level DIEs could still find them).
        """
        needles = {
            key: [n for name in names for n in self.needles(name)] for key, names in wanted.items()
        }
        found: dict[str, Die] = {}
        units: dict[str, set[int]] = {key: set() for key in wanted}
        start, window = 0, start_window
        while start < self.info_size and len(found) < len(wanted):
            end = min(start + window, self.info_size)
            for key, names in wanted.items():
                if key in found:
                    continue
                # In file order, each needle searched only as far as needed: the pages of
                # .debug_info beyond the first accepted DIE are never touched.
                hits = heapq.merge(*(self._hits(n, start, end) for n in needles[key]))
                for position in hits:
                    die = self._probe(position, names)
                    if die is not None and accept(die):
                        found[key] = die
                        break
                    units[key].add(self.unit_at(position).offset)
            start, window = end, min(window * 2, 32 << 20)
        return found, {k: sorted(v) for k, v in units.items() if k not in found}

    def _hits(self, needle: bytes, start: int, end: int) -> Iterator[int]:
        """Where ``needle`` starts in .debug_info from ``start`` to ``end`` (it may run
        past ``end``)."""
        data, base = self.data, self.info_base
        stop = min(base + end + len(needle) - 1, base + self.info_size)
        position = data.find(needle, base + start, stop)
        while position >= 0:
            yield position - base
            position = data.find(needle, position + 1, stop)

    def _probe(self, position: int, names: tuple[str, ...]) -> Die | None:
        """The DIE whose DW_AT_name value is at ``position`` and in ``names``, if any.

        The abbreviation code (a ULEB128) ends just before the name; the longest such start
        is tried first (a shorter one would be the tail of the real code).
        """
        data, base = self.data, self.info_base
        if position < 1 or data[base + position - 1] & 0x80:
            return None
        back = 1
        while back < _PROBE_BACK and position > back and data[base + position - back - 1] & 0x80:
            back += 1
        try:
            unit = self.unit_at(position)
        except (Damaged, Overlong):
            return None
        for length in range(back, 0, -1):
            offset = position - length
            if offset < unit.die_offset:
                continue
            try:
                die = self.die(unit, offset)
            except (Damaged, Unsupported, IndexError, ValueError, struct.error):
                continue  # most starts tried are not DIEs
            if die is None:
                continue
            name = die.attrs.get(AT_NAME)
            if name is not None and name[2] == position:
                try:
                    plausible = self.name(die) in names and self._plausible(die)
                except (Damaged, Unsupported, IndexError, ValueError, struct.error):
                    return None
                return die if plausible else None
        return None

    def _plausible(self, die: Die) -> bool:
        """Whether a probed DIE can be real (random bytes decode as DIEs too)."""
        unit = die.unit
        sibling = die.attrs.get(AT_SIBLING)
        if sibling is not None:
            target = self.reference(die, sibling)
            if not die.offset < target <= unit.end:
                return False
        decl_file = die.attrs.get(AT_DECL_FILE)
        if decl_file is not None and decl_file[1] == 0 and unit.version < 5:
            return False  # file 0 is "no file" before DWARF 5
        if die.has_children and die.tag in AGGREGATE_TAGS:
            return self.die(unit, die.next) is not None
        return True

    def scan(
        self,
        units: list[int],
        wanted: Mapping[str, tuple[str, ...]],
        accept: Callable[[Die], bool],
    ) -> dict[str, Die]:
        """The first DIE named like each entry among the top-level DIEs of ``units``."""
        remaining = dict(wanted)
        found: dict[str, Die] = {}
        for offset in units:
            unit = self.unit(offset)
            top = self.die(unit, unit.die_offset)
            if top is None:
                continue
            for die in self.children(top):
                if AT_NAME not in die.attrs:
                    continue
                name = self.name(die)
                for key, names in list(remaining.items()):
                    if name in names and accept(die):
                        found[key] = die
                        del remaining[key]
                if not remaining:
                    return found
        return found
