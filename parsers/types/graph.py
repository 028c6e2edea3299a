"""The kernel's type graph, member by member, from BTF or DWARF: what a struct printer needs.

:mod:`parsers.types.profile` records the few offsets the unwinder needs; this module gives every
type as a :class:`CType` record (kind, name, size, target, members with bit offsets, array
length, enumerators), so that ``struct TYPE ADDR`` can print any struct of the kernel.

* :class:`BtfTypes` reads raw BTF (the dump's ``__start_BTF..__stop_BTF``), every type id
  decoded on first use.
* :class:`DwarfTypes` reads the DWARF of a vmlinux or object file; a struct is found by name
  with the same index the profile reader uses, and DIE offsets are its type ids.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter
from typing import Protocol, TypeVar

from elftools.common.exceptions import DWARFError, ELFError, ELFParseError
from elftools.dwarf.die import DIE
from elftools.dwarf.dwarfinfo import DWARFInfo
from elftools.dwarf.enums import ENUM_DW_AT, ENUM_DW_TAG
from elftools.elf.elffile import ELFFile

from parsers.btf.reader import (
    BTF_KIND_ARRAY,
    BTF_KIND_CONST,
    BTF_KIND_ENUM,
    BTF_KIND_ENUM64,
    BTF_KIND_FLOAT,
    BTF_KIND_FUNC,
    BTF_KIND_FUNC_PROTO,
    BTF_KIND_FWD,
    BTF_KIND_INT,
    BTF_KIND_PTR,
    BTF_KIND_RESTRICT,
    BTF_KIND_STRUCT,
    BTF_KIND_TYPE_TAG,
    BTF_KIND_TYPEDEF,
    BTF_KIND_UNION,
    BTF_KIND_VOLATILE,
    Btf,
)
from parsers.dwarf.leb128 import Overlong, uleb128
from parsers.dwarf.reader import DAMAGE, Damaged, Die, Unsupported
from parsers.dwarf.structs import DwarfStructs
from parsers.elf.sections import ElfSections
from parsers.errors import FormatError, TypeInfoError
from parsers.types.profile import DwarfFinder

__all__ = ["BtfTypes", "CType", "DwarfTypes", "ElftoolsTypes", "Member", "TypeGraph"]

#: Kinds of :class:`CType`.
KINDS = (
    "void",
    "int",
    "float",
    "ptr",
    "array",
    "struct",
    "union",
    "enum",
    "typedef",
    "const",
    "volatile",
    "restrict",
    "func",
    "fwd",
)
POINTER_SIZE = 8  # s390x


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a struct or union.

    Attributes:
        name: None for an anonymous struct/union member.
        type: type id of the member.
        bit_offset: from the start of the enclosing struct.
        bit_size: width of a bitfield, 0 for an ordinary member.
    """

    name: str | None
    type: int
    bit_offset: int
    bit_size: int = 0


@dataclass(frozen=True, slots=True)
class CType:
    """One type.

    Attributes:
        id: its id in its graph (BTF type id, DWARF DIE offset; 0 is void).
        kind: one of :data:`KINDS`.
        name: the type's name (None if anonymous).
        size: bytes (None where C has none: void, functions, incomplete types).
        target: what a pointer/array/typedef/qualifier refers to.
        members: of a struct or union.
        count: elements of an array (0: flexible).
        signed: of an int or enum.
        enumerators: of an enum, (name, value).
    """

    id: int
    kind: str
    name: str | None = None
    size: int | None = None
    target: int | None = None
    members: tuple[Member, ...] = ()
    count: int = 0
    signed: bool = False
    enumerators: tuple[tuple[str, int], ...] = ()


VOID = CType(0, "void")


class TypeGraph(Protocol):
    """What both readers offer."""

    source: str
    #: How the types were read, when a user should know (a fallback reader).
    notes: list[str]

    def get(self, type_id: int) -> CType:
        """The type with this id.

        Raises:
            FormatError: no such type or a damaged record.
        """

    def find(self, name: str, kinds: tuple[str, ...] = ("struct", "union")) -> int | None:
        """The id of the first complete type named ``name`` of one of ``kinds``."""


