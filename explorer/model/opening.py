"""Opening a kernel: the policy that decides every file, type and layout, in one place.

:func:`open_kernel` reads what the dump says about itself (:mod:`explorer.image.dumpimage`), then
decides, in this order: the companion files beside the dump (what the user left out), the
symbols (a named System.map or vmlinux, verified, else the dump's own kallsyms), the release,
the types (``--types``, or the first source that has them), the layouts of pt_regs, lowcore
and stack_frame, the CPUs and their stacks, and last the types inferred from memory when no
source had any. The caller's :class:`~explorer.model.kernel.Options` are never changed: what
was chosen is the kernel's ``files``, what was found worth saying its ``warnings``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

from explorer.image.dumpimage import Diagnostics, DumpImage, read_image
from explorer.model.kernel import DEFAULT_THREAD_SIZE, Cpu, Kernel, Layouts, Options
from explorer.sources.bundled import BUNDLED_PROFILES, bundled_profile
from explorer.sources.companions import Files, Verifier, choose_companions, plain_vmlinux
from explorer.sources.kallsyms import dump_kallsyms
from parsers.dumps.cpustate import CpuRegisters, cpu_registers_from_notes
from parsers.dumps.dumpfile import DumpFile, open_dump
from parsers.dumps.elfcore import group_cpu_notes
from parsers.dumps.memory import LOWCORE_SIZE, AddressSpace
from parsers.elf.fileid import SYSTEM_MAP, VMLINUX
from parsers.errors import DumpError, FormatError, TypeInfoError, UnmappedError
from parsers.s390.layouts import (
    PT_REGS_LAYOUTS,
    STACK_FRAME_BACK_CHAIN,
    STACK_FRAME_GPRS,
    STACK_FRAME_SIZE,
    LowcoreLayout,
    kernel_version,
    lowcore_era_for_release,
    lowcore_fields_from_types,
    lowcore_layout,
    pt_regs_layout_for_release,
    pt_regs_layout_from_types,
)
from parsers.s390.records import Lowcore, decode_lowcore
from parsers.s390.stacks import StackRange
from parsers.symbols.table import SymbolTable
from parsers.types.profile import TypeProfile, build_ahead, profile_from_btf, profile_from_dwarf

Progress = Callable[[int, int], None]

#: lowcore field holding each per-CPU stack's pointer (base + STACK_INIT_OFFSET).
_LOWCORE_STACKS = (
    ("irq", "async_stack"),
    ("nodat", "nodat_stack"),
    ("restart", "restart_stack"),
    ("mcck", "mcck_stack"),
)


def open_kernel(
    path: str, options: Options | None = None, progress: Progress | None = None
) -> Kernel:
    """Open ``path`` (any supported format, .zst too) with optional symbol/type files, and
    the companions found beside it for what ``options`` leaves out.

    Raises:
        DumpError: the dump or a named symbol/type file cannot be used.
    """
    dump = open_dump(path, progress)
    try:
        return kernel_of(dump, options or Options(), companions=True)
    except DumpError:
        dump.close()
        raise


def kernel_of(dump: DumpFile, options: Options, companions: bool = False) -> Kernel:
    """The kernel of an opened dump (the policy of :func:`open_kernel`); ``companions``: also
    look for symbol/type files beside it.

    Raises:
        DumpError: a named symbol/type file cannot be used, or the dump's own layouts
            cannot be decoded.
    """
    image = read_image(dump)
    notes = Diagnostics(warnings=list(image.notes))
    verifier = Verifier(image, notes, force=options.force)
    files = Files(options.vmlinux, options.system_map, options.profile)
    if companions:
        files = choose_companions(verifier, files)
    if files.vmlinux:
        from explorer.sources import prefetch  # (a vmlinux's: no dump-only start needs it)

        if prefetch.building(files.vmlinux):
            _types_ahead(options, files)
    symbols = _symbols(verifier, files)
    release = _release(image, symbols, notes)
    types, probe = _types(verifier, options.types or "auto", files, symbols, release)
    layouts = _layouts(types, release, image.path)
    if files.vmlinux:  # a .zst/.xz/.gz vmlinux: its cached copy for every later reader
        try:
            files = replace(files, vmlinux=plain_vmlinux(files.vmlinux))
        except DumpError as exc:
            notes.warnings.append(f"vmlinux unusable: {exc}")
    # s390 stand-alone formats have no notes: their readers give the registers.
    registers = list(dump.cpu_registers or ()) or [
        cpu_registers_from_notes(i, group, image.path)
        for i, group in enumerate(group_cpu_notes(dump.notes))
    ]
    lowcores = [_read_lowcore(dump, r, layouts.lowcore, image.path) for r in registers]
    asce = _find_asce(registers, [lc for lc, _ in lowcores], notes)
    space = AddressSpace(dump, image.layout, asce)
    thread_size = DEFAULT_THREAD_SIZE, "assumed: no type profile"
    if types is not None and types.has("thread_union"):
        thread_size = _checked_thread_size(types, symbols, notes)
    pt_regs_size = PT_REGS_LAYOUTS[layouts.pt_regs].size
    cpus = tuple(
        Cpu(r, lc, problem, cpu_stacks(lc, thread_size[0], pt_regs_size))
        for r, (lc, problem) in zip(registers, lowcores, strict=True)
    )
    _check_prefixes(registers, notes)
    _check_layout(image, release, notes)
    _check_release(image, notes)
    parts = _Parts(image, options, files, symbols, release, layouts, space, notes)
    kernel = parts.kernel(types, cpus, thread_size)
    if probe is not None:
        kernel = _probe_types(kernel, parts, probe == "forced")
    if kernel.symbols is not None and not kernel.symbols.has_data_symbols:
        from explorer.model.symbols import complete_symbols

        complete_symbols(kernel)
    return kernel


@dataclass(frozen=True)
class _Parts:
    """What is decided before the types are final (the probe needs a kernel to read)."""

    image: DumpImage
    options: Options
    files: Files
    symbols: SymbolTable | None
    release: str | None
    layouts: Layouts
    space: AddressSpace
    notes: Diagnostics

    def kernel(
        self,
        types: TypeProfile | None,
        cpus: tuple[Cpu, ...],
        thread_size: tuple[int, str],
        probe_problem: str | None = None,
    ) -> Kernel:
        notes = self.notes
        return Kernel(
            image=self.image,
            options=self.options,
            files=self.files,
            symbols=self.symbols,
            release=self.release,
            types=types,
            layouts=self.layouts,
            space=self.space,
            cpus=cpus,
            thread_size=thread_size,
            warnings=notes.warnings,
            forced=notes.forced,
            skipped=notes.skipped,
            probe_problem=probe_problem,
        )


def _types_ahead(options: Options, files: Files) -> None:
    """While a worker builds the vmlinux's symbol table (:mod:`explorer.sources.prefetch`),
    build the DWARF profile that :func:`_types` will then take from it (unless another
    source comes first)."""
    if files.vmlinux and not files.profile and (options.types or "auto") in ("auto", "dwarf"):
        build_ahead(files.vmlinux)


def _symbols(verifier: Verifier, files: Files) -> SymbolTable | None:
    """A named (or found) System.map, else a vmlinux's symbols, both verified against the
    dump; else the dump's own kallsyms."""
    if files.system_map:
        return verifier.symbols(files.system_map, SYSTEM_MAP)
    if files.vmlinux:
        return verifier.symbols(files.vmlinux, VMLINUX)
    return dump_kallsyms(verifier.image, verifier.notes)


