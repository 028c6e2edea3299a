"""The big-guest dumps (issue 26): the 6.12 busy workload booted with 512 MiB and with 16 GiB
(64 GiB too when made), never bundled. ``sudo python3 samples/generate_real.py --big`` makes
them into ``cache_dir("real", "big", "bpo12-6.12-busy-SIZE")/``: ``vmcore.kdump-zlib``
(QEMU's kdump, zero pages written once), ``vmcore.elf`` (sparse), ``console.log``,
``facts.json`` (the guest's own ps, /proc stat lines and sysrq-t traces) and links to the
kernel's ``vmlinux`` and ``System.map``; and a synthetic address space of 1 TiB built from
the 512 MiB guest (:func:`build_synthetic`), sparse, for the cost curve."""

from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

from parsers.cache import cache_dir

SAMPLE = "bpo12-6.12-busy"
SMALL = "512M"
MAKE = "sudo python3 samples/generate_real.py --big"
PAGE = 4096


def size_mib(label: str) -> int:
    """``512M`` -> 512, ``16G`` -> 16384, ``1T`` -> 1048576."""
    m = re.fullmatch(r"(\d+)([MGT])", label)
    if not m:
        raise ValueError(label)
    return int(m[1]) << {"M": 0, "G": 10, "T": 20}[m[2]]


def folder(label: str) -> Path:
    return cache_dir("real", "big", f"{SAMPLE}-{label}")


def made() -> list[str]:
    """Sizes of the big-guest dumps in the cache (facts.json written last), smallest first."""
    base = cache_dir("real", "big")
    labels = [
        p.name.removeprefix(f"{SAMPLE}-")
        for p in base.glob(f"{SAMPLE}-*")
        if (p / "facts.json").is_file() and (p / "vmcore.kdump-zlib").is_file()
    ]
    return sorted((lbl for lbl in labels if re.fullmatch(r"\d+[MGT]", lbl)), key=size_mib)


def facts(label: str) -> dict:
    return json.loads((folder(label) / "facts.json").read_text())


def build_synthetic(label: str, out: Path) -> dict[str, Path]:
    """The 512 MiB guest's memory in an address space of ``label`` (``1T``), with the
    project's own writers (parsers/write): ``vmcore.elf``, one PT_LOAD of the whole size
    (sparse: only the guest's non-zero 1 MiB blocks are written), and ``vmcore.kdump``,
    kdump-zlib whose RAM bitmap has the guest's pages and one page at the top of the space
    (holes between) and whose written bitmap leaves zero pages out (makedumpfile -d 1).
    The guest's kernel still describes 512 MiB: what grows is what a reader must get
    through. Made once; ``vmlinux`` and ``System.map`` are linked beside them."""
    from parsers.dumps.dumpfile import open_dump
    from parsers.write.convert import dump_notes, write_kdump
    from parsers.write.elfwriter import build_elf_header, build_phdr, encode_note

    size = size_mib(label) << 20
    out.mkdir(parents=True, exist_ok=True)
    small = folder(SMALL)
    for name in ("vmlinux", "System.map"):
        link = out / name
        if not link.exists():
            link.symlink_to(os.path.realpath(small / name))
    elf, kdump = out / "vmcore.elf", out / "vmcore.kdump"
    src = open_dump(str(small / "vmcore.elf"))
    try:
        if not elf.exists():
            notes = b"".join(encode_note(n) for n in dump_notes(src))
            head = 64 + 2 * 56
            data = (head + len(notes) + PAGE - 1) & ~(PAGE - 1)
            tmp = elf.with_suffix(".part")
            zero = bytes(1 << 20)
            with open(tmp, "wb") as f:
                f.write(build_elf_header(2))
                f.write(build_phdr("PT_NOTE", head, 0, len(notes)))
                f.write(build_phdr("PT_LOAD", data, 0, size))
                f.write(notes)
                for r in src.ranges:
                    for pos in range(r.start, r.end, 1 << 20):
                        block = bytes(src.read(pos, min(1 << 20, r.end - pos)))
                        if block != zero[: len(block)]:
                            f.seek(data + pos)
                            f.write(block)
                f.truncate(data + size)
            tmp.rename(elf)
        if not kdump.exists():
            spread = _Spread(src, size)
            write_kdump(spread, str(kdump), exclude=spread.zero_page)
    finally:
        src.close()
    return {"elf": elf, "kdump": kdump}


class _Spread:
    """A dump seen with one more (zero) page at the top of an address space of ``size``."""

    def __init__(self, dump: object, size: int) -> None:
        from parsers.dumps.physmem import MemoryRange

        self._dump = dump
        self._top = size - PAGE
        self.ranges = [*dump.ranges, MemoryRange(self._top, size)]  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._dump, name)

    def read(self, address: int, size: int) -> bytes:
        if address >= self._top:
            return bytes(size)
        return bytes(self._dump.read(address, size))  # type: ignore[attr-defined]

    def zero_page(self, pfn: int) -> bool:
        page = self.read(pfn * PAGE, PAGE)
        return page.count(0) == PAGE


def elf_size(path: Path) -> int:
    """The memory one PT_LOAD-only ELF core describes (sum of p_memsz)."""
    with open(path, "rb") as f:
        head = f.read(64)
        (phoff,) = struct.unpack_from(">Q", head, 0x20)
        phentsize, phnum = struct.unpack_from(">HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    total = 0
    for k in range(phnum):
        kind, _, _, _, _, _, memsz = struct.unpack_from(">IIQQQQQ", table, k * phentsize)
        if kind == 1:
            total += memsz
    return total
