"""Seed inputs for the hostile-input tests: small, deterministic dumps and companion files.

Every seed is built by code from the synthetic kernel (no binary files in the tree): one ELF
vmcore of a 2-CPU kernel with sleeping tasks, the same memory as compressed kdump (plain and
flattened) and as "s390_ext", a tiny "s390" dump, a BTF blob, a type profile and a
System.map. Each seed also lists its *structural boundaries*: the file offsets where a
header field, a table entry, a record or a segment starts, which the mutators aim at.
"""

from __future__ import annotations

import datetime
import functools
import shutil
import struct
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from explorer.training.synthetic import SyntheticKernel
from parsers.dumps.dumpfile import open_dump
from parsers.dumps.elfcore import ElfCore
from parsers.dumps.kdump import KdumpFile
from parsers.dumps.physmem import MemoryRange
from parsers.dumps.s390dump import S390Dump
from parsers.write.convert import write_kdump, write_s390
from tests.helpers.kernels import base_kernel, sleeper

#: Fixed dump time, so that every build of the seeds is byte-identical.
WHEN = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Seed:
    """One seed file.

    Attributes:
        name: short id ("elf", "kdump", ...).
        data: the file's bytes.
        boundaries: file offsets where a structure or a field starts (sorted, unique).
        pointers: kernel virtual addresses worth writing into memory (tasks, list nodes,
            stack frames): what a corrupted pointer most confusingly points to.
    """

    name: str
    data: bytes
    boundaries: tuple[int, ...]
    pointers: tuple[int, ...] = ()


@dataclass(frozen=True)
class KernelSeeds:
    """The synthetic kernel: its folder (dump, System.map, profile.json) and facts."""

    folder: Path
    kernel: SyntheticKernel
    #: (file offset in the ELF seed, kernel virtual address) of memory words worth mutating.
    memory_words: tuple[tuple[int, int], ...]


def build_kernel() -> SyntheticKernel:
    """A 2-CPU kernel: idle swappers, two tasks sleeping in nanosleep, one kthread."""
    k = base_kernel(cpus=2)
    sleeper(k, 100, "sleep")
    sleeper(k, 101, "cat")
    worker = k.add_task(102, "kworker/0:1", "I", kthread=True)
    k.task_stack(worker, [*_frames("__schedule", "schedule", "worker_thread", "kthread")])
    return k


def _frames(*names: str) -> list:  # type: ignore[type-arg]
    from explorer.training.synthetic import Frame

    return [Frame(n, 0x40) for n in names]


