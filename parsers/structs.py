"""construct schemas of the s390x kernel structures backchain reads and writes.

Every schema is big-endian, parses *and* builds, and names the kernel struct it mirrors
with the releases its offsets were checked for. Use these schemas to describe, build and
display; the hot paths (scanning stacks) use the precompiled ``struct.Struct`` decoders in
:mod:`parsers.records`, which the tests prove equal to these schemas.

Offsets marked "≈" come from copies of the kernel source of that era; docs/kernel-facts.md
names each file, repository and commit, and the real kernels' types that confirmed them (the
Debian 6.1 and 6.12 DWARF confirmed the ``v6.1`` rows).
When a vmlinux with DWARF/BTF is available, its offsets win over these tables.

All construct errors are turned into :class:`~parsers.errors.TruncatedError` or
:class:`~parsers.errors.FormatError` in one place, :func:`parse`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from construct import (
    Aligned,
    Array,
    BytesInteger,
    Construct,
    ConstructError,
    Default,
    GreedyBytes,
    Int8ub,
    Int16sb,
    Int16ub,
    Int32sb,
    Int32ub,
    Int64sb,
    Int64ub,
    Padding,
    SizeofError,
    StreamError,
    Struct,
    this,
)
from construct import Bytes as _Bytes

from parsers.errors import FormatError, TruncatedError

# --------------------------------------------------------------------------------------------
# The one choke point for construct errors
# --------------------------------------------------------------------------------------------


def parse(schema: Construct, data: bytes | bytearray | memoryview, what: str) -> Any:
    """Parse ``data`` with ``schema``, turning construct errors into backchain errors.

    Args:
        schema: a construct schema from this module.
        data: the bytes to parse (extra bytes after the structure are ignored).
        what: a short description used in the error message, e.g. ``"pt_regs at 0x3e98"``.

    Returns:
        The construct ``Container`` (or list / int for non-Struct schemas).

    Raises:
        TruncatedError: ``data`` is shorter than the structure.
        FormatError: the bytes do not form a valid structure.
    """
    try:
        size = schema.sizeof()
    except SizeofError:
        size = None
    if size is not None and len(data) < size:
        raise TruncatedError(f"{what}: needs {size} bytes, only {len(data)} available")
    try:
        return schema.parse(bytes(data))
    except StreamError as error:
        raise TruncatedError(f"{what}: data ends early ({error})") from None
    except ConstructError as error:
        raise FormatError(f"{what}: malformed ({error})") from None


def build(schema: Construct, value: Any, what: str) -> bytes:
    """Build ``value`` with ``schema``.

    Args:
        schema: a construct schema from this module.
        value: the (possibly nested) dict to encode.
        what: a short description used in the error message.

    Returns:
        The encoded bytes.

    Raises:
        ValueError: a value does not fit its field (a caller's bug, not a dump problem).
    """
    try:
        return bytes(schema.build(value))
    except ConstructError as error:
        raise ValueError(f"cannot build {what}: {error}") from None


# --------------------------------------------------------------------------------------------
# Kernel release strings
# --------------------------------------------------------------------------------------------

_RELEASE_RE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def kernel_version(release: str) -> tuple[int, int, int]:
    """Return ``(major, minor, patch)`` of a kernel release string.

    Args:
        release: ``uname -r`` style text, e.g. ``"6.1.0-40-s390x"`` or ``"6.12.57+deb13-s390x"``.

    Raises:
        FormatError: the string does not start with ``MAJOR.MINOR``.
    """
    match = _RELEASE_RE.match(release)
    if not match:
        raise FormatError(f"cannot read a kernel version from release {release!r}")
    return int(match[1]), int(match[2]), int(match[3] or 0)


# --------------------------------------------------------------------------------------------
# psw_t: arch/s390/include/asm/ptrace.h, 16 bytes, unchanged in all 64-bit kernels
# --------------------------------------------------------------------------------------------

PSW = Struct(
    "mask" / Int64ub,  # 0x00
    "addr" / Int64ub,  # 0x08
)

# --------------------------------------------------------------------------------------------
# struct stack_frame (packed stack): arch/s390/include/asm/stacktrace.h (processor.h before
# ≈v5.14). Packed layout, identical offsets in all kernels built with -mpacked-stack (all
# production kernels since ≈v2.6); sizeof = STACK_FRAME_OVERHEAD = 160.
# --------------------------------------------------------------------------------------------

STACK_FRAME_SIZE = 160

STACK_FRAME = Struct(
    "empty" / Array(9, Int64ub),  # 0x00: unused by C code; KVM's __sie64a parks values here
    "gprs" / Array(10, Int64ub),  # 0x48: save slots of r6..r15 (r14 @0x88, r15 @0x90)
    "back_chain" / Int64ub,  # 0x98: the caller's frame, or 0
)

# The same 160 bytes with the KVM overlay of empty[] (asm-offsets __SF_SIE_*): names as in
# ≈v6.8+ (sie_control_block_phys ≈v6.2+, sie_guest_asce ≈v6.8+; 0x30 is sie_irq in 2025
# patches). Only meaningful in the frame of the caller of __sie64a.
STACK_FRAME_SIE = Struct(
    "sie_control_block" / Int64ub,  # 0x00 virtual address of the SIE control block
    "sie_savearea" / Int64ub,  # 0x08 guest GPR save area
    "sie_reason" / Int64ub,  # 0x10 exit reason (sie_return in 2025 patches)
    "sie_flags" / Int64ub,  # 0x18 copy of the thread flags
    "sie_control_block_phys" / Int64ub,  # 0x20 (≈v6.2+)
    "sie_guest_asce" / Int64ub,  # 0x28 (≈v6.8+)
    "sie_reserved" / Array(3, Int64ub),  # 0x30..0x47 (0x30 sie_irq in 2025 patches)
    "gprs" / Array(10, Int64ub),  # 0x48
    "back_chain" / Int64ub,  # 0x98
)

# --------------------------------------------------------------------------------------------
# struct pt_regs: arch/s390/include/asm/ptrace.h. The head (user_pt_regs + orig_gpr2 ..
# flags, 0xB8 bytes) is the same in all layouts below; the tail changed.
# --------------------------------------------------------------------------------------------


class PtRegsLayout(NamedTuple):
    """One historical layout of ``struct pt_regs``.

    Attributes:
        name: the layout's name, the oldest release seen with it (``"v6.1"``).
        size: ``sizeof(struct pt_regs)``.
        cr1_offset: offset of ``cr1``, or None when the layout has none.
        last_break_offset: offset of ``last_break``, or None.
        kernels: the releases it holds for (approximate, see module docstring).
    """

    name: str
    size: int
    cr1_offset: int | None
    last_break_offset: int | None
    kernels: str


PT_REGS_LAYOUTS: dict[str, PtRegsLayout] = {
    # ≈v4.14-v5.10 copy with PIF_PER_TRAP; DWARF of a rebuilt 5.10.223: 184 bytes, flags
    # at 0xB0 last (v5.5 itself inferred, unverified).
    "v4.14": PtRegsLayout("v4.14", 0xB8, None, None, "≈v4.14–v5.11 (DWARF: 5.10)"),
    # ≈v5.12 copy (hinlin): cr1 added with the generic-entry conversion.
    "v5.12": PtRegsLayout("v5.12", 0xC0, 0xB8, None, "≈v5.12–v5.15"),
    # ≈v6.3 copy and the DWARF of Debian 6.1.176 and 6.12.95.
    "v6.1": PtRegsLayout("v6.1", 0xC8, 0xB8, 0xC0, "≈v5.16–v6.15 (DWARF: 6.1, 6.12)"),
    # current trees (≈v6.16+): cr1 dropped.
    "v6.16": PtRegsLayout("v6.16", 0xC0, None, 0xB8, "≈v6.16+"),
    # DWARF of Debian sid's 7.2.13: last_break at 0xB8, cpu (u32) at 0xC0, percpu_register
    # (u8) at 0xC4: as large as v6.1's, laid out differently (reference §2.2, §13).
    "v7.2": PtRegsLayout("v7.2", 0xC8, None, 0xB8, "7.2 (DWARF: Debian sid 7.2.13)"),
}

#: Members every pt_regs layout above has at these offsets (the head before the tail).
PT_REGS_HEAD_OFFSETS = {
    "pt_regs.psw": 0x08,
    "pt_regs.gprs": 0x18,
    "pt_regs.orig_gpr2": 0x98,
    "pt_regs.int_code": 0xA0,
    "pt_regs.flags": 0xB0,
}

_PT_REGS_HEAD = (
    "args" / Array(1, Int64ub),  # 0x00 args[0] (≈v5.6: breaking-event address)
    "psw" / PSW,  # 0x08
    "gprs" / Array(16, Int64ub),  # 0x18: rN at 0x18 + 8*N
    "orig_gpr2" / Int64ub,  # 0x98
    "int_code" / Int32ub,  # 0xA0 (union with struct tpi_info ≈v5.14+)
    "int_parm" / Int32ub,  # 0xA4
    "int_parm_long" / Int64ub,  # 0xA8 e.g. TEID of a page fault
    "flags" / Int64ub,  # 0xB0 PIF_* bits
)

_PT_REGS_SCHEMAS: dict[str, Construct] = {
    "v4.14": Struct(*_PT_REGS_HEAD),
    "v5.12": Struct(*_PT_REGS_HEAD, "cr1" / Int64ub),
    "v6.1": Struct(*_PT_REGS_HEAD, "cr1" / Int64ub, "last_break" / Int64ub),
    "v6.16": Struct(*_PT_REGS_HEAD, "last_break" / Int64ub),
    "v7.2": Struct(
        *_PT_REGS_HEAD,
        "last_break" / Int64ub,
        "cpu" / Default(Int32ub, 0),
        "percpu_register" / Default(Int8ub, 0),
        Padding(3),
    ),
}


def pt_regs_layout_for_release(release: str) -> str:
    """Pick the ``pt_regs`` layout name for a kernel release.

    Boundaries (newest first): cr1 dropped ≈v6.16 (current trees); last_break added between
    v5.15 (a copy without it) and v6.1 (DWARF), assumed v5.16; cr1 added ≈v5.12.

    Args:
        release: e.g. ``"6.1.0-40-s390x"``.

    Returns:
        One of ``"v4.14"``, ``"v5.12"``, ``"v6.1"``, ``"v6.16"``.
    """
    version = kernel_version(release)[:2]
    if version >= (7, 2):  # boundary with v6.16 unknown: 7.2 is the first seen with cpu
        return "v7.2"
    if version >= (6, 16):
        return "v6.16"
    if version >= (5, 16):
        return "v6.1"
    if version >= (5, 12):
        return "v5.12"
    return "v4.14"


def pt_regs_layout(size: int | None, release: str | None = None) -> str:
    """Pick the ``pt_regs`` layout from its size (e.g. from DWARF) and/or the release.

    The size wins when both are given; 192 bytes is ambiguous (``v5.12`` has cr1 at 0xB8,
    ``v6.16`` has last_break there), so the release decides, and without one the current
    layout ``v6.16`` is assumed.

    Args:
        size: ``sizeof(struct pt_regs)``, or None if unknown.
        release: the kernel release, or None if unknown.

    Returns:
        A key of :data:`PT_REGS_LAYOUTS`.

    Raises:
        FormatError: neither is given, or the size matches no known layout.
    """
    by_release = pt_regs_layout_for_release(release) if release else None
    if size is None:
        if by_release is None:
            raise FormatError("pt_regs layout: need its size or the kernel release")
        return by_release
    candidates = [layout.name for layout in PT_REGS_LAYOUTS.values() if layout.size == size]
    if not candidates:
        raise FormatError(f"pt_regs of {size} bytes matches no known layout")
    if by_release in candidates:
        return by_release
    if len(candidates) == 1 or size != 0xC0:
        return candidates[0]  # 200 bytes: v6.1 unless the release says v7.2 (see above)
    # Two layouts of 192 bytes: cr1 at 0xB8 before ≈v6.16, last_break there since.
    if release and kernel_version(release)[:2] < (6, 16):
        return "v5.12"
    return "v6.16"


def pt_regs_layout_from_types(offsets: Mapping[str, int], size: int) -> str:
    """The ``pt_regs`` layout whose member offsets are the kernel's own (DWARF, BTF).

    The layout is chosen by where ``cr1`` and ``last_break`` are (or that they are absent)
    and by the size together, never by the size alone: 6.x and 7.2 are both 200 bytes.

    Args:
        offsets: ``"pt_regs.member"`` offsets from the kernel's types.
        size: ``sizeof(struct pt_regs)`` from the same types.

    Returns:
        A key of :data:`PT_REGS_LAYOUTS`.

    Raises:
        FormatError: the kernel's pt_regs is none of the layouts this code decodes.
    """
    for key, expected in PT_REGS_HEAD_OFFSETS.items():
        if offsets.get(key, expected) != expected:
            raise FormatError(
                f"struct pt_regs of this kernel has {key.split('.')[1]} at "
                f"0x{offsets[key]:x}, not 0x{expected:x}: a layout backchain cannot decode"
            )
    cr1, last_break = offsets.get("pt_regs.cr1"), offsets.get("pt_regs.last_break")
    for layout in PT_REGS_LAYOUTS.values():
        if (layout.size, layout.cr1_offset, layout.last_break_offset) == (size, cr1, last_break):
            return layout.name
    where = ", ".join(
        f"{name} at 0x{value:x}" if value is not None else f"no {name}"
        for name, value in (("cr1", cr1), ("last_break", last_break))
    )
    raise FormatError(
        f"struct pt_regs of this kernel ({size} bytes, {where}) matches no layout backchain decodes"
    )


def pt_regs_schema(size_or_layout: int | str) -> Construct:
    """Return the ``pt_regs`` schema for a layout name or a size.

    Args:
        size_or_layout: a key of :data:`PT_REGS_LAYOUTS`, or a size (192 means ``v6.16``;
            pass the name ``"v5.12"`` for the older 192-byte layout).

    Raises:
        FormatError: unknown layout or size.
    """
    if isinstance(size_or_layout, int):
        size_or_layout = pt_regs_layout(size_or_layout)
    try:
        return _PT_REGS_SCHEMAS[size_or_layout]
    except KeyError:
        raise FormatError(f"unknown pt_regs layout {size_or_layout!r}") from None


# --------------------------------------------------------------------------------------------
# struct lowcore: arch/s390/include/asm/lowcore.h, 0x2000 bytes (LC_PAGES 2). The
# architected part is fixed by the z/Architecture; the software part moved per era.
# --------------------------------------------------------------------------------------------

LOWCORE_SIZE = 0x2000

LOWCORE_ERAS = ("v4", "v5.4", "v6.1", "v6.16")


class LowcoreField(NamedTuple):
    """One lowcore field, for schemas and for a UI listing every field.

    Attributes:
        name: the kernel's member name.
        offset: byte offset in the lowcore.
        size: bytes.
        kind: ``u8 u16 u32 s32 u64 ptr asce psw save8 gprs16 fprs16 crs16 acrs16 bytes``.
        meaning: a short description.
    """

    name: str
    offset: int
    size: int
    kind: str
    meaning: str


_KIND_SIZE = {
    "u8": 1,
    "u16": 2,
    "u32": 4,
    "s32": 4,
    "u64": 8,
    "ptr": 8,
    "asce": 8,
    "psw": 16,
    "save8": 64,
    "gprs16": 128,
    "fprs16": 128,
    "crs16": 128,
    "acrs16": 64,
}


def _f(name: str, offset: int, kind: str, meaning: str, size: int | None = None) -> LowcoreField:
    return LowcoreField(name, offset, size if size is not None else _KIND_SIZE[kind], kind, meaning)


_PSW_NAMES = ("restart", "external", "svc", "program", "mcck", "io")

# Architected prefix area up to 0x200 (Principles of Operation; same in all 64-bit kernels).
_ARCH_LOW = [
    _f("ipl_parmblock_ptr", 0x014, "u32", "IPL parameter block (31-bit)"),
    _f("ext_params", 0x080, "u32", "external-interruption parameter"),
    _f("ext_cpu_addr", 0x084, "u16", "external interruption: CPU address"),
    _f("ext_int_code", 0x086, "u16", "external-interruption code"),
    _f("svc_ilc", 0x088, "u16", "SVC instruction length (bytes)"),
    _f("svc_code", 0x08A, "u16", "SVC number"),
    _f("pgm_ilc", 0x08C, "u16", "program check: instruction length (bytes)"),
    _f("pgm_code", 0x08E, "u16", "program-interruption code"),
    _f("data_exc_code", 0x090, "u32", "data-exception code"),
    _f("mon_class_num", 0x094, "u16", "monitor class number"),
    _f("per_code", 0x096, "u8", "PER code"),
    _f("per_atmid", 0x097, "u8", "PER addressing and translation mode id"),
    _f("per_address", 0x098, "u64", "PER address"),
    _f("exc_access_id", 0x0A0, "u8", "exception access id"),
    _f("per_access_id", 0x0A1, "u8", "PER access id"),
    _f("op_access_id", 0x0A2, "u8", "operand access id"),
    _f("ar_mode_id", 0x0A3, "u8", "AR-mode id"),
    _f("trans_exc_code", 0x0A8, "u64", "translation-exception id (TEID)"),
    _f("monitor_code", 0x0B0, "u64", "monitor code"),
    _f("subchannel_id", 0x0B8, "u16", "I/O: subchannel id"),
    _f("subchannel_nr", 0x0BA, "u16", "I/O: subchannel number"),
    _f("io_int_parm", 0x0BC, "u32", "I/O-interruption parameter"),
    _f("io_int_word", 0x0C0, "u32", "I/O-interruption word"),
    _f("stfl_fac_list", 0x0C8, "u32", "STFL facility list"),
    _f("mcck_interruption_code", 0x0E8, "u64", "machine-check interruption code"),
    _f("external_damage_code", 0x0F4, "u32", "external-damage code"),
    _f("failing_storage_address", 0x0F8, "u64", "failing-storage address"),
    _f("breaking_event_addr", 0x110, "u64", "breaking-event address of the last program check"),
    *(
        _f(f"{name}_old_psw", 0x120 + 0x10 * i, "psw", f"{name} old PSW (interrupted state)")
        for i, name in enumerate(_PSW_NAMES)
    ),
    *(
        _f(
            "restart_psw" if name == "restart" else f"{name}_new_psw",
            0x1A0 + 0x10 * i,
            "psw",
            f"{name} new PSW (handler entry)",
        )
        for i, name in enumerate(_PSW_NAMES)
    ),
]

# Architected fields above the software area, and the store-status save area 0x1200-0x13FF
# (written by SIGP STORE STATUS or the dumper: where dump tools find CPU registers).
_ARCH_HIGH = [
    _f("ipib", 0xE00, "ptr", "IPL parameter information block (for re-IPL after dump)"),
    _f("ipib_checksum", 0xE08, "u32", "IPIB checksum"),
    _f("vmcore_info", 0xE0C, "u64", "VMCOREINFO note address, or KASLR offset | 1 (unaligned)"),
    _f("os_info", 0xE18, "ptr", "os_info page (magic OSINFOSZ)"),
    _f("mcesad", 0x11B0, "u64", "machine-check extended save area designation"),
    _f("ext_params2", 0x11B8, "u64", "64-bit external parameter (pfault/diag 250)"),
    _f("floating_pt_save_area", 0x1200, "fprs16", "store status: FPR0..15"),
    _f("gpregs_save_area", 0x1280, "gprs16", "store status: GPR0..15"),
    _f("psw_save_area", 0x1300, "psw", "store status: PSW"),
    _f("prefixreg_save_area", 0x1318, "u32", "store status: prefix register"),
    _f("fpt_creg_save_area", 0x131C, "u32", "store status: floating-point control"),
    _f("tod_progreg_save_area", 0x1324, "u32", "store status: TOD programmable register"),
    _f("cpu_timer_save_area", 0x1328, "u64", "store status: CPU timer"),
    _f("clock_comp_save_area", 0x1330, "u64", "store status: clock comparator (bits 0-55)"),
    _f("last_break_save_area", 0x1338, "u64", "store status: breaking-event address (newer)"),
    _f("access_regs_save_area", 0x1340, "acrs16", "store status: access registers 0..15"),
    _f("cregs_save_area", 0x1380, "crs16", "store status: control registers 0..15"),
    _f("pgm_tdb", 0x1800, "bytes", "transaction-abort diagnostic block", 256),
]

_CRYPTO = [
    _f("ccd", 0x1500, "u64", "crypto counter designation"),
    _f("aicd", 0x1508, "u64", "AI counter designation"),
]


def _stacks(first: int, panic: bool) -> list[LowcoreField]:
    """current_task .. restart_stack, five consecutive u64 from ``first``."""
    nodat = (
        _f("panic_stack", first + 0x18, "ptr", "panic stack + STACK_INIT_OFFSET")
        if panic
        else _f("nodat_stack", first + 0x18, "ptr", "DAT-off stack + STACK_INIT_OFFSET")
    )
    return [
        _f("current_task", first, "ptr", "task_struct running on this CPU"),
        _f("kernel_stack", first + 0x08, "ptr", "current task stack + STACK_INIT_OFFSET"),
        _f("async_stack", first + 0x10, "ptr", "IRQ stack + STACK_INIT_OFFSET"),
        nodat,
        _f("restart_stack", first + 0x20, "ptr", "restart stack + STACK_INIT_OFFSET (global)"),
    ]


_SAVE_AREAS_OLD = [
    _f("save_area_sync", 0x200, "save8", "entry save area, synchronous interrupts"),
    _f("save_area_async", 0x240, "save8", "entry save area, asynchronous interrupts"),
    _f("save_area_restart", 0x280, "u64", "restart save area (r15)"),
    _f("cpu_flags", 0x288, "u64", "CIF_* flags"),
    _f("return_psw", 0x290, "psw", "PSW to return to user"),
    _f("return_mcck_psw", 0x2A0, "psw", "PSW to return from machine check"),
]

_RESTART = "restart handler"

# ≈v4.x (docs/kernel-facts.md, lowcore): a torvalds copy (00ed905; has panic_stack). ≈v4.4
# differs again.
_SOFT_V4 = [
    *_SAVE_AREAS_OLD,
    _f("sync_enter_timer", 0x2B0, "u64", "CPU timer at sync entry"),
    _f("int_clock", 0x310, "u64", "TOD clock at interrupt"),
    _f("clock_comparator", 0x320, "u64", "next clock comparator value"),
    *_stacks(0x338, panic=True),
    _f("restart_fn", 0x360, "ptr", f"{_RESTART} function"),
    _f("restart_data", 0x368, "u64", f"{_RESTART} argument"),
    _f("restart_source", 0x370, "u64", "CPU that sent the restart"),
    _f("kernel_asce", 0x378, "asce", "kernel address-space control element"),
    _f("user_asce", 0x380, "asce", "user address-space control element"),
    _f("lpp", 0x388, "u32", "load-program-parameter high word"),
    _f("current_pid", 0x38C, "u32", "pid of current task"),
    _f("cpu_nr", 0x390, "u32", "logical CPU number"),
    _f("softirq_pending", 0x394, "u32", "pending softirqs"),
    _f("percpu_offset", 0x398, "u64", "per-CPU area offset"),
    _f("vdso_per_cpu_data", 0x3A0, "ptr", "vDSO per-CPU data"),
    _f("machine_flags", 0x3A8, "u64", "MACHINE_FLAG_* bits"),
    _f("preempt_count", 0x3B0, "u32", "preempt count"),
    _f("gmap", 0x3B8, "ptr", "KVM guest map"),
    _f("spinlock_lockval", 0x3C0, "u32", "spinlock value of this CPU"),
    _f("fpu_flags", 0x3C4, "u32", "FPU flags"),
    _f("stfle_fac_list", 0xF00, "bytes", "STFLE facility list", 128),
]

# ≈v5.4-v5.10 (docs/kernel-facts.md; ROCm copy; nodat_stack, vdso_asce). Every offset below
# matches the DWARF struct lowcore of a rebuilt 5.10.223 (samples/real/rebuilt-5.10-busy).
_SOFT_V5_4 = [
    *_SAVE_AREAS_OLD,
    _f("sync_enter_timer", 0x2B0, "u64", "CPU timer at sync entry"),
    _f("int_clock", 0x318, "u64", "TOD clock at interrupt"),
    _f("clock_comparator", 0x328, "u64", "next clock comparator value"),
    *_stacks(0x340, panic=False),
    _f("restart_fn", 0x368, "ptr", f"{_RESTART} function"),
    _f("restart_data", 0x370, "u64", f"{_RESTART} argument"),
    _f("restart_source", 0x378, "u64", "CPU that sent the restart"),
    _f("kernel_asce", 0x380, "asce", "kernel address-space control element"),
    _f("user_asce", 0x388, "asce", "user address-space control element"),
    _f("vdso_asce", 0x390, "asce", "vDSO address-space control element"),
    _f("lpp", 0x398, "u32", "load-program-parameter high word"),
    _f("current_pid", 0x39C, "u32", "pid of current task"),
    _f("cpu_nr", 0x3A0, "u32", "logical CPU number"),
    _f("softirq_pending", 0x3A4, "u32", "pending softirqs"),
    _f("preempt_count", 0x3A8, "s32", "preempt count"),
    _f("spinlock_lockval", 0x3AC, "u32", "spinlock value of this CPU"),
    _f("spinlock_index", 0x3B0, "u32", "spinlock index"),
    _f("fpu_flags", 0x3B4, "u32", "FPU flags"),
    _f("percpu_offset", 0x3B8, "u64", "per-CPU area offset"),
    _f("vdso_per_cpu_data", 0x3C0, "ptr", "vDSO per-CPU data"),
    _f("machine_flags", 0x3C8, "u64", "MACHINE_FLAG_* bits"),
    _f("gmap", 0x3D0, "ptr", "KVM guest map"),
    _f("br_r1_trampoline", 0x400, "u16", "br %r1 trampoline (expolines)"),
    _f("stfle_fac_list", 0xF00, "bytes", "STFLE facility list", 128),
    _f("alt_stfle_fac_list", 0xF80, "bytes", "alternatives facility list", 128),
]


def _soft_v6(newest: bool) -> list[LowcoreField]:
    """≈v6.1 (Debian 6.1/6.12 DWARF) and ≈v6.16+ (docs/kernel-facts.md, lowcore)."""
    head = (
        [
            _f("save_area", 0x200, "save8", "entry save area"),
            _f("save_area_restart", 0x280, "u64", "restart save area (r15)"),
            _f("pcpu", 0x288, "ptr", "struct pcpu of this CPU"),
            *_SAVE_AREAS_OLD[4:],
        ]
        if newest
        else list(_SAVE_AREAS_OLD)
    )
    middle = [
        _f("last_break", 0x2B0, "u64", "breaking-event address at kernel entry"),
        _f("sys_enter_timer", 0x2B8, "u64", "CPU timer at kernel entry"),
        _f("int_clock", 0x318, "u64", "TOD clock at interrupt"),
        _f("clock_comparator", 0x328, "u64", "next clock comparator value"),
        *_stacks(0x340, panic=False),
        _f("mcck_stack", 0x368, "ptr", "machine-check stack + STACK_INIT_OFFSET"),
        _f("restart_fn", 0x370, "ptr", f"{_RESTART} function"),
        _f("restart_data", 0x378, "u64", f"{_RESTART} argument"),
        _f("restart_source", 0x380, "u32", "CPU that sent the restart"),
        _f("restart_flags", 0x384, "u32", "RESTART_FLAG_* bits"),
        _f("kernel_asce", 0x388, "asce", "kernel address-space control element"),
        _f("user_asce", 0x390, "asce", "user address-space control element"),
        _f("lpp", 0x398, "u32", "load-program-parameter high word"),
        _f("current_pid", 0x39C, "u32", "pid of current task"),
        _f("cpu_nr", 0x3A0, "u32", "logical CPU number"),
        _f("softirq_pending", 0x3A4, "u32", "pending softirqs"),
        _f("preempt_count", 0x3A8, "s32", "preempt count (u64 union in the newest trees)"),
        _f("spinlock_lockval", 0x3AC, "u32", "spinlock value of this CPU"),
        _f("spinlock_index", 0x3B0, "u32", "spinlock index"),
    ]
    tail = [] if newest else [_f("fpu_flags", 0x3B4, "u32", "FPU flags")]
    tail.append(_f("percpu_offset", 0x3B8, "u64", "per-CPU area offset"))
    if not newest:
        tail += [
            _f("machine_flags", 0x3C8, "u64", "MACHINE_FLAG_* bits"),
            _f("gmap", 0x3D0, "ptr", "KVM guest map"),
        ]
    tail += [
        _f("return_lpswe", 0x400, "u32", "lpswe instruction returning to user"),
        _f("return_mcck_lpswe", 0x404, "u32", "lpswe instruction returning from mcck"),
    ]
    return head + middle + tail


LOWCORE_FIELDS: dict[str, list[LowcoreField]] = {
    era: sorted([*_ARCH_LOW, *soft, *_ARCH_HIGH, *extra], key=lambda f: f.offset)
    for era, soft, extra in (
        ("v4", _SOFT_V4, []),
        ("v5.4", _SOFT_V5_4, []),
        ("v6.1", _soft_v6(newest=False), _CRYPTO),
        ("v6.16", _soft_v6(newest=True), _CRYPTO),
    )
}


_ARCHITECTED = frozenset(f.name for f in (*_ARCH_LOW, *_ARCH_HIGH))
_SCALAR_BY_SIZE = {1: "u8", 2: "u16", 4: "u32", 8: "u64"}
#: Fewer lowcore members than this in a type source is not a struct lowcore to trust.
_MIN_LOWCORE_MEMBERS = 40


def _kind_of(name: str, size: int) -> str:
    if size == 16 and name.endswith("psw"):
        return "psw"
    return _SCALAR_BY_SIZE.get(size, "bytes")


def lowcore_fields_from_types(
    offsets: Mapping[str, int], sizes: Mapping[str, int], era: str
) -> list[LowcoreField] | None:
    """The lowcore's fields as the kernel's own types name and place them.

    Software fields come only from the types (a field the era table has but the kernel
    lacks, like ``cpu_flags`` where 6.12 has ``pcpu``, is dropped); the architected fields
    (fixed by the z/Architecture) keep the table's names and also appear under the kernel's
    names where it calls them differently. Table kinds and meanings are kept where names
    and sizes agree.

    Args:
        offsets: ``"lowcore.member"`` offsets (DWARF, BTF or a profile made from them).
        sizes: member sizes keyed the same way.
        era: the era table to take kinds, meanings and architected fields from.

    Returns:
        Fields in offset order, or None when the types hold no usable struct lowcore.
    """
    members = {
        key[8:]: value
        for key, value in offsets.items()
        if key.startswith("lowcore.") and "." not in key[8:]
    }
    if len(members) < _MIN_LOWCORE_MEMBERS:
        return None
    table = {f.name: f for f in LOWCORE_FIELDS[era]}
    out: dict[str, LowcoreField] = {}
    for name, field in table.items():
        if name in members:
            size = sizes.get(f"lowcore.{name}", field.size)
            kind = field.kind if field.size == size else _kind_of(name, size)
            out[name] = LowcoreField(name, members[name], size, kind, field.meaning)
        elif name in _ARCHITECTED:
            out[name] = field
    known = {f.name: f for fields in LOWCORE_FIELDS.values() for f in fields}  # other eras
    for name, offset in members.items():
        member_size = sizes.get(f"lowcore.{name}")
        if name in out or name.startswith("pad") or not member_size:
            continue
        if offset + member_size > LOWCORE_SIZE:
            continue
        size = member_size
        other = known.get(name)
        if other is not None and other.size == size:
            out[name] = LowcoreField(name, offset, size, other.kind, other.meaning)
            continue
        kind = _kind_of(name, size)
        if size == 64 and name.startswith("save_area"):
            kind = "save8"  # stmg %r8,%r15
        out[name] = LowcoreField(name, offset, size, kind, "(from the kernel's types)")
    return sorted(out.values(), key=lambda f: (f.offset, f.name))


def register_lowcore_fields(name: str, fields: list[LowcoreField]) -> None:
    """Make ``name`` usable wherever an era is (decoding; not building: fields may overlap)."""
    LOWCORE_FIELDS[name] = fields


def lowcore_era_for_release(release: str) -> str:
    """Pick the lowcore era for a kernel release.

    Boundaries (approximate; DWARF/BTF offsets win): ≈v6.16 dropped save_area_async,
    cpu_flags, fpu_flags, machine_flags and gmap; mcck_stack arrived ≈v5.12 (a v5.15 copy
    has the v6.1 stack offsets); nodat_stack replaced panic_stack in v4.20.

    Args:
        release: e.g. ``"6.12.57+deb13-s390x"``.

    Returns:
        One of :data:`LOWCORE_ERAS`.
    """
    version = kernel_version(release)[:2]
    if version >= (6, 16):
        return "v6.16"
    if version >= (5, 12):
        return "v6.1"
    if version >= (4, 20):
        return "v5.4"
    return "v4"


def _lowcore_subcon(field: LowcoreField) -> Construct:
    """A construct for one field, defaulting to zero so builders may omit it."""
    kind = field.kind
    if kind == "psw":
        return Default(PSW, {"mask": 0, "addr": 0})
    if kind == "bytes":
        return Default(_Bytes(field.size), bytes(field.size))
    if kind == "acrs16":
        return Default(Array(16, Int32ub), [0] * 16)
    if kind == "save8":
        return Default(Array(8, Int64ub), [0] * 8)
    if kind in ("gprs16", "fprs16", "crs16"):
        return Default(Array(16, Int64ub), [0] * 16)
    scalar = {"u8": Int8ub, "u16": Int16ub, "u32": Int32ub, "s32": Int32sb}.get(kind, Int64ub)
    return Default(scalar, 0)


def _lowcore_struct(fields: Sequence[LowcoreField]) -> Construct:
    members = []
    position = 0
    for field in fields:
        if field.offset < position:
            raise AssertionError(f"lowcore field {field.name} overlaps its predecessor")
        if field.offset > position:
            members.append(Padding(field.offset - position))
        members.append(field.name / _lowcore_subcon(field))
        position = field.offset + field.size
    members.append(Padding(LOWCORE_SIZE - position))
    return Struct(*members)


_LOWCORE_SCHEMAS = {era: _lowcore_struct(fields) for era, fields in LOWCORE_FIELDS.items()}


def lowcore_schema(era: str) -> Construct:
    """Return the 0x2000-byte ``struct lowcore`` schema of an era.

    Args:
        era: one of :data:`LOWCORE_ERAS` (see :func:`lowcore_era_for_release`).

    Raises:
        FormatError: unknown era.
    """
    try:
        return _LOWCORE_SCHEMAS[era]
    except KeyError:
        raise FormatError(f"unknown lowcore era {era!r}") from None


# --------------------------------------------------------------------------------------------
# ELF core notes: include/uapi/linux/elf.h (note types), arch/s390/kernel/crash_dump.c,
# QEMU target/s390x/arch_dump.c. Values unchanged since they were introduced.
# --------------------------------------------------------------------------------------------

NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_PRPSINFO = 3
NT_S390_HIGH_GPRS = 0x300
NT_S390_TIMER = 0x301
NT_S390_TODCMP = 0x302
NT_S390_TODPREG = 0x303
NT_S390_CTRS = 0x304
NT_S390_PREFIX = 0x305
NT_S390_LAST_BREAK = 0x306
NT_S390_SYSTEM_CALL = 0x307
NT_S390_TDB = 0x308
NT_S390_VXRS_LOW = 0x309
NT_S390_VXRS_HIGH = 0x30A
NT_S390_GS_CB = 0x30B
NT_S390_GS_BC = 0x30C
NT_S390_RI_CB = 0x30D
NT_S390_PV_CPU_DATA = 0x30E
# The "VMCOREINFO" note uses type 0; a type number only means something with its note name.
NT_VMCOREINFO = 0

NOTE_TYPES: dict[int, str] = {
    NT_VMCOREINFO: "VMCOREINFO",
    NT_PRSTATUS: "NT_PRSTATUS",
    NT_PRFPREG: "NT_PRFPREG",
    NT_PRPSINFO: "NT_PRPSINFO",
    NT_S390_HIGH_GPRS: "NT_S390_HIGH_GPRS",
    NT_S390_TIMER: "NT_S390_TIMER",
    NT_S390_TODCMP: "NT_S390_TODCMP",
    NT_S390_TODPREG: "NT_S390_TODPREG",
    NT_S390_CTRS: "NT_S390_CTRS",
    NT_S390_PREFIX: "NT_S390_PREFIX",
    NT_S390_LAST_BREAK: "NT_S390_LAST_BREAK",
    NT_S390_SYSTEM_CALL: "NT_S390_SYSTEM_CALL",
    NT_S390_TDB: "NT_S390_TDB",
    NT_S390_VXRS_LOW: "NT_S390_VXRS_LOW",
    NT_S390_VXRS_HIGH: "NT_S390_VXRS_HIGH",
    NT_S390_GS_CB: "NT_S390_GS_CB",
    NT_S390_GS_BC: "NT_S390_GS_BC",
    NT_S390_RI_CB: "NT_S390_RI_CB",
    NT_S390_PV_CPU_DATA: "NT_S390_PV_CPU_DATA",
}

# Elf64_Nhdr (include/uapi/linux/elf.h).
ELF64_NHDR = Struct(
    "namesz" / Int32ub,  # includes the terminating NUL
    "descsz" / Int32ub,
    "type" / Int32ub,
)
Elf64_Nhdr = ELF64_NHDR  # the kernel's spelling


def elf_note_schema(name_align: int = 4) -> Construct:
    """A whole note: header, name padded to ``name_align``, desc padded to 4.

    Args:
        name_align: 4 per the ELF spec and the kernel; QEMU's s390x notes use a fixed
            8-byte name field ("CORE\\0", "LINUX\\0"), which is ``name_align=8``.
    """
    return Struct(
        "namesz" / Int32ub,
        "descsz" / Int32ub,
        "type" / Int32ub,
        "name" / Aligned(name_align, _Bytes(this.namesz)),
        "desc" / Aligned(4, _Bytes(this.descsz)),
    )


ELF_NOTE = elf_note_schema(4)

# struct timeval as used by elf_prstatus (64-bit).
_TIMEVAL = Struct("tv_sec" / Int64sb, "tv_usec" / Int64sb)

# s390_regs = elf_gregset_t (arch/s390/include/uapi/asm/ptrace.h), 216 bytes, all kernels.
S390_REGS = Struct(
    "psw" / PSW,  # 0x00
    "gprs" / Array(16, Int64ub),  # 0x10
    "acrs" / Array(16, Int32ub),  # 0x90
    "orig_gpr2" / Int64ub,  # 0xD0
)

# struct elf_prstatus on s390x (include/linux/elfcore.h with the s390 gregset), 336 bytes;
# QEMU writes its own struct of the same size (pid @0x20 byte-swapped in QEMU 7.2).
ELF_PRSTATUS = Struct(
    "pr_info" / Struct("si_signo" / Int32sb, "si_code" / Int32sb, "si_errno" / Int32sb),  # 0x00
    "pr_cursig" / Int16sb,  # 0x0C
    Padding(2),
    "pr_sigpend" / Int64ub,  # 0x10
    "pr_sighold" / Int64ub,  # 0x18
    "pr_pid" / Int32sb,  # 0x20 (kernel: CPU sequence number from 1)
    "pr_ppid" / Int32sb,  # 0x24
    "pr_pgrp" / Int32sb,  # 0x28
    "pr_sid" / Int32sb,  # 0x2C
    "pr_utime" / _TIMEVAL,  # 0x30
    "pr_stime" / _TIMEVAL,  # 0x40
    "pr_cutime" / _TIMEVAL,  # 0x50
    "pr_cstime" / _TIMEVAL,  # 0x60
    "pr_reg" / S390_REGS,  # 0x70
    "pr_fpvalid" / Int32sb,  # 0x148
    Padding(4),
)

# s390_fp_regs = elf_fpregset_t, 136 bytes.
S390_FP_REGS = Struct("fpc" / Int32ub, Padding(4), "fprs" / Array(16, Int64ub))

# struct gs_cb (arch/s390/include/uapi/asm/guarded_storage.h), used by GS_CB and GS_BC.
_GS_CB = Struct("reserved" / Int64ub, "gsd" / Int64ub, "gssm" / Int64ub, "gs_epl_a" / Int64ub)

NOTE_DESC_SCHEMAS: dict[int, Construct] = {
    NT_PRSTATUS: ELF_PRSTATUS,
    NT_PRFPREG: S390_FP_REGS,
    NT_S390_HIGH_GPRS: Struct("high_gprs" / Array(16, Int32ub)),  # upper halves, 31-bit cores
    NT_S390_TIMER: Struct("timer" / Int64ub),  # CPU timer
    NT_S390_TODCMP: Struct("todcmp" / Int64ub),  # clock comparator
    NT_S390_TODPREG: Struct("todpreg" / Int32ub),  # TOD programmable register
    NT_S390_CTRS: Struct("crs" / Array(16, Int64ub)),  # control registers
    NT_S390_PREFIX: Struct("prefix" / Int32ub),  # prefix register = lowcore address
    NT_S390_LAST_BREAK: Struct("last_break" / Int64ub),  # breaking-event address
    NT_S390_SYSTEM_CALL: Struct("system_call" / Int32ub),  # interrupted system call
    NT_S390_TDB: Struct("tdb" / _Bytes(256)),  # transaction diagnostic block
    NT_S390_VXRS_LOW: Struct("vxrs_low" / Array(16, Int64ub)),  # low halves of V0..V15
    NT_S390_VXRS_HIGH: Struct("vxrs_high" / Array(16, BytesInteger(16))),  # V16..V31
    NT_S390_GS_CB: _GS_CB,  # guarded-storage control block
    NT_S390_GS_BC: _GS_CB,  # guarded-storage broadcast control block
    NT_S390_RI_CB: Struct("ri_cb" / _Bytes(64)),  # runtime-instrumentation control block
    NT_S390_PV_CPU_DATA: Struct("data" / GreedyBytes),  # protected-virtualization CPU data
}


# --------------------------------------------------------------------------------------------
# Builders: for tests and the synthetic dump writer. All go through the schemas above.
# --------------------------------------------------------------------------------------------

PswLike = Any  # (mask, addr), {"mask":, "addr":} or an object with .mask and .addr
RegsLike = Sequence[int] | Mapping[int, int]


def _psw_dict(psw: PswLike) -> dict[str, int]:
    if isinstance(psw, Mapping):
        return {"mask": psw["mask"], "addr": psw["addr"]}
    if hasattr(psw, "mask") and hasattr(psw, "addr"):
        return {"mask": psw.mask, "addr": psw.addr}
    mask, addr = psw
    return {"mask": mask, "addr": addr}


def _regs(values: RegsLike | None, count: int, first: int = 0, what: str = "gprs") -> list[int]:
    """Normalise registers: a full sequence, or a mapping register number -> value."""
    if values is None:
        return [0] * count
    if isinstance(values, Mapping):
        result = [0] * count
        for number, value in values.items():
            if not first <= number < first + count:
                raise ValueError(f"{what}: register {number} out of range")
            result[number - first] = value
        return result
    values = list(values)
    if len(values) != count:
        raise ValueError(f"{what}: expected {count} values, got {len(values)}")
    return values


def build_psw(mask: int, addr: int) -> bytes:
    """Encode a 16-byte ``psw_t``."""
    return build(PSW, {"mask": mask, "addr": addr}, "psw")


def build_stack_frame(
    gprs: RegsLike | None = None,
    back_chain: int = 0,
    empty: Sequence[int] | None = None,
) -> bytes:
    """Encode a 160-byte packed ``struct stack_frame``.

    Args:
        gprs: r6..r15 as 10 values, or a mapping such as ``{14: ret, 15: sp}``.
        back_chain: the caller's frame address.
        empty: the 9 words at 0x00 (KVM overlay), zero if omitted.
    """
    value = {
        "empty": _regs(empty, 9, what="empty"),
        "gprs": _regs(gprs, 10, first=6),
        "back_chain": back_chain,
    }
    return build(STACK_FRAME, value, "stack frame")


def build_pt_regs(
    layout: str,
    *,
    args0: int = 0,
    psw: PswLike = (0, 0),
    gprs: RegsLike | None = None,
    orig_gpr2: int = 0,
    int_code: int = 0,
    int_parm: int = 0,
    int_parm_long: int = 0,
    flags: int = 0,
    cr1: int = 0,
    last_break: int = 0,
) -> bytes:
    """Encode a ``struct pt_regs`` of ``layout`` (fields the layout lacks are ignored).

    Args:
        layout: a key of :data:`PT_REGS_LAYOUTS` (or a size, see :func:`pt_regs_schema`).
        psw: ``(mask, addr)``, a dict, or a record with ``mask``/``addr``.
        gprs: 16 values, or a mapping register number -> value.
    """
    value = {
        "args": [args0],
        "psw": _psw_dict(psw),
        "gprs": _regs(gprs, 16),
        "orig_gpr2": orig_gpr2,
        "int_code": int_code,
        "int_parm": int_parm,
        "int_parm_long": int_parm_long,
        "flags": flags,
        "cr1": cr1,
        "last_break": last_break,
    }
    return build(pt_regs_schema(layout), value, f"pt_regs ({layout})")


def build_lowcore(era: str, **fields: Any) -> bytes:
    """Encode a 0x2000-byte lowcore; unspecified fields are zero.

    Args:
        era: one of :data:`LOWCORE_ERAS`.
        **fields: kernel member names of :data:`LOWCORE_FIELDS` ``[era]``; PSWs as
            ``(mask, addr)``, dicts or records; arrays as sequences.

    Raises:
        ValueError: a name that the era's lowcore does not have.
    """
    known = {field.name: field for field in LOWCORE_FIELDS[era]} if era in LOWCORE_FIELDS else {}
    schema = lowcore_schema(era)
    value: dict[str, Any] = {}
    for name, item in fields.items():
        field = known.get(name)
        if field is None:
            raise ValueError(f"lowcore {era} has no field {name!r}")
        value[name] = _psw_dict(item) if field.kind == "psw" else item
    return build(schema, value, f"lowcore ({era})")


def build_prstatus(
    *,
    pid: int,
    psw: PswLike = (0, 0),
    gprs: RegsLike | None = None,
    acrs: RegsLike | None = None,
    orig_gpr2: int = 0,
    fpvalid: int = 1,
    cursig: int = 0,
    sigpend: int = 0,
    sighold: int = 0,
) -> bytes:
    """Encode a 336-byte s390x ``struct elf_prstatus`` (times zero)."""
    zero_time = {"tv_sec": 0, "tv_usec": 0}
    value = {
        "pr_info": {"si_signo": 0, "si_code": 0, "si_errno": 0},
        "pr_cursig": cursig,
        "pr_sigpend": sigpend,
        "pr_sighold": sighold,
        "pr_pid": pid,
        "pr_ppid": 0,
        "pr_pgrp": 0,
        "pr_sid": 0,
        "pr_utime": zero_time,
        "pr_stime": zero_time,
        "pr_cutime": zero_time,
        "pr_cstime": zero_time,
        "pr_reg": {
            "psw": _psw_dict(psw),
            "gprs": _regs(gprs, 16),
            "acrs": _regs(acrs, 16, what="acrs"),
            "orig_gpr2": orig_gpr2,
        },
        "pr_fpvalid": fpvalid,
    }
    return build(ELF_PRSTATUS, value, "elf_prstatus")


def build_note_desc(note_type: int, **fields: Any) -> bytes:
    """Encode the descriptor of a note type from :data:`NOTE_DESC_SCHEMAS`.

    Example: ``build_note_desc(NT_S390_PREFIX, prefix=0x7F000)``.
    """
    schema = NOTE_DESC_SCHEMAS.get(note_type)
    if schema is None:
        raise ValueError(f"no descriptor schema for note type 0x{note_type:x}")
    return build(schema, fields, NOTE_TYPES.get(note_type, hex(note_type)))


def build_note(
    name: str | bytes, note_type: int, desc: bytes | Iterable[int], *, name_align: int = 4
) -> bytes:
    """Encode one ELF note: ``Elf64_Nhdr``, name (NUL-terminated, padded), desc (padded to 4).

    Args:
        name: e.g. ``"CORE"``, ``"LINUX"``, ``"VMCOREINFO"``; an empty name gives namesz 0
            (the kernel's terminating note).
        note_type: e.g. :data:`NT_PRSTATUS`.
        desc: the descriptor bytes.
        name_align: 4 (kernel) or 8 (QEMU's fixed 8-byte name field).
    """
    raw = name.encode() if isinstance(name, str) else bytes(name)
    name_field = raw + b"\0" if raw else b""
    desc = bytes(desc)
    value = {
        "namesz": len(name_field),
        "descsz": len(desc),
        "type": note_type,
        "name": name_field,
        "desc": desc,
    }
    return build(elf_note_schema(name_align), value, f"note {raw!r}")
