"""The layouts of the s390x kernel structures backchain reads, as plain data: ``struct
pt_regs`` per era, ``struct lowcore`` field tables per era, ``struct stack_frame``'s size,
the ELF note types of s390 dumps, and the era of a kernel release.

No construct here: the hot paths (:mod:`parsers.s390.records`) decode with ``struct`` formats
derived from these tables, and a warm ``check`` never imports construct; the construct
schemas built from the same tables live in :mod:`parsers.s390.structs`, which re-exports every
name of this module (one definition per layout; ``tests/test_structs.py`` proves the
decoders equal to the schemas).

Offsets marked "≈" come from copies of the kernel source of that era; docs/kernel-facts.md
names each file, repository and commit, and the real kernels' types that confirmed them (the
Debian 6.1 and 6.12 DWARF confirmed the ``v6.1`` rows).
When a vmlinux with DWARF/BTF is available, its offsets win over these tables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from parsers.errors import FormatError

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


# struct stack_frame (packed stack): sizeof = STACK_FRAME_OVERHEAD (schema in parsers.s390.structs)
STACK_FRAME_SIZE = 160
#: Offsets in it (fixed since the packed stack, v4.x; the kernel's types are checked against
#: them where they have struct stack_frame): gprs[10] holds r6-r15, so r14 is gprs[8].
STACK_FRAME_GPRS = 0x48
STACK_FRAME_R14 = 0x88
STACK_FRAME_BACK_CHAIN = 0x98

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


class LowcoreLayout(NamedTuple):
    """A lowcore layout: an era table of :data:`LOWCORE_FIELDS`, or the fields a kernel's
    own types give (:func:`lowcore_fields_from_types`), carried by the kernel that has them
    (no process-wide table: two dumps of one release may differ).

    Attributes:
        name: the era, or where the fields came from (``"btf 6.12.95+deb12-s390x"``).
        fields: in offset order.
    """

    name: str
    fields: tuple[LowcoreField, ...]


def lowcore_layout(era: str | LowcoreLayout) -> LowcoreLayout | None:
    """``era`` itself, or the layout of the era table of that name (None: no such era)."""
    if isinstance(era, LowcoreLayout):
        return era
    fields = LOWCORE_FIELDS.get(era)
    return None if fields is None else LowcoreLayout(era, tuple(fields))


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


__all__ = [
    "LOWCORE_ERAS",
    "LOWCORE_FIELDS",
    "LOWCORE_SIZE",
    "NOTE_TYPES",
    "NT_PRFPREG",
    "NT_PRPSINFO",
    "NT_PRSTATUS",
    "NT_S390_CTRS",
    "NT_S390_GS_BC",
    "NT_S390_GS_CB",
    "NT_S390_HIGH_GPRS",
    "NT_S390_LAST_BREAK",
    "NT_S390_PREFIX",
    "NT_S390_PV_CPU_DATA",
    "NT_S390_RI_CB",
    "NT_S390_SYSTEM_CALL",
    "NT_S390_TDB",
    "NT_S390_TIMER",
    "NT_S390_TODCMP",
    "NT_S390_TODPREG",
    "NT_S390_VXRS_HIGH",
    "NT_S390_VXRS_LOW",
    "NT_VMCOREINFO",
    "PT_REGS_HEAD_OFFSETS",
    "PT_REGS_LAYOUTS",
    "STACK_FRAME_BACK_CHAIN",
    "STACK_FRAME_GPRS",
    "STACK_FRAME_R14",
    "STACK_FRAME_SIZE",
    "LowcoreField",
    "LowcoreLayout",
    "PtRegsLayout",
    "kernel_version",
    "lowcore_era_for_release",
    "lowcore_fields_from_types",
    "lowcore_layout",
    "pt_regs_layout",
    "pt_regs_layout_for_release",
    "pt_regs_layout_from_types",
]
