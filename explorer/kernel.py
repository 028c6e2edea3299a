"""The model a user opens: a dump plus symbols and types, as CPUs, memory and stacks.

``Kernel.open()`` does the cheap work only (headers, notes, VMCOREINFO, lowcores): opening a
dump of any size takes well under a second. Tasks and type information load on first use.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from explorer.sources.companions import (
    choose_companions,
    load_verified_symbols,
    plain_vmlinux,
    verify_profile,
    verify_vmlinux,
)
from explorer.sources.verify import DumpIdentity
from parsers.cpustate import CpuRegisters, cpu_registers_from_notes
from parsers.dumps import DumpFile, open_dump
from parsers.elfcore import group_cpu_notes
from parsers.errors import (
    DumpError,
    FormatError,
    SymbolError,
    TranslationError,
    TypeInfoError,
    UnmappedError,
)
from parsers.fileid import SYSTEM_MAP, VMLINUX
from parsers.layouts import (
    LOWCORE_FIELDS,
    PT_REGS_LAYOUTS,
    STACK_FRAME_SIZE,
    lowcore_era_for_release,
    lowcore_fields_from_types,
    pt_regs_layout_for_release,
    pt_regs_layout_from_types,
    register_lowcore_fields,
)
from parsers.memory import LOWCORE_SIZE, AddressSpace, VaLayout
from parsers.physmem import total_size
from parsers.records import Lowcore, decode_lowcore
from parsers.symbols import Symbol, SymbolTable
from parsers.types import TypeProfile, profile_from_btf, profile_from_dwarf
from parsers.vmcoreinfo import (
    OsInfo,
    VmcoreInfo,
    os_info_from_memory,
    parse_vmcoreinfo,
    vmcoreinfo_from_memory,
)

if TYPE_CHECKING:
    from explorer.modules import ModuleScan

#: Stack types as the kernel names them (enum stack_type, stack_type_name()).
STACK_TYPES = ("task", "irq", "nodat", "restart", "mcck")
#: lowcore field holding each per-CPU stack's pointer (base + STACK_INIT_OFFSET).
_LOWCORE_STACKS = (
    ("irq", "async_stack"),
    ("nodat", "nodat_stack"),
    ("restart", "restart_stack"),
    ("mcck", "mcck_stack"),
)
BUNDLED_PROFILES = Path(__file__).resolve().parent.parent / "samples" / "profiles"
DEFAULT_THREAD_SIZE = 16384  # PAGE_SIZE << THREAD_SIZE_ORDER (2) without KASAN

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class StackRange:
    """One kernel stack ``[begin, end)`` of a ``stack_type`` (task, irq, nodat, ...)."""

    stack_type: str
    begin: int
    end: int

    def on_stack(self, address: int, length: int = 0) -> bool:
        """The kernel's ``on_stack()``: ``begin <= address`` and ``address + length <= end``."""
        return self.begin <= address and address + length <= self.end


@dataclass(frozen=True)
class Cpu:
    """One CPU: its registers at dump time, its lowcore and its per-CPU stacks.

    Attributes:
        registers: from the dump's notes.
        lowcore: decoded lowcore at the prefix, or None (see ``problem``).
        problem: why the lowcore could not be read.
        stacks: irq, nodat, restart, mcck stack ranges derived from the lowcore.
    """

    registers: CpuRegisters
    lowcore: Lowcore | None
    problem: str | None
    stacks: tuple[StackRange, ...] = ()

    @property
    def number(self) -> int:
        """Logical CPU number (``lowcore.cpu_nr``; the note order if unknown)."""
        return self.lowcore.cpu_nr if self.lowcore else self.registers.index

    @property
    def current_task(self) -> int | None:
        """``lowcore.current_task``: the task this CPU runs."""
        return self.lowcore.current_task if self.lowcore else None

    def stack(self, stack_type: str) -> StackRange | None:
        """The per-CPU stack of ``stack_type`` or None."""
        for s in self.stacks:
            if s.stack_type == stack_type:
                return s
        return None


@dataclass
class Options:
    """What the user gave besides the dump (all optional).

    Attributes:
        vmlinux: vmlinux with symbols (and DWARF for types).
        system_map: System.map (plain or .zst).
        profile: a saved type profile (JSON).
        era: force the unwinder/lowcore era instead of deriving it from the release.
        force: use a symbol file, vmlinux or profile that does not belong to the dump (with
            a warning on every output) instead of refusing it.
        types: the type source: auto, dwarf, btf, profile, bundled or probe.
        source: a kernel source tree, to show the source lines of frames.
    """

    vmlinux: str | None = None
    system_map: str | None = None
    profile: str | None = None
    era: str | None = None
    force: bool = False
    types: str = "auto"
    source: str | None = None
    warnings: list[str] = field(default_factory=list)


