"""Stream a decompressor's output into a file with holes where whole pages are zero.

A dump is mostly zero pages (free memory, excluded pages written as zeros). Writing them
costs page-cache pages and disk blocks that hold nothing: :func:`copy_sparse` writes only
the runs of pages that are not all zero (``os.pwrite`` at their offset) and sets the file's
size at the end, so the zero pages are holes: they read as zeros (``read``, ``mmap``) and
take no blocks. The decompression runs in a second thread (the decompressors release the
GIL) while this thread looks for zero pages and writes, into a few reused buffers.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Protocol

#: The unit of a hole: a file system block (a page).
PAGE = 1 << 12
#: Pages are looked at a block at a time first: a zero block is one comparison.
BLOCK = 1 << 16
#: Bytes decompressed per buffer; :data:`DEPTH` buffers go round between the two threads.
CHUNK = 1 << 22
DEPTH = 3

_ZEROS = memoryview(bytes(BLOCK))  # a run is compared a block at most at a time


class ReadInto(Protocol):
    """A decompressor's reader (``zstandard``'s stream reader, ``lzma.LZMAFile``, ...)."""

    def readinto(self, buffer: memoryview, /) -> int: ...


def _zero(buffer: bytearray, start: int, end: int) -> bool:
    # startswith compares in place (memcmp): no slice of the buffer is copied
    return buffer.startswith(_ZEROS[: end - start], start)


def nonzero_runs(buffer: bytearray, n: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` runs of ``buffer[:n]`` to write: its pages that are not all zero,
    adjacent ones joined (a last partial page counts as a page). What is left out is zero."""
    runs: list[tuple[int, int]] = []
    start = -1  # where the run being gathered began
    block = 0
    while block < n:
        block_end = min(n, block + BLOCK)
        if _zero(buffer, block, block_end):
            if start >= 0:
                runs.append((start, block))
                start = -1
        else:
            for page in range(block, block_end, PAGE):
                page_end = min(block_end, page + PAGE)
                if _zero(buffer, page, page_end):
                    if start >= 0:
                        runs.append((start, page))
                        start = -1
                elif start < 0:
                    start = page
        block = block_end
    if start >= 0:
        runs.append((start, n))
    return runs


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        done = os.pwrite(fd, data, offset)
        data, offset = data[done:], offset + done


def _drain(
    reader: ReadInto,
    free: queue.SimpleQueue[bytearray | None],
    full: queue.SimpleQueue[tuple[bytearray, int, int] | BaseException],
    stop: threading.Event,
    consumed: Callable[[], int],
) -> None:
    """Fill the free buffers from ``reader`` until it ends or ``stop``; the reader is let go
    when this returns (its only reference)."""
    try:
        while not stop.is_set():
            buffer = free.get()
            if buffer is None:
                return
            n = reader.readinto(memoryview(buffer))
            full.put((buffer, n, consumed()))
            if not n:
                return
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()


#: Called in the caller's thread after each buffer: (bytes of output so far, bytes of input
#: read so far). It may raise (a size limit, progress interrupted): then nothing more of
#: that buffer is written and the decompression stops.
Checkpoint = Callable[[int, int], None]


def copy_sparse(
    open_reader: Callable[[], ReadInto],
    fd: int,
    consumed: Callable[[], int],
    checkpoint: Checkpoint,
) -> tuple[int, int]:
    """Write everything the reader gives to ``fd`` (from offset 0), zero pages as holes;
    the file's size is set to the output's at the end.

    Args:
        open_reader: makes the reader of decompressed data, in a second thread, which reads
            it and lets it go there (a zstd decompressor's window, up to its frame's window
            size, is freed while this thread writes the last buffers).
        fd: a new empty file, opened for writing.
        consumed: how many input bytes the reader has taken (read in the reader's thread).
        checkpoint: see :data:`Checkpoint`.

    Returns:
        (bytes of output, bytes of it written: the rest are holes).

    Raises:
        whatever ``reader`` or ``checkpoint`` raises, after the reading thread has ended.
    """
    free: queue.SimpleQueue[bytearray | None] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int, int] | BaseException] = queue.SimpleQueue()
    stop = threading.Event()
    for _ in range(DEPTH):
        free.put(bytearray(CHUNK))

    def decompress() -> None:
        try:
            _drain(open_reader(), free, full, stop, consumed)
        except BaseException as exc:  # handed to the caller's thread, raised there
            full.put(exc)

    worker = threading.Thread(target=decompress, name="decompress", daemon=True)
    worker.start()
    total = written = 0
    try:
        while True:
            item = full.get()
            if isinstance(item, BaseException):
                raise item
            buffer, n, read = item
            if not n:
                break
            checkpoint(total + n, read)
            view = memoryview(buffer)
            for start, end in nonzero_runs(buffer, n):
                _pwrite_all(fd, view[start:end], total + start)
                written += end - start
            total += n
            free.put(buffer)
        os.ftruncate(fd, total)
    finally:
        stop.set()
        free.put(None)
        worker.join()
    return total, written
