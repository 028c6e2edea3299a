"""The one DWARF reader: units, abbreviation tables, DIEs and their forms, read where asked.

Line programs (:mod:`parsers.dwarf.lines`), struct search (:mod:`parsers.dwarf.structs`) and
the type graph (:mod:`parsers.types.graph`) all read ``.debug_info`` through this module, over
a read-only mapping of the file: nothing is decoded before it is asked for, and what was
decoded (unit headers, abbreviation tables) is kept.

Every offset and length is checked against the section it points into (a unit against
``.debug_info``, an abbreviation table against ``.debug_abbrev``, a string against its string
section, an index against ``.debug_str_offsets`` or ``.debug_addr``, a DIE and its blocks
against its unit): damaged or hostile DWARF raises :class:`Damaged` (a
:class:`~parsers.errors.FormatError`), never reads outside its section and never allocates
more than the section holds. DWARF 2 to 5, 32- and 64-bit, with every form of DWARF 5 and the
GNU extensions GCC emits. What this reader does not follow (type signatures, supplementary
object files, split DWARF, compressed sections, relocations other than R_390_32/64) raises
:class:`Unsupported`: the caller then uses pyelftools' general reader and says so.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from parsers.dwarf.leb128 import Overlong
from parsers.dwarf.leb128 import sleb128 as _sleb
from parsers.dwarf.leb128 import uleb128 as _uleb
from parsers.elf.sections import ET_REL, SHF_COMPRESSED, SHT_RELA, ElfSections, Section
from parsers.errors import FormatError

# -- DWARF 5 §7.5: tags and attributes every reader above uses -----------------------------------
TAG_COMPILE_UNIT = 0x11
TAG_PARTIAL_UNIT = 0x3C
AT_SIBLING = 0x01
AT_NAME = 0x03
AT_TYPE = 0x49
AT_STR_OFFSETS_BASE = 0x72
AT_ADDR_BASE = 0x73
AT_RNGLISTS_BASE = 0x74

# -- forms ----------------------------------------------------------------------------------------
FORM_ADDR = 0x01
FORM_STRING = 0x08
FORM_SDATA = 0x0D
FORM_STRP = 0x0E
FORM_REF_ADDR = 0x10
FORM_INDIRECT = 0x16
FORM_FLAG_PRESENT = 0x19
FORM_LINE_STRP = 0x1F
FORM_REF_SIG8 = 0x20
FORM_IMPLICIT_CONST = 0x21
FORM_RNGLISTX = 0x23
#: Forms of a fixed size, in bytes.
FIXED_FORMS: Mapping[int, int] = {
    0x0B: 1, 0x11: 1, 0x0C: 1, 0x25: 1, 0x29: 1,  # data1 ref1 flag strx1 addrx1
    0x05: 2, 0x12: 2, 0x26: 2, 0x2A: 2,  # data2 ref2 strx2 addrx2
    0x27: 3, 0x2B: 3,  # strx3 addrx3
    0x06: 4, 0x13: 4, 0x1C: 4, 0x28: 4, 0x2C: 4,  # data4 ref4 ref_sup4 strx4 addrx4
    0x07: 8, 0x14: 8, 0x20: 8, 0x24: 8,  # data8 ref8 ref_sig8 ref_sup8
    0x1E: 16, 0x19: 0, 0x21: 0,  # data16 flag_present implicit_const
}  # fmt: skip
#: Forms holding an offset of the unit's offset size: strp sec_offset strp_sup line_strp
#: GNU_ref_alt GNU_strp_alt.
OFFSET_FORMS = frozenset({0x0E, 0x17, 0x1D, 0x1F, 0x1F20, 0x1F21})
#: Forms holding one ULEB128: udata ref_udata strx addrx loclistx rnglistx GNU_addr_index
#: GNU_str_index.
ULEB_FORMS = frozenset({0x0F, 0x15, 0x1A, 0x1B, 0x22, 0x23, 0x1F01, 0x1F02})
#: CU-relative references and their sizes (0: a ULEB128).
REF_FORMS: Mapping[int, int] = {0x11: 1, 0x12: 2, 0x13: 4, 0x14: 8, 0x15: 0}
#: Strings by index into .debug_str_offsets: strx strx1-4.
STRX_FORMS = frozenset({0x1A, 0x25, 0x26, 0x27, 0x28})
#: Addresses by index into .debug_addr: addrx addrx1-4.
ADDRX_FORMS = frozenset({0x1B, 0x29, 0x2A, 0x2B, 0x2C})
_BLOCK_FORMS = {0x0A: 1, 0x03: 2, 0x04: 4}  # block1 block2 block4
#: Forms that need another file: ref_sup4/8, strp_sup, GNU_ref_alt, GNU_strp_alt, and the
#: split-DWARF indices GNU_addr_index, GNU_str_index.
_OTHER_FILE_FORMS = frozenset({0x1C, 0x24, 0x1D, 0x1F20, 0x1F21, 0x1F01, 0x1F02})
R_390_32, R_390_64 = 4, 22
#: Indirect forms chained further than this are damage.
_MAX_INDIRECT = 4
#: DIEs nested deeper than this are damage (C nests a few dozen at most).
MAX_DEPTH = 256


class Unsupported(Exception):
    """The DWARF uses something this reader does not decode (not damage: use another)."""


class Damaged(FormatError):
    """The DWARF contradicts itself, or points outside its section, where it was read."""


#: What reading damaged DWARF can raise besides :class:`Damaged` (a LEB128 too long or cut
#: by the end of the mapping, a value read at the end of the file).
DAMAGE = (Damaged, Overlong, IndexError, ValueError, struct.error)


@dataclass(frozen=True, slots=True)
class Span:
    """Where a section lies in the mapping."""

    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit's header, and the bases its unit DIE gives (DWARF 5)."""

    offset: int  # of the header, in .debug_info
    end: int  # offset after the unit
    version: int
    unit_type: int
    offset_size: int
    address_size: int
    abbrev_offset: int
    die_offset: int  # of the unit's DIE
    str_offsets_base: int = 8
    addr_base: int = 8
    rnglists_base: int = 0


