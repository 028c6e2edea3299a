"""BTF, the kernel's compact type format (CONFIG_DEBUG_INFO_BTF; include/uapi/linux/btf.h):
the one reader of a BTF blob, for the type profile and the struct printer's type graph.

:class:`Btf` indexes the type records of a blob in either byte order and answers kinds,
names, sizes and members on demand; every offset and count it reads is checked against the
blob (damage is a :class:`~parsers.errors.FormatError`).
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Iterator, Mapping
from operator import itemgetter
from typing import Any, NamedTuple

from parsers.errors import FormatError

#: Typedef/qualifier chains and member nesting deeper than this are damage.
MAX_NESTING = 16


class BtfMember(NamedTuple):
    """One data member of a struct or union, bitfields left out."""

    name: str | None  # None for an anonymous struct/union member
    offset: int  # bytes from the start of the enclosing struct
    size: int | None  # None when BTF cannot say (e.g. a flexible array)
    aggregate: Any  # the member's struct/union type id, or None


BTF_MAGIC = 0xEB9F
(
    BTF_KIND_INT,
    BTF_KIND_PTR,
    BTF_KIND_ARRAY,
    BTF_KIND_STRUCT,
    BTF_KIND_UNION,
    BTF_KIND_ENUM,
    BTF_KIND_FWD,
    BTF_KIND_TYPEDEF,
    BTF_KIND_VOLATILE,
    BTF_KIND_CONST,
    BTF_KIND_RESTRICT,
    BTF_KIND_FUNC,
    BTF_KIND_FUNC_PROTO,
    BTF_KIND_VAR,
    BTF_KIND_DATASEC,
    BTF_KIND_FLOAT,
    BTF_KIND_DECL_TAG,
    BTF_KIND_TYPE_TAG,
    BTF_KIND_ENUM64,
) = range(1, 20)
#: Kinds that qualify another type (followed by :meth:`Btf.strip`).
MODIFIERS = frozenset(
    {BTF_KIND_TYPEDEF, BTF_KIND_VOLATILE, BTF_KIND_CONST, BTF_KIND_RESTRICT, BTF_KIND_TYPE_TAG}
)
#: Kinds whose record holds their size.
SIZED = frozenset(
    {BTF_KIND_INT, BTF_KIND_STRUCT, BTF_KIND_UNION, BTF_KIND_ENUM, BTF_KIND_ENUM64, BTF_KIND_FLOAT}
)
#: Bytes after struct btf_type: (fixed, per vlen entry). FUNC and FWD carry nothing.
TRAILER = {
    BTF_KIND_INT: (4, 0),  # u32 encoding | offset | bits
    BTF_KIND_PTR: (0, 0),
    BTF_KIND_ARRAY: (12, 0),  # struct btf_array
    BTF_KIND_STRUCT: (0, 12),  # struct btf_member
    BTF_KIND_UNION: (0, 12),
    BTF_KIND_ENUM: (0, 8),  # struct btf_enum
    BTF_KIND_FWD: (0, 0),
    BTF_KIND_TYPEDEF: (0, 0),
    BTF_KIND_VOLATILE: (0, 0),
    BTF_KIND_CONST: (0, 0),
    BTF_KIND_RESTRICT: (0, 0),
    BTF_KIND_FUNC: (0, 0),
    BTF_KIND_FUNC_PROTO: (0, 8),  # struct btf_param
    BTF_KIND_VAR: (4, 0),  # struct btf_var
    BTF_KIND_DATASEC: (0, 12),  # struct btf_var_secinfo
    BTF_KIND_FLOAT: (0, 0),
    BTF_KIND_DECL_TAG: (4, 0),  # struct btf_decl_tag
    BTF_KIND_TYPE_TAG: (0, 0),
    BTF_KIND_ENUM64: (0, 12),  # struct btf_enum64
}
POINTER_SIZE = 8  # BTF has no pointer size; s390x is 64-bit


class BtfStructs:
    """The fixed-size records of BTF in one byte order, as construct schemas.

    The schemas document and display; the ``fast_*`` ``struct.Struct`` twins (tested equal)
    decode the tens of thousands of records of a kernel's BTF.

    Args:
        little_endian: byte order of the BTF blob (s390x BTF is big-endian).
    """

    #: The construct schemas, built on first use (importing construct costs a start more
    #: than reading a kernel's BTF needs): struct btf_header; struct btf_type (info =
    #: kind_flag:1 | kind:5 (bits 24-28) | vlen:16); struct btf_member (with kind_flag, offset
    #: = bitfield_size:8 | bit_offset:24); struct btf_array; struct btf_enum; and the u32
    #: after an INT (encoding:4 (bits 24-27) | offset:8 (bits 16-23) | bits:8).
    header: Any
    type: Any
    member: Any
    array: Any
    enum: Any
    int_info: Any

    def __init__(self, little_endian: bool) -> None:
        self.little_endian = little_endian
        order = "<" if little_endian else ">"
        self.fast_header = struct.Struct(order + "HBBIIIII")
        self.fast_type = struct.Struct(order + "III")
        self.fast_member = struct.Struct(order + "III")
        self.fast_array = struct.Struct(order + "III")
        self.fast_u32 = struct.Struct(order + "I")

    def __getattr__(self, name: str) -> Any:
        if name not in ("header", "type", "member", "array", "enum", "int_info"):
            raise AttributeError(name)
        from construct import Int8ub, Int16ub, Int16ul, Int32sb, Int32sl, Int32ub, Int32ul
        from construct import Struct as CStruct

        little_endian = self.little_endian
        u8, u16 = Int8ub, (Int16ul if little_endian else Int16ub)
        u32, s32 = (Int32ul, Int32sl) if little_endian else (Int32ub, Int32sb)
        self.header = CStruct(
            "magic" / u16,
            "version" / u8,
            "flags" / u8,
            "hdr_len" / u32,
            "type_off" / u32,
            "type_len" / u32,
            "str_off" / u32,
            "str_len" / u32,
        )
        self.type = CStruct("name_off" / u32, "info" / u32, "size_or_type" / u32)
        self.member = CStruct("name_off" / u32, "type" / u32, "offset" / u32)
        self.array = CStruct("type" / u32, "index_type" / u32, "nelems" / u32)
        self.enum = CStruct("name_off" / u32, "val" / s32)
        self.int_info = u32
        return getattr(self, name)


class Btf:
    """An index of a BTF blob: where each type record is, read on demand.

    Raises:
        FormatError: not BTF, or damaged (nothing in it is trusted).
    """

    def __init__(self, data: bytes) -> None:
        if len(data) < 24:
            raise FormatError(f"BTF is {len(data)} bytes, shorter than its 24-byte header")
        if data[:2] == BTF_MAGIC.to_bytes(2, "big"):
            little_endian = False
        elif data[:2] == BTF_MAGIC.to_bytes(2, "little"):
            little_endian = True
        else:
            raise FormatError(f"not BTF (magic {data[:2].hex()}, expected eb9f)")
        self.s = BtfStructs(little_endian)
        _, version, _, hdr_len, type_off, type_len, str_off, str_len = (
            self.s.fast_header.unpack_from(data)
        )
        if version != 1:
            raise FormatError(f"BTF version {version} is not supported (only 1)")
        if not 24 <= hdr_len <= len(data):
            raise FormatError(f"BTF header length {hdr_len} does not fit {len(data)} bytes")
        body = len(data) - hdr_len
        if type_off + type_len > body or str_off + str_len > body:
            raise FormatError(
                f"BTF sections (types {type_off}+{type_len}, strings {str_off}+{str_len}) "
                f"end beyond its {body} bytes"
            )
        self.types = bytes(data[hdr_len + type_off : hdr_len + type_off + type_len])
        self.strings = bytes(data[hdr_len + str_off : hdr_len + str_off + str_len])
        # Type id N (from 1) has its record at self.records[N]; id 0 is void.
        self.records: list[int] = [-1]
        self.infos: list[int] = [0]
        self.values: list[int] = [0]
        self.names: list[int] = [0]
        self._index()

    def _index(self) -> None:
        """Every record's place, info, size-or-type and name offset: one pass over the
        type section as 32-bit words (a record and its trailer are whole words). A record's
        length in words depends only on its kind and vlen, ``info & 0x1F00FFFF``: each such
        key's length is worked out once, and the pass is a look-up and an add per record."""
        types, end = self.types, len(self.types)
        words = array("I", types[: end - end % 4])
        if self.s.little_endian != (sys.byteorder == "little"):
            words.byteswap()
        count = len(words)
        steps: dict[int, int] = {}  # kind and vlen -> words from this record to the next
        at: list[int] = []  # word index of each record
        append = at.append
        i = 0
        while True:
            try:
                while i < count:
                    step = steps[words[i + 1] & 0x1F00FFFF]
                    append(i)
                    i += step
                break
            except (KeyError, IndexError):  # a key not seen yet, or a header cut short
                if 4 * i + 12 > end:
                    raise FormatError(f"BTF type {len(at) + 1} is truncated") from None
                key = words[i + 1] & 0x1F00FFFF
                trailer = TRAILER.get(key >> 24)
                if trailer is None:
                    raise FormatError(
                        f"BTF type {len(at) + 1} has unknown kind {key >> 24}"
                    ) from None
                steps[key] = 3 + (trailer[0] + trailer[1] * (key & 0xFFFF)) // 4
        if i > count:  # the last record: its header, else its trailer, past the end
            last = at[-1]
            if 4 * last + 12 > end:
                raise FormatError(f"BTF type {len(at)} is truncated")
            raise FormatError(f"BTF type {len(at)} runs past the type section")
        if 4 * i < end:  # words left over: less than a word, no record fits
            raise FormatError(f"BTF type {len(at) + 1} is truncated")
        self.records.extend(map((4).__mul__, at))
        if len(at) > 1:  # each record's first three words, gathered in C
            gather = itemgetter(*at)
            self.names.extend(gather(words))
            self.infos.extend(gather(words[1:]))
            self.values.extend(gather(words[2:]))
        elif at:
            self.names.append(words[0])
            self.infos.append(words[1])
            self.values.append(words[2])

    def kind(self, type_id: int) -> int:
        return (self.infos[self._checked(type_id)] >> 24) & 0x1F

    def name(self, type_id: int) -> str | None:
        offset = self.names[self._checked(type_id)]
        if offset == 0:
            return None
        return self.string(offset)

    def string(self, offset: int) -> str:
        end = self.strings.find(b"\0", offset) if offset < len(self.strings) else -1
        if end < 0:
            raise FormatError(f"BTF string offset {offset} is outside the string section")
        return self.strings[offset:end].decode("utf-8", "replace")

    def find_aggregates(self, wanted: Mapping[str, tuple[str, ...]]) -> dict[str, int]:
        """Return the type id of the first struct/union named like each entry of ``wanted``.

        Where every name offset lies within the strings and they end with a NUL (any BTF
        but a damaged one), the strings are searched for the names and the types for those
        offsets; otherwise every struct and union is read in turn, to fail where it fails.
        """
        strings, names = self.strings, self.names
        by_name = {n.encode() + b"\0": key for key, choices in wanted.items() for n in choices}
        if strings.endswith(b"\0") and max(names) < len(strings):
            return self._find_named(by_name)
        found: dict[str, int] = {}
        for type_id in range(1, len(self.records)):
            kind = (self.infos[type_id] >> 24) & 0x1F
            if kind not in (BTF_KIND_STRUCT, BTF_KIND_UNION):
                continue
            offset = self.names[type_id]
            end = strings.find(b"\0", offset) + 1 if offset < len(strings) else 0
            if end <= 0:
                if offset:
                    raise FormatError(f"BTF type {type_id} has a name outside the strings")
                continue
            key = by_name.get(strings[offset:end])
            if key is not None and key not in found:
                found[key] = type_id
                if len(found) == len(wanted):
                    break
        return found

    def _find_named(self, by_name: Mapping[bytes, str]) -> dict[str, int]:
        """:meth:`find_aggregates` where every name is a NUL-terminated string (``by_name``:
        each ``name\\0`` wanted, with its key): the types named ``name`` are those whose name
        offset starts ``name\\0`` in the strings, found by a search of the name offsets as
        32-bit words."""
        strings, infos = self.strings, self.infos
        offsets = array("I", self.names).tobytes()  # type id N at byte 4 * N
        aggregates = (BTF_KIND_STRUCT, BTF_KIND_UNION)
        first: dict[str, int] = {}  # key -> the first struct/union of one of its names
        for needle, key in by_name.items():
            end = first.get(key, len(infos))
            at = strings.find(needle, 1)  # offset 0 is no name (anonymous)
            while at > 0:
                word = array("I", [at]).tobytes()
                hit = offsets.find(word, 4, 4 * end)
                while hit >= 0:
                    if not hit % 4 and (infos[hit // 4] >> 24) & 0x1F in aggregates:
                        end = hit // 4
                        break
                    hit = offsets.find(word, hit + 1, 4 * end)
                at = strings.find(needle, at + 1)
            if end < len(infos):
                first[key] = end
        return dict(sorted(first.items(), key=lambda item: item[1]))  # in type order

    def strip(self, type_id: int) -> int:
        """Follow typedef/const/volatile/restrict/type_tag to the type they qualify."""
        for _ in range(MAX_NESTING):
            if type_id == 0 or self.kind(type_id) not in MODIFIERS:
                return type_id
            type_id = self.values[type_id]
        raise FormatError("BTF type modifiers loop")

    def size(self, type_id: int, depth: int = 0) -> int | None:
        type_id = self.strip(type_id)
        if type_id == 0 or depth > MAX_NESTING:
            return None
        kind = self.kind(type_id)
        if kind in SIZED:
            return self.values[type_id]
        if kind == BTF_KIND_PTR:
            return POINTER_SIZE
        if kind == BTF_KIND_ARRAY:
            element, _, count = self.s.fast_array.unpack_from(
                self.types, self.records[type_id] + 12
            )
            element_size = self.size(element, depth + 1)
            return None if element_size is None else element_size * count
        return None

    def members(self, type_id: int) -> Iterator[BtfMember]:
        info = self.infos[self._checked(type_id)]
        kind_flag, vlen = info >> 31, info & 0xFFFF
        start = self.records[type_id] + 12
        for index in range(vlen):
            name_off, member_type, offset = self.s.fast_member.unpack_from(
                self.types, start + 12 * index
            )
            if kind_flag:
                bitfield_size, bit_offset = offset >> 24, offset & 0xFFFFFF
            else:
                bitfield_size, bit_offset = self._int_bitfield(member_type), offset
            if bitfield_size or bit_offset % 8:
                continue  # bitfields have no byte offset of their own
            target = self.strip(member_type)
            aggregate = (
                target
                if target and self.kind(target) in (BTF_KIND_STRUCT, BTF_KIND_UNION)
                else None
            )
            yield BtfMember(
                name=self.string(name_off) if name_off else None,
                offset=bit_offset // 8,
                size=self.size(target),
                aggregate=aggregate,
            )

    def _int_bitfield(self, type_id: int) -> int:
        """Without kind_flag a bitfield's type is an INT narrower than its size, or offset."""
        target = self.strip(type_id)
        if target == 0 or self.kind(target) != BTF_KIND_INT:
            return 0
        (encoding,) = self.s.fast_u32.unpack_from(self.types, self.records[target] + 12)
        bits, bit_offset = encoding & 0xFF, (encoding >> 16) & 0xFF
        return bits if bit_offset or bits != 8 * self.values[target] else 0

    def _checked(self, type_id: int) -> int:
        if not 0 < type_id < len(self.records):
            raise FormatError(f"BTF refers to type {type_id}, beyond its {len(self.records) - 1}")
        return type_id


__all__ = [
    "BTF_KIND_ARRAY",
    "BTF_KIND_CONST",
    "BTF_KIND_DATASEC",
    "BTF_KIND_DECL_TAG",
    "BTF_KIND_ENUM",
    "BTF_KIND_ENUM64",
    "BTF_KIND_FLOAT",
    "BTF_KIND_FUNC",
    "BTF_KIND_FUNC_PROTO",
    "BTF_KIND_FWD",
    "BTF_KIND_INT",
    "BTF_KIND_PTR",
    "BTF_KIND_RESTRICT",
    "BTF_KIND_STRUCT",
    "BTF_KIND_TYPEDEF",
    "BTF_KIND_TYPE_TAG",
    "BTF_KIND_UNION",
    "BTF_KIND_VAR",
    "BTF_KIND_VOLATILE",
    "BTF_MAGIC",
    "MAX_NESTING",
    "MODIFIERS",
    "POINTER_SIZE",
    "SIZED",
    "TRAILER",
    "Btf",
    "BtfMember",
    "BtfStructs",
]
