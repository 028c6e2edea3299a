"""A symbol table in one compact file that loads in milliseconds.

Layout (native byte order; a cache is local to the machine that wrote it)::

    magic "BCSYMS\\x01" + byte-order byte ("<" or ">")
    u32 count, u32 names_bytes, u32 source_bytes, u32 reserved
    source (UTF-8), padded to 8
    u64 addresses[count]   sorted, in the table's own order (file addresses, before KASLR)
    u8  types[count]       type letters
    names (UTF-8, NUL-separated, names_bytes long)

No JSON, no per-symbol parsing: two ``array.frombytes`` and one ``split``.
"""

from __future__ import annotations

import contextlib
import os
import struct
import sys
from array import array
from pathlib import Path

from parsers.errors import SymbolError
from parsers.symbols import SymbolTable

MAGIC = b"BCSYMS\x01"
_ORDER = b"<" if sys.byteorder == "little" else b">"
_HEAD = struct.Struct("=IIII")
#: Refuse absurd files (a kernel has ~100,000 symbols, a few MiB).
MAX_CACHE_BYTES = 256 << 20


def save_table(table: SymbolTable, path: str | os.PathLike[str]) -> None:
    """Write ``table`` (its file addresses, without the KASLR delta) atomically; errors
    (read-only cache, full disk) are ignored: a cache is an optimisation."""
    addrs, types, names = table.raw()
    blob = "\0".join(names).encode("utf-8")
    source = table.source.encode("utf-8")
    pad = b"\0" * (-len(source) % 8)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            out.write(MAGIC + _ORDER)
            out.write(_HEAD.pack(len(names), len(blob), len(source), 0))
            out.write(source + pad)
            out.write(addrs.tobytes())
            out.write(types.encode("latin-1"))
            out.write(blob)
        os.replace(tmp, target)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def load_table(path: str | os.PathLike[str]) -> SymbolTable | None:
    """Read a table written by :func:`save_table`; None if absent, foreign or damaged."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CACHE_BYTES + 1)
    except OSError:
        return None
    try:
        return _parse(data)
    except (SymbolError, ValueError, struct.error, UnicodeDecodeError):
        return None


def _parse(data: bytes) -> SymbolTable | None:
    if len(data) > MAX_CACHE_BYTES or data[:8] != MAGIC + _ORDER:
        return None
    count, names_bytes, source_bytes, _ = _HEAD.unpack_from(data, 8)
    pos = 8 + _HEAD.size
    source = data[pos : pos + source_bytes].decode("utf-8")
    pos += source_bytes + (-source_bytes % 8)
    addrs = array("Q")
    addrs.frombytes(data[pos : pos + 8 * count])
    pos += 8 * count
    types = data[pos : pos + count].decode("latin-1")
    pos += count
    blob = data[pos : pos + names_bytes]
    if len(addrs) != count or len(types) != count or len(blob) != names_bytes:
        return None
    if pos + names_bytes != len(data):
        return None
    names = blob.decode("utf-8").split("\0") if count else []
    if len(names) != count:
        return None
    return SymbolTable.from_kallsyms(addrs, types, names, source, check=False)