class BtfTypes:
    """Types from raw BTF.

    Raises:
        FormatError: not BTF, or damaged.
    """

    def __init__(self, data: bytes, source: str = "btf") -> None:
        self.btf = Btf(data)
        self.source = source
        self.notes: list[str] = []
        self._cache: dict[int, CType] = {0: VOID}
        self._names: dict[tuple[str, str], int] | None = None

    def find(self, name: str, kinds: tuple[str, ...] = ("struct", "union")) -> int | None:
        if self._names is None:
            names: dict[tuple[str, str], int] = {}
            btf = self.btf
            for type_id in range(1, len(btf.records)):
                kind = _BTF_KIND_NAMES.get((btf.infos[type_id] >> 24) & 0x1F)
                if kind is None or kind == "fwd" or not btf.names[type_id]:
                    continue
                names.setdefault((kind, btf.string(btf.names[type_id])), type_id)
            self._names = names
        for kind in kinds:
            found = self._names.get((kind, name))
            if found is not None:
                return found
        return None

    def get(self, type_id: int) -> CType:
        known = self._cache.get(type_id)
        if known is None:
            known = self._cache[type_id] = self._decode(type_id)
        return known

    def _decode(self, type_id: int) -> CType:
        btf = self.btf
        kind_no = btf.kind(type_id)
        info, value = btf.infos[type_id], btf.values[type_id]
        name = btf.name(type_id)
        start = btf.records[type_id] + 12
        s = btf.s
        if kind_no == BTF_KIND_INT:
            (encoding,) = s.fast_u32.unpack_from(btf.types, start)
            return CType(type_id, "int", name, value, signed=bool((encoding >> 24) & 1))
        if kind_no == BTF_KIND_FLOAT:
            return CType(type_id, "float", name, value)
        if kind_no == BTF_KIND_PTR:
            return CType(type_id, "ptr", None, POINTER_SIZE, value)
        if kind_no == BTF_KIND_ARRAY:
            element, _, count = s.fast_array.unpack_from(btf.types, start)
            size = btf.size(type_id)
            return CType(type_id, "array", None, size, element, count=count)
        if kind_no in (BTF_KIND_STRUCT, BTF_KIND_UNION):
            members = []
            kind_flag, vlen = info >> 31, info & 0xFFFF
            for index in range(vlen):
                name_off, member_type, offset = s.fast_member.unpack_from(
                    btf.types, start + 12 * index
                )
                if kind_flag:
                    bit_size, bit_offset = offset >> 24, offset & 0xFFFFFF
                else:
                    bit_size, bit_offset = btf._int_bitfield(member_type), offset
                members.append(
                    Member(
                        btf.string(name_off) if name_off else None,
                        member_type,
                        bit_offset,
                        bit_size,
                    )
                )
            kind = "struct" if kind_no == BTF_KIND_STRUCT else "union"
            return CType(type_id, kind, name, value, members=tuple(members))
        if kind_no in (BTF_KIND_ENUM, BTF_KIND_ENUM64):
            vlen, signed = info & 0xFFFF, bool(info >> 31)
            enumerators = []
            for index in range(vlen):
                if kind_no == BTF_KIND_ENUM:
                    (name_off,) = s.fast_u32.unpack_from(btf.types, start + 8 * index)
                    (val,) = s.fast_u32.unpack_from(btf.types, start + 8 * index + 4)
                    if signed and val >= 1 << 31:
                        val -= 1 << 32
                else:
                    name_off, lo, hi = s.fast_member.unpack_from(btf.types, start + 12 * index)
                    val = hi << 32 | lo
                enumerators.append((btf.string(name_off), val))
            return CType(
                type_id, "enum", name, value, signed=signed, enumerators=tuple(enumerators)
            )
        if kind_no in _BTF_QUALIFIERS:
            return CType(type_id, _BTF_QUALIFIERS[kind_no], name, None, value)
        if kind_no in (BTF_KIND_FUNC, BTF_KIND_FUNC_PROTO):
            return CType(type_id, "func", name)
        if kind_no == BTF_KIND_FWD:
            return CType(type_id, "fwd", name)
        return CType(type_id, "void", name)


_BTF_QUALIFIERS = {
    BTF_KIND_TYPEDEF: "typedef",
    BTF_KIND_CONST: "const",
    BTF_KIND_VOLATILE: "volatile",
    BTF_KIND_RESTRICT: "restrict",
    BTF_KIND_TYPE_TAG: "volatile",  # a type tag (__user, __rcu) qualifies like a no-op qualifier
}
_BTF_KIND_NAMES = {
    BTF_KIND_STRUCT: "struct",
    BTF_KIND_UNION: "union",
    BTF_KIND_ENUM: "enum",
    BTF_KIND_ENUM64: "enum",
    BTF_KIND_TYPEDEF: "typedef",
    BTF_KIND_INT: "int",
    BTF_KIND_FWD: "fwd",
}


