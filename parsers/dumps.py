"""Open any dump file by content: one entry point behind the physical-memory interface."""

from __future__ import annotations

import os
from collections.abc import Callable

from parsers.compressed import ZSTD_MAGIC, decompressed_path
from parsers.elfcore import ElfCore, open_file_checked
from parsers.errors import DumpError, FormatError

Progress = Callable[[int, int], None]


def sniff(path: str) -> bytes:
    """The first 16 bytes of ``path`` (with the usual OS errors as DumpError)."""
    fd = open_file_checked(path)
    try:
        return os.read(fd, 16)
    finally:
        os.close(fd)


def open_dump(path: str, progress: Progress | None = None) -> ElfCore:
    """Open a dump, detected by its content; ``.zst`` files are decompressed once into cache.

    Args:
        path: the dump file.
        progress: called with (done, total) bytes while decompressing.

    Raises:
        DumpError: unreadable, or not a format backchain reads.
    """
    head = sniff(path)
    if not head:
        raise FormatError("empty file", path)
    if head[:4] == ZSTD_MAGIC:
        real = decompressed_path(path, progress=progress)
        try:
            core = open_dump(str(real))
        except DumpError as exc:
            raise DumpError(f"{exc.message} (after zstd decompression)", path) from None
        core.source_path = path
        return core
    if head[:4] == b"\x7fELF":
        return ElfCore(path)
    if head[:8] == b"KDUMP   ":
        raise FormatError("compressed kdump (makedumpfile) format is not supported yet", path)
    if head[:16].startswith(b"makedumpfile"):
        raise FormatError("flattened makedumpfile format is not supported yet", path)
    if head[:8] in (bytes.fromhex("a8190173618f23fd"), bytes.fromhex("a8190173618f23fe")):
        raise FormatError("s390 stand-alone dump format is not supported yet", path)
    raise FormatError("not a dump format backchain reads (expected an s390x ELF vmcore)", path)
