"""Open any dump file by content: one entry point behind the physical-memory interface."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from parsers.compressed import ZSTD_MAGIC, decompressed_path
from parsers.dumps.elfcore import ElfCore, Note, open_file_checked
from parsers.dumps.physmem import MemoryRange
from parsers.elf.extent import dump_extent
from parsers.errors import DumpError, FormatError

Progress = Callable[[int, int], None]


class DumpFile(Protocol):
    """What every dump reader offers (ELF, compressed kdump, s390 stand-alone formats).

    Attributes:
        path: the file read (a decompressed cache copy for ``.zst``).
        source_path: the file the user named.
        format: short format id: "elf", "kdump", "kdump-flat", "s390", "s390_ext".
        notes: ELF notes kept in the file (per-CPU registers, VMCOREINFO); empty if none.
        cpu_registers: registers per CPU when the format has no notes (s390 formats read
            them from the lowcore save areas), else None.
    """

    path: str
    source_path: str
    format: str
    notes: list[Note]
    cpu_registers: Sequence[Any] | None

    @property
    def ranges(self) -> Sequence[MemoryRange]:
        """Absolute memory held in the dump, sorted."""
        ...

    def read(self, address: int, size: int) -> bytes:
        """Absolute memory; UnmappedError for bytes the dump does not hold."""
        ...

    @property
    def vmcoreinfo_text(self) -> str | None:
        """VMCOREINFO kept in the file, if any."""
        ...

    def format_facts(self) -> dict[str, Any]:
        """Format-specific facts for ``backchain info`` (zgetdump -i style)."""
        ...

    def close(self) -> None:
        """Release the file."""
        ...


def sniff(path: str) -> bytes:
    """The first 16 bytes of ``path`` (with the usual OS errors as DumpError)."""
    fd = open_file_checked(path)
    try:
        return os.read(fd, 16)
    except OSError as exc:  # EIO from a failing disk, EISDIR, ...
        raise DumpError(f"cannot read: {exc.strerror or exc}", path) from None
    finally:
        os.close(fd)


def open_dump(path: str | Sequence[str], progress: Progress | None = None) -> DumpFile:
    """Open a dump, detected by its content; ``.zst`` files are decompressed once into cache.

    Args:
        path: the dump file (or all files of a split makedumpfile dump).
        progress: called with (done, total) bytes while decompressing.

    Raises:
        DumpError: unreadable, or not a format backchain reads.
    """
    if not isinstance(path, str):
        if len(path) == 1:
            return open_dump(path[0], progress)
        from parsers.dumps.kdump import KdumpFile

        for name in path:
            if sniff(name)[:8] != b"KDUMP   " and not sniff(name).startswith(b"makedumpfile"):
                raise FormatError(
                    "only the parts of a split kdump dump can be given together", name
                )
        return KdumpFile(list(path))
    head = sniff(path)
    if not head:
        raise FormatError("empty file", path)
    if head[:4] == ZSTD_MAGIC:
        real = decompressed_path(path, progress=progress, extent=dump_extent)
        try:
            core = open_dump(str(real))
        except DumpError as exc:
            raise DumpError(f"{exc.message} (after zstd decompression)", path) from None
        core.source_path = path
        return core
    if head[:4] == b"\x7fELF":
        return ElfCore(path)
    if head[:8] == b"KDUMP   " or head[:16].startswith(b"makedumpfile"):
        from parsers.dumps.kdump import KdumpFile

        return KdumpFile(path)
    if head[:8] in (bytes.fromhex("a8190173618f23fd"), bytes.fromhex("a8190173618f23fe")):
        from parsers.dumps.s390dump import S390Dump

        return S390Dump(path)
    raise FormatError("not a dump format backchain reads (expected an s390x ELF vmcore)", path)