@functools.cache
def kernel_seeds() -> KernelSeeds:
    """Build the synthetic kernel once per process into a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="backchain-seeds-"))
    k = build_kernel()
    path = k.save(folder)
    core = ElfCore(str(path))
    try:
        words: list[tuple[int, int]] = []

        def add(va: int, size: int) -> None:
            for v in range(va, va + size, 8):
                try:
                    pa = k.va_to_pa(v)
                except Exception:
                    continue
                off = _file_offset(core, pa)
                if off is not None:
                    words.append((off, v))

        for t in k.tasks:
            add(t.address, k.sizes["task_struct"])
            if t.ksp:
                add(t.ksp, 0x400)
        for cpu in k.cpus:
            add(cpu.prefix, 0x2000)
    finally:
        core.close()
    return KernelSeeds(folder, k, tuple(sorted(set(words))))


def _file_offset(core: ElfCore, pa: int) -> int | None:
    for s in core.segments:
        if s.paddr <= pa < s.paddr + s.filesz:
            return s.offset + pa - s.paddr
    return None


def companions(folder: Path) -> None:
    """Copy System.map and profile.json of the synthetic kernel into ``folder``."""
    ks = kernel_seeds()
    for name in ("System.map", "profile.json"):
        shutil.copyfile(ks.folder / name, folder / name)


class _Clipped:
    """A dump seen only below ``limit`` (to make a small plain "s390" dump)."""

    def __init__(self, dump: object, limit: int) -> None:
        self._dump = dump
        self._limit = limit

    def __getattr__(self, name: str) -> object:
        return getattr(self._dump, name)

    @property
    def ranges(self) -> Sequence[MemoryRange]:
        out = []
        for r in self._dump.ranges:  # type: ignore[attr-defined]
            if r.start < self._limit:
                out.append(MemoryRange(r.start, min(r.end, self._limit)))
        return out


@functools.cache
def seeds() -> dict[str, Seed]:
    """All seeds by name, built once per process."""
    ks = kernel_seeds()
    folder = ks.folder
    elf_path = folder / "vmcore"
    out: dict[str, Seed] = {}
    dump = open_dump(str(elf_path))
    try:
        write_kdump(dump, str(folder / "kdump"), compression="zlib")
        write_kdump(dump, str(folder / "kdump-flat"), compression="zlib", flattened=True)
        write_s390(dump, str(folder / "s390_ext"), when=WHEN)
        write_s390(_Clipped(dump, 0x10000), str(folder / "s390"), extended=False, when=WHEN)
    finally:
        dump.close()
    elf = elf_path.read_bytes()
    pointers = tuple(sorted({va for _, va in ks.memory_words[::7]}))
    out["elf"] = Seed("elf", elf, _elf_boundaries(elf_path), pointers)
    for name in ("kdump", "kdump-flat"):
        path = folder / name
        out[name] = Seed(name, path.read_bytes(), _kdump_boundaries(path))
    for name in ("s390_ext", "s390"):
        path = folder / name
        out[name] = Seed(name, path.read_bytes(), _s390_boundaries(path))
    return out


def _uniq(values: list[int], size: int) -> tuple[int, ...]:
    return tuple(sorted({v for v in values if 0 <= v <= size}))


def _elf_boundaries(path: Path) -> tuple[int, ...]:
    core = ElfCore(str(path))
    try:
        data = path.read_bytes()
        phoff = struct.unpack_from(">Q", data, 32)[0]
        phnum = struct.unpack_from(">H", data, 56)[0]
        b = [0, 16, 18, 32, 54, 56, 64]
        for i in range(phnum):
            base = phoff + i * 56
            b += [base + f for f in (0, 8, 16, 24, 32, 40)]
        for s in core.segments:
            b += [s.offset, s.offset + s.filesz]
        for n in core.notes:
            b += [n.offset, n.offset + 4, n.offset + 8, n.offset + 12]
        return _uniq(b, len(data))
    finally:
        core.close()


def _kdump_boundaries(path: Path) -> tuple[int, ...]:
    k = KdumpFile(str(path))
    try:
        part = k._parts[0]
        src = part.src
        bs = part.block_size
        logical = [8, 0x198, 0x1A8, 0x1AC, 0x1B0, 0x1B4, 0x1B8, 0x1CC]
        logical += [bs + f for f in range(0, 0x68, 8)]
        bm1 = bs * 2
        logical += [bm1, part.data_offset]
        for i in range(min(part.dumped_pages, 40)):
            logical += [part.data_offset + 24 * i, part.data_offset + 24 * i + 8]
        pfns = [r.start >> 12 for r in k.ranges]
        for pfn in pfns[:8]:
            logical.append(part.descriptor(pfn)[0])
        if not src.flattened:
            return _uniq(logical, src.file_size)
        # flattened: map logical offsets to file offsets, and add the record headers
        b = [0, 4096]
        for s, e, off in zip(src._starts, src._ends, src._offs, strict=True):
            b += [off - 16, off - 8, off]
            b += [off + x - s for x in logical if s <= x < e]
        return _uniq(b, src.file_size)
    finally:
        k.close()


def _s390_boundaries(path: Path) -> tuple[int, ...]:
    d = S390Dump(str(path))
    try:
        b = [8, 0xC, 0x14, 0x18, 0x20, 0x28, 0x38, 0x48, 0x5D, 0x61, 0x62, 0x800]
        for seg in d.segments:
            hdr = seg.data_offset - 0x1000
            b += [hdr, hdr + 8, hdr + 0x10, hdr + 0x18, hdr + 0x30, hdr + 0x34, seg.data_offset]
            b.append(seg.data_offset + seg.disk_size)
        return _uniq(b, d.file_size)
    finally:
        d.close()