def _release(image: DumpImage, symbols: SymbolTable | None, notes: Diagnostics) -> str | None:
    """VMCOREINFO's OSRELEASE, else the ``linux_banner`` in memory."""
    if image.vmcoreinfo and image.vmcoreinfo.release:
        return image.vmcoreinfo.release
    if symbols:
        banner = symbols.address_of("linux_banner")
        if banner is not None:
            try:
                raw = image.read(banner, 256)
            except DumpError:
                raw = b""
            m = re.match(rb"Linux version (\S+)", raw)
            if m:
                return m.group(1).decode("ascii", "replace")
    notes.warnings.append("kernel release unknown (no VMCOREINFO, no linux_banner)")
    return None


def _types(
    verifier: Verifier,
    forced: str,
    files: Files,
    symbols: SymbolTable | None,
    release: str | None,
) -> tuple[TypeProfile | None, str | None]:
    """The type profile, from the first source that has one: ``--profile``, ``--vmlinux``
    DWARF, the dump's BTF, a bundled profile of the same build. ``--types`` forces one.
    A bundled profile of the same build completes BTF (its member sources say so).

    Returns:
        The profile (None: to be inferred from memory once the CPUs are known) and whether
        that inference is ``"forced"`` (``--types probe``), the last resort (``"auto"``) or
        not wanted (None).

    Raises:
        TypeInfoError: the forced source (``--types``) has no types for this dump.
        MismatchError: a named profile or vmlinux is another kernel's (without --force).
    """
    if forced == "auto":
        for source in ("profile", "dwarf", "btf", "bundled"):
            profile = _types_from(verifier, source, files, symbols, release)
            if profile is not None:
                if source == "btf":
                    bundled = _types_from(verifier, "bundled", files, symbols, release)
                    if bundled is not None:
                        profile = profile.merged(bundled)
                return profile, None
        return None, "auto"
    if forced == "probe":
        return None, "forced"
    profile = _types_from(verifier, forced, files, symbols, release)
    if profile is None:
        why = {
            "profile": "no --profile given and no profile found beside the dump",
            "dwarf": "no --vmlinux with debug info given or found beside the dump",
            "btf": "the dump has no usable BTF (__start_BTF/__stop_BTF; Debian 6.1 has none)",
            "bundled": f"no bundled profile of this build ({release}) in {BUNDLED_PROFILES}",
        }[forced]
        raise TypeInfoError(f"--types {forced}: {why}", verifier.image.path)
    return profile, None