class Kernel:
    """A kernel dump opened for analysis. Use :meth:`open`."""

    def __init__(self, dump: DumpFile, options: Options, companions: bool = False) -> None:
        """Analyse an opened dump; ``companions``: also look for symbol/type files beside
        it (what :meth:`open` does)."""
        self.dump = dump
        self.path = dump.source_path
        self.options = options
        self.warnings = options.warnings
        self.vmcoreinfo, self.early_kaslr_offset = self._find_vmcoreinfo()
        self.os_info: OsInfo | None = os_info_from_memory(dump)
        self.identity = DumpIdentity.of(self.path, self.vmcoreinfo, self._identity_read)
        #: warnings about files used with --force although they do not belong to the dump
        self.forced: list[str] = []
        #: companions found beside the dump and not used (another kernel's, unreadable)
        self.skipped: list[str] = []
        self.loaded_symbols: dict[str, SymbolTable] = {}
        #: "forced"/"auto" while the types are still to be inferred from memory (--types probe)
        self._probe: str | None = None
        #: why ``auto`` found no types, not even by inference (said where types are needed)
        self.probe_problem: str | None = None
        if companions:
            choose_companions(self)
        self.symbols = self._load_symbols()
        self.release = self._find_release()
        self.types = self._load_types()
        self._layouts()
        if options.vmlinux:  # a .zst/.xz/.gz vmlinux: its cached copy for every later reader
            try:
                options.vmlinux = plain_vmlinux(options.vmlinux)
            except DumpError as exc:
                self.warnings.append(f"vmlinux unusable: {exc}")
        self.layout = self._find_layout()
        # s390 stand-alone formats have no notes: their readers give the registers.
        registers = list(dump.cpu_registers or ()) or [
            cpu_registers_from_notes(i, group, self.path)
            for i, group in enumerate(group_cpu_notes(dump.notes))
        ]
        lowcores = [self._read_lowcore(r) for r in registers]
        self.asce = self._find_asce(registers, [lc for lc, _ in lowcores])
        self.space = AddressSpace(dump, self.layout, self.asce)
        self.thread_size, self.thread_size_source = DEFAULT_THREAD_SIZE, "assumed: no type profile"
        if self.types is not None and self.types.has("thread_union"):
            self.thread_size = self.types.thread_size
            self.thread_size_source = self.types.source_of("thread_union")
        self.cpus = tuple(
            Cpu(r, lc, problem, self._cpu_stacks(lc))
            for r, (lc, problem) in zip(registers, lowcores, strict=True)
        )
        if self._probe:
            self._probe_types()
        if self.symbols is not None and not self.symbols.has_data_symbols:
            from explorer.symbols import complete_symbols

            complete_symbols(self)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str, options: Options | None = None, progress: Progress | None = None
    ) -> Kernel:
        """Open ``path`` (any supported format, .zst too) with optional symbol/type files.

        Raises:
            DumpError: the dump or a named symbol/type file cannot be used.
        """
        opts = options or Options()
        dump = open_dump(path, progress)
        try:
            return cls(dump, opts, companions=True)
        except DumpError:
            dump.close()
            raise

    def close(self) -> None:
        """Release the dump file."""
        self.dump.close()

    def _find_vmcoreinfo(self) -> tuple[VmcoreInfo | None, int | None]:
        text = self.dump.vmcoreinfo_text
        if text is not None:
            return parse_vmcoreinfo(text, "ELF note"), None
        found = vmcoreinfo_from_memory(self.dump)
        if found.problem and not found.early_kaslr_offset:
            self.warnings.append(f"no VMCOREINFO: {found.problem}")
        return found.info, found.early_kaslr_offset

    def _load_symbols(self) -> SymbolTable | None:
        opts = self.options
        if opts.system_map:  # verified against the dump (explorer.sources.verify)
            return load_verified_symbols(self, opts.system_map, SYSTEM_MAP)
        if opts.vmlinux:
            return load_verified_symbols(self, opts.vmlinux, VMLINUX)
        return self.dump_symbols()

    def dump_symbols(self) -> SymbolTable | None:
        """The dump's own symbol table (kallsyms through VMCOREINFO), or None without one.

        Runtime addresses (no KASLR relocation needed); a warning says why it is unusable.
        """
        from explorer.symbols import dump_kallsyms

        return dump_kallsyms(self)

    def _symbol_delta(self, table: SymbolTable) -> int:
        """KASLR relocation: runtime ``_stext`` (VMCOREINFO) minus its address in the map."""
        info = self.vmcoreinfo
        runtime = info.symbol("_stext") if info else None
        linked = table.address_of("_stext")
        if runtime is not None and linked is not None:
            return runtime - linked
        if self.early_kaslr_offset:
            self.warnings.append("symbols relocated by the early KASLR offset at 0xE0C")
            return self.early_kaslr_offset
        return 0

    def _find_release(self) -> str | None:
        if self.vmcoreinfo and self.vmcoreinfo.release:
            return self.vmcoreinfo.release
        if self.symbols:
            banner = self.symbols.address_of("linux_banner")
            if banner is not None:
                try:
                    raw = self._identity_read(banner, 256)
                except DumpError:
                    raw = b""
                m = re.match(rb"Linux version (\S+)", raw)
                if m:
                    return m.group(1).decode("ascii", "replace")
        self.warnings.append("kernel release unknown (no VMCOREINFO, no linux_banner)")
        return None

    def _load_types(self) -> TypeProfile | None:
        """The type profile, from the first source that has one: ``--profile``, ``--vmlinux``
        DWARF, the dump's BTF, a bundled profile of the same build. ``--types`` forces one.
        A bundled profile of the same build completes BTF (its member sources say so).

        Raises:
            TypeInfoError: the forced source (``--types``) has no types for this dump.
            MismatchError: a named profile or vmlinux is another kernel's (without --force).
        """
        forced = self.options.types or "auto"
        if forced == "auto":
            for source in ("profile", "dwarf", "btf", "bundled"):
                profile = self._types_from(source)
                if profile is not None:
                    if source == "btf":
                        bundled = self._types_from("bundled")
                        if bundled is not None:
                            profile = profile.merged(bundled)
                    return profile
            self._probe = "auto"  # inferred from memory once the CPUs are known
            return None
        if forced == "probe":
            self._probe = "forced"
            return None
        profile = self._types_from(forced)
        if profile is None:
            raise TypeInfoError(f"--types {forced}: {self._no_types_reason(forced)}", self.path)
        return profile

    def _probe_types(self) -> None:
        """Types inferred from the dump itself (explorer.sources.probe): forced by ``--types
        probe``, or the last resort of ``auto`` (a warning says why it failed there).

        Raises:
            TypeInfoError: ``--types probe`` and the evidence is missing or ambiguous.
        """
        from explorer.sources.probe import probe_types

        try:
            profile, init_task = probe_types(self)
        except DumpError as exc:
            if self._probe == "forced":
                raise
            self.probe_problem = exc.message
            self.warnings.append(f"no types: {exc.message}")
            return
        finally:
            self._probe = None
        self.types = profile
        self.thread_size = profile.thread_size
        self.thread_size_source = profile.source_of("thread_union")
        self.cpus = tuple(replace(c, stacks=self._cpu_stacks(c.lowcore)) for c in self.cpus)
        if self.symbols is not None and self.symbols.address_of("init_task") is None:
            self.symbols.add_known("init_task", init_task, "probe: the task holding 'swapper/0'")

    def _no_types_reason(self, source: str) -> str:
        return {
            "profile": "no --profile given and no profile found beside the dump",
            "dwarf": "no --vmlinux with debug info given or found beside the dump",
            "btf": "the dump has no usable BTF (__start_BTF/__stop_BTF; Debian 6.1 has none)",
            "bundled": f"no bundled profile of this build ({self.release}) in {BUNDLED_PROFILES}",
        }[source]

    def _types_from(self, source: str) -> TypeProfile | None:
        """Types from one source, or None if it has none for this dump."""
        opts = self.options
        if source == "profile":
            if not opts.profile:
                return None
            return verify_profile(self, TypeProfile.load(opts.profile), opts.profile)
        if source == "dwarf":
            if not opts.vmlinux:
                return None
            try:
                plain = verify_vmlinux(self, opts.vmlinux)
                # a vmlinux used only by --force never fills the cache its build-id names
                trusted = not any(f" {opts.vmlinux} " in w for w in self.forced)
                profile = profile_from_dwarf(plain, use_cache=trusted)
                return verify_profile(self, profile, opts.vmlinux)
            except TypeInfoError as exc:
                self.warnings.append(str(exc))
                return None
        if source == "btf":
            return self._btf_types()
        if source == "bundled" and self.release:
            bundled = BUNDLED_PROFILES / f"{self.release}.profile.json"
            if bundled.is_file():
                profile = TypeProfile.load(bundled)
                build_id = self.vmcoreinfo.get("BUILD-ID") if self.vmcoreinfo else None
                if not build_id or not profile.build_id or build_id == profile.build_id:
                    return profile
                self.warnings.append(
                    f"bundled profile {bundled.name} skipped: build-id {profile.build_id[:16]}…, "
                    f"the dump's is {build_id[:16]}…"
                )
        return None

    def _layouts(self) -> None:
        """``pt_regs``, ``struct lowcore`` and ``struct stack_frame`` from the kernel's types
        when they have them (member offsets, never a size alone), else the era tables of
        the release; each with the source it came from.

        Raises:
            FormatError: the kernel's own types describe a layout this code cannot decode.
        """
        types, release = self.types, self.release or "6.1"
        fallback = (
            f"era table for {self.release}" if self.release else "era table (release unknown)"
        )
        if types is not None and types.has("pt_regs") and types.has("pt_regs.flags"):
            try:
                self.pt_regs_layout = pt_regs_layout_from_types(
                    types.offsets, types.size("pt_regs")
                )
            except DumpError as exc:
                raise exc.with_path(self.path) from None
            self.pt_regs_source = types.source_of("pt_regs")
        else:
            self.pt_regs_layout = pt_regs_layout_for_release(release)
            self.pt_regs_source = fallback
        era = lowcore_era_for_release(self.release) if self.release else "v6.1"
        self.lowcore_era, self.lowcore_source = era, fallback
        if types is not None:
            fields = lowcore_fields_from_types(types.offsets, types.sizes, era)
            if fields is not None:
                key = f"{types.source_of('lowcore.current_task').split(':')[0]} {release}"
                if LOWCORE_FIELDS.get(key, fields) != fields:  # another build, same release
                    key += " #" + hashlib.sha256(repr(fields).encode()).hexdigest()[:6]
                register_lowcore_fields(key, fields)
                self.lowcore_era = key
                self.lowcore_source = types.source_of("lowcore.current_task")
        self.stack_frame_source = "fixed layout (back_chain 0x98, gprs 0x48, 160 bytes)"
        if types is not None and types.has("stack_frame.back_chain"):
            found = (
                types.offset("stack_frame.back_chain"),
                types.offsets.get("stack_frame.gprs", 0x48),
                types.sizes.get("stack_frame", STACK_FRAME_SIZE),
            )
            if found != (0x98, 0x48, STACK_FRAME_SIZE):
                back_chain, gprs, size = found
                raise FormatError(
                    f"struct stack_frame of this kernel has back_chain at 0x{back_chain:x}, "
                    f"gprs at 0x{gprs:x}, {size} bytes: not the layout backchain decodes "
                    "(0x98, 0x48, 160)",
                    self.path,
                )
            self.stack_frame_source = types.source_of("stack_frame.back_chain")

    def _btf_types(self) -> TypeProfile | None:
        """Types from the kernel's own BTF (CONFIG_DEBUG_INFO_BTF) between __start_BTF and
        __stop_BTF."""
        syms = self.symbols
        if syms is None:
            return None
        start, stop = syms.address_of("__start_BTF"), syms.address_of("__stop_BTF")
        if start is None or stop is None or not 0 < stop - start <= 64 << 20:
            return None
        stack = syms.address_of("init_stack")
        end = syms.address_of("__end_init_stack") or syms.address_of("__end_init_task")
        thread_size = end - stack if stack is not None and end is not None else None
        try:
            data = self._identity_read(start, stop - start)
            return profile_from_btf(data, self.release, source="btf:dump", thread_size=thread_size)
        except DumpError as exc:
            self.warnings.append(f"BTF in the dump is unusable: {exc.message}")
            return None

    def _identity_read(self, va: int, size: int) -> bytes:
        """Read kernel image/identity memory before the kernel ASCE is known."""
        return AddressSpace(self.dump, self._find_layout(), 0).read(va, size)

    def _find_layout(self) -> VaLayout:
        """Legacy identity layout (<= v6.9) or the v6.10+ split layout (VMCOREINFO keys)."""
        mem_end = max((r.end for r in self.dump.ranges), default=0)  # no memory: no layout
        info = self.vmcoreinfo
        base = info.hex("IDENTITYBASE") if info else None
        phys = info.hex("KERNELOFFPHYS") if info else None
        if base is not None or phys is not None:
            kbase = (info.kernel_offset if info else None) or 0
            size = 0
            osi = self.os_info
            if osi and osi.value("IMAGE_END") and osi.value("IMAGE_START"):
                size = (osi.value("IMAGE_END") or 0) - (osi.value("IMAGE_START") or 0)
            return VaLayout("split", base or 0, mem_end, kbase, phys or 0, max(size, 0))
        return VaLayout("legacy", 0, mem_end, (info.kernel_offset or 0) if info else 0)

    def _read_lowcore(self, regs: CpuRegisters) -> tuple[Lowcore | None, str | None]:
        if regs.prefix is None:
            return None, f"CPU {regs.index}: no NT_S390_PREFIX note"
        try:
            raw = self.dump.read(regs.prefix, LOWCORE_SIZE)
        except UnmappedError:
            raise FormatError(
                f"CPU {regs.index}: its prefix register 0x{regs.prefix:x} points outside the "
                "dump's memory, so its lowcore cannot be read (damaged notes?)",
                self.path,
            ) from None
        return decode_lowcore(raw, self.lowcore_era), None

    def _find_asce(self, regs: list[CpuRegisters], lowcores: list[Lowcore | None]) -> int:
        for lc in lowcores:
            if lc and lc.kernel_asce:
                return lc.kernel_asce
        for r in regs:
            if r.crs and r.crs[13]:
                return r.crs[13]
        self.warnings.append("kernel ASCE unknown: vmalloc addresses cannot be translated")
        return 0

    def _cpu_stacks(self, lc: Lowcore | None) -> tuple[StackRange, ...]:
        if lc is None:
            return ()
        out = []
        for stack_type, attr in _LOWCORE_STACKS:
            top = getattr(lc, attr)
            if top:
                begin = top - self.stack_init_offset
                out.append(StackRange(stack_type, begin, begin + self.thread_size))
        return tuple(out)

    # -- derived facts ----------------------------------------------------------------------
    @property
    def pt_regs_size(self) -> int:
        """``sizeof(struct pt_regs)`` for this kernel."""
        return PT_REGS_LAYOUTS[self.pt_regs_layout].size

    @property
    def stack_init_offset(self) -> int:
        """``STACK_INIT_OFFSET = THREAD_SIZE - STACK_FRAME_OVERHEAD - sizeof(pt_regs)``."""
        return self.thread_size - STACK_FRAME_SIZE - self.pt_regs_size

    @property
    def memory_size(self) -> int:
        """Bytes of memory in the dump."""
        return total_size(self.dump)

    @property
    def kaslr_offset(self) -> int | None:
        """KERNELOFFSET from VMCOREINFO (or the early offset at 0xE0C)."""
        if self.vmcoreinfo and self.vmcoreinfo.kernel_offset is not None:
            return self.vmcoreinfo.kernel_offset
        return self.early_kaslr_offset

    @cached_property
    def crash_time(self) -> int | None:
        """CRASHTIME from VMCOREINFO (kdump dumps after a panic)."""
        return self.vmcoreinfo.crash_time if self.vmcoreinfo else None

    def symbolize(self, address: int) -> str | None:
        """The kernel's ``%pS`` text of an address: ``name+0xoff/0xsize`` in the core kernel,
        ``name+0xoff/0xsize [module]`` in a loaded module's text (``[module]+0xoff`` when the
        module's symbols cannot be read), or None."""
        sym = self.lookup_symbol(address)
        if sym is not None:
            return str(sym)
        module = self.modules.module_at(address)
        if module is not None:
            start = next(s for s, e in module.text if s <= address < e)
            return f"[{module.name}]+0x{address - start:x}"
        return None

    def lookup_symbol(self, address: int) -> Symbol | None:
        """The symbol holding ``address``: core kernel (``kallsyms_lookup``), else a loaded
        module's own symbols (``module_address_lookup``)."""
        sym = self.symbols.lookup(address) if self.symbols is not None else None
        if sym is None and self.symbols is not None:
            sym = self.modules.lookup(address)
        return sym

    @cached_property
    def modules(self) -> ModuleScan:
        """Loaded modules and their text ranges (empty without type information)."""
        from explorer.modules import find_modules

        return find_modules(self)

    def is_text(self, address: int) -> bool:
        """``__kernel_text_address()``: core kernel text or a loaded module's text."""
        if self.symbols is not None and self.symbols.is_text(address):
            return True
        return self.modules.module_at(address) is not None

    def read(self, va: int, size: int) -> bytes:
        """Read kernel virtual memory."""
        return self.space.read(va, size)

    def readable(self, va: int, size: int = 1) -> bool:
        """True if kernel virtual memory at ``va`` can be read."""
        try:
            self.space.read(va, size)
        except (TranslationError, UnmappedError):
            return False
        return True


__all__ = ["STACK_TYPES", "Cpu", "Kernel", "Options", "StackRange", "SymbolError"]
