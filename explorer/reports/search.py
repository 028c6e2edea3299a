"""Where a value lies in the dump (``search``, crash's search): in all memory the dump holds,
or on the kernel stacks of tasks (``search -t``). Aligned words, big-endian, as the kernel
stores them; bounded by a hit limit, read in chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from explorer.model.kernel import Kernel
from explorer.model.tasks import Task
from parsers.errors import DumpError

#: Bytes read at a time (a multiple of every word size).
CHUNK = 1 << 20
PAGE = 4096


@dataclass(frozen=True, slots=True)
class Hit:
    """One place holding the value.

    Attributes:
        address: the kernel virtual address (identity map for memory; the stack's address
            for ``-t``), None when memory has no identity mapping.
        physical: the absolute address (memory search), None for a stack hit.
        task: the task whose stack holds it (``-t``).
    """

    address: int | None
    physical: int | None
    task: Task | None = None


def _offsets(data: bytes, needle: bytes, size: int) -> Iterator[int]:
    """Offsets of ``needle`` in ``data`` that are multiples of ``size``."""
    at = data.find(needle)
    while at >= 0:
        if at % size == 0:
            yield at
        at = data.find(needle, at + 1)


def _chunks(kernel: Kernel, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    """Absolute memory ``[start, end)`` in chunks; pages the dump lacks are skipped."""
    pos = start
    while pos < end:
        size = min(CHUNK, end - pos)
        try:
            yield pos, kernel.dump.read(pos, size)
        except DumpError:  # a filtered page inside the range: page by page
            for page in range(pos, pos + size, PAGE):
                try:
                    yield page, kernel.dump.read(page, min(PAGE, pos + size - page))
                except DumpError:
                    continue
        pos += size


def search_memory(kernel: Kernel, value: int, size: int, limit: int) -> tuple[list[Hit], bool]:
    """Every aligned ``size``-byte word equal to ``value`` in the dump's memory (at most
    ``limit``); True as well when more were left out."""
    needle = value.to_bytes(size, "big")
    lay = kernel.layout
    hits: list[Hit] = []
    for r in kernel.dump.ranges:
        for base, data in _chunks(kernel, r.start, r.end):
            for off in _offsets(data, needle, size):
                phys = base + off
                va = None
                if phys < lay.identity_size:
                    va = lay.identity_base + phys
                if len(hits) >= limit:
                    return hits, True
                hits.append(Hit(va, phys))
    return hits, False


def search_stacks(
    kernel: Kernel, tasks: Iterable[Task], value: int, size: int, limit: int
) -> tuple[list[Hit], bool]:
    """Every aligned word equal to ``value`` on the kernel stack of each task (at most
    ``limit``); True as well when more were left out. Unreadable stacks are skipped."""
    needle = value.to_bytes(size, "big")
    hits: list[Hit] = []
    for task in tasks:
        rng = task.stack_range
        if rng is None:
            continue
        try:
            data = kernel.read(rng.begin, rng.end - rng.begin)
        except DumpError:
            continue
        for off in _offsets(data, needle, size):
            if len(hits) >= limit:
                return hits, True
            hits.append(Hit(rng.begin + off, None, task))
    return hits, False
