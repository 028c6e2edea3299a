"""A vmlinux's ``.symtab`` as a table ordered by address, built column by column.

A kernel has ~130,000 symbols and a first run with ``--vmlinux`` waits for this table, so
every step is a C-level pass over a column of the table (``bytes.translate``, slices of
``bytes``, ``map``, ``compress``, ``sorted``): no Python code runs per symbol. The order by
address is a sort of floats (the fastest sort Python has): each symbol's address and index
in ``.symtab`` written as the mantissa of a double. Symbols at one address stay in
``.symtab`` order: the table ranks them by kallsyms' rule when one is looked up
(:class:`parsers.symbols.table.SymbolTable`), not all 18,000 of them up front. A name is
decoded once, and the table is then sorted by name for the cache's index
(:class:`parsers.symbols.packed.PackedNames`).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Sequence
from itertools import compress, repeat

from parsers.symbols.packed import PackedNames

#: Byte -> 1 if it is not zero, else 0 (a column of bytes as flags).
_NONZERO = bytes([0] + [1] * 255)
#: Byte -> 1 if it is 16 or more (an address byte that does not fit a float key's nibble).
_AT_LEAST_16 = bytes([0] * 16 + [1] * 240)
#: nm's letter (or NUL: left out) -> the first byte of a float key: 0x43 (2**52 <= key <
#: 2**53) for a symbol kept, 0x7F (far larger) for one left out, which sorts after all.
_EXPONENT = bytes([0x7F] + [0x43] * 255)
#: An address's bits 24..27 -> the second byte of a float key (exponent's low bits 0x3).
_MANTISSA_TOP = bytes(0x30 | (b & 0xF) for b in range(256))
_LOW_NIBBLE = bytes(b & 0xF for b in range(256))
#: A float key holds 28 bits of address and 24 of index in its 52-bit mantissa.
_KEY_ADDRESS_LIMIT = 1 << 28
_KEY_INDEX_LIMIT = 1 << 24


def table_of_symbols(
    raw: bytes, strings: bytes, text_sections: set[int], section_count: int
) -> tuple[array[int], str, Sequence[str]] | None:
    """Filter, name and order big-endian Elf64_Sym entries (``raw``, 24 bytes each): the
    table's file addresses, type letters and names (None: no symbol is kept).

    Symbols are ordered by address, those at one address in ``.symtab`` order (the table
    ranks them as scripts/kallsyms.c does when looked up: ``aliases_ordered=False`` of
    :meth:`parsers.symbols.table.SymbolTable.from_kallsyms`). With an ASCII string table
    (every kernel's) the names stay in ``strings`` as they are, packed with their index by
    name (:class:`parsers.symbols.packed.PackedNames`): the table is then written to the
    symbol cache without re-encoding a name.
    """
    count = len(raw) // 24
    raw = raw[: count * 24]
    halves = array("I")
    halves.frombytes(raw)
    if sys.byteorder == "little":
        halves.byteswap()
    st_names = halves[0::6]
    # nm's letter of each symbol, NUL for what is left out (see _letters), and st_name 0
    # (no name) left out as well
    letters = _letters(raw, halves, text_sections, section_count)
    named = _flags(raw[0::24], raw[1::24], raw[2::24], raw[3::24])
    letters = (int.from_bytes(letters, "big") & named * 0xFF).to_bytes(count, "big")
    kept = count - letters.count(0)
    if not kept:
        return None
    # names in one ASCII table, each starting in it (every st_name, or failing that each kept one)
    packed = strings.isascii() and (
        max(st_names) < len(strings) or max(compress(st_names, letters)) < len(strings)
    )
    if packed and not strings.endswith(b"\0"):
        strings += b"\0"
    names_at = _namer(strings, packed)
    found = _address_order(raw, letters, count, kept)
    order, addrs = found or _address_order_any(raw, letters, count)
    types = bytes(map(letters.__getitem__, order)).decode("ascii")
    starts = array("I", map(st_names.__getitem__, order))
    names = names_at(starts)
    if not packed:
        return addrs, types, names
    # ASCII: the order of the str names is the order of their bytes
    by_name = array("I", sorted(range(len(names)), key=names.__getitem__))  # stable
    return addrs, types, PackedNames(strings, starts, by_name)


def _flags(*columns: bytes) -> int:
    """Per byte position, 1 if any of ``columns`` has a byte other than zero there, else 0
    (as the bytes of a big-endian integer)."""
    out = 0
    for column in columns:
        out |= int.from_bytes(column.translate(_NONZERO), "big")
    return out


def _index_bytes(count: int) -> tuple[bytes, bytes, bytes]:
    """The three big-endian bytes of each index 0 .. count-1 (count < 2**24), as columns."""
    low = (bytes(range(256)) * (count // 256 + 1))[:count]
    middle = (b"".join(bytes([b]) * 256 for b in range(256)) * (count // 65536 + 1))[:count]
    high = b"".join(bytes([b]) * 65536 for b in range(count // 65536 + 1))[:count]
    return high, middle, low


def _address_order(
    raw: bytes, letters: bytes, count: int, kept: int
) -> tuple[array[int], array[int]] | None:
    """The ``.symtab`` indexes of the symbols kept (``letters`` not NUL) by (address,
    index) and their addresses; None when an address or an index does not fit a float key.

    Each symbol's key is the double 2**52 + (address << 24 | index), built byte by byte
    from the columns of ``raw``; one left out gets a far larger key (and is dropped after
    the sort). Python sorts floats with its fastest comparison, and no key function runs.
    """
    if count >= _KEY_INDEX_LIMIT:
        return None
    value = [raw[j::24] for j in range(8, 16)]  # st_value's bytes, most significant first
    over = _flags(*value[:4]) | int.from_bytes(value[4].translate(_AT_LEAST_16), "big")
    if over & int.from_bytes(letters.translate(_NONZERO), "big"):
        return None  # a kept symbol at or beyond _KEY_ADDRESS_LIMIT
    keys = bytearray(8 * count)
    keys[0::8] = letters.translate(_EXPONENT)
    keys[1::8] = value[4].translate(_MANTISSA_TOP)
    keys[2::8], keys[3::8], keys[4::8] = value[5], value[6], value[7]
    keys[5::8], keys[6::8], keys[7::8] = _index_bytes(count)
    floats = array("d")
    floats.frombytes(keys)
    little = sys.byteorder == "little"
    if little:
        floats.byteswap()
    ordered = sorted(floats)
    del ordered[kept:]
    floats = array("d", ordered)
    if little:
        floats.byteswap()
    data = floats.tobytes()
    wide = bytearray(8 * kept)
    wide[4::8], wide[5::8] = data[1::8].translate(_LOW_NIBBLE), data[2::8]
    wide[6::8], wide[7::8] = data[3::8], data[4::8]
    addrs = array("Q")
    addrs.frombytes(wide)
    narrow = bytearray(4 * kept)
    narrow[1::4], narrow[2::4], narrow[3::4] = data[5::8], data[6::8], data[7::8]
    order = array("I")
    order.frombytes(narrow)
    if little:
        addrs.byteswap()
        order.byteswap()
    return order, addrs


def _address_order_any(raw: bytes, letters: bytes, count: int) -> tuple[array[int], array[int]]:
    """:func:`_address_order` for any addresses and counts (a slower sort, by a key)."""
    words = array("Q")
    words.frombytes(raw)
    if sys.byteorder == "little":
        words.byteswap()
    values = words[1::3]
    order = sorted(compress(range(count), letters), key=values.__getitem__)  # stable
    addrs = array("Q", map(values.__getitem__, order))
    return array("I" if count < 1 << 32 else "Q", order), addrs


def _namer(strings: bytes, packed: bool) -> Callable[[Sequence[int]], list[str]]:
    """The names at given offsets of the string table: NUL-terminated ASCII when ``packed``
    (``strings`` then ends with a NUL), else read as the unpacked table reads them."""
    if packed or strings.isascii():
        text = strings.decode("ascii")
        find = text.find

        def names(starts: Sequence[int]) -> list[str]:
            ends = map(find, repeat("\0"), starts)
            return list(map(text.__getitem__, map(slice, starts, ends)))

        return names

    def decoded(starts: Sequence[int]) -> list[str]:
        ends = list(map(strings.find, repeat(b"\0"), starts))
        return [strings[s:e].decode("ascii", "replace") for s, e in zip(starts, ends, strict=True)]

    return decoded


def _letters(raw: bytes, halves: array[int], text_sections: set[int], section_count: int) -> bytes:
    """nm's type letter of each Elf64_Sym in ``raw`` (``halves``: its 32-bit words), by
    st_info and st_shndx, as one byte each; NUL for what is left out: section and file
    symbols (type > 2), undefined (index 0) and absolute or other reserved indices
    (>= 0xff00, or past the section headers). Weak ones are nm's W (V for objects)."""

    def letter(bind: int, in_text: bool) -> int:
        if bind == 2:  # STB_WEAK: kallsyms puts them after others
            return ord("W" if in_text else "V")
        if in_text:
            return ord("t" if bind == 0 else "T")
        return ord("d" if bind == 0 else "D")

    sections = min(section_count, 0xFF00)
    if sections <= 256:  # each column a byte string, combined bitwise as big integers
        # st_info -> 1 local, 2 global (or other), 3 weak; 0 left out (its type > 2)
        kinds = bytes(
            0 if i & 0xF > 2 else 1 if i >> 4 == 0 else 3 if i >> 4 == 2 else 2 for i in range(256)
        )
        # st_shndx low byte -> 1 data, 2 text; 0 left out; high byte not 0 -> left out (16)
        where = bytes(
            0 if not 0 < i < sections else 2 if i in text_sections else 1 for i in range(256)
        )
        high = bytes([0] + [16] * 255)
        count = len(raw) // 24
        code = (
            int.from_bytes(raw[4::24].translate(kinds), "big") << 2
            | int.from_bytes(raw[7::24].translate(where), "big")
            | int.from_bytes(raw[6::24].translate(high), "big")
        )
        table = bytes(
            0 if c >= 16 or not c & 3 or not c >> 2 else letter((1, 0, 1, 2)[c >> 2], c & 3 == 2)
            for c in range(256)
        )
        return code.to_bytes(count, "big").translate(table)
    letter_of: dict[int, int] = {}
    for info in range(256):
        if info & 0xF > 2:
            continue
        for shndx in range(1, sections):
            letter_of[info << 24 | shndx] = letter(info >> 4, shndx in text_sections)
    infos = halves[1::6]  # st_info << 24 | st_other << 16 | st_shndx
    return bytes(map(letter_of.get, map((0xFF00FFFF).__and__, infos), repeat(0)))


__all__ = ["table_of_symbols"]
