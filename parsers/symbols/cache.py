"""A symbol table in one compact file that loads in a millisecond or two.

Layout (native byte order; a cache is local to the machine that wrote it)::

    magic "BCSYMS\\x02" + byte-order byte ("<" or ">")
    u32 count, u32 names_bytes, u32 source_bytes, u32 crc32 (of everything after the head)
    source (UTF-8), padded to 8
    u64 addresses[count]   sorted, in the table's own order (file addresses, before KASLR)
    u32 starts[count + 1]  where each name starts in the names (the last: names_bytes + 1)
    u32 by_name[count]     symbol indexes ordered by (name bytes, index)
    u8  types[count]       type letters
    names (UTF-8, NUL-separated, names_bytes long)

Loading copies the arrays and nothing else: no name is decoded until it is asked for, and a
look-up by name is a binary search through ``by_name`` (the first of equal names wins, as
in a table built from the symbols). A kernel has ~130,000 symbols; a start needs a few.
"""

from __future__ import annotations

import bisect
import os
import struct
import sys
import zlib
from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate
from pathlib import Path
from typing import overload

from parsers.cache import read_cache_file, write_atomically
from parsers.errors import SymbolError
from parsers.symbols.table import SymbolTable

MAGIC = b"BCSYMS\x03"
_ORDER = b"<" if sys.byteorder == "little" else b">"
_HEAD = struct.Struct("=IIII")
#: Refuse absurd files (a kernel has ~130,000 symbols, a few MiB).
MAX_CACHE_BYTES = 256 << 20


class PackedNames(Sequence[str]):
    """The names of a cached table, decoded one at a time, and found by name.

    Args:
        blob: the names, NUL-separated.
        starts: where each name starts (one more entry: the end of the last plus one).
        by_name: indexes ordered by (name bytes, index).
    """

    def __init__(self, blob: bytes, starts: array[int], by_name: array[int]) -> None:
        self._blob = blob
        self._starts = starts
        self._by_name = by_name

    def __len__(self) -> int:
        return len(self._by_name)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._raw(i).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return iter(self._blob.decode("utf-8").split("\0") if len(self) else [])

    def _raw(self, i: int) -> bytes:
        if i < 0:
            i += len(self)
        return self._blob[self._starts[i] : self._starts[i + 1] - 1]

    def get(self, name: str, default: int | None = None) -> int | None:
        """The index of the first symbol called ``name`` (``dict.get`` of a name index)."""
        key = name.encode("utf-8", "surrogatepass")
        order = self._by_name
        try:
            k = bisect.bisect_left(order, key, key=self._raw)
            if k < len(order) and self._raw(order[k]) == key:
                return order[k]
        except IndexError:  # a damaged cache file: an index past the table
            pass
        return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


def save_table(table: SymbolTable, path: str | os.PathLike[str]) -> None:
    """Write ``table`` (its file addresses, without the KASLR delta) atomically; errors
    (read-only cache, full disk) are ignored: a cache is an optimisation."""
    addrs, types, names = table.raw()
    blob = "\0".join(names).encode("utf-8")
    encoded = blob.split(b"\0") if len(names) else []  # names hold no NUL
    starts = array("I", list(accumulate(map((1).__add__, map(len, encoded)), initial=0)))
    by_name = array("I", sorted(range(len(encoded)), key=encoded.__getitem__))  # stable
    source = table.source.encode("utf-8")
    pad = b"\0" * (-len(source) % 8)
    body = b"".join(
        (
            source + pad,
            addrs.tobytes(),
            starts.tobytes(),
            by_name.tobytes(),
            types.encode("latin-1"),
            blob,
        )
    )
    head = MAGIC + _ORDER + _HEAD.pack(len(encoded), len(blob), len(source), zlib.crc32(body))
    write_atomically(Path(path), head + body)


def load_table(path: str | os.PathLike[str]) -> SymbolTable | None:
    """Read a table written by :func:`save_table`; None if absent, foreign or damaged."""
    data = read_cache_file(Path(path), MAX_CACHE_BYTES)
    if data is None:
        return None
    try:
        return _parse(data)
    except (SymbolError, ValueError, struct.error, UnicodeDecodeError, IndexError):
        return None


def _array(code: str, data: bytes, pos: int, count: int) -> tuple[array[int], int]:
    out = array(code)
    end = pos + out.itemsize * count
    out.frombytes(data[pos:end])
    if len(out) != count:
        raise ValueError("cache file is cut short")
    return out, end


def _parse(data: bytes) -> SymbolTable | None:
    if len(data) > MAX_CACHE_BYTES or data[:8] != MAGIC + _ORDER:
        return None
    count, names_bytes, source_bytes, crc = _HEAD.unpack_from(data, 8)
    pos = 8 + _HEAD.size
    if zlib.crc32(memoryview(data)[pos:]) != crc:  # damaged since written: rebuild it
        return None
    source = data[pos : pos + source_bytes].decode("utf-8")
    pos += source_bytes + (-source_bytes % 8)
    addrs, pos = _array("Q", data, pos, count)
    starts, pos = _array("I", data, pos, count + 1)
    by_name, pos = _array("I", data, pos, count)
    types = data[pos : pos + count].decode("latin-1")
    pos += count
    blob = data[pos : pos + names_bytes]
    if len(types) != count or len(blob) != names_bytes or pos + names_bytes != len(data):
        return None
    if count and (starts[0] != 0 or starts[count] != names_bytes + 1):
        return None
    if not blob.isascii():
        blob.decode("utf-8")  # names are decoded one at a time later: fail here, not there
    names = PackedNames(blob, starts, by_name)
    return SymbolTable.from_kallsyms(addrs, types, names, source, check=False, by_name=names)
