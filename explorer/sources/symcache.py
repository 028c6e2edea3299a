"""The symbol-table cache shared by the dump's kallsyms and System.map and vmlinux files:
each table named by a digest of the bytes it is read from, never by an identity a file
claims."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from explorer.sources.symfiles import GENERATION, file_cache, file_symbols_cached
from parsers.cache import cache_dir, content_digest
from parsers.elf.sections import ElfSections
from parsers.errors import DumpError
from parsers.inputs import open_regular
from parsers.symbols.cache import load_table, save_table
from parsers.symbols.table import MAX_SYSTEM_MAP_BYTES, SymbolTable

if TYPE_CHECKING:  # the kallsyms reader is imported by a start that reads them
    from parsers.symbols.kallsyms import KallsymsTables


def cached_kallsyms(
    read: Callable[[int, int], bytes], tables: KallsymsTables, source: str
) -> SymbolTable:
    """:func:`parsers.symbols.kallsyms.read_kallsyms`, from the cache when the same bytes were
    decoded before: the cache file is named by a digest of the bytes themselves (never by
    the dump's own BUILD-ID, which a tampered copy keeps), and a cached table is moved by
    this dump's ``kallsyms_relative_base``, exactly as decoding moves it: the same answers
    on a first and a later run.

    Raises:
        SymbolError: the tables cannot be read or are not kallsyms.
    """
    from parsers.symbols.kallsyms import decode_kallsyms, read_kallsyms_bytes

    raw = read_kallsyms_bytes(read, tables)
    path = cache_dir("symbols", f"kallsyms-{raw.digest()}-g{GENERATION}.syms")
    table = load_table(path)
    if table is not None and len(table) == raw.count:
        table.relocate(raw.base or 0)
        table.source = source  # where this dump holds them
        return table
    table = decode_kallsyms(raw, source)
    save_table(table, path)
    return table


def file_symbols_key(path: str, kind: str) -> str | None:
    """What names a System.map's or vmlinux's table in the cache: a digest of the bytes it
    is read from (a vmlinux's ``.symtab`` and its string table; a System.map's whole file),
    never the build-id the file claims. None when they cannot be read (nothing is cached)."""
    try:
        if kind == "vmlinux":
            with ElfSections(path) as elf:
                symtab = elf.get(".symtab")
                if symtab is None or not 0 < symtab.link < len(elf.sections):
                    return None
                strtab = elf.sections[symtab.link]
                return content_digest(elf.bytes_of(symtab), elf.bytes_of(strtab))
        with open_regular(path, "System.map") as f:
            data = f.read(MAX_SYSTEM_MAP_BYTES + 1)
        return content_digest(data) if len(data) <= MAX_SYSTEM_MAP_BYTES else None
    except (OSError, DumpError):
        return None


def cached_file_symbols(key: str | None) -> SymbolTable | None:
    """The table cached under ``key`` (:func:`file_symbols_key`), if any."""
    return load_table(file_cache(key)) if key else None


def save_file_symbols(key: str | None, table: SymbolTable) -> None:
    """Cache a table verified against the dump under ``key`` (never one refused)."""
    if key:
        save_table(table, file_cache(key))


__all__ = [
    "GENERATION",
    "cached_file_symbols",
    "cached_kallsyms",
    "file_symbols_cached",
    "file_symbols_key",
    "save_file_symbols",
]
