"""The physical-memory interface every dump reader offers.

A dump holds *absolute* memory of the machine (s390 "absolute" addresses, which differ from
"real" ones only in the two lowcore pages of each CPU; see :mod:`parsers.dumps.memory`). Readers
expose it as sorted, non-overlapping ranges; a read that touches bytes the dump does not hold
raises :class:`~parsers.errors.UnmappedError` naming the first missing address: never silent
zeros.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from parsers.errors import UnmappedError

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class MemoryRange:
    """A run of absolute memory ``[start, end)`` held in the dump."""

    start: int
    end: int

    @property
    def size(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start


class PhysicalMemory(Protocol):
    """What the rest of the tool needs from any dump format."""

    path: str

    @property
    def ranges(self) -> Sequence[MemoryRange]:
        """Absolute memory held in the dump, sorted by address."""
        ...

    def read(self, address: int, size: int) -> bytes:
        """Read ``size`` bytes of absolute memory; raise UnmappedError on a hole."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


class RangeIndex:
    """Sorted ranges with bisect look-up; shared by the readers.

    Args:
        starts_ends: (start, end, payload) triples; payload is reader-specific
            (e.g. the file offset of the range).
    """

    def __init__(self, starts_ends: Sequence[tuple[int, int, int]]) -> None:
        items = sorted(starts_ends)
        self.starts = [s for s, _, _ in items]
        self.ends = [e for _, e, _ in items]
        self.payloads = [p for _, _, p in items]

    def find(self, address: int) -> int:
        """Index of the range holding ``address``, or -1."""
        i = bisect.bisect_right(self.starts, address) - 1
        if i >= 0 and address < self.ends[i]:
            return i
        return -1

    def ranges(self) -> list[MemoryRange]:
        """The ranges, adjacent ones merged."""
        out: list[MemoryRange] = []
        for s, e in zip(self.starts, self.ends, strict=True):
            if out and out[-1].end == s:
                out[-1] = MemoryRange(out[-1].start, e)
            else:
                out.append(MemoryRange(s, e))
        return out


def read_u64(mem: PhysicalMemory, address: int) -> int:
    """Read one big-endian u64 of absolute memory."""
    return int(_U64.unpack(mem.read(address, 8))[0])


def read_u32(mem: PhysicalMemory, address: int) -> int:
    """Read one big-endian u32 of absolute memory."""
    return int(_U32.unpack(mem.read(address, 4))[0])


def total_size(mem: PhysicalMemory) -> int:
    """Bytes of memory the dump holds."""
    return sum(r.size for r in mem.ranges)


def check_mapped(mem: PhysicalMemory, address: int) -> bool:
    """True if one byte at ``address`` can be read."""
    try:
        mem.read(address, 1)
    except UnmappedError:
        return False
    return True