#: DWARF tags (DWARF 5 §7.5) as :data:`KINDS`.
_TAG_KINDS = {
    0x24: "int",  # base_type
    0x0F: "ptr",
    0x01: "array",
    0x13: "struct",
    0x17: "union",
    0x04: "enum",
    0x16: "typedef",
    0x26: "const",
    0x35: "volatile",
    0x37: "restrict",
    0x47: "volatile",  # atomic
    0x15: "func",  # subroutine_type
}
_TAG_STRUCT, _TAG_UNION = 0x13, 0x17
_TAG_MEMBER, _TAG_SUBRANGE, _TAG_ENUMERATOR = 0x0D, 0x21, 0x28
_AT_BYTE_SIZE, _AT_ENCODING, _AT_COUNT, _AT_UPPER_BOUND = 0x0B, 0x3E, 0x37, 0x2F
_AT_CONST_VALUE, _AT_DECLARATION = 0x1C, 0x3C
_AT_BIT_SIZE, _AT_BIT_OFFSET, _AT_DATA_BIT_OFFSET, _AT_MEMBER_LOCATION = 0x0D, 0x0C, 0x6B, 0x38
_DW_OP_PLUS_UCONST = 0x23
_DW_ATE_FLOAT = 0x04
_DW_ATE_SIGNED = (0x05, 0x06, 0x0D)  # signed, signed_char, signed_fixed

D = TypeVar("D")


class DieAccess(Protocol[D]):
    """What the DWARF type decoder (:func:`_decode`) reads of a DIE of one DWARF reader;
    tags and attributes are DWARF codes (DWARF 5 §7.5), type ids .debug_info offsets."""

    def die(self, type_id: int) -> D:
        """The DIE at this offset."""

    def tag(self, die: D) -> int:
        """Its tag."""

    def name(self, die: D) -> str | None:
        """Its DW_AT_name."""

    def int_attr(self, die: D, attr: int) -> int | None:
        """An attribute's value if an int, as pyelftools gives it (a present flag is True)."""

    def value(self, die: D, attr: int) -> int | bytes | None:
        """An attribute's value: an int (a constant, a reference, a flag), bytes (a block,
        an expression, an inline string), None without it."""

    def children(self, die: D) -> Iterable[D]:
        """The DIEs directly under it."""

    def target(self, die: D) -> int:
        """The type id its DW_AT_type refers to (0, void, without one)."""


class _Graph(TypeGraph, Protocol):
    """What :func:`_decode` fills: a graph, and its cache of types."""

    _cache: dict[int, CType]


def _accepts(dies: DieAccess[D], kinds: tuple[str, ...]) -> Callable[[D], bool]:
    """Whether a DIE found by name is a complete type of one of ``kinds`` (a struct or union
    without a size is a declaration)."""

    def accept(die: D) -> bool:
        tag = dies.tag(die)
        return (
            _TAG_KINDS.get(tag, "") in kinds
            and dies.value(die, _AT_DECLARATION) is None
            and (tag not in (_TAG_STRUCT, _TAG_UNION) or dies.value(die, _AT_BYTE_SIZE) is not None)
        )

    return accept


def _decode(graph: _Graph, dies: DieAccess[D], type_id: int) -> CType:
    """The type whose DIE is at ``type_id``, read through ``dies``."""
    die = dies.die(type_id)
    tag = dies.tag
    kind = _TAG_KINDS.get(tag(die), "void")
    name = dies.name(die)
    int_attr = dies.int_attr
    size = int_attr(die, _AT_BYTE_SIZE)
    if kind == "int":
        encoding = int_attr(die, _AT_ENCODING)
        if encoding == _DW_ATE_FLOAT:
            return CType(type_id, "float", name, size)
        return CType(type_id, "int", name, size, signed=encoding in _DW_ATE_SIGNED)
    if kind == "ptr":
        return CType(type_id, "ptr", None, size or POINTER_SIZE, dies.target(die))
    if kind == "array":
        element = dies.target(die)
        counts = []
        for child in dies.children(die):
            if tag(child) == _TAG_SUBRANGE:
                count = int_attr(child, _AT_COUNT)
                if count is None:
                    upper = int_attr(child, _AT_UPPER_BOUND)
                    count = 0 if upper is None else upper + 1
                counts.append(count)
        return _array(graph, type_id, element, counts)
    if kind in ("struct", "union"):
        members = []
        for child in dies.children(die):
            if tag(child) == _TAG_MEMBER:
                members.append(_member(dies, child))
        return CType(type_id, kind, name, size, members=tuple(members))
    if kind == "enum":
        enumerators = tuple(
            (dies.name(c) or "?", int_attr(c, _AT_CONST_VALUE) or 0)
            for c in dies.children(die)
            if tag(c) == _TAG_ENUMERATOR
        )
        signed = any(v < 0 for _, v in enumerators)
        return CType(type_id, "enum", name, size, signed=signed, enumerators=enumerators)
    if kind in ("typedef", "const", "volatile", "restrict"):
        return CType(type_id, kind, name, None, dies.target(die))
    if kind == "func":
        return CType(type_id, "func", name)
    return CType(type_id, "void", name)