def _types_from(
    verifier: Verifier,
    source: str,
    files: Files,
    symbols: SymbolTable | None,
    release: str | None,
) -> TypeProfile | None:
    """Types from one source, or None if it has none for this dump."""
    notes = verifier.notes
    if source == "profile":
        if not files.profile:
            return None
        return verifier.profile(TypeProfile.load(files.profile), files.profile)
    if source == "dwarf":
        if not files.vmlinux:
            return None
        try:
            plain = verifier.vmlinux(files.vmlinux)
            # a vmlinux used only by --force never fills the cache its build-id names
            trusted = not any(f" {files.vmlinux} " in w for w in notes.forced)
            profile = profile_from_dwarf(plain, use_cache=trusted)
            notes.warnings.extend(profile.notes)
            return verifier.profile(profile, files.vmlinux)
        except TypeInfoError as exc:
            notes.warnings.append(str(exc))
            return None
    if source == "btf":
        return _btf_types(verifier.image, symbols, release, notes)
    if source == "bundled" and release:
        bundled = bundled_profile(release)
        if bundled is not None:
            profile = TypeProfile.load(bundled)
            build_id = verifier.image.build_id
            if not build_id or not profile.build_id or build_id == profile.build_id:
                return profile
            notes.warnings.append(
                f"bundled profile {bundled.name} skipped: build-id {profile.build_id[:16]}…, "
                f"the dump's is {build_id[:16]}…"
            )
    return None


def _btf_types(
    image: DumpImage, syms: SymbolTable | None, release: str | None, notes: Diagnostics
) -> TypeProfile | None:
    """Types from the kernel's own BTF (CONFIG_DEBUG_INFO_BTF) between __start_BTF and
    __stop_BTF."""
    if syms is None:
        return None
    start, stop = syms.address_of("__start_BTF"), syms.address_of("__stop_BTF")
    if start is None or stop is None or not 0 < stop - start <= 64 << 20:
        return None
    stack = syms.address_of("init_stack")
    end = syms.address_of("__end_init_stack") or syms.address_of("__end_init_task")
    thread_size = end - stack if stack is not None and end is not None else None
    try:
        data = image.read(start, stop - start)
        return profile_from_btf(data, release, source="btf:dump", thread_size=thread_size)
    except DumpError as exc:
        notes.warnings.append(f"BTF in the dump is unusable: {exc.message}")
        return None


