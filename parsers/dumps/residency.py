"""Bounded residency for the read-only dump mappings.

Pages of a file mapping count in a process's resident set (``ps``/``top`` RSS) once
touched, and stay there until the mapping goes away: walking every stack of a 10,000-task
dump would keep most of the dump resident. The readers charge each read to a
:class:`ResidentBudget`; past its limit the whole mapping is told ``MADV_DONTNEED``. For a
read-only file mapping that only drops the page-table entries: the data stays in the page
cache and a later read maps it again (a minor fault), so no data is lost or re-read from
disk, and the resident set stays near the limit.

The budget also guards every read against a file that shrank while mapped (another process
truncating or rewriting a dump a shell or served session has open): touching a mapped page
past the file's new end kills the process with ``SIGBUS``, which Python cannot catch. Each
charge compares the file's size (``fstat`` of the mapping's descriptor) with the mapping's
and raises a :class:`DumpError` instead.
"""

from __future__ import annotations

import mmap

from parsers.errors import DumpError

#: Bytes that may become resident through one mapping before its pages are dropped.
RESIDENT_LIMIT = 64 << 20
#: What one read may make resident beyond its own bytes: on a page fault Linux maps the
#: page-cache pages around the faulting one too (``fault_around_bytes``, 64 KiB).
FAULT_AROUND = 64 << 10


class ResidentBudget:
    """Counts bytes read from a mapping; past ``limit``, drops its resident pages.

    Args:
        mapping: the read-only mapping.
        limit: bytes that may become resident between two drops (each read counts its
            size plus :data:`FAULT_AROUND`).
    """

    __slots__ = ("_length", "_mapping", "drops", "limit", "path", "used")

    def __init__(self, mapping: mmap.mmap, limit: int = RESIDENT_LIMIT, path: str = "") -> None:
        self._mapping = mapping
        self._length = len(mapping)
        #: The mapped file, for the message when it shrinks.
        self.path = path
        self.limit = limit
        self.used = 0
        #: How many times the pages were dropped (for tests and benchmarks).
        self.drops = 0

    def charge(self, size: int) -> None:
        """Count a read of ``size`` bytes (made next, from the mapping).

        Raises:
            DumpError: the file is now shorter than the mapping: a read could touch a page
                past its end (``SIGBUS``).
        """
        try:
            now = self._mapping.size()
        except (OSError, ValueError):  # closed: the read itself says so
            now = self._length
        if now < self._length:
            raise DumpError(
                f"the file shrank from {self._length} to {now} bytes while open (truncated or "
                "rewritten by another process): open it again once it is complete",
                self.path,
            )
        self.used += size + FAULT_AROUND
        if self.used > self.limit:
            self.release()

    def release(self) -> None:
        """Drop the mapping's resident pages now (a no-op where madvise is missing)."""
        self.used = 0
        advise = getattr(self._mapping, "madvise", None)
        flag = getattr(mmap, "MADV_DONTNEED", None)
        if advise is None or flag is None:
            return
        try:
            advise(flag)
            self.drops += 1
        except (ValueError, OSError):  # closed, or not supported here
            pass