def _member(dies: DieAccess[D], die: D) -> Member:
    """A member's bit offset: DW_AT_data_bit_offset (DWARF 4+), else
    DW_AT_data_member_location (bytes) with DW_AT_bit_offset for DWARF 2/3 bitfields."""
    name = dies.name(die)
    type_id = dies.target(die)
    int_attr = dies.int_attr
    bit_size = int_attr(die, _AT_BIT_SIZE) or 0
    data_bit = int_attr(die, _AT_DATA_BIT_OFFSET)
    if data_bit is not None:
        return Member(name, type_id, data_bit, bit_size)
    location = dies.value(die, _AT_MEMBER_LOCATION)
    byte = 0
    if isinstance(location, int):
        byte = location
    elif isinstance(location, bytes) and location[:1] == bytes([_DW_OP_PLUS_UCONST]):
        try:
            byte = uleb128(location, 1)[0]
        except (IndexError, Overlong):
            raise FormatError(f"member {name}: damaged DW_AT_data_member_location") from None
    bit = byte * 8
    if bit_size:
        old = int_attr(die, _AT_BIT_OFFSET)  # big-endian: from the MSB of the storage
        if old is not None:
            bit += old
    return Member(name, type_id, bit, bit_size)


def _array(graph: _Graph, type_id: int, element: int, counts: list[int]) -> CType:
    """An array type; ``int a[2][3]``: an array of 2 arrays of 3, the inner dimensions as
    synthetic ids. The element's size is its type's through typedefs and qualifiers
    (``__u8 pad[20]`` is 20 bytes)."""
    counts = counts or [0]
    inner = element
    for depth, count in enumerate(reversed(counts[1:])):
        synthetic = -(type_id * 16 + depth + 1)
        elem_size = strip(graph, inner).size
        graph._cache[synthetic] = CType(
            synthetic,
            "array",
            None,
            None if elem_size is None else elem_size * count,
            inner,
            count=count,
        )
        inner = synthetic
    elem_size = strip(graph, inner).size
    total = None if elem_size is None else elem_size * counts[0]
    return CType(type_id, "array", None, total, inner, count=counts[0])


#: pyelftools' names of the attributes :func:`_decode` reads.
_ELFTOOLS_ATTRS = {
    ENUM_DW_AT[name]: name
    for name in (
        "DW_AT_byte_size",
        "DW_AT_encoding",
        "DW_AT_count",
        "DW_AT_upper_bound",
        "DW_AT_const_value",
        "DW_AT_declaration",
        "DW_AT_bit_size",
        "DW_AT_bit_offset",
        "DW_AT_data_bit_offset",
        "DW_AT_data_member_location",
    )
}


