"""Where a System.map's or vmlinux's symbol table is cached, and whether it is: all that a
start needs to know before it forks the worker that builds one
(:mod:`explorer.sources.prefetch`), without the readers of :mod:`explorer.sources.symcache`."""

from __future__ import annotations

from pathlib import Path

from parsers.cache import cache_dir

#: Bumped whenever the way a table is built or stored changes (filtering, order, the file
#: layout of parsers.symbols.cache), so that tables cached by an older backchain are not used
#: (nor overwritten: both can share one cache).
GENERATION = 4


def file_cache(key: str) -> Path:
    """The cache file of the table keyed ``key`` (a digest of the bytes it is read from)."""
    return cache_dir("symbols", f"file-{key}-g{GENERATION}.syms")


def file_symbols_cached(key: str | None) -> bool:
    """Whether a table is cached under ``key`` (it may still prove damaged when read)."""
    return key is not None and file_cache(key).is_file()


__all__ = ["GENERATION", "file_cache", "file_symbols_cached"]
