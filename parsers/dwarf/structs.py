"""The DIEs of a few named structs in a vmlinux's DWARF, found without reading the rest.

A -dbg vmlinux has 130-200 MB of ``.debug_info``; the structs a type profile needs are a dozen
DIEs in it. A struct named X is a DIE whose ``DW_AT_name`` is either the inline string
``X\\0`` or a 4-byte offset of ``X\\0`` in ``.debug_str`` (the linker merges string tails,
so every occurrence of ``X\\0`` counts): those byte strings are searched for in the mapped
section, in growing windows from its start (definitions sit in the first units, which include
most headers), and each hit is tried as the name attribute of a DIE, decoding only the unit's
abbreviation table and that DIE. Only the found structs' members (and the types they refer
to) are decoded afterwards.

The DIEs are read by :class:`~parsers.dwarf.reader.DwarfReader`, the one DWARF reader; what
it does not handle raises :class:`Unsupported`, so that the caller can use a general reader
instead. Names no needle finds (DW_FORM_strx indices, 8-byte offsets of 64-bit DWARF) are
looked for among the top-level DIEs of every unit instead.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Mapping

from parsers.dwarf.reader import DAMAGE, Die, DwarfReader, Unsupported
from parsers.elf.sections import SHF_MERGE, SHF_STRINGS, ElfSections

# DWARF 5 §7.5: tags and attributes used here.
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
#: A DIE's abbreviation code is a ULEB128 just before its name; longer ones do not occur.
_PROBE_BACK = 4
#: Qualifier, array and nesting chains longer than this are damage, not C.
MAX_NESTING = 16


class DwarfStructs(DwarfReader):
    """The DWARF of an :class:`ElfSections`, with a search for named DIEs that reads only
    where their names occur.

    Raises:
        Unsupported: what :class:`~parsers.dwarf.reader.DwarfReader` does not decode, and
            type units in .debug_types (DWARF 4's -fdebug-types-section).
    """

    def __init__(self, elf: ElfSections) -> None:
        super().__init__(*DwarfReader.elf_arguments(elf))
        if ".debug_types" in self.spans:  # structs there are referred to by signature
            raise Unsupported("type units in .debug_types")
        self.elf = elf
        strings = elf.get(".debug_str")
        self.str_base, self.str_size = (strings.offset, strings.size) if strings else (0, 0)
        merge = SHF_MERGE | SHF_STRINGS
        self.merged_strings = strings is not None and strings.flags & merge == merge
        #: Names may be indices into .debug_str_offsets (DW_FORM_strx), which no needle finds.
        self.indexed_names = ".debug_str_offsets" in self.spans or (
            self.info_size >= 12 and self._initial_length(0)[1] == 8
        )

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
                    try:
                        units[key].add(self.unit_at(position).offset)
                    except DAMAGE:
                        pass  # between units: no DIE there
            start, window = end, min(window * 2, 32 << 20)
        if self.indexed_names:  # a name by index is in no needle: any unit may hold it
            return found, {k: list(self.all_unit_offsets()) for k in wanted if k not in found}
        return found, {k: sorted(v) for k, v in units.items() if k not in found}

    def _hits(self, needle: bytes, start: int, end: int) -> Iterator[int]:
        """Where ``needle`` starts in .debug_info from ``start`` to ``end`` (it may run
        past ``end``)."""
        data, base = self.info, self.info_base
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
        data, base = self.info, self.info_base
        if position < 1 or data[base + position - 1] & 0x80:
            return None
        back = 1
        while back < _PROBE_BACK and position > back and data[base + position - back - 1] & 0x80:
            back += 1
        try:
            unit = self.unit_at(position)
        except DAMAGE:
            return None
        for length in range(back, 0, -1):
            offset = position - length
            if offset < unit.die_offset:
                continue
            try:
                die = self.die(unit, offset)
            except (*DAMAGE, Unsupported):
                continue  # most starts tried are not DIEs
            if die is None:
                continue
            name = die.attrs.get(AT_NAME)
            if name is not None and name[2] == position:
                try:
                    plausible = self.name(die) in names and self._plausible(die)
                except (*DAMAGE, Unsupported):
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

    def lookup(
        self, wanted: Mapping[str, tuple[str, ...]], accept: Callable[[Die], bool]
    ) -> dict[str, Die]:
        """:meth:`find`, then :meth:`scan` of the top-level DIEs of the units where a name
        occurs but no probe found it."""
        found, units = self.find(wanted, accept)
        if units:
            everywhere = sorted({unit for found_in in units.values() for unit in found_in})
            found.update(self.scan(everywhere, {key: wanted[key] for key in units}, accept))
        return found

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
