"""The dump's own symbol table: the kernel's kallsyms, read where VMCOREINFO locates them or
found in its memory by content (explorer.sources.memscan), through the symbol-table cache
(explorer.sources.symcache)."""

from __future__ import annotations

from explorer.image.dumpimage import Diagnostics, DumpImage
from explorer.sources.symcache import cached_kallsyms
from parsers.errors import DumpError
from parsers.symbols.table import SymbolTable


def dump_kallsyms(image: DumpImage, notes: Diagnostics) -> SymbolTable | None:
    """The kernel's kallsyms: where VMCOREINFO locates them, else found in memory by content
    (explorer.sources.memscan); None when neither gives a table (a warning says why).
    Decoded once and cached by a digest of the bytes decoded (:func:`cached_kallsyms`)."""
    from parsers.symbols.kallsyms import kallsyms_tables  # (not for a vmlinux's symbols)

    tables = kallsyms_tables(image.vmcoreinfo)
    if tables is None:
        from explorer.sources.memscan import kallsyms_in_memory

        return kallsyms_in_memory(image, notes)
    try:
        return cached_kallsyms(image.read, tables, "kallsyms in the dump")
    except DumpError as exc:
        notes.warnings.append(f"the dump's kallsyms are unusable: {exc.message}")
        return None


__all__ = ["dump_kallsyms"]
