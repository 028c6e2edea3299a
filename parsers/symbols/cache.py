"""A symbol table in one compact file that loads in a millisecond or two.

Layout (native byte order; a cache is local to the machine that wrote it)::

    magic "BCSYMS\\x05" + byte-order byte ("<" or ">")
    u32 count, u32 names_bytes, u32 source_bytes, u32 crc32 (of everything after the head),
    u32 flags (bit 0: symbols at one address in .symtab order, ranked when looked up)
    source (UTF-8), padded to 8
    u64 addresses[count]   sorted, in the table's own order (file addresses, before KASLR)
    u32 starts[count]      where each symbol's NUL-terminated name starts in the names
    u32 by_name[count]     symbol indexes ordered by (name bytes, index)
    u8  types[count]       type letters
    names (UTF-8, NUL-terminated, names_bytes long; a vmlinux's ``.strtab`` as it is)

Loading copies the arrays and nothing else: no name is decoded until it is asked for, and a
look-up by name is a binary search through ``by_name`` (the first of equal names wins, as
in a table built from the symbols, :class:`parsers.symbols.packed.PackedNames`). A kernel
has ~130,000 symbols; a start needs a few. A table built from a vmlinux's ``.symtab`` is
packed already (:func:`parsers.symbols.table.load_vmlinux_symbols`) and written as it is.
"""

from __future__ import annotations

import os
import struct
import sys
import weakref
import zlib
from array import array
from pathlib import Path

from parsers.cache import read_cache_file, write_atomically
from parsers.errors import SymbolError
from parsers.symbols.packed import PackedNames, pack_names
from parsers.symbols.table import SymbolTable

MAGIC = b"BCSYMS\x05"
_ORDER = b"<" if sys.byteorder == "little" else b">"
_HEAD = struct.Struct("=IIIII")
#: Flag bit: symbols at one address are in ``.symtab`` order (a vmlinux's table).
_SYMTAB_ORDER = 1
#: Refuse absurd files (a kernel has ~130,000 symbols, a few MiB).
MAX_CACHE_BYTES = 256 << 20
#: The bytes a table was read from (:func:`table_from_bytes` with ``own``), with its source
#: then: writing it (a table a worker built, cached here once verified) copies them as they
#: are. A table's addresses, types and names never change (a relocation is kept apart).
_READ_FROM: weakref.WeakKeyDictionary[SymbolTable, tuple[str, bytes]] = weakref.WeakKeyDictionary()


def save_table(table: SymbolTable, path: str | os.PathLike[str]) -> None:
    """Write ``table`` (its file addresses, without the KASLR delta) atomically; errors
    (read-only cache, full disk) are ignored: a cache is an optimisation."""
    write_atomically(Path(path), table_bytes(table))


def table_bytes(table: SymbolTable) -> bytes:
    """``table`` in the cache file's layout (what :func:`save_table` writes)."""
    read = _READ_FROM.get(table)
    if read is not None and read[0] == table.source:
        return read[1]
    addrs, types, names, aliases_ordered = table.stored()
    packed = names if isinstance(names, PackedNames) else pack_names(names)
    blob = packed.blob
    source = table.source.encode("utf-8")
    pad = b"\0" * (-len(source) % 8)
    body = b"".join(
        (
            source + pad,
            addrs.tobytes(),
            packed.starts.tobytes(),
            packed.by_name.tobytes(),
            types.encode("latin-1"),
            blob,
        )
    )
    flags = 0 if aliases_ordered else _SYMTAB_ORDER
    head = MAGIC + _ORDER + _HEAD.pack(len(addrs), len(blob), len(source), zlib.crc32(body), flags)
    return head + body


def load_table(path: str | os.PathLike[str]) -> SymbolTable | None:
    """Read a table written by :func:`save_table`; None if absent, foreign or damaged."""
    data = read_cache_file(Path(path), MAX_CACHE_BYTES)
    return None if data is None else table_from_bytes(data)


def table_from_bytes(data: bytes, own: bool = False) -> SymbolTable | None:
    """The table of :func:`table_bytes`; None if foreign or damaged. ``own``: bytes this
    program's :func:`table_bytes` just made (a prefetch worker's), not a file: no checksum
    or name offsets to check (7 ms of a first run), and ``data`` is remembered as long as
    the table lives, for :func:`table_bytes` to give back when the table is cached (a table
    read from the cache is not kept twice)."""
    try:
        table = _parse(data, own)
    except (SymbolError, ValueError, struct.error, UnicodeDecodeError, IndexError):
        return None
    if table is not None and own:
        _READ_FROM[table] = (table.source, data)
    return table


def _array(code: str, data: bytes, pos: int, count: int) -> tuple[array[int], int]:
    out = array(code)
    end = pos + out.itemsize * count
    out.frombytes(data[pos:end])
    if len(out) != count:
        raise ValueError("cache file is cut short")
    return out, end


def _parse(data: bytes, own: bool = False) -> SymbolTable | None:
    if len(data) > MAX_CACHE_BYTES or data[:8] != MAGIC + _ORDER:
        return None
    count, names_bytes, source_bytes, crc, flags = _HEAD.unpack_from(data, 8)
    if flags & ~_SYMTAB_ORDER:
        return None
    pos = 8 + _HEAD.size
    if not own and zlib.crc32(memoryview(data)[pos:]) != crc:  # damaged: rebuild it
        return None
    source = data[pos : pos + source_bytes].decode("utf-8")
    pos += source_bytes + (-source_bytes % 8)
    addrs, pos = _array("Q", data, pos, count)
    starts, pos = _array("I", data, pos, count)
    by_name, pos = _array("I", data, pos, count)
    types = data[pos : pos + count].decode("latin-1")
    pos += count
    blob = data[pos : pos + names_bytes]
    if len(types) != count or len(blob) != names_bytes or pos + names_bytes != len(data):
        return None
    if count and (blob[-1:] != b"\0" or (not own and max(starts) >= names_bytes)):
        return None
    if not blob.isascii():
        blob.decode("utf-8")  # names are decoded one at a time later: fail here, not there
    names = PackedNames(blob, starts, by_name)
    return SymbolTable.from_kallsyms(
        addrs,
        types,
        names,
        source,
        check=False,
        by_name=names,
        aliases_ordered=not flags & _SYMTAB_ORDER,
    )
