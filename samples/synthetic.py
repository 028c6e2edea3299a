"""Build synthetic s390x kernel dumps: the fixtures of the tests and the training scenarios.

Everything is written with the schemas of :mod:`parsers.structs` in build mode and the ELF
writer of :mod:`parsers.elfwriter`, laid out like a QEMU ``dump-guest-memory`` of a v6.1-style
kernel (legacy layout: identity map at 0, the kernel image inside it, VMAP stacks in vmalloc
space reached through page tables). Only the pages a scenario touches are written, so dumps
stay small; reading any other page reports it as not in the dump. Output is deterministic.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from parsers.elfwriter import NoteSpec, memory_runs, write_elf_core
from parsers.structs import (
    NT_PRFPREG,
    NT_PRSTATUS,
    NT_S390_CTRS,
    NT_S390_PREFIX,
    NT_S390_TIMER,
    NT_S390_TODCMP,
    NT_S390_TODPREG,
    build_lowcore,
    build_note_desc,
    build_prstatus,
)

PAGE = 4096
KERNEL_PSW_MASK = 0x0704C00180000000  # DAT, IO, EXT, MCHECK, home space, 64-bit
KERNEL_WAIT_PSW_MASK = 0x0706C00180000000  # ... plus wait state (an idle CPU)
USER_PSW_MASK = 0x0705C00180000000  # ... problem state (user mode)
VMALLOC_BASE = 0x37F_0000_0000  # where the synthetic kernel's vmalloc area starts

_U64 = struct.Struct(">Q")


@dataclass
class SyntheticCpu:
    """A CPU to write: registers in the notes and its lowcore at ``prefix``."""

    prefix: int
    psw: tuple[int, int]
    gprs: list[int]
    lowcore: dict[str, object] = field(default_factory=dict)
    crs: list[int] = field(default_factory=lambda: [0] * 16)


class SyntheticDump:
    """An absolute-memory image plus CPUs and symbols, written as an ELF vmcore.

    Args:
        release: the kernel release written into VMCOREINFO.
        mem_size: size of "physical memory" (only touched pages are written).
        lowcore_era: era of the lowcore schema to build.
        vmcoreinfo_note: write VMCOREINFO as an ELF note (kdump style) instead of only
            through the pointer at absolute 0xE0C (QEMU style).
    """

    def __init__(
        self,
        release: str = "6.1.0-synthetic-s390x",
        mem_size: int = 256 << 20,
        lowcore_era: str = "v6.1",
        vmcoreinfo_note: bool = False,
    ) -> None:
        self.release = release
        self.mem_size = mem_size
        self.lowcore_era = lowcore_era
        self.vmcoreinfo_note = vmcoreinfo_note
        self.pages: dict[int, bytearray] = {}
        self.symbols: list[tuple[int, str, str]] = []
        self.cpus: list[SyntheticCpu] = []
        self.vmcoreinfo: dict[str, str] = {"OSRELEASE": release, "PAGESIZE": "4096"}
        self._text_next = 0x100000 + 0x1000  # kernel text starts at 1 MiB (legacy layout)
        self._data_next = 0x2000000  # data/heap from 32 MiB
        self._vmalloc_next = VMALLOC_BASE
        self.asce = 0
        self._rtt = 0
        self.add_symbol("_text", 0x100000)
        self.add_symbol("_stext", 0x100000)

    # -- memory --------------------------------------------------------------------------------
    def write(self, address: int, data: bytes) -> None:
        """Write absolute memory."""
        pos = 0
        while pos < len(data):
            a = address + pos
            page = self.pages.setdefault(a & ~(PAGE - 1), bytearray(PAGE))
            off = a & (PAGE - 1)
            take = min(PAGE - off, len(data) - pos)
            page[off : off + take] = data[pos : pos + take]
            pos += take

    def put_u64(self, address: int, value: int) -> None:
        """Write one big-endian u64 of absolute memory."""
        self.write(address, _U64.pack(value & 0xFFFFFFFFFFFFFFFF))

    def touch(self, address: int, size: int) -> None:
        """Make a range present in the dump (zero-filled) without changing its contents."""
        for page in range(address & ~(PAGE - 1), address + size, PAGE):
            self.pages.setdefault(page, bytearray(PAGE))

    def alloc(self, size: int, align: int = 8) -> int:
        """Allocate identity-mapped memory (virtual == absolute in this layout)."""
        addr = (self._data_next + align - 1) & ~(align - 1)
        self._data_next = addr + size
        self.touch(addr, size)
        return addr

    # -- symbols -------------------------------------------------------------------------------
    def add_symbol(self, name: str, address: int, kind: str = "T") -> int:
        """Add a System.map entry."""
        self.symbols.append((address, kind, name))
        return address

    def add_function(self, name: str, size: int = 0x200) -> int:
        """Allocate kernel text for a function and name it; returns its address."""
        addr = self._text_next
        self._text_next += (size + 0xFF) & ~0xFF
        self.add_symbol(name, addr)
        self.touch(addr, size)
        return addr

    def function(self, name: str) -> int:
        """Address of a function added before (added now if unknown)."""
        for addr, _, n in self.symbols:
            if n == name:
                return addr
        return self.add_function(name)

    # -- page tables (vmalloc space) -----------------------------------------------------------
    def _table(self, entries: int, fill: int) -> int:
        addr = self.alloc(entries * 8, align=entries * 8 if entries == 2048 else 2048)
        self.write(addr, _U64.pack(fill) * entries)
        return addr

    def map_page(self, va: int, pa: int) -> None:
        """Map one 4 KiB virtual page to absolute ``pa`` (region-third -> segment -> page)."""
        if not self._rtt:
            self._rtt = self._table(2048, 0x20 | (1 << 2))  # invalid region-third entries
            self.asce = self._rtt | (1 << 2) | 3  # DT region-third, TL 3
            # identity map of the first 2 GiB through a 2 GiB frame, as the kernel's
            # large-page identity mapping would
            self.put_u64(self._rtt, 0x400 | (1 << 2))
        rtx, sx, px = (va >> 31) & 0x7FF, (va >> 20) & 0x7FF, (va >> 12) & 0xFF
        rte_addr = self._rtt + rtx * 8
        rte = _U64.unpack(bytes(self._read(rte_addr, 8)))[0]
        if rte & 0x20:
            sgt = self._table(2048, 0x20)
            rte = sgt | (1 << 2) | 3
            self.put_u64(rte_addr, rte)
        sgt = rte & ~0xFFF
        ste_addr = sgt + sx * 8
        ste = _U64.unpack(bytes(self._read(ste_addr, 8)))[0]
        if ste & 0x20:
            pgt = self._table(256, 0x400)
            ste = pgt
            self.put_u64(ste_addr, ste)
        self.put_u64((ste & ~0x7FF) + px * 8, pa & ~(PAGE - 1))

    def _read(self, address: int, size: int) -> bytes:
        page = self.pages[address & ~(PAGE - 1)]
        off = address & (PAGE - 1)
        return bytes(page[off : off + size])

    def vmalloc(self, size: int, align: int = PAGE) -> tuple[int, int]:
        """Allocate ``size`` bytes in vmalloc space backed by identity memory.

        Returns:
            (virtual address, absolute address of its first byte).
        """
        va = (self._vmalloc_next + align - 1) & ~(align - 1)
        self._vmalloc_next = va + size + PAGE  # a guard page like vmalloc leaves
        pa = self.alloc(size, align=PAGE)
        for off in range(0, size, PAGE):
            self.map_page(va + off, pa + off)
        return va, pa

    def va_to_pa(self, va: int) -> int:
        """Translate an address this builder handed out (identity or vmalloc)."""
        if va < self.mem_size:
            return va
        rtx, sx, px = (va >> 31) & 0x7FF, (va >> 20) & 0x7FF, (va >> 12) & 0xFF
        rte = _U64.unpack(self._read(self._rtt + rtx * 8, 8))[0]
        ste = _U64.unpack(self._read((rte & ~0xFFF) + sx * 8, 8))[0]
        pte = _U64.unpack(self._read((ste & ~0x7FF) + px * 8, 8))[0]
        return (pte & ~0xFFF) | (va & 0xFFF)

    def write_va(self, va: int, data: bytes) -> None:
        """Write virtual memory handed out by this builder (page by page)."""
        pos = 0
        while pos < len(data):
            take = min(PAGE - ((va + pos) & (PAGE - 1)), len(data) - pos)
            self.write(self.va_to_pa(va + pos), data[pos : pos + take])
            pos += take

    def put_u64_va(self, va: int, value: int) -> None:
        """Write one u64 of virtual memory."""
        self.write_va(va, _U64.pack(value & 0xFFFFFFFFFFFFFFFF))

    # -- CPUs ----------------------------------------------------------------------------------
    def add_cpu(
        self,
        psw: tuple[int, int],
        gprs: Iterable[int] | Mapping[int, int] | None = None,
        lowcore: Mapping[str, object] | None = None,
        prefix: int | None = None,
    ) -> SyntheticCpu:
        """Add a CPU; its lowcore is allocated (8 KiB aligned, below 2 GiB) unless given."""
        regs = [0] * 16
        if isinstance(gprs, Mapping):
            for k, v in gprs.items():
                regs[k] = v
        elif gprs is not None:
            regs = list(gprs)
        if prefix is None:
            prefix = self.alloc(0x2000, align=0x2000)
        cpu = SyntheticCpu(prefix, psw, regs, dict(lowcore or {}))
        cpu.lowcore.setdefault("cpu_nr", len(self.cpus))
        self.cpus.append(cpu)
        return cpu

    # -- output --------------------------------------------------------------------------------
    def _finish_memory(self) -> None:
        text = "".join(f"{k}={v}\n" for k, v in self.vmcoreinfo.items())
        self.vmcoreinfo_text = text
        desc = text.encode() + b"\0"
        note = struct.pack(">III", 11, len(desc), 0) + b"VMCOREINFO\0\0" + desc
        addr = self.alloc(len(note) + 8)
        self.write(addr, note)
        self.put_u64(0xE0C, addr)  # absolute lowcore: lowcore.vmcore_info
        for cpu in self.cpus:
            fields = dict(cpu.lowcore)
            if self.asce:
                fields.setdefault("kernel_asce", self.asce)
                cpu.crs[13] = self.asce
            fields["prefixreg_save_area"] = cpu.prefix
            self.write(
                cpu.prefix, build_lowcore(self.lowcore_era, **_known(self.lowcore_era, fields))
            )
            if cpu.prefix:  # the absolute zero lowcore keeps the 0xE0C pointer
                self.put_u64(0xE0C, addr)

    def notes(self) -> list[NoteSpec]:
        """The per-CPU notes, QEMU order."""
        out: list[NoteSpec] = []
        for i, cpu in enumerate(self.cpus):
            out.append(
                NoteSpec("CORE", NT_PRSTATUS, build_prstatus(pid=i + 1, psw=cpu.psw, gprs=cpu.gprs))
            )
            out.append(NoteSpec("CORE", NT_PRFPREG, b"\0" * 136))
            out.append(
                NoteSpec(
                    "LINUX", NT_S390_PREFIX, build_note_desc(NT_S390_PREFIX, prefix=cpu.prefix)
                )
            )
            out.append(NoteSpec("LINUX", NT_S390_CTRS, struct.pack(">16Q", *cpu.crs)))
            out.append(NoteSpec("LINUX", NT_S390_TIMER, b"\0" * 8))
            out.append(NoteSpec("LINUX", NT_S390_TODCMP, b"\0" * 8))
            out.append(NoteSpec("LINUX", NT_S390_TODPREG, b"\0" * 4))
        if self.vmcoreinfo_note:
            out.append(NoteSpec("VMCOREINFO", 0, self.vmcoreinfo_text.encode()))
        return out

    def system_map(self) -> str:
        """System.map text, sorted by address."""
        rows = sorted(set(self.symbols))
        return "".join(f"{a:016x} {k} {n}\n" for a, k, n in rows)

    def save(self, folder: str | Path, name: str = "vmcore") -> Path:
        """Write ``NAME`` (ELF vmcore) and ``System.map`` into ``folder``; return the dump path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.add_symbol("_etext", self._text_next)
        self._finish_memory()
        image = {addr: bytes(data) for addr, data in self.pages.items()}
        dump = folder / name
        write_elf_core(dump, memory_runs(image), self.notes())
        (folder / "System.map").write_text(self.system_map())
        return dump


def _known(era: str, fields: Mapping[str, object]) -> dict[str, object]:
    """Drop fields the era's lowcore lacks (e.g. mcck_stack before v5.12)."""
    from parsers.structs import LOWCORE_FIELDS

    names = {f.name for f in LOWCORE_FIELDS[era]}
    return {k: v for k, v in fields.items() if k in names}