def _layouts(types: TypeProfile | None, release: str | None, path: str) -> Layouts:
    """``pt_regs``, ``struct lowcore`` and ``struct stack_frame`` from the kernel's types
    when they have them (member offsets, never a size alone), else the era tables of
    the release; each with the source it came from.

    Raises:
        FormatError: the kernel's own types describe a layout this code cannot decode.
    """
    fallback = f"era table for {release}" if release else "era table (release unknown)"
    if types is not None and types.has("pt_regs") and types.has("pt_regs.flags"):
        try:
            pt_regs = pt_regs_layout_from_types(types.offsets, types.size("pt_regs"))
        except DumpError as exc:
            raise exc.with_path(path) from None
        pt_regs_source = types.source_of("pt_regs")
    else:
        pt_regs, pt_regs_source = pt_regs_layout_for_release(release or "6.1"), fallback
    era = lowcore_era_for_release(release) if release else "v6.1"
    lowcore = lowcore_layout(era)
    assert lowcore is not None
    lowcore_source = fallback
    if types is not None:
        fields = lowcore_fields_from_types(types.offsets, types.sizes, era)
        if fields is not None:
            name = f"{types.source_of('lowcore.current_task').split(':')[0]} {release or '6.1'}"
            lowcore = LowcoreLayout(name, tuple(fields))
            lowcore_source = types.source_of("lowcore.current_task")
    stack_frame_source = "fixed layout (back_chain 0x98, gprs 0x48, 160 bytes)"
    if types is not None and types.has("stack_frame.back_chain"):
        found = (
            types.offset("stack_frame.back_chain"),
            types.offsets.get("stack_frame.gprs", STACK_FRAME_GPRS),
            types.sizes.get("stack_frame", STACK_FRAME_SIZE),
        )
        if found != (STACK_FRAME_BACK_CHAIN, STACK_FRAME_GPRS, STACK_FRAME_SIZE):
            back_chain, gprs, size = found
            raise FormatError(
                f"struct stack_frame of this kernel has back_chain at 0x{back_chain:x}, "
                f"gprs at 0x{gprs:x}, {size} bytes: not the layout backchain decodes "
                "(0x98, 0x48, 160)",
                path,
            )
        stack_frame_source = types.source_of("stack_frame.back_chain")
    return Layouts(pt_regs, pt_regs_source, lowcore, lowcore_source, stack_frame_source)


def _plausible_thread_size(size: int) -> bool:
    return 4096 <= size <= 65536 and size & (size - 1) == 0


def _checked_thread_size(
    types: TypeProfile, symbols: SymbolTable | None, notes: Diagnostics
) -> tuple[int, str]:
    """THREAD_SIZE from the types, checked: a power of two from 4 KiB to 64 KiB (s390:
    PAGE_SIZE << THREAD_SIZE_ORDER, at most order 4 with KASAN), and the span of
    ``init_stack`` when the symbols have it. Otherwise a warning and the better value."""
    size, source = types.thread_size, types.source_of("thread_union")
    start = end = None
    if symbols is not None:
        start = symbols.address_of("init_stack")
        end = symbols.address_of("__end_init_stack") or symbols.address_of("__end_init_task")
    span = end - start if start is not None and end is not None else None
    if span is not None and not _plausible_thread_size(span):
        span = None
    if _plausible_thread_size(size) and (span is None or span == size):
        return size, source
    better, why = (span, "init_stack's span") if span else (DEFAULT_THREAD_SIZE, "assumed")
    notes.warnings.append(
        f"THREAD_SIZE {size} from {source} is not this kernel's "
        f"({'init_stack spans ' + str(span) if span else 'not a power of two of 4-64 KiB'}): "
        f"using {better}"
    )
    return better, why


def _check_prefixes(registers: list[CpuRegisters], notes: Diagnostics) -> None:
    """Warn when two CPUs' prefix registers name one lowcore (damaged CPU notes)."""
    owner: dict[int, int] = {}
    for regs in registers:
        prefix = regs.prefix
        if prefix is None:
            continue
        if prefix in owner:  # by note order: both lowcores say the same CPU number
            notes.warnings.append(
                f"CPUs {owner[prefix]} and {regs.index} have the same prefix "
                f"0x{prefix:x}: one lowcore read for both (the dump's CPU notes are damaged)"
            )
        owner.setdefault(prefix, regs.index)


def _check_release(image: DumpImage, notes: Diagnostics) -> None:
    """Warn when VMCOREINFO's OSRELEASE, which chooses the unwinder rules and the table
    layouts, disagrees with the release in ``init_uts_ns`` (what ``uname -r`` said)."""
    info = image.vmcoreinfo
    address = info.symbol("init_uts_ns") if info is not None else None
    if info is None or not info.release or address is None:
        return
    try:
        raw = image.read(address, 256)
    except DumpError:
        raw = b""
    at = raw.find(b"Linux\0", 0, 64)  # new_utsname: sysname, nodename, release (65 each)
    said = raw[at + 130 : at + 195].split(b"\0", 1)[0].decode("utf-8", "replace")
    if at < 0 or said != info.release:
        notes.warnings.append(
            f"VMCOREINFO says release {info.release} but init_uts_ns in memory "
            + (f"says {said}" if at >= 0 else "cannot be read")
            + f": unwinder rules and layouts follow {info.release} unconfirmed "
            "(--era chooses the rules)"
        )