@dataclass(frozen=True, slots=True)
class Die:
    """A decoded DIE: ``attrs`` maps each attribute to (form, value, value's offset).

    A value is an int (constants, offsets, references, indices), bytes (strings inline,
    blocks, data16) or True (flag_present); offsets are in .debug_info.
    """

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


#: An abbreviation: tag, has children, (attribute, form, implicit constant) each.
Abbrev = tuple[int, bool, tuple[tuple[int, int, int], ...]]
#: The sections read, by name.
SECTIONS = (
    ".debug_info",
    ".debug_abbrev",
    ".debug_str",
    ".debug_line_str",
    ".debug_str_offsets",
    ".debug_addr",
    ".debug_ranges",
    ".debug_rnglists",
    ".debug_line",
    ".debug_aranges",
    ".debug_types",
)


class DwarfReader:
    """The DWARF of one mapped ELF file.

    Args:
        data: the mapped file (anything indexable with ``find``: mmap, bytes).
        spans: where each ``.debug_*`` section lies in ``data``.
        little_endian: the file's byte order.
        info: ``.debug_info`` itself when it is not in ``data`` (relocated), else None.

    Raises:
        Unsupported: no .debug_info or .debug_abbrev.
    """

    def __init__(
        self,
        data: Any,
        spans: Mapping[str, Span],
        little_endian: bool,
        info: bytes | None = None,
    ) -> None:
        if ".debug_info" not in spans or ".debug_abbrev" not in spans:
            raise Unsupported("no .debug_info or .debug_abbrev")
        self.data: Any = data
        self.spans = dict(spans)
        self.little_endian = little_endian
        self.order: Literal["little", "big"] = "little" if little_endian else "big"
        e = "<" if little_endian else ">"
        self._u16 = struct.Struct(e + "H").unpack_from
        self._u32 = struct.Struct(e + "I").unpack_from
        self._u64 = struct.Struct(e + "Q").unpack_from
        span = self.spans[".debug_info"]
        self.info: Any = data
        self.info_base = span.base
        if info is not None:
            self.info, self.info_base = info, 0
        self.info_size = span.size
        self.unit_offsets: list[int] = []  # of the unit headers read so far, in order
        self._walked = 0  # where the unit after the last one listed starts
        self._units: dict[int, Unit] = {}
        self._abbrevs: dict[int, dict[int, Abbrev]] = {}

    @classmethod
    def from_elf(cls, elf: ElfSections) -> DwarfReader:
        """The reader of an :class:`ElfSections` (an object file's .debug_info relocated).

        Raises:
            Unsupported: compressed sections, relocations other than R_390_32/64.
            Damaged: a relocation outside .debug_info.
        """
        return cls(*cls.elf_arguments(elf))

    @staticmethod
    def elf_arguments(elf: ElfSections) -> tuple[Any, dict[str, Span], bool, bytes | None]:
        """The constructor's arguments for an :class:`ElfSections` (see :meth:`from_elf`)."""
        spans = {}
        for name in SECTIONS:
            section = elf.get(name)
            if section is None:
                continue
            if section.flags & SHF_COMPRESSED:
                raise Unsupported(f"compressed DWARF ({name})")
            spans[name] = Span(section.offset, section.size)
        info = elf.get(".debug_info")
        relocated = _relocated(elf, info) if elf.type == ET_REL and info is not None else None
        return elf.data, spans, elf.little_endian, relocated

    # -- bounded reads ------------------------------------------------------------------------
    def uint(self, data: Any, pos: int, size: int) -> int:
        """The unsigned number of ``size`` bytes at ``pos`` of ``data``."""
        if size == 4:
            return int(self._u32(data, pos)[0])
        if size == 8:
            return int(self._u64(data, pos)[0])
        if size == 2:
            return int(self._u16(data, pos)[0])
        if size == 1:
            return int(data[pos])
        raw = data[pos : pos + size]
        if len(raw) != size:
            raise Damaged("a number cut by the end of the file")
        return int.from_bytes(raw, self.order)

    def span(self, name: str) -> Span:
        """Where section ``name`` lies.

        Raises:
            Damaged: the file has no such section (the DWARF refers to it).
        """
        found = self.spans.get(name)
        if found is None:
            raise Damaged(f"refers to {name}, which the file does not have")
        return found

    def cstring(self, section: str, offset: int) -> bytes:
        """The NUL-terminated string at ``offset`` of ``section``."""
        span = self.span(section)
        if not 0 <= offset < span.size:
            raise Damaged(f"a string offset past {section}")
        start = span.base + offset
        end = self.data.find(b"\0", start, span.end)
        if end < 0:
            raise Damaged(f"an unterminated string in {section}")
        return bytes(self.data[start:end])

    def offset_in(self, section: str, offset: int, size: int) -> int:
        """The ``size``-byte number at ``offset`` of ``section``."""
        span = self.span(section)
        if not 0 <= offset <= span.size - size:
            raise Damaged(f"an index past {section}")
        return self.uint(self.data, span.base + offset, size)

    # -- units --------------------------------------------------------------------------------
    def _initial_length(self, offset: int) -> tuple[int, int, int]:
        """(unit length, offset size, offset of what follows) of the unit at ``offset``."""
        if offset + 4 > self.info_size:
            raise Damaged("a unit header past .debug_info")
        pos = self.info_base + offset
        (length,) = self._u32(self.info, pos)
        if length == 0xFFFFFFFF:
            if offset + 12 > self.info_size:
                raise Damaged("a unit header past .debug_info")
            (length,) = self._u64(self.info, pos + 4)
            return length, 8, offset + 12
        if length >= 0xFFFFFFF0:
            raise Damaged(f"reserved unit length 0x{length:x}")
        return length, 4, offset + 4

    def _list_until(self, offset: int) -> None:
        """List the unit headers up to the one holding ``offset`` (only those: each one read
        maps its page of the file, and a vmlinux has thousands of units)."""
        walked = self._walked
        while walked <= offset and walked + 4 <= self.info_size:
            length, _size, body = self._initial_length(walked)
            self.unit_offsets.append(walked)
            walked = body + length
        self._walked = walked

    def all_unit_offsets(self) -> list[int]:
        """The offsets of every unit header of .debug_info."""
        self._list_until(self.info_size)
        return self.unit_offsets

    def unit_at(self, offset: int) -> Unit:
        """The unit holding ``offset`` of .debug_info."""
        if offset >= self._walked:
            self._list_until(offset)
        i = bisect.bisect_right(self.unit_offsets, offset) - 1
        if i < 0:
            raise Damaged("an offset before the first unit")
        unit = self.unit(self.unit_offsets[i])
        if offset >= unit.end:
            raise Damaged("an offset past its unit")
        return unit

    def unit(self, offset: int) -> Unit:
        """The unit whose header is at ``offset``."""
        unit = self._units.get(offset)
        if unit is not None:
            return unit
        length, offset_size, body = self._initial_length(offset)
        end = body + length
        if end > self.info_size:
            raise Damaged("a unit runs past .debug_info")
        info, pos = self.info, self.info_base + body
        if body + 4 + offset_size > end:
            raise Damaged("a unit shorter than its header")
        version = self.uint(info, pos, 2)
        unit_type = 1  # compile
        if version >= 5:
            if version > 5:
                raise Unsupported(f"DWARF version {version}")
            unit_type, address_size = info[pos + 2], info[pos + 3]
            abbrev_offset = self.uint(info, pos + 4, offset_size)
            die = body + 4 + offset_size
            if unit_type in (2, 6):  # type units: signature, type offset
                die += 8 + offset_size
            elif unit_type in (4, 5):  # skeleton, split compile: dwo id
                die += 8
            elif unit_type not in (1, 3):  # compile, partial
                raise Damaged(f"unit type {unit_type}")
        elif version >= 2:
            abbrev_offset = self.uint(info, pos + 2, offset_size)
            address_size = info[pos + 2 + offset_size]
            die = body + 3 + offset_size
        else:
            raise Damaged(f"DWARF version {version}")
        if address_size not in (4, 8):
            raise Damaged(f"address size {address_size}")
        if die > end:
            raise Damaged("a unit shorter than its header")
        unit = Unit(offset, end, version, unit_type, offset_size, address_size, abbrev_offset, die)
        if version >= 5 and die < end:
            top = self.die(unit, die, _BASE_ATTRS)
            if top is not None and top.tag in (TAG_COMPILE_UNIT, TAG_PARTIAL_UNIT):
                bases = {
                    name: top.attrs[attr][1]
                    for attr, name in (
                        (AT_STR_OFFSETS_BASE, "str_offsets_base"),
                        (AT_ADDR_BASE, "addr_base"),
                        (AT_RNGLISTS_BASE, "rnglists_base"),
                    )
                    if attr in top.attrs and isinstance(top.attrs[attr][1], int)
                }
                if bases:
                    unit = replace(unit, **bases)
        self._units[offset] = unit
        return unit

    def abbrevs(self, unit: Unit) -> dict[int, Abbrev]:
        """The unit's abbreviation table (read once per table)."""
        table = self._abbrevs.get(unit.abbrev_offset)
        if table is not None:
            return table
        try:
            table = self._abbrevs[unit.abbrev_offset] = self._abbrev_table(unit)
        except (Overlong, IndexError) as error:
            raise Damaged(f"abbreviations cut short ({type(error).__name__})") from None
        return table

    def _abbrev_table(self, unit: Unit) -> dict[int, Abbrev]:
        span = self.spans[".debug_abbrev"]
        if unit.abbrev_offset >= span.size:
            raise Damaged("an abbreviation table past .debug_abbrev")
        data, pos, end = self.data, span.base + unit.abbrev_offset, span.end
        table: dict[int, Abbrev] = {}
        while True:
            if pos >= end:
                raise Damaged("abbreviations run past .debug_abbrev")
            code, pos = _uleb(data, pos)
            if code == 0:
                break
            tag, pos = _uleb(data, pos)
            if pos >= end:
                raise Damaged("abbreviations run past .debug_abbrev")
            children = data[pos] != 0
            pos += 1
            specs = []
            while True:
                attr, pos = _uleb(data, pos)
                form, pos = _uleb(data, pos)
                implicit = 0
                if form == FORM_IMPLICIT_CONST:
                    implicit, pos = _sleb(data, pos)
                if pos > end:
                    raise Damaged("abbreviations run past .debug_abbrev")
                if attr == 0 and form == 0:
                    break
                specs.append((attr, form, implicit))
            table[code] = (tag, children, tuple(specs))
        return table

    # -- DIEs ---------------------------------------------------------------------------------
    def die(self, unit: Unit, offset: int, wanted: frozenset[int] | None = None) -> Die | None:
        """The DIE at ``offset`` of .debug_info (None for a null entry); with ``wanted``,
        only those attributes are kept (the others are stepped over)."""
        try:
            if not unit.die_offset <= offset < unit.end:
                raise Damaged("a DIE outside its unit")
            data, base = self.info, self.info_base
            pos = base + offset
            limit = base + unit.end
            code, pos = _uleb(data, pos)
            if code == 0:
                return None
            table = self._abbrevs.get(unit.abbrev_offset)
            if table is None:
                table = self.abbrevs(unit)
            abbrev = table.get(code)
            if abbrev is None:
                raise Damaged(f"abbreviation {code} is not in the unit's table")
            tag, children, specs = abbrev
            offset_size, address_size = unit.offset_size, unit.address_size
            u32, u64 = self._u32, self._u64
            offset_of = u32 if offset_size == 4 else u64
            address_of = u64 if address_size == 8 else u32
            fixed = FIXED_FORMS.get
            attrs: dict[int, tuple[int, Any, int]] = {}
            for attr, form, implicit in specs:
                if form == FORM_INDIRECT:
                    form, pos = self._indirect(data, pos)
                at = pos
                size = fixed(form)
                value: Any
                if size is not None:
                    if size == 4:
                        value = u32(data, pos)[0]
                    elif size == 1:
                        value = data[pos]
                    elif size == 0:
                        value = implicit if form == FORM_IMPLICIT_CONST else True
                    elif size == 2:
                        value = self._u16(data, pos)[0]
                    elif size == 8:
                        value = u64(data, pos)[0]
                    elif size == 16:
                        if pos + 16 > limit:
                            raise Damaged("a DIE runs past its unit")
                        value = bytes(data[pos : pos + 16])
                    else:
                        value = self.uint(data, pos, size)
                    pos += size
                elif form in OFFSET_FORMS:
                    value = offset_of(data, pos)[0]
                    pos += offset_size
                elif form in ULEB_FORMS:
                    value, pos = _uleb(data, pos)
                elif form == FORM_SDATA:
                    value, pos = _sleb(data, pos)
                elif form == FORM_STRING:
                    end = data.find(b"\0", pos, limit)
                    if end < 0:
                        raise Damaged("an unterminated string")
                    value = bytes(data[pos:end]) if wanted is None or attr in wanted else b""
                    pos = end + 1
                elif form == FORM_ADDR:
                    value = address_of(data, pos)[0]
                    pos += address_size
                elif form == FORM_REF_ADDR:
                    size = unit.address_size if unit.version <= 2 else unit.offset_size
                    value = self.uint(data, pos, size)
                    pos += size
                elif form == 0x09 or form == 0x18:  # block exprloc
                    length, pos = _uleb(data, pos)
                    if length > limit - pos:
                        raise Damaged("a block runs past its unit")
                    value = bytes(data[pos : pos + length])
                    at, pos = pos, pos + length
                elif form in _BLOCK_FORMS:
                    size = _BLOCK_FORMS[form]
                    length = self.uint(data, pos, size)
                    if length > limit - pos - size:
                        raise Damaged("a block runs past its unit")
                    pos += size
                    value = bytes(data[pos : pos + length])
                    at, pos = pos, pos + length
                else:
                    raise Damaged(f"unknown DWARF form 0x{form:x}")
                if wanted is None or attr in wanted:
                    attrs[attr] = (form, value, at - base)
            if pos > limit:
                raise Damaged("a DIE runs past its unit")
            return Die(unit, offset, tag, children, attrs, pos - base)
        except (Overlong, IndexError, struct.error) as error:
            raise Damaged(f"a DIE cut short ({type(error).__name__})") from None

    @staticmethod
    def _indirect(data: Any, pos: int) -> tuple[int, int]:
        """The form a DW_FORM_indirect value names, and where its value starts."""
        for _ in range(_MAX_INDIRECT):
            form, pos = _uleb(data, pos)
            if form != FORM_INDIRECT:
                return form, pos
        raise Damaged("DW_FORM_indirect chained too far")

    def children(self, die: Die, wanted: frozenset[int] | None = None) -> Iterator[Die]:
        """The DIEs directly under ``die`` (``wanted``: as in :meth:`die`)."""
        if not die.has_children:
            return
        keep = None if wanted is None else wanted | _SIBLING
        pos = die.next
        while True:
            if pos >= die.unit.end:
                raise Damaged("children run past their unit")
            child = self.die(die.unit, pos, keep)
            if child is None:
                return
            yield child
            pos = self.after(child)

    def after(self, die: Die) -> int:
        """Where the DIE after ``die`` and its children starts (DW_AT_sibling, when it has
        one and was kept, else a walk over the children)."""
        if not die.has_children:
            return die.next
        sibling = die.attrs.get(AT_SIBLING)
        if sibling is not None:
            target = self.reference(die, sibling)
            if not die.next <= target <= die.unit.end:
                raise Damaged("DW_AT_sibling points out of its unit")
            return target
        return self.skip_children(die.unit, die.next)

    def skip_children(self, unit: Unit, offset: int) -> int:
        """The offset after the children starting at ``offset`` and their null entry."""
        depth, pos = 1, offset
        while depth:
            if pos >= unit.end:
                raise Damaged("children run past their unit")
            die = self.die(unit, pos, _SIBLING)
            if die is None:
                depth -= 1
                pos = _uleb(self.info, self.info_base + pos)[1] - self.info_base
            elif die.has_children and AT_SIBLING in die.attrs:
                pos = self.after(die)
            else:
                pos = die.next
                if die.has_children:
                    depth += 1
                    if depth > MAX_DEPTH:
                        raise Damaged("DIEs nest too deep")
        return pos

    def reference(self, die: Die, value: tuple[int, Any, int]) -> int:
        """The .debug_info offset a reference attribute of ``die`` points to."""
        form, raw = value[0], value[1]
        if form in REF_FORMS:
            return die.unit.offset + int(raw)
        if form == FORM_REF_ADDR:
            return int(raw)
        if form == FORM_REF_SIG8:
            raise Unsupported("type signature references")
        if form in _OTHER_FILE_FORMS:
            raise Unsupported(f"a reference into another file (form 0x{form:x})")
        raise Damaged(f"form 0x{form:x} is not a reference")

    def target(
        self, die: Die, attr: int = AT_TYPE, wanted: frozenset[int] | None = None
    ) -> Die | None:
        """The DIE an attribute (DW_AT_type by default) of ``die`` refers to; None without
        the attribute."""
        value = die.attrs.get(attr)
        if value is None:
            return None
        offset = self.reference(die, value)
        unit = die.unit
        if not unit.offset <= offset < unit.end:
            unit = self.unit_at(offset)
        if offset < unit.die_offset:
            raise Damaged("a reference into a unit header")
        found = self.die(unit, offset, wanted)
        if found is None:
            raise Damaged("a reference to a null entry")
        return found

    # -- values -------------------------------------------------------------------------------
    def string(self, unit: Unit, value: tuple[int, Any, int] | None) -> bytes | None:
        """The bytes of a string attribute; None without one, or for a non-string form."""
        if value is None:
            return None
        form, raw = value[0], value[1]
        if form == FORM_STRING:
            return bytes(raw)
        if form == FORM_STRP:
            return self.cstring(".debug_str", raw)
        if form == FORM_LINE_STRP:
            return self.cstring(".debug_line_str", raw)
        if form in STRX_FORMS:
            size = unit.offset_size
            index = unit.str_offsets_base + raw * size
            return self.cstring(".debug_str", self.offset_in(".debug_str_offsets", index, size))
        if form in _OTHER_FILE_FORMS:
            raise Unsupported(f"a string in another file (form 0x{form:x})")
        return None

    def text(self, unit: Unit, value: tuple[int, Any, int] | None) -> str | None:
        """:meth:`string` decoded (UTF-8, damage replaced)."""
        raw = self.string(unit, value)
        return None if raw is None else raw.decode("utf-8", "replace")

    def name(self, die: Die) -> str | None:
        """The DIE's DW_AT_name."""
        return self.text(die.unit, die.attrs.get(AT_NAME))

    def address(self, unit: Unit, value: tuple[int, Any, int]) -> int:
        """The address an attribute holds (addrx forms: through .debug_addr)."""
        form, raw = value[0], value[1]
        if form in ADDRX_FORMS:
            return self.address_at(unit, raw)
        if form in _OTHER_FILE_FORMS:
            raise Unsupported(f"an address in another file (form 0x{form:x})")
        return int(raw)

    def address_at(self, unit: Unit, index: int) -> int:
        """Entry ``index`` of the unit's addresses in .debug_addr."""
        size = unit.address_size
        return self.offset_in(".debug_addr", unit.addr_base + index * size, size)


