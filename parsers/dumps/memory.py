"""Virtual -> absolute address translation for s390x kernel addresses.

Three mechanisms, tried in this order:

* the *identity mapping* of all physical memory: at virtual 0 up to v6.9 ("legacy"),
  at ``IDENTITYBASE`` since v6.10 (usually still 0);
* the separate *kernel image mapping* of v6.10+ (``KERNELOFFSET`` virtual ->
  ``KERNELOFFPHYS`` physical);
* a real DAT walk through the kernel ASCE (CR13 / ``lowcore.kernel_asce``), which is needed
  for vmalloc space: VMAP task stacks and the async/mcck stacks of secondary CPUs.

The DAT walk follows z/Architecture (Principles of Operation, "Dynamic Address
Translation"): region-first, -second, -third and segment tables of 2048 entries, page tables
of 256 entries, EDAT-1 1 MiB and EDAT-2 2 GiB frames. It yields a *real* address; real pages
0 and 1 are then prefixed with the CPU's prefix register when one is given.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from parsers.dumps.physmem import PhysicalMemory
from parsers.errors import TranslationError, UnmappedError

PAGE_SIZE = 4096
PAGE_MASK = ~(PAGE_SIZE - 1)
LOWCORE_SIZE = 0x2000

# ASCE and table-entry bits (Principles of Operation; kernel asm/pgtable.h names in brackets).
ASCE_ORIGIN = ~0xFFF
ASCE_REAL_SPACE = 0x20  # [_ASCE_REAL_SPACE]
REGION_INVALID = 0x20  # [_REGION_ENTRY_INVALID]
REGION3_FC = 0x400  # [_REGION3_ENTRY_LARGE] 2 GiB frame (EDAT-2)
SEGMENT_INVALID = 0x20  # [_SEGMENT_ENTRY_INVALID]
SEGMENT_FC = 0x400  # [_SEGMENT_ENTRY_LARGE] 1 MiB frame (EDAT-1)
PAGE_INVALID = 0x400  # [_PAGE_INVALID]
PAGE_MUST_BE_ZERO = 0x800

_LEVEL_NAMES = {3: "region-first", 2: "region-second", 1: "region-third", 0: "segment"}
_LEVEL_SHIFT = {3: 53, 2: 42, 1: 31, 0: 20}
_U64 = struct.Struct(">Q")

#: Translations cached per page; cleared when it grows past this.
_CACHE_LIMIT = 1 << 16


@dataclass(frozen=True, slots=True)
class VaLayout:
    """How the kernel lays out its virtual address space.

    Attributes:
        kind: "legacy" (identity map at 0, kernel inside it; up to v6.9) or "split"
            (v6.10+: identity map at ``identity_base``, kernel image mapped separately).
        identity_base: virtual address of physical 0.
        identity_size: bytes of physical memory the identity map covers.
        kernel_base: virtual start of the kernel image mapping ("split" only; in "legacy"
            the KASLR offset, informational).
        kernel_base_phys: physical address of the kernel image ("split" only).
        kernel_size: size of the kernel image mapping if known (0: unknown, use DAT).
    """

    kind: str
    identity_base: int
    identity_size: int
    kernel_base: int = 0
    kernel_base_phys: int = 0
    kernel_size: int = 0


@dataclass(frozen=True, slots=True)
class DatStep:
    """One table access of a DAT walk, for display ("vtop")."""

    level: str
    table: int
    index: int
    entry_address: int
    entry: int


class AddressSpace:
    """Reads kernel virtual memory of a dump.

    Args:
        phys: the dump's absolute memory.
        layout: identity/kernel-image layout (fast paths); None for DAT only.
        asce: kernel ASCE (CR13); 0 if unknown (then only the fast paths work).
        prefix: a CPU's prefix register, applied to real pages 0-1 after DAT.
    """

    def __init__(
        self,
        phys: PhysicalMemory,
        layout: VaLayout | None,
        asce: int = 0,
        prefix: int | None = None,
    ) -> None:
        self.phys = phys
        self.layout = layout
        self.asce = asce
        self.prefix = prefix
        self._cache: dict[int, int] = {}

    # -- translation ---------------------------------------------------------------------
    def translate(self, va: int) -> int:
        """Translate a kernel virtual address to an absolute address.

        Raises:
            TranslationError: no mapping (invalid entry, beyond a table, no ASCE).
        """
        lay = self.layout
        if lay is not None:
            off = va - lay.identity_base
            if 0 <= off < lay.identity_size:
                return off
            if lay.kernel_size and 0 <= va - lay.kernel_base < lay.kernel_size:
                return va - lay.kernel_base + lay.kernel_base_phys
        page = va & PAGE_MASK
        frame = self._cache.get(page)
        if frame is None:
            frame = self.dat_walk(page)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[page] = frame
        return frame | (va & (PAGE_SIZE - 1))

    def dat_walk(self, va: int, steps: list[DatStep] | None = None) -> int:
        """Translate ``va`` through the page tables of the kernel ASCE.

        Args:
            va: virtual address.
            steps: if given, every table access is appended (for display).

        Returns:
            The absolute address (real address with prefixing applied).
        """
        asce = self.asce
        if not asce:
            raise TranslationError(va, f"cannot translate 0x{va:016x}: no kernel ASCE known")
        if asce & ASCE_REAL_SPACE:
            return self._absolute(va)
        level = (asce >> 2) & 3
        table = asce & ASCE_ORIGIN
        tf, tl = 0, asce & 3
        shift = _LEVEL_SHIFT[level]
        if level < 3 and va >> (shift + 11):
            raise TranslationError(
                va,
                f"0x{va:016x} is beyond the {_LEVEL_NAMES[level]} table of the kernel ASCE: "
                "the kernel maps nothing there, so it is not a kernel address (a user-space "
                "or mistyped address?); 'backchain info' shows the kernel's address ranges",
            )
        while True:
            index = (va >> shift) & 0x7FF
            name = _LEVEL_NAMES[level]
            if not tf <= index >> 9 <= tl:
                raise TranslationError(
                    va, f"0x{va:016x}: index {index} outside the {name} table length"
                )
            entry = self._entry(table + index * 8, va, name)
            if steps is not None:
                steps.append(DatStep(name, table, index, table + index * 8, entry))
            if entry & REGION_INVALID:  # same bit for region and segment entries
                raise TranslationError(va, f"0x{va:016x}: {name} table entry {index} is invalid")
            if (entry >> 2) & 3 != level:
                raise TranslationError(
                    va, f"0x{va:016x}: {name} table entry {index} has the wrong table type"
                )
            if level == 1 and entry & REGION3_FC:
                return self._absolute((entry & ~0x7FFFFFFF) | (va & 0x7FFFFFFF))
            if level == 0:
                if entry & SEGMENT_FC:
                    return self._absolute((entry & ~0xFFFFF) | (va & 0xFFFFF))
                pto = entry & ~0x7FF
                px = (va >> 12) & 0xFF
                pte = self._entry(pto + px * 8, va, "page")
                if steps is not None:
                    steps.append(DatStep("page", pto, px, pto + px * 8, pte))
                if pte & PAGE_INVALID:
                    raise TranslationError(va, f"0x{va:016x}: page table entry {px} is invalid")
                if pte & PAGE_MUST_BE_ZERO:
                    raise TranslationError(va, f"0x{va:016x}: page table entry {px} is malformed")
                return self._absolute((pte & PAGE_MASK) | (va & 0xFFF))
            tf, tl = (entry >> 6) & 3, entry & 3
            table = entry & ASCE_ORIGIN
            level -= 1
            shift = _LEVEL_SHIFT[level]

    def _entry(self, address: int, va: int, name: str) -> int:
        try:
            return int(_U64.unpack(self.phys.read(address, 8))[0])
        except UnmappedError:
            raise TranslationError(
                va, f"0x{va:016x}: {name} table at 0x{address:x} is not in the dump"
            ) from None

    def _absolute(self, real: int) -> int:
        p = self.prefix
        if p is None:
            return real
        if real < LOWCORE_SIZE:
            return real + p
        if p <= real < p + LOWCORE_SIZE:
            return real - p
        return real

    # -- reads ---------------------------------------------------------------------------
    def read(self, va: int, size: int) -> bytes:
        """Read ``size`` bytes of virtual memory, page by page where needed.

        Raises:
            TranslationError: a page is not mapped.
            UnmappedError: a page is mapped to memory the dump does not hold.
        """
        first = self.translate(va)
        if (va & (PAGE_SIZE - 1)) + size <= PAGE_SIZE or self._linear(va, size):
            return self.phys.read(first, size)
        parts = []
        while size > 0:
            take = min(size, PAGE_SIZE - (va & (PAGE_SIZE - 1)))
            parts.append(self.phys.read(self.translate(va), take))
            va += take
            size -= take
        return b"".join(parts)

    def _linear(self, va: int, size: int) -> bool:
        """True when ``[va, va + size)`` lies in one linear fast-path mapping (identity map or
        kernel image): one read of absolute memory then holds it all."""
        lay = self.layout
        if lay is None:
            return False
        off = va - lay.identity_base
        if off >= 0 and off + size <= lay.identity_size:
            return True
        off = va - lay.kernel_base
        return bool(lay.kernel_size) and off >= 0 and off + size <= lay.kernel_size

    def read_u64(self, va: int) -> int:
        """Read one big-endian u64 at a virtual address."""
        return int(_U64.unpack(self.read(va, 8))[0])

    def readable(self, va: int, size: int = 1) -> bool:
        """True if ``size`` bytes at ``va`` can be read."""
        try:
            self.read(va, size)
        except (TranslationError, UnmappedError):
            return False
        return True