def _check_layout(image: DumpImage, release: str | None, notes: Diagnostics) -> None:
    """Warn when the virtual address layout is a guess: without VMCOREINFO nothing says
    whether a kernel is v6.10+ (split layout), and legacy is assumed."""
    if image.layout.kind != "legacy" or image.vmcoreinfo is not None:
        return
    newer = release is not None and kernel_version(release)[:2] >= (6, 10)
    notes.warnings.append(
        "no VMCOREINFO: virtual address layout assumed legacy (<= v6.9)"
        + (
            f", but {release} is v6.10+: its addresses will not read right"
            if newer
            else "; a v6.10+ kernel's addresses would not read right"
        )
    )


def _read_lowcore(
    dump: DumpFile, regs: CpuRegisters, layout: LowcoreLayout, path: str
) -> tuple[Lowcore | None, str | None]:
    if regs.prefix is None:
        return None, f"CPU {regs.index}: no NT_S390_PREFIX note"
    try:
        raw = dump.read(regs.prefix, LOWCORE_SIZE)
    except UnmappedError:
        raise FormatError(
            f"CPU {regs.index}: its prefix register 0x{regs.prefix:x} points outside the "
            "dump's memory, so its lowcore cannot be read (damaged notes?)",
            path,
        ) from None
    return decode_lowcore(raw, layout), None


def _find_asce(regs: list[CpuRegisters], lowcores: list[Lowcore | None], notes: Diagnostics) -> int:
    for lc in lowcores:
        if lc and lc.kernel_asce:
            return lc.kernel_asce
    for r in regs:
        if r.crs and r.crs[13]:
            return r.crs[13]
    notes.warnings.append("kernel ASCE unknown: vmalloc addresses cannot be translated")
    return 0


def cpu_stacks(lc: Lowcore | None, thread_size: int, pt_regs_size: int) -> tuple[StackRange, ...]:
    """A CPU's irq, nodat, restart and mcck stacks from its lowcore's stack pointers
    (``STACK_INIT_OFFSET = THREAD_SIZE - STACK_FRAME_OVERHEAD - sizeof(pt_regs)`` above each
    base)."""
    if lc is None:
        return ()
    init_offset = thread_size - STACK_FRAME_SIZE - pt_regs_size
    out = []
    for stack_type, attr in _LOWCORE_STACKS:
        top = getattr(lc, attr)
        if top:
            begin = top - init_offset
            out.append(StackRange(stack_type, begin, begin + thread_size))
    return tuple(out)


def _probe_types(kernel: Kernel, parts: _Parts, forced: bool) -> Kernel:
    """The kernel with types inferred from the dump itself (explorer.sources.probe): forced
    by ``--types probe``, or the last resort of ``auto`` (a warning says why it failed
    there).

    Raises:
        TypeInfoError: ``--types probe`` and the evidence is missing or ambiguous.
    """
    from explorer.sources.probe import probe_types

    try:
        profile, init_task = probe_types(kernel, parts.notes)
    except DumpError as exc:
        if forced:
            raise
        parts.notes.warnings.append(f"no types: {exc.message}")
        return parts.kernel(
            None,
            kernel.cpus,
            (kernel.thread_size, kernel.thread_size_source),
            probe_problem=exc.message,
        )
    thread_size = _checked_thread_size(profile, kernel.symbols, parts.notes)
    pt_regs_size = PT_REGS_LAYOUTS[parts.layouts.pt_regs].size
    cpus = tuple(
        replace(c, stacks=cpu_stacks(c.lowcore, thread_size[0], pt_regs_size)) for c in kernel.cpus
    )
    if kernel.symbols is not None and kernel.symbols.address_of("init_task") is None:
        kernel.symbols.add_known("init_task", init_task, "probe: the task holding 'swapper/0'")
    return parts.kernel(profile, cpus, thread_size)


__all__ = ["Progress", "cpu_stacks", "kernel_of", "open_kernel"]
