"""The dump's own identity: what it says about its kernel before any symbol or type file.

:func:`read_image` reads it once from an opened dump: VMCOREINFO (from the ELF note, else
found in memory with the early KASLR offset), os_info, the virtual address layout of the
identity mapping, and the identity the companion files are verified against. Symbol and type
sources (:mod:`explorer.sources`) take this value, never a half-built kernel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from parsers.dumps.dumpfile import DumpFile
from parsers.dumps.memory import AddressSpace, VaLayout
from parsers.dumps.vmcoreinfo import (
    OsInfo,
    VmcoreInfo,
    os_info_from_memory,
    parse_vmcoreinfo,
    vmcoreinfo_from_memory,
)
from parsers.elf.fileid import banner_in
from parsers.errors import DumpError
from parsers.symbols.table import SymbolTable


@dataclass(frozen=True)
class DumpIdentity:
    """What the dump says about its own kernel.

    Attributes:
        path: the dump as the user named it.
        release: VMCOREINFO ``OSRELEASE``, or None.
        build_id: VMCOREINFO ``BUILD-ID``, or None.
        symbols: VMCOREINFO ``SYMBOL(name)`` values (runtime addresses).
        read: reads kernel image memory (raises DumpError when it cannot).
    """

    path: str
    release: str | None
    build_id: str | None
    symbols: Mapping[str, int]
    read: Callable[[int, int], bytes]

    @classmethod
    def of(
        cls, path: str, info: VmcoreInfo | None, read: Callable[[int, int], bytes]
    ) -> DumpIdentity:
        """The identity from VMCOREINFO (empty without it)."""
        symbols: dict[str, int] = {}
        if info is not None:
            for key in info.entries:
                if key.startswith("SYMBOL(") and key.endswith(")"):
                    value = info.hex(key)
                    if value is not None:
                        symbols[key[7:-1]] = value
        return cls(
            path=path,
            release=info.release if info else None,
            build_id=(info.get("BUILD-ID") or None) if info else None,
            symbols=symbols,
            read=read,
        )

    def banner_at(self, address: int) -> str | None:
        """The ``Linux version …`` text at ``address`` in the dump's memory, or None."""
        try:
            raw = self.read(address, 512)
        except DumpError:
            return None
        if not raw.startswith(b"Linux version "):
            return raw.split(b"\0", 1)[0][:40].decode("ascii", "replace") or "(zero bytes)"
        return banner_in(raw)


@dataclass(frozen=True)
class DumpImage:
    """An opened dump as it describes itself.

    Attributes:
        dump: the opened dump file.
        path: the dump as the user named it.
        vmcoreinfo: VMCOREINFO, or None.
        early_kaslr_offset: the KASLR offset at 0xE0C, when VMCOREINFO was found in memory.
        os_info: s390's os_info, or None.
        layout: the identity mapping's layout (legacy, or the v6.10+ split one).
        identity: what the dump says about its kernel (release, build-id, SYMBOL()s).
        notes: warnings found while reading it (no VMCOREINFO, ...).
    """

    dump: DumpFile
    path: str
    vmcoreinfo: VmcoreInfo | None
    early_kaslr_offset: int | None
    os_info: OsInfo | None
    layout: VaLayout
    notes: tuple[str, ...] = ()
    identity: DumpIdentity = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "identity", DumpIdentity.of(self.path, self.vmcoreinfo, self.read))

    def read(self, va: int, size: int) -> bytes:
        """Read kernel image/identity memory (no kernel ASCE needed).

        Raises:
            DumpError: not in the dump.
        """
        return AddressSpace(self.dump, self.layout, 0).read(va, size)

    @property
    def kaslr_offset(self) -> int | None:
        """KERNELOFFSET from VMCOREINFO (or the early offset at 0xE0C)."""
        if self.vmcoreinfo and self.vmcoreinfo.kernel_offset is not None:
            return self.vmcoreinfo.kernel_offset
        return self.early_kaslr_offset

    @property
    def build_id(self) -> str | None:
        """VMCOREINFO ``BUILD-ID`` (as written; may be empty)."""
        return self.vmcoreinfo.get("BUILD-ID") if self.vmcoreinfo else None

    def symbol_delta(self, table: SymbolTable) -> tuple[int, str | None]:
        """KASLR relocation of a symbol file: runtime ``_stext`` (VMCOREINFO) minus its
        address in ``table``; with a warning when only the early offset gives it."""
        info = self.vmcoreinfo
        runtime = info.symbol("_stext") if info else None
        linked = table.address_of("_stext")
        if runtime is not None and linked is not None:
            return runtime - linked, None
        if self.early_kaslr_offset:
            return self.early_kaslr_offset, "symbols relocated by the early KASLR offset at 0xE0C"
        return 0, None

    def image_start(self) -> int:
        """Where the kernel image starts: VMCOREINFO ``SYMBOL(_stext)``, else the kernel
        offset."""
        info = self.vmcoreinfo
        stext = info.symbol("_stext") if info is not None else None
        if stext is not None:
            return stext
        if self.layout.kind == "split":
            return self.layout.kernel_base
        return self.kaslr_offset or 0


@dataclass
class Diagnostics:
    """What opening a kernel found worth saying, in the order it was found.

    Attributes:
        warnings: every warning (the forced and skipped ones too).
        forced: files used with ``--force`` although they do not belong to the dump.
        skipped: companions found beside the dump and not used (another kernel's,
            unreadable).
    """

    warnings: list[str] = field(default_factory=list)
    forced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def skip(self, note: str) -> None:
        """A companion not used, and why."""
        self.skipped.append(note)
        self.warnings.append(note)


def read_image(dump: DumpFile) -> DumpImage:
    """What ``dump`` says about itself (cheap: notes and a few pages)."""
    notes: list[str] = []
    text = dump.vmcoreinfo_text
    early: int | None = None
    if text is not None:
        info: VmcoreInfo | None = parse_vmcoreinfo(text, "ELF note")
    else:
        found = vmcoreinfo_from_memory(dump)
        if found.problem and not found.early_kaslr_offset:
            notes.append(f"no VMCOREINFO: {found.problem}")
        info, early = found.info, found.early_kaslr_offset
    os_info = os_info_from_memory(dump)
    layout = va_layout(dump, info, os_info)
    return DumpImage(
        dump=dump,
        path=dump.source_path,
        vmcoreinfo=info,
        early_kaslr_offset=early,
        os_info=os_info,
        layout=layout,
        notes=tuple(notes),
    )


def va_layout(dump: DumpFile, info: VmcoreInfo | None, os_info: OsInfo | None) -> VaLayout:
    """Legacy identity layout (<= v6.9) or the v6.10+ split layout (VMCOREINFO keys)."""
    mem_end = max((r.end for r in dump.ranges), default=0)  # no memory: no layout
    base = info.hex("IDENTITYBASE") if info else None
    phys = info.hex("KERNELOFFPHYS") if info else None
    if base is not None or phys is not None:
        kbase = (info.kernel_offset if info else None) or 0
        size = 0
        if os_info and os_info.value("IMAGE_END") and os_info.value("IMAGE_START"):
            size = (os_info.value("IMAGE_END") or 0) - (os_info.value("IMAGE_START") or 0)
        return VaLayout("split", base or 0, mem_end, kbase, phys or 0, max(size, 0))
    return VaLayout("legacy", 0, mem_end, (info.kernel_offset or 0) if info else 0)


__all__ = ["Diagnostics", "DumpIdentity", "DumpImage", "read_image", "va_layout"]