_BASE_ATTRS = frozenset({AT_STR_OFFSETS_BASE, AT_ADDR_BASE, AT_RNGLISTS_BASE})
_SIBLING = frozenset({AT_SIBLING})


def form_size(form: int, unit: Unit) -> int | None:
    """Bytes a value of ``form`` takes in ``unit``, or None when it varies."""
    size = FIXED_FORMS.get(form)
    if size is not None:
        return size
    if form in OFFSET_FORMS:
        return unit.offset_size
    if form == FORM_ADDR:
        return unit.address_size
    if form == FORM_REF_ADDR:
        return unit.address_size if unit.version <= 2 else unit.offset_size
    return None


def _relocated(elf: ElfSections, info: Section) -> bytes:
    """``.debug_info`` of a relocatable object with its RELA relocations applied."""
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
        table = elf.bytes_of(section)
        for offset, r_info, addend in rela.iter_unpack(table[: len(table) // 24 * 24]):
            kind, index = r_info & 0xFFFFFFFF, r_info >> 32
            if (index + 1) * sym.size > len(symbols):
                raise Damaged("a relocation names a symbol past the symbol table")
            value = sym.unpack_from(symbols, index * sym.size)[4] + addend
            size = {R_390_32: 4, R_390_64: 8}.get(kind)
            if size is None:
                raise Unsupported(f"relocation type {kind}")
            if offset + size > len(patched):
                raise Damaged("a relocation outside .debug_info")
            field = value & ((1 << 8 * size) - 1)
            patched[offset : offset + size] = field.to_bytes(size, elf.order)
    return bytes(patched)


__all__ = [
    "DAMAGE",
    "Damaged",
    "Die",
    "DwarfReader",
    "Span",
    "Unit",
    "Unsupported",
    "form_size",
]
