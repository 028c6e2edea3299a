"""The kernel's own symbol table (kallsyms), found through VMCOREINFO.

Kernels with ``CONFIG_KALLSYMS`` export the tables' addresses in VMCOREINFO
(``SYMBOL(kallsyms_names)`` ...; Debian 6.1, 6.12 and 7.x do, 5.10 does not). The tables
(kernel/kallsyms.c, scripts/kallsyms.c):

- ``kallsyms_num_syms``: ``unsigned int``.
- ``kallsyms_names``: per symbol a length, then that many token bytes. The length is one byte,
  or two when the first has bit 7 set (v6.1 "kallsyms: support big kernel symbols"):
  ``(b0 & 0x7f) | (b1 << 7)``. The first character of the expanded name is the type letter.
- ``kallsyms_token_table`` (256 NUL-terminated strings), ``kallsyms_token_index`` (``u16[256]``
  offsets into it): each token byte expands to one string.
- ``kallsyms_offsets`` (``int[]``): up to 6.x ``address = kallsyms_relative_base +
  (u32)offset``; 7.x drops ``kallsyms_relative_base`` and each entry is relative to its own
  slot: ``address = &kallsyms_offsets[i] + (s32)kallsyms_offsets[i]``.

The table is sorted by address (the kernel binary-searches it); the first of several symbols at
one address is the one the kernel prints.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from parsers.cache import content_digest
from parsers.dumps.vmcoreinfo import VmcoreInfo
from parsers.errors import DumpError, SymbolError
from parsers.symbols.packed import pack_names
from parsers.symbols.table import SymbolTable

#: Reads kernel virtual memory: ``read(address, size) -> bytes`` (raises DumpError).
Reader = Callable[[int, int], bytes]

#: More symbols than any kernel has (Debian 7.2 with KALLSYMS_ALL: 94,433).
MAX_SYMS = 1 << 21
#: Upper bound of the compressed names (a few MiB in practice).
MAX_NAMES_BYTES = 64 << 20
_KEYS = ("names", "num_syms", "token_table", "token_index", "offsets")


@dataclass(frozen=True, slots=True)
class KallsymsTables:
    """Where the kallsyms tables are (runtime addresses from VMCOREINFO).

    Attributes:
        relative_base: address of ``kallsyms_relative_base``; None on 7.x (self-relative).
    """

    names: int
    num_syms: int
    token_table: int
    token_index: int
    offsets: int
    relative_base: int | None

    @property
    def self_relative(self) -> bool:
        """True when each offset is relative to its own slot (7.x)."""
        return self.relative_base is None


def kallsyms_tables(info: VmcoreInfo | None) -> KallsymsTables | None:
    """The tables VMCOREINFO names, or None when it lacks any of them (e.g. 5.10)."""
    if info is None:
        return None
    found = {key: info.symbol(f"kallsyms_{key}") for key in _KEYS}
    if any(v is None for v in found.values()):
        return None
    return KallsymsTables(
        names=found["names"] or 0,
        num_syms=found["num_syms"] or 0,
        token_table=found["token_table"] or 0,
        token_index=found["token_index"] or 0,
        offsets=found["offsets"] or 0,
        relative_base=info.symbol("kallsyms_relative_base"),
    )


def read_kallsyms(read: Reader, tables: KallsymsTables, source: str = "kallsyms") -> SymbolTable:
    """Decode the kernel's kallsyms into a :class:`SymbolTable` (runtime addresses).

    Args:
        read: reads kernel virtual memory.
        tables: from :func:`kallsyms_tables`.
        source: names the table in messages.

    Raises:
        SymbolError: the tables cannot be read or are not kallsyms.
    """
    return decode_kallsyms(read_kallsyms_bytes(read, tables), source)


@dataclass(frozen=True)
class KallsymsBytes:
    """The bytes a table is decoded from, as the dump holds them.

    Attributes:
        tables: where they were read.
        count: ``kallsyms_num_syms``.
        token_index: ``kallsyms_token_index`` (512 bytes).
        token_table: ``kallsyms_token_table`` (up to the end of its last token).
        names: ``kallsyms_names`` (up to the next table, or as far as the names go).
        offsets: ``kallsyms_offsets`` (4 bytes a symbol).
        base: the value of ``kallsyms_relative_base``; None on 7.x.
    """

    tables: KallsymsTables
    count: int
    token_index: bytes
    token_table: bytes
    names: bytes
    offsets: bytes
    base: int | None

    def digest(self) -> str:
        """What names a cached table decoded from these bytes: a digest of them, and of the
        offsets' own address where addresses are relative to it (7.x). Not of
        ``kallsyms_relative_base``: a table cached for one boot is relocated to another."""
        where = b"" if self.base is not None else self.tables.offsets.to_bytes(8, "big")
        return content_digest(
            self.count.to_bytes(4, "big"),
            self.token_index,
            self.token_table,
            self.names,
            self.offsets,
            where,
        )


def read_kallsyms_bytes(read: Reader, tables: KallsymsTables) -> KallsymsBytes:
    """Read what :func:`decode_kallsyms` decodes.

    Raises:
        SymbolError: the tables cannot be read or are not kallsyms.
    """
    try:
        t = tables
        (count,) = struct.unpack(">I", read(t.num_syms, 4))
        if not 0 < count <= MAX_SYMS:
            raise SymbolError(f"kallsyms_num_syms is {count}: not a symbol count")
        index_bytes = read(t.token_index, 512)
        index = _token_index(index_bytes)
        table = read(t.token_table, max(index) + 256)  # the last token starts at max(index)
        names = _read_names(read, t, count)
        offsets = read(t.offsets, 4 * count)
        base = None
        if t.relative_base is not None:
            (base,) = struct.unpack(">Q", read(t.relative_base, 8))
    except SymbolError:
        raise
    except DumpError as exc:
        raise SymbolError(f"kallsyms tables unreadable: {exc.message}") from None
    return KallsymsBytes(t, count, index_bytes, table, names, offsets, base)


def _token_index(raw: bytes) -> array[int]:
    index = array("H", raw)
    if sys.byteorder == "little":
        index.byteswap()
    return index


def decode_kallsyms(raw: KallsymsBytes, source: str = "kallsyms") -> SymbolTable:
    """The table ``raw`` holds, at its runtime addresses.

    Raises:
        SymbolError: the bytes are not kallsyms.
    """
    try:
        return _decode(raw, source)
    except SymbolError:
        raise
    except (struct.error, ValueError, OverflowError, IndexError) as exc:  # a decoder's slip
        raise SymbolError(f"kallsyms tables damaged ({exc})") from None


def _decode(raw: KallsymsBytes, source: str) -> SymbolTable:
    tokens: list[str] = []
    for off in _token_index(raw.token_index):
        end = raw.token_table.find(b"\0", off)
        if end < 0:
            raise SymbolError("kallsyms_token_table: a token has no terminating NUL")
        tokens.append(raw.token_table[off:end].decode("latin-1"))
    count = raw.count
    expanded, types = _expand(raw.names, count, tokens)
    # Packed as the symbol cache keeps them (and loads them on a later start): the table
    # then needs no dict of 100,000 names, and saving it packs nothing again.
    names = pack_names(expanded)
    if raw.base is None:
        offs = array("i", raw.offsets)
        if sys.byteorder == "little":
            offs.byteswap()
        base = raw.tables.offsets
        wide = [base + 4 * i + o for i, o in enumerate(offs)]
        if min(wide) < 0 or max(wide) >= 1 << 64:
            raise SymbolError(
                f"kallsyms_offsets at 0x{base:x} lead outside the 64-bit address space: "
                "not the kernel's symbol offsets"
            )
        addrs = array("Q", wide)
        return SymbolTable.from_kallsyms(addrs, types, names, source, by_name=names)
    uoffs = array("I", raw.offsets)
    if sys.byteorder == "little":
        uoffs.byteswap()
    # Offsets from kallsyms_relative_base: the base becomes the table's delta.
    return SymbolTable.from_kallsyms(
        array("Q", uoffs), types, names, source, delta=raw.base, by_name=names
    )


def _read_names(read: Reader, t: KallsymsTables, count: int) -> bytes:
    """The compressed names: up to the next table above them (or growing chunks)."""
    above = [a for a in (t.token_table, t.token_index, t.offsets, t.num_syms) if a > t.names]
    want = min(above) - t.names if above else 1 << 20
    want = min(want, MAX_NAMES_BYTES)
    try:
        return read(t.names, want)
    except DumpError:
        if not above:
            raise
    # The bound ran into unreadable memory: read what the names need, chunk by chunk.
    blob = b""
    pos = n = 0
    while n < count:
        if pos + 2 >= len(blob):
            if len(blob) >= MAX_NAMES_BYTES:
                raise SymbolError("kallsyms_names does not end")
            blob += read(t.names + len(blob), 1 << 16)
            continue
        length = blob[pos]
        if length & 0x80:
            length = (length & 0x7F) | (blob[pos + 1] << 7)
            pos += 1
        pos += 1 + length
        n += 1
    return blob


def _expand(blob: bytes, count: int, tokens: list[str]) -> tuple[list[str], str]:
    """Expand ``count`` compressed names; return names (without type) and type letters.

    One pass finds the length bytes; they become tokens 256 (a NUL separator) and 257 (the
    empty string, for the second byte of a long length), so that every name expands in a
    single join and splits at the NULs.
    """
    size = len(blob)
    wide = bytearray(2 * size)  # the bytes as u16 codes, widened in C
    wide[0 if sys.byteorder == "little" else 1 :: 2] = blob
    codes = array("H", wide)
    pos = 0
    for n in range(count):
        if pos >= size:
            raise SymbolError(f"kallsyms_names ends after {n} of {count} names")
        length = blob[pos]
        codes[pos] = 256
        if length & 0x80:
            if pos + 2 >= size:
                raise SymbolError(f"kallsyms_names: name {n} is damaged")
            length = (length & 0x7F) | (blob[pos + 1] << 7)
            codes[pos + 1] = 257
            pos += 2
        else:
            pos += 1
        if not length:
            raise SymbolError(f"kallsyms_names: name {n} is empty")
        if pos < size:
            codes[pos] += 258  # the first token: its first character is the type letter
        pos += length
    if pos > size:
        raise SymbolError(f"kallsyms_names: the last of {count} names is cut off")
    del codes[pos:]
    if any("\0" in t for t in tokens) or not all(tokens):
        raise SymbolError("kallsyms_token_table: an empty token or one holding a NUL")
    # 256: between names; 257: nothing; 258+b: token b with a NUL after its first character.
    expand = [*tokens, "\0", "", *(f"{t[0]}\0{t[1:]}" for t in tokens)]
    parts = "".join([expand[c] for c in codes]).split("\0")  # a subscript each, no call
    if len(parts) != 2 * count + 1:
        raise SymbolError("kallsyms_names: the names do not expand to one type and name each")
    return parts[2::2], "".join(parts[1::2])


__all__ = [
    "KallsymsBytes",
    "KallsymsTables",
    "decode_kallsyms",
    "kallsyms_tables",
    "read_kallsyms",
    "read_kallsyms_bytes",
]
