"""construct schemas of the s390x kernel structures backchain reads and writes.

The layouts themselves (pt_regs per era, the lowcore field tables, note types) are plain
data in :mod:`parsers.s390.layouts`, re-exported here; the schemas below are built from them.

Every schema is big-endian, parses *and* builds, and names the kernel struct it mirrors
with the releases its offsets were checked for. Use these schemas to describe, build and
display; the hot paths (scanning stacks) use the precompiled ``struct.Struct`` decoders in
:mod:`parsers.s390.records`, which the tests prove equal to these schemas.

Offsets marked "≈" come from copies of the kernel source of that era; docs/kernel-facts.md
names each file, repository and commit, and the real kernels' types that confirmed them (the
Debian 6.1 and 6.12 DWARF confirmed the ``v6.1`` rows).
When a vmlinux with DWARF/BTF is available, its offsets win over these tables.

All construct errors are turned into :class:`~parsers.errors.TruncatedError` or
:class:`~parsers.errors.FormatError` in one place, :func:`parse`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
from parsers.s390.layouts import (
    LOWCORE_ERAS,
    LOWCORE_FIELDS,
    LOWCORE_SIZE,
    NOTE_TYPES,
    NT_PRFPREG,
    NT_PRSTATUS,
    NT_S390_CTRS,
    NT_S390_GS_BC,
    NT_S390_GS_CB,
    NT_S390_HIGH_GPRS,
    NT_S390_LAST_BREAK,
    NT_S390_PREFIX,
    NT_S390_PV_CPU_DATA,
    NT_S390_RI_CB,
    NT_S390_SYSTEM_CALL,
    NT_S390_TDB,
    NT_S390_TIMER,
    NT_S390_TODCMP,
    NT_S390_TODPREG,
    NT_S390_VXRS_HIGH,
    NT_S390_VXRS_LOW,
    LowcoreField,
    pt_regs_layout,
)

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


# The era tables only: eras registered from a kernel's types (which may be registered before
# this module is imported) are decoded, never built.
_LOWCORE_SCHEMAS = {era: _lowcore_struct(LOWCORE_FIELDS[era]) for era in LOWCORE_ERAS}


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


__all__ = [
    "ELF64_NHDR",
    "ELF_NOTE",
    "ELF_PRSTATUS",
    "NOTE_DESC_SCHEMAS",
    "PSW",
    "S390_FP_REGS",
    "S390_REGS",
    "STACK_FRAME",
    "STACK_FRAME_SIE",
    "Elf64_Nhdr",
    "PswLike",
    "RegsLike",
    "build",
    "build_lowcore",
    "build_note",
    "build_note_desc",
    "build_prstatus",
    "build_psw",
    "build_pt_regs",
    "build_stack_frame",
    "elf_note_schema",
    "lowcore_schema",
    "parse",
    "pt_regs_schema",
]