class _ElftoolsDies:
    """:class:`DieAccess` over pyelftools' DIEs."""

    def __init__(self, dwarf: DWARFInfo) -> None:
        self.dwarf = dwarf
        self.dies: dict[int, DIE] = {}

    def die(self, type_id: int) -> DIE:
        die = self.dies.get(type_id)
        if die is None:
            try:
                die = self.dwarf.get_DIE_from_refaddr(type_id)
            except (DWARFError, ELFParseError, KeyError, ValueError) as exc:
                raise FormatError(f"DWARF type at 0x{type_id:x} unreadable: {exc}") from None
            self.dies[type_id] = die
        return die

    @staticmethod
    def tag(die: DIE) -> int:
        return ENUM_DW_TAG.get(str(die.tag), 0)

    @staticmethod
    def name(die: DIE) -> str | None:
        attr = die.attributes.get("DW_AT_name")
        if attr is None:
            return None
        value = attr.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

    @staticmethod
    def int_attr(die: DIE, attr: int) -> int | None:
        found = die.attributes.get(_ELFTOOLS_ATTRS[attr])
        if found is None or not isinstance(found.value, int):
            return None
        return int(found.value)

    @staticmethod
    def value(die: DIE, attr: int) -> int | bytes | None:
        found = die.attributes.get(_ELFTOOLS_ATTRS[attr])
        if found is None:
            return None
        value = found.value
        return bytes(value) if isinstance(value, list) else value  # an expression: a list

    @staticmethod
    def children(die: DIE) -> Iterator[DIE]:
        return die.iter_children()

    def target(self, die: DIE) -> int:
        if "DW_AT_type" not in die.attributes:
            return 0
        target = die.get_DIE_from_attribute("DW_AT_type")
        self.dies[target.offset] = target
        return int(target.offset)


class ElftoolsTypes:
    """Types from the DWARF of an ELF file by pyelftools' general reader: the fallback of
    :class:`DwarfTypes` for what the bounded reader does not decode (type ids are the same
    .debug_info offsets in both).

    Raises:
        TypeInfoError: the file has no DWARF.
        FormatError: it is not a readable ELF file.
    """

    def __init__(self, path: str) -> None:
        self.source = f"dwarf:{path}"
        self.notes: list[str] = []
        try:
            self._file = open(path, "rb")  # noqa: SIM115 - lives as long as the graph
            elf = ELFFile(self._file)
            if not elf.has_dwarf_info(strict=True):
                raise TypeInfoError("has no DWARF debug info", path)
            dwarf = elf.get_dwarf_info(relocate_dwarf_sections=elf["e_type"] == "ET_REL")
            self._finder = DwarfFinder(dwarf, elf.little_endian)
        except (ELFError, ELFParseError, DWARFError) as exc:
            raise FormatError(f"cannot read its DWARF: {exc}", path) from None
        except OSError as exc:
            raise FormatError(f"cannot read: {exc.strerror}", path) from None
        self._dies = _ElftoolsDies(dwarf)
        self._cache: dict[int, CType] = {0: VOID}

    def close(self) -> None:
        """Release the file."""
        self._file.close()

    def find(self, name: str, kinds: tuple[str, ...] = ("struct", "union")) -> int | None:
        die = self._finder.find({name: (name,)}, _accepts(self._dies, kinds)).get(name)
        if die is None:
            return None
        self._dies.dies[die.offset] = die
        return int(die.offset)

    def get(self, type_id: int) -> CType:
        known = self._cache.get(type_id)
        if known is None:
            known = self._cache[type_id] = _decode(self, self._dies, type_id)
        return known


class _ReaderDies:
    """:class:`DieAccess` over the bounded reader's DIEs (its own methods where they fit,
    bound once: the decoder calls them for every DIE)."""

    def __init__(self, dwarf: DwarfStructs) -> None:
        self.dwarf = dwarf
        self.dies: dict[int, Die] = {}
        self.name = dwarf.name
        self.children = dwarf.children
        self.tag: Callable[[Die], int] = attrgetter("tag")

    def die(self, type_id: int) -> Die:
        die = self.dies.get(type_id)
        if die is None:
            found = self.dwarf.die(self.dwarf.unit_at(type_id), type_id)
            if found is None:
                raise Damaged("a type id at a null entry")
            die = self.dies[type_id] = found
        return die

    @staticmethod
    def int_attr(die: Die, attr: int) -> int | None:
        found = die.attrs.get(attr)
        if found is None or not isinstance(found[1], int):
            return None
        return int(found[1])

    @staticmethod
    def value(die: Die, attr: int) -> int | bytes | None:
        found = die.attrs.get(attr)
        return None if found is None else found[1]

    def target(self, die: Die) -> int:
        target = self.dwarf.target(die)
        if target is None:
            return 0
        self.dies[target.offset] = target
        return target.offset


