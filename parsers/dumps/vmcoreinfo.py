"""VMCOREINFO and os_info: what the crashed kernel wrote about itself.

VMCOREINFO is ``KEY=VALUE`` text (kernel/vmcore_info.c and arch/s390/kernel/vmcore_info.c).
kdump puts it into an ELF note; QEMU dumps have no such note, so it is read from memory
through the pointer the kernel stores at absolute 0xE0C (``lowcore.vmcore_info``, all
64-bit kernels). If bit 0 of that value is set it is no pointer but an early KASLR offset
(v5.5 "s390/kaslr: store KASLR offset for early dumps").

os_info (arch/s390/include/asm/os_info.h) is a 4 KiB page whose absolute address is at
0xE18, magic "OSINFOSZ"; its entries locate VMCOREINFO and, since v6.10, the virtual layout.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field

from parsers.dumps.physmem import PhysicalMemory
from parsers.errors import UnmappedError

ABS_VMCOREINFO_PTR = 0xE0C  # lowcore.vmcore_info (u64, unaligned), all 64-bit kernels
ABS_OS_INFO_PTR = 0xE18  # lowcore.os_info
OS_INFO_MAGIC = 0x4F53494E464F535A  # "OSINFOSZ"
MAX_VMCOREINFO = 64 << 10

#: os_info entry indices (arch/s390/include/asm/os_info.h; 4+ since v6.10).
OS_INFO_ENTRIES = (
    "VMCOREINFO",
    "REIPL_BLOCK",
    "FLAGS_ENTRY",
    "RESERVED",
    "IDENTITY_BASE",
    "KASLR_OFFSET",
    "KASLR_OFF_PHYS",
    "VMEMMAP",
    "AMODE31_START",
    "AMODE31_END",
    "IMAGE_START",
    "IMAGE_END",
    "IMAGE_PHYS",
)


@dataclass(frozen=True)
class VmcoreInfo:
    """Parsed VMCOREINFO.

    Attributes:
        entries: every KEY=VALUE pair, values as text.
        source: where it came from ("ELF note", "memory via 0xE0C at 0x...").
    """

    entries: Mapping[str, str]
    source: str

    def get(self, key: str) -> str | None:
        """Raw value of ``key``."""
        return self.entries.get(key)

    def hex(self, key: str) -> int | None:
        """A hex-valued key (SYMBOL(...), KERNELOFFSET, ...) as int."""
        v = self.entries.get(key)
        if v is None:
            return None
        try:
            return int(v, 16)
        except ValueError:
            return None

    def decimal(self, key: str) -> int | None:
        """A decimal-valued key (PAGESIZE, SIZE(...), OFFSET(...)) as int."""
        v = self.entries.get(key)
        try:
            return int(v, 10) if v is not None else None
        except ValueError:
            return None

    def symbol(self, name: str) -> int | None:
        """``SYMBOL(name)``."""
        return self.hex(f"SYMBOL({name})")

    @property
    def release(self) -> str | None:
        """OSRELEASE."""
        return self.entries.get("OSRELEASE")

    @property
    def page_size(self) -> int | None:
        """PAGESIZE."""
        return self.decimal("PAGESIZE")

    @property
    def kernel_offset(self) -> int | None:
        """KERNELOFFSET: the KASLR offset (v6.10+: virtual base of the kernel image)."""
        return self.hex("KERNELOFFSET")

    @property
    def crash_time(self) -> int | None:
        """CRASHTIME (seconds since the epoch), when the kernel panicked through kdump."""
        return self.decimal("CRASHTIME")


def parse_vmcoreinfo(text: str, source: str) -> VmcoreInfo:
    """Parse VMCOREINFO text; lines without '=' are ignored."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key:
            entries[key.strip()] = value.strip()
    return VmcoreInfo(entries, source)


@dataclass(frozen=True)
class MemoryVmcoreInfo:
    """What the pointer at absolute 0xE0C gave.

    Attributes:
        info: VMCOREINFO if the pointer led to one.
        early_kaslr_offset: set when bit 0 was set (a dump taken before VMCOREINFO existed).
        problem: why nothing was found, for the user.
    """

    info: VmcoreInfo | None
    early_kaslr_offset: int | None = None
    problem: str | None = None


def vmcoreinfo_from_memory(phys: PhysicalMemory) -> MemoryVmcoreInfo:
    """Find VMCOREINFO through the pointer at absolute 0xE0C; never raises."""
    try:
        ptr = struct.unpack(">Q", phys.read(ABS_VMCOREINFO_PTR, 8))[0]
    except UnmappedError:
        return MemoryVmcoreInfo(None, problem="absolute 0xE0C is not in the dump")
    if ptr == 0:
        return MemoryVmcoreInfo(None, problem="no VMCOREINFO pointer at absolute 0xE0C")
    if ptr & 1:
        return MemoryVmcoreInfo(
            None,
            early_kaslr_offset=ptr & ~1,
            problem="0xE0C holds an early KASLR offset, not VMCOREINFO",
        )
    try:
        namesz, descsz, _ = struct.unpack(">III", phys.read(ptr, 12))
        if namesz > 64 or descsz > MAX_VMCOREINFO:
            return MemoryVmcoreInfo(None, problem=f"implausible VMCOREINFO note at 0x{ptr:x}")
        name = phys.read(ptr + 12, namesz).split(b"\0", 1)[0]
        if name != b"VMCOREINFO":
            return MemoryVmcoreInfo(None, problem=f"no VMCOREINFO note at 0x{ptr:x}")
        desc = phys.read(ptr + 12 + ((namesz + 3) & ~3), descsz)
    except UnmappedError:
        return MemoryVmcoreInfo(None, problem=f"VMCOREINFO at 0x{ptr:x} is not in the dump")
    text = desc.split(b"\0", 1)[0].decode("utf-8", "replace")
    return MemoryVmcoreInfo(parse_vmcoreinfo(text, f"memory (pointer at 0xE0C -> 0x{ptr:x})"))


@dataclass(frozen=True)
class OsInfo:
    """os_info header and entries (``{name: (addr_or_val, size)}``)."""

    address: int
    version: tuple[int, int]
    entries: Mapping[str, tuple[int, int]] = field(default_factory=dict)

    def value(self, name: str) -> int | None:
        """The ``val``/``addr`` of entry ``name`` if present."""
        entry = self.entries.get(name)
        return entry[0] if entry else None


def os_info_from_memory(phys: PhysicalMemory) -> OsInfo | None:
    """Read os_info through absolute 0xE18; None if absent or invalid."""
    try:
        ptr = struct.unpack(">Q", phys.read(ABS_OS_INFO_PTR, 8))[0]
        if not ptr or ptr & 0xFFF:
            return None
        head = phys.read(ptr, 0x20)
        magic, _csum, major, minor = struct.unpack_from(">QIHH", head)
        if magic != OS_INFO_MAGIC:
            return None
        entries: dict[str, tuple[int, int]] = {}
        for i, name in enumerate(OS_INFO_ENTRIES):
            off = 0x20 + i * 20
            if off + 20 > 4096:
                break
            val, size, _ = struct.unpack(">QQI", phys.read(ptr + off, 20))
            if val or size:
                entries[name] = (val, size)
        return OsInfo(ptr, (major, minor), entries)
    except UnmappedError:
        return None
