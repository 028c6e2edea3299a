"""Measuring the caches in tests: the decompressed copies a cache folder holds, the peak
memory a call needs."""

from __future__ import annotations

import contextlib
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from parsers.errors import DumpError


def copies(cache: Path) -> list[Path]:
    """The decompressed copies (the index and temporaries are hidden names)."""
    return [p for p in cache.iterdir() if not p.name.startswith(".")]


def peak_of(fn: Callable[[], object]) -> int:
    """Peak Python allocation (bytes) while ``fn`` runs."""
    tracemalloc.start()
    try:
        with contextlib.suppress(DumpError):
            fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


__all__ = ["copies", "peak_of"]