class DwarfTypes:
    """Types from the DWARF of an ELF file (a -dbg vmlinux or an object), read by the one
    bounded reader (:mod:`parsers.dwarf.reader`); where it reports the DWARF unsupported,
    by pyelftools (:class:`ElftoolsTypes`), said in :attr:`notes`.

    Raises:
        TypeInfoError: the file has no DWARF.
        FormatError: it is not a readable ELF file.
    """

    def __init__(self, path: str) -> None:
        self.source = f"dwarf:{path}"
        self.path = path
        #: What a user should know about how the types were read (the fallback).
        self.notes: list[str] = []
        self._fallback: ElftoolsTypes | None = None
        self._dies: _ReaderDies | None = None
        self._cache: dict[int, CType] = {0: VOID}
        self._elf = ElfSections(path, "vmlinux")
        try:
            if self._elf.get(".debug_info") is None and self._elf.get(".zdebug_info") is None:
                raise TypeInfoError("has no DWARF debug info", path)
            self._dies = _ReaderDies(DwarfStructs(self._elf))
        except Unsupported as why:
            self._fall_back(why)
        except Damaged as error:
            self._elf.close()
            raise FormatError(f"cannot read its DWARF: {error}", path) from None
        except BaseException:
            self._elf.close()
            raise

    def _fall_back(self, why: Unsupported) -> ElftoolsTypes:
        if self._fallback is None:
            self._fallback = ElftoolsTypes(self.path)
            self._fallback._cache.update(self._cache)
            self.notes.append(
                f"{self.path}: {why}: not decoded by backchain's DWARF reader, read with "
                "pyelftools instead (slower)"
            )
        return self._fallback

    def close(self) -> None:
        """Release the file."""
        if self._fallback is not None:
            self._fallback.close()
        self._elf.close()

    def find(self, name: str, kinds: tuple[str, ...] = ("struct", "union")) -> int | None:
        if self._fallback is not None or self._dies is None:
            return self._fallback.find(name, kinds) if self._fallback is not None else None
        dies = self._dies
        try:
            die = dies.dwarf.lookup({name: (name,)}, _accepts(dies, kinds)).get(name)
        except Unsupported as why:
            return self._fall_back(why).find(name, kinds)
        except DAMAGE as error:
            raise FormatError(f"damaged DWARF: {error}", self.path) from None
        if die is None:
            return None
        dies.dies[die.offset] = die
        return die.offset

    def get(self, type_id: int) -> CType:
        known = self._cache.get(type_id)
        if known is not None:
            return known
        if self._fallback is not None:
            return self._fallback.get(type_id)
        assert self._dies is not None
        try:
            known = self._cache[type_id] = _decode(self, self._dies, type_id)
        except Unsupported as why:
            return self._fall_back(why).get(type_id)
        except DAMAGE as error:
            raise FormatError(f"DWARF type at 0x{type_id:x} unreadable: {error}") from None
        return known


def strip(graph: TypeGraph, type_id: int) -> CType:
    """Follow typedefs and qualifiers to the type they name (bounded)."""
    t = graph.get(type_id)
    for _ in range(32):
        if t.kind not in ("typedef", "const", "volatile", "restrict") or t.target is None:
            return t
        t = graph.get(t.target)
    raise FormatError("type qualifiers loop")


def type_name(graph: TypeGraph, type_id: int, depth: int = 0) -> str:
    """The C spelling of a type: ``struct list_head``, ``char [16]``, ``void *``."""
    t = graph.get(type_id)
    if depth > 16:
        return "?"
    if t.kind in ("struct", "union", "enum"):
        return f"{t.kind} {t.name or '{...}'}"
    if t.kind in ("int", "float", "typedef", "fwd"):
        return t.name or t.kind
    if t.kind == "void":
        return "void"
    if t.kind == "ptr":
        return f"{type_name(graph, t.target or 0, depth + 1)} *"
    if t.kind == "array":
        return f"{type_name(graph, t.target or 0, depth + 1)} [{t.count}]"
    if t.kind in ("const", "volatile", "restrict"):
        return f"{t.kind} {type_name(graph, t.target or 0, depth + 1)}"
    if t.kind == "func":
        return "function"
    return t.kind


def members_flat(graph: TypeGraph, type_id: int) -> Iterator[tuple[str, Member]]:
    """Members by name as C sees them: anonymous struct/union members' members lifted."""
    t = strip(graph, type_id)
    for m in t.members:
        if m.name is None:
            for name, inner in members_flat(graph, m.type):
                yield (
                    name,
                    Member(inner.name, inner.type, m.bit_offset + inner.bit_offset, inner.bit_size),
                )
        else:
            yield m.name, m
