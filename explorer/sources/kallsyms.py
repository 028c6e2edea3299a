"""The dump's own symbol table: the kernel's kallsyms, read where VMCOREINFO locates them or
found in its memory by content (explorer.sources.memscan); and the symbol-table cache shared
with System.map and vmlinux files."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

from explorer.model.image import Diagnostics, DumpImage
from parsers.cache import cache_dir
from parsers.errors import DumpError
from parsers.symbols.cache import load_table, save_table
from parsers.symbols.kallsyms import kallsyms_tables, read_kallsyms
from parsers.symbols.table import SymbolTable

#: Bumped whenever the way a table is built or stored changes (filtering, order, the file
#: layout of parsers.symbols.cache), so that tables cached by an older backchain are not used
#: (nor overwritten: both can share one cache).
GENERATION = 3


def _file_name_safe(build_id: str | None) -> bool:
    """Whether a build-id (from the dump or a file) can name a cache file: lowercase hex."""
    return bool(build_id) and all(c in "0123456789abcdef" for c in build_id or "")


def dump_kallsyms(image: DumpImage, notes: Diagnostics) -> SymbolTable | None:
    """The kernel's kallsyms: where VMCOREINFO locates them, else found in memory by content
    (explorer.sources.memscan); None when neither gives a table (a warning says why).
    Cached by the kernel's build-id (VMCOREINFO ``BUILD-ID``) and moved to this boot's KASLR
    offset when loaded from the cache."""
    tables = kallsyms_tables(image.vmcoreinfo)
    build_id = image.vmcoreinfo.get("BUILD-ID") if image.vmcoreinfo else None
    kind = "kallsyms" if tables is not None else "kallsyms-found"
    path = None
    if _file_name_safe(build_id):  # a dump's BUILD-ID never names a file unless it is hex
        path = cache_dir("symbols", f"{kind}-{build_id}-g{GENERATION}.syms")
    if path is not None:
        table = load_table(path)
        if table is not None:
            stext = image.vmcoreinfo.symbol("_stext") if image.vmcoreinfo else None
            cached = table.address_of("_stext")
            if stext is not None and cached is not None:
                table.relocate(stext - cached)
                return table
    if tables is None:
        from explorer.sources.memscan import kallsyms_in_memory

        table = kallsyms_in_memory(image, notes)
        if table is None:
            return None
    else:
        try:
            table = read_kallsyms(image.read, tables, "kallsyms in the dump")
        except DumpError as exc:
            notes.warnings.append(f"the dump's kallsyms are unusable: {exc.message}")
            return None
    if path is not None and table.address_of("_stext") is not None:
        save_table(table, path)
    return table


def cached_file_symbols(
    path: str, build: Callable[[], SymbolTable], build_id: str | None = None
) -> SymbolTable:
    """A System.map's or vmlinux's table, from the cache when it was read before; ``build()``
    reads it otherwise. A vmlinux is known by its build-id (any copy of one build, wherever
    it lies, hits the same entry); a System.map, which has none, by the file (real path,
    size, modification time)."""
    if _file_name_safe(build_id):
        cache = cache_dir("symbols", f"vmlinux-{build_id}-g{GENERATION}.syms")
    else:
        try:
            real = os.path.realpath(path)
            st = os.stat(real)
        except OSError:
            return build()
        ident = f"{real}\0{st.st_size}\0{st.st_mtime_ns}\0{GENERATION}".encode()
        cache = cache_dir("symbols", f"file-{hashlib.sha256(ident).hexdigest()[:32]}.syms")
    table = load_table(cache)
    if table is None:
        table = build()
        save_table(table, cache)
    return table


__all__ = ["GENERATION", "cached_file_symbols", "dump_kallsyms"]
