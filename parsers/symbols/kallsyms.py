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

from parsers.dumps.vmcoreinfo import VmcoreInfo
from parsers.errors import DumpError, SymbolError
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
    try:
        return _decode(read, tables, source)
    except SymbolError:
        raise
    except DumpError as exc:
        raise SymbolError(f"kallsyms tables unreadable: {exc.message}") from None


def _decode(read: Reader, t: KallsymsTables, source: str) -> SymbolTable:
    (count,) = struct.unpack(">I", read(t.num_syms, 4))
    if not 0 < count <= MAX_SYMS:
        raise SymbolError(f"kallsyms_num_syms is {count}: not a symbol count")
    index = array("H", read(t.token_index, 512))
    if sys.byteorder == "little":
        index.byteswap()
    table_size = max(index) + 256  # the last token starts at max(index); tokens are short
    table = read(t.token_table, table_size)
    tokens: list[str] = []
    for off in index:
        end = table.find(b"\0", off)
        if end < 0:
            raise SymbolError("kallsyms_token_table: a token has no terminating NUL")
        tokens.append(table[off:end].decode("latin-1"))

    names_blob = _read_names(read, t, count)
    names, types = _expand(names_blob, count, tokens)

    raw = read(t.offsets, 4 * count)
    if t.relative_base is None:
        offs = array("i", raw)
        if sys.byteorder == "little":
            offs.byteswap()
        base = t.offsets
        addrs = array("Q", [base + 4 * i + o for i, o in enumerate(offs)])
    else:
        uoffs = array("I", raw)
        if sys.byteorder == "little":
            uoffs.byteswap()
        (base,) = struct.unpack(">Q", read(t.relative_base, 8))
        # Offsets from kallsyms_relative_base: the base becomes the table's delta.
        return SymbolTable.from_kallsyms(array("Q", uoffs), types, names, source, delta=base)
    return SymbolTable.from_kallsyms(addrs, types, names, source)


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
    parts = "".join(map(expand.__getitem__, codes)).split("\0")
    if len(parts) != 2 * count + 1:
        raise SymbolError("kallsyms_names: the names do not expand to one type and name each")
    return parts[2::2], "".join(parts[1::2])


__all__ = ["KallsymsTables", "kallsyms_tables", "read_kallsyms"]
