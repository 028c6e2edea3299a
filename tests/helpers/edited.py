"""Edited copies of the bundled real samples, made by a test in its own tmp folder.

``EditedDump.of(tmp_path)`` copies a sample's decompressed ELF vmcore (from the user cache:
decompressed once) and its System.map into ``tmp_path``; :meth:`EditedDump.poke` writes bytes
at a kernel virtual address of the copy; :attr:`kernel` is the untouched original, opened,
for addresses and layouts.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from explorer.cli import main
from explorer.model.kernel import Kernel
from explorer.model.opening import open_kernel
from explorer.model.tasks import TaskScan, find_tasks
from parsers.compressed import decompressed_path
from parsers.dumps.elfcore import ElfCore

REAL = Path(__file__).resolve().parents[2] / "samples" / "real"


@cache
def original(name: str) -> tuple[Kernel, TaskScan]:
    """The unedited sample, opened once per test session, and its tasks."""
    kernel = open_kernel(str(REAL / name / "vmcore.zst"))
    return kernel, find_tasks(kernel)


@dataclass
class EditedDump:
    """A writable copy of a sample: ``path`` (the vmcore), its folder, the original kernel."""

    path: Path
    kernel: Kernel
    scan: TaskScan

    @classmethod
    def of(cls, folder: Path, name: str = "deb12-6.1-idle", map_too: bool = True) -> EditedDump:
        kernel, scan = original(name)
        path = folder / "vmcore"
        shutil.copyfile(decompressed_path(REAL / name / "vmcore.zst"), path)
        if map_too:
            shutil.copyfile(REAL / name / "System.map.zst", folder / "System.map.zst")
        return cls(path, kernel, scan)

    def offset(self, va: int) -> int:
        """File offset of kernel virtual address ``va`` in the copy."""
        pa = self.kernel.space.translate(va)
        core = ElfCore(str(self.path))
        try:
            for s in core.segments:
                if s.paddr <= pa < s.paddr + s.filesz:
                    return s.offset + pa - s.paddr
        finally:
            core.close()
        raise AssertionError(f"0x{va:x} is not in the dump")

    def poke(self, va: int, data: bytes) -> None:
        """Write ``data`` at kernel virtual address ``va`` (within one page)."""
        with open(self.path, "r+b") as f:
            f.seek(self.offset(va))
            f.write(data)

    def poke_u64(self, va: int, value: int) -> None:
        self.poke(va, struct.pack(">Q", value))

    def poke_u32(self, va: int, value: int) -> None:
        self.poke(va, struct.pack(">I", value))

    def rewrite_vmcoreinfo(self, edit: Callable[[str], str]) -> None:
        """Replace the VMCOREINFO text the pointer at absolute 0xE0C leads to by
        ``edit(text)`` (it may grow into the rest of its page)."""
        at0 = self.offset(0)
        with open(self.path, "r+b") as f:
            f.seek(at0 + 0xE0C)
            (ptr,) = struct.unpack(">Q", f.read(8))
            f.seek(at0 + ptr)
            namesz, descsz, kind = struct.unpack(">III", f.read(12))
            desc_at = at0 + ptr + 12 + ((namesz + 3) & ~3)
            f.seek(desc_at)
            text = f.read(descsz).split(b"\0", 1)[0].decode()
            new = edit(text).encode() + b"\0"
            assert desc_at - at0 - ptr + len(new) <= 4096, "VMCOREINFO outgrows its page"
            f.seek(at0 + ptr)
            f.write(struct.pack(">III", namesz, len(new), kind))
            f.seek(desc_at)
            f.write(new + bytes(max(0, descsz - len(new))))

    def file_bytes(self) -> bytearray:
        return bytearray(self.path.read_bytes())

    def offset_of(self, member: str) -> int:
        """A struct member's offset in this kernel (``task_struct.comm``)."""
        assert self.kernel.types is not None
        return self.kernel.types.offset(member)

    def symbol(self, name: str) -> int:
        assert self.kernel.symbols is not None
        return self.kernel.symbols.require(name)


def cli(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    """Run ``backchain ARGV``: exit status, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        if stdin is not None:
            stack.enter_context(_stdin(stdin))
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


@contextlib.contextmanager
def _stdin(text: str) -> Iterator[None]:
    import sys

    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved
