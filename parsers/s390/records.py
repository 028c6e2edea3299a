"""Typed records returned to callers, and fast decoders for the hot paths.

The records are frozen, slotted dataclasses holding plain ints (addresses stay ints; format
them where they are shown). The decoders use precompiled ``struct.Struct`` objects, ~50x
faster than construct; ``tests/test_structs.py`` proves them equal to the schemas in
:mod:`parsers.s390.structs`, which remain the description of record.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import cast

from parsers.errors import FormatError, TruncatedError
from parsers.s390.layouts import (
    LOWCORE_SIZE,
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
    PT_REGS_LAYOUTS,
    STACK_FRAME_SIZE,
    LowcoreField,
    LowcoreLayout,
    lowcore_layout,
)

Buffer = bytes | bytearray | memoryview


def _unpack(
    decoder: struct.Struct, buf: Buffer, offset: int, what: str, address: int = 0
) -> tuple[int | bytes, ...]:
    """``decoder.unpack_from`` with a TruncatedError naming ``what``.

    ``what`` may contain ``{address:x}``; it is formatted only on error (hot path).
    """
    if offset < 0 or len(buf) - offset < decoder.size:
        available = max(len(buf) - offset, 0)
        raise TruncatedError(
            f"{what.format(address=address)}: needs {decoder.size} bytes, "
            f"only {available} available"
        )
    return decoder.unpack_from(buf, offset)


def _ints(values: tuple[int | bytes, ...]) -> tuple[int, ...]:
    """Narrow the result of a format with integer codes only (for mypy)."""
    return cast(tuple[int, ...], values)


# --------------------------------------------------------------------------------------------
# PSW
# --------------------------------------------------------------------------------------------

# (label as printed by show_regs, shift, width) for the 64-bit PSW mask, bit 0 = MSB.
_PSW_FIELDS = (
    ("R", 62, 1),  # bit 1 PER
    ("T", 58, 1),  # bit 5 DAT
    ("IO", 57, 1),  # bit 6 I/O interrupts enabled
    ("EX", 56, 1),  # bit 7 external interrupts enabled
    ("Key", 52, 4),  # bits 8-11 storage key
    ("M", 50, 1),  # bit 13 machine checks enabled
    ("W", 49, 1),  # bit 14 wait state
    ("P", 48, 1),  # bit 15 problem state (user mode)
    ("AS", 46, 2),  # bits 16-17 address-space control
    ("CC", 44, 2),  # bits 18-19 condition code
    ("PM", 40, 4),  # bits 20-23 program mask
    ("RI", 39, 1),  # bit 24 runtime instrumentation
    ("EA", 31, 2),  # bits 31-32 EA and BA: 3 = 64-bit, 1 = 31-bit, 0 = 24-bit
)

ASC_NAMES = {0: "primary", 1: "access-register", 2: "secondary", 3: "home"}


@dataclass(frozen=True, slots=True)
class Psw:
    """A program status word (``psw_t``): mask and instruction address."""

    mask: int
    addr: int

    def _field(self, shift: int, width: int) -> int:
        return (self.mask >> shift) & ((1 << width) - 1)

    @property
    def per(self) -> int:
        """Bit 1: program-event recording."""
        return self._field(62, 1)

    @property
    def dat(self) -> int:
        """Bit 5: dynamic address translation on."""
        return self._field(58, 1)

    @property
    def io(self) -> int:
        """Bit 6: I/O interrupts enabled."""
        return self._field(57, 1)

    @property
    def ext(self) -> int:
        """Bit 7: external interrupts enabled."""
        return self._field(56, 1)

    @property
    def key(self) -> int:
        """Bits 8-11: PSW storage key."""
        return self._field(52, 4)

    @property
    def mcheck(self) -> int:
        """Bit 13: machine checks enabled."""
        return self._field(50, 1)

    @property
    def wait(self) -> int:
        """Bit 14: wait state."""
        return self._field(49, 1)

    @property
    def problem_state(self) -> int:
        """Bit 15: problem state."""
        return self._field(48, 1)

    @property
    def user_mode(self) -> bool:
        """True for a user-mode PSW (the kernel's ``user_mode(regs)``)."""
        return bool(self.problem_state)

    @property
    def asc(self) -> int:
        """Bits 16-17: address-space control (see :data:`ASC_NAMES`)."""
        return self._field(46, 2)

    @property
    def cc(self) -> int:
        """Bits 18-19: condition code."""
        return self._field(44, 2)

    @property
    def program_mask(self) -> int:
        """Bits 20-23: program mask."""
        return self._field(40, 4)

    @property
    def ri(self) -> int:
        """Bit 24: runtime instrumentation."""
        return self._field(39, 1)

    @property
    def ea(self) -> int:
        """Bits 31-32 (EA, BA) as one 2-bit value, as ``show_regs`` prints it."""
        return self._field(31, 2)

    @property
    def addressing_mode(self) -> int:
        """64, 31 or 24; 0 for the invalid combination EA=1, BA=0."""
        return {3: 64, 1: 31, 0: 24}.get(self.ea, 0)

    def bits(self) -> dict[str, int]:
        """The fields ``show_regs`` prints, by its labels (``"R"``, ``"T"``, ... ``"EA"``)."""
        return {label: self._field(shift, width) for label, shift, width in _PSW_FIELDS}

    def describe(self) -> str:
        """The kernel's ``show_regs`` line, e.g. ``"R:0 T:1 IO:1 EX:1 Key:0 ... EA:3"``.

        ``RI`` is always included (the kernel omits it on machines without the facility).
        """
        return " ".join(f"{label}:{value:x}" for label, value in self.bits().items())


_PSW_STRUCT = struct.Struct(">QQ")


def decode_psw(buf: Buffer, offset: int = 0) -> Psw:
    """Decode a 16-byte ``psw_t`` at ``offset``."""
    mask, addr = _ints(_unpack(_PSW_STRUCT, buf, offset, "psw"))
    return Psw(mask, addr)


# --------------------------------------------------------------------------------------------
# struct stack_frame
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StackFrame:
    """A 160-byte packed kernel ``struct stack_frame``.

    Attributes:
        address: where the frame was read (virtual), 0 if unknown.
        empty: the 9 words at 0x00 (KVM's ``__sie64a`` overlay, see ``sie_*``).
        gprs: save slots of r6..r15.
        back_chain: the caller's frame address, or 0.
    """

    address: int
    empty: tuple[int, ...]
    gprs: tuple[int, ...]
    back_chain: int

    def reg(self, number: int) -> int:
        """The save slot of register ``number`` (6..15)."""
        if not 6 <= number <= 15:
            raise ValueError(f"a stack frame saves r6..r15, not r{number}")
        return self.gprs[number - 6]

    @property
    def r14(self) -> int:
        """Saved r14: a return address into the function owning this frame."""
        return self.gprs[8]

    @property
    def r15(self) -> int:
        """Saved r15."""
        return self.gprs[9]

    @property
    def sie_control_block(self) -> int:
        """KVM overlay 0x00 (only meaningful in the caller's frame of ``__sie64a``)."""
        return self.empty[0]

    @property
    def sie_savearea(self) -> int:
        """KVM overlay 0x08."""
        return self.empty[1]

    @property
    def sie_reason(self) -> int:
        """KVM overlay 0x10."""
        return self.empty[2]

    @property
    def sie_flags(self) -> int:
        """KVM overlay 0x18."""
        return self.empty[3]

    @property
    def sie_control_block_phys(self) -> int:
        """KVM overlay 0x20 (≈v6.2+)."""
        return self.empty[4]

    @property
    def sie_guest_asce(self) -> int:
        """KVM overlay 0x28 (≈v6.8+)."""
        return self.empty[5]


_STACK_FRAME_STRUCT = struct.Struct(">20Q")  # empty[9], gprs[10], back_chain
assert _STACK_FRAME_STRUCT.size == STACK_FRAME_SIZE


def decode_stack_frame(buf: Buffer, offset: int = 0, address: int = 0) -> StackFrame:
    """Decode a ``struct stack_frame`` at ``buf[offset:]``.

    Args:
        buf: bytes holding the frame.
        offset: where the frame starts in ``buf``.
        address: the frame's address, recorded in the result and in error messages.

    Raises:
        TruncatedError: fewer than 160 bytes at ``offset``.
    """
    values = _ints(
        _unpack(_STACK_FRAME_STRUCT, buf, offset, "stack frame at 0x{address:x}", address)
    )
    return StackFrame(address, values[0:9], values[9:19], values[19])


# --------------------------------------------------------------------------------------------
# struct pt_regs
# --------------------------------------------------------------------------------------------

# PIF_* bit numbers of pt_regs.flags (arch/s390/include/asm/ptrace.h) per layout era.
PIF_FLAGS: dict[str, dict[int, str]] = {
    # ≈v4.14-v5.x copy (v5.5 probably also GUEST_FAULT 3: unverified, so not named).
    "v4.14": {0: "SYSCALL", 1: "PER_TRAP", 2: "SYSCALL_RESTART"},
    # ≈v5.12 copy.
    "v5.12": {0: "SYSCALL", 1: "SYSCALL_RESTART", 2: "SYSCALL_RET_SET", 3: "GUEST_FAULT"},
    # ≈v6.3 copy.
    "v6.1": {
        0: "SYSCALL",
        1: "EXECVE_PGSTE_RESTART",
        2: "SYSCALL_RET_SET",
        3: "GUEST_FAULT",
        4: "FTRACE_FULL_REGS",
    },
    # current trees.
    "v6.16": {0: "SYSCALL", 2: "SYSCALL_RET_SET", 3: "GUEST_FAULT", 4: "FTRACE_FULL_REGS"},
    "v7.2": {0: "SYSCALL", 2: "SYSCALL_RET_SET", 3: "GUEST_FAULT", 4: "FTRACE_FULL_REGS"},
}


@dataclass(frozen=True, slots=True)
class PtRegs:
    """A ``struct pt_regs``: the registers saved by an interrupt, exception or system call.

    Attributes:
        address: where it was read (virtual), 0 if unknown.
        layout: a key of :data:`parsers.s390.layouts.PT_REGS_LAYOUTS`.
        args0: ``args[0]``.
        psw: the interrupted PSW.
        gprs: r0..r15 at the interruption.
        orig_gpr2: r2 before a system call replaced it.
        int_code: the interruption code word (see :attr:`code`, :attr:`ilc`).
        int_parm: interruption parameter.
        int_parm_long: long parameter (e.g. the TEID of a page fault).
        flags: PIF_* bits (see :attr:`flag_names`).
        cr1: the user ASCE, in layouts that have it, else None.
        last_break: the breaking-event address (BEAR), in layouts that have it, else None.
        cpu: the CPU the registers were saved on (7.2 layout), else None.
    """

    address: int
    layout: str
    args0: int
    psw: Psw
    gprs: tuple[int, ...]
    orig_gpr2: int
    int_code: int
    int_parm: int
    int_parm_long: int
    flags: int
    cr1: int | None
    last_break: int | None
    cpu: int | None = None

    @property
    def code(self) -> int:
        """Low 16 bits of ``int_code``: the interruption code.

        For a program check this is the program-interruption code (e.g. 0x11 page
        translation), for an SVC the system-call number, for an external interruption
        the external-interruption code.
        """
        return self.int_code & 0xFFFF

    @property
    def ilc(self) -> int:
        """High 16 bits of ``int_code``.

        For program checks and SVCs the entry code copies the lowcore halfword holding the
        instruction-length code, already scaled to bytes (0, 2, 4 or 6), so this is the
        length of the instruction to rewind by. For external interruptions it is the
        signalling CPU address instead.
        """
        return self.int_code >> 16

    @property
    def user_mode(self) -> bool:
        """True if the interrupted context was user space (PSW problem state)."""
        return self.psw.user_mode

    @property
    def sp(self) -> int:
        """The interrupted r15."""
        return self.gprs[15]

    @property
    def flag_names(self) -> tuple[str, ...]:
        """Names of the set PIF_* bits for this layout's era; unknown bits as ``bitN``."""
        names = PIF_FLAGS.get(self.layout, {})
        return tuple(names.get(bit, f"bit{bit}") for bit in range(64) if self.flags >> bit & 1)

    @property
    def size(self) -> int:
        """``sizeof(struct pt_regs)`` of this layout."""
        return PT_REGS_LAYOUTS[self.layout].size


_PT_REGS_HEAD = ">Q QQ 16Q Q I I Q Q"
_PT_REGS_STRUCTS: dict[str, struct.Struct] = {
    name: struct.Struct(_PT_REGS_HEAD + " Q" * ((layout.size - 0xB8) // 8))
    for name, layout in PT_REGS_LAYOUTS.items()
}


def decode_pt_regs(buf: Buffer, offset: int, address: int, layout: str) -> PtRegs:
    """Decode a ``struct pt_regs`` at ``buf[offset:]``.

    Args:
        buf: bytes holding the structure.
        offset: where it starts in ``buf``.
        address: its address, recorded in the result and in error messages.
        layout: a key of :data:`parsers.s390.layouts.PT_REGS_LAYOUTS`.

    Raises:
        FormatError: unknown layout.
        TruncatedError: the buffer ends inside the structure.
    """
    decoder = _PT_REGS_STRUCTS.get(layout)
    if decoder is None:
        raise FormatError(f"unknown pt_regs layout {layout!r}")
    v = _ints(_unpack(decoder, buf, offset, "pt_regs at 0x{address:x}", address))
    info = PT_REGS_LAYOUTS[layout]
    cr1 = v[24 + (info.cr1_offset - 0xB8) // 8] if info.cr1_offset is not None else None
    last_break = (
        v[24 + (info.last_break_offset - 0xB8) // 8] if info.last_break_offset is not None else None
    )
    return PtRegs(
        address=address,
        layout=layout,
        args0=v[0],
        psw=Psw(v[1], v[2]),
        gprs=v[3:19],
        orig_gpr2=v[19],
        int_code=v[20],
        int_parm=v[21],
        int_parm_long=v[22],
        flags=v[23],
        cr1=cr1,
        last_break=last_break,
        cpu=v[25] >> 32 if layout == "v7.2" else None,
    )


# --------------------------------------------------------------------------------------------
# ELF notes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prstatus:
    """The parts of an s390x ``NT_PRSTATUS`` a stack explorer uses.

    Attributes:
        pid: ``pr_pid``; the kernel writes the CPU sequence number from 1, QEMU 7.2 writes it
            byte-swapped (CPU 0 as 0x01000000). Reported as stored.
        cursig: ``pr_cursig``.
        psw: the CPU's PSW.
        gprs: r0..r15.
        acrs: access registers 0..15.
        orig_gpr2: as in ``s390_regs`` (QEMU leaves it zero).
        fpvalid: ``pr_fpvalid``.
    """

    pid: int
    cursig: int
    psw: Psw
    gprs: tuple[int, ...]
    acrs: tuple[int, ...]
    orig_gpr2: int
    fpvalid: int


# pr_info 3×s32, pr_cursig s16 + pad, sigpend, sighold, pid/ppid/pgrp/sid, 4 timevals (64 bytes
# skipped), s390_regs (psw, gprs[16], acrs[16], orig_gpr2), pr_fpvalid + pad: 336 bytes.
_PRSTATUS_STRUCT = struct.Struct(">3i h 2x Q Q 4i 64x QQ 16Q 16I Q i 4x")
assert _PRSTATUS_STRUCT.size == 336


def decode_prstatus(buf: Buffer, offset: int = 0) -> Prstatus:
    """Decode a 336-byte s390x ``struct elf_prstatus``.

    Raises:
        TruncatedError: fewer than 336 bytes.
    """
    v = _ints(_unpack(_PRSTATUS_STRUCT, buf, offset, "NT_PRSTATUS"))
    return Prstatus(
        pid=v[6],
        cursig=v[3],
        psw=Psw(v[10], v[11]),
        gprs=v[12:28],
        acrs=v[28:44],
        orig_gpr2=v[44],
        fpvalid=v[45],
    )


@dataclass(frozen=True, slots=True)
class FpRegs:
    """``NT_PRFPREG`` (``s390_fp_regs``): floating-point control and FPR0..15."""

    fpc: int
    fprs: tuple[int, ...]


_FPREGS_STRUCT = struct.Struct(">I 4x 16Q")


def decode_fpregs(buf: Buffer, offset: int = 0) -> FpRegs:
    """Decode a 136-byte ``NT_PRFPREG`` descriptor."""
    v = _ints(_unpack(_FPREGS_STRUCT, buf, offset, "NT_PRFPREG"))
    return FpRegs(v[0], v[1:])


_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_U32X16 = struct.Struct(">16I")
_U64X4 = struct.Struct(">4Q")
_U64X16 = struct.Struct(">16Q")
_U64X32 = struct.Struct(">32Q")

NoteValue = int | tuple[int, ...] | bytes | Prstatus | FpRegs

# note type -> (decoder, shape): "one" = a single int, "tuple" = all ints, "u128" = pairs.
_SIMPLE_NOTES: dict[int, tuple[struct.Struct, str]] = {
    NT_S390_HIGH_GPRS: (_U32X16, "tuple"),
    NT_S390_TIMER: (_U64, "one"),
    NT_S390_TODCMP: (_U64, "one"),
    NT_S390_TODPREG: (_U32, "one"),
    NT_S390_CTRS: (_U64X16, "tuple"),
    NT_S390_PREFIX: (_U32, "one"),
    NT_S390_LAST_BREAK: (_U64, "one"),
    NT_S390_SYSTEM_CALL: (_U32, "one"),
    NT_S390_VXRS_LOW: (_U64X16, "tuple"),
    NT_S390_VXRS_HIGH: (_U64X32, "u128"),
    NT_S390_GS_CB: (_U64X4, "tuple"),
    NT_S390_GS_BC: (_U64X4, "tuple"),
}

# Opaque blobs: note type -> required size (None: any size).
_RAW_NOTES: dict[int, int | None] = {
    NT_S390_TDB: 256,
    NT_S390_RI_CB: 64,
    NT_S390_PV_CPU_DATA: None,
}


def decode_note(note_type: int, desc: Buffer) -> NoteValue:
    """Decode the descriptor of a CPU note (types of :data:`parsers.s390.layouts.NOTE_TYPES`).

    Returns:
        :class:`Prstatus` for NT_PRSTATUS, :class:`FpRegs` for NT_PRFPREG, an int for
        PREFIX / TIMER / TODCMP / TODPREG / LAST_BREAK / SYSTEM_CALL, a tuple of ints for
        CTRS / VXRS_LOW / HIGH_GPRS / GS_CB / GS_BC, a tuple of 16 128-bit ints for
        VXRS_HIGH (V16..V31), and bytes for TDB / RI_CB / PV_CPU_DATA and unknown types.

    Raises:
        TruncatedError: the descriptor is shorter than its type requires.
    """
    if note_type == NT_PRSTATUS:
        return decode_prstatus(desc)
    if note_type == NT_PRFPREG:
        return decode_fpregs(desc)
    simple = _SIMPLE_NOTES.get(note_type)
    if simple is not None:
        decoder, shape = simple
        name = f"note type 0x{note_type:x}"
        values = _ints(_unpack(decoder, desc, 0, name))
        if shape == "one":
            return values[0]
        if shape == "u128":
            return tuple(values[i] << 64 | values[i + 1] for i in range(0, 32, 2))
        return values
    size = _RAW_NOTES.get(note_type)
    if size is not None and len(desc) < size:
        raise TruncatedError(
            f"note type 0x{note_type:x}: needs {size} bytes, only {len(desc)} available"
        )
    return bytes(desc[:size] if size is not None else desc)


def decode_prefix(desc: Buffer) -> int:
    """NT_S390_PREFIX: the prefix register (absolute address of the CPU's lowcore)."""
    return _ints(_unpack(_U32, desc, 0, "NT_S390_PREFIX"))[0]


def decode_ctrs(desc: Buffer) -> tuple[int, ...]:
    """NT_S390_CTRS: control registers 0..15."""
    return _ints(_unpack(_U64X16, desc, 0, "NT_S390_CTRS"))


# --------------------------------------------------------------------------------------------
# struct lowcore
# --------------------------------------------------------------------------------------------

LowcoreValue = int | Psw | tuple[int, ...] | bytes

_KIND_FORMAT = {
    "u8": "B",
    "u16": "H",
    "u32": "I",
    "s32": "i",
    "u64": "Q",
    "ptr": "Q",
    "asce": "Q",
    "psw": "QQ",
    "save8": "8Q",
    "gprs16": "16Q",
    "fprs16": "16Q",
    "crs16": "16Q",
    "acrs16": "16I",
}

_Decoders = list[tuple[str, int, struct.Struct, str]]


def _decoders(fields: Sequence[LowcoreField]) -> _Decoders:
    return [
        (
            field.name,
            field.offset,
            _struct(">" + _KIND_FORMAT.get(field.kind, f"{field.size}s")),
            field.kind,
        )
        for field in fields
    ]


#: One ``struct.Struct`` per format (a lowcore has ~150 fields of ~15 formats).
_struct = cache(struct.Struct)


@cache
def _field_decoders(fields: tuple[LowcoreField, ...]) -> _Decoders:
    """[(name, offset, struct, kind)], compiled when a layout is first decoded (a start
    decodes one era, not all of them); keyed by the fields themselves, so a layout's name
    never selects another kernel's fields."""
    return _decoders(fields)


def _lowcore_decoders(era: str | LowcoreLayout) -> _Decoders | None:
    layout = lowcore_layout(era)
    return None if layout is None else _field_decoders(layout.fields)


_SCALAR_KINDS = frozenset({"u8", "u16", "u32", "s32", "u64", "ptr", "asce"})


def lowcore_values(
    buf: Buffer, era: str | LowcoreLayout, offset: int = 0
) -> dict[str, LowcoreValue]:
    """Decode every field of :data:`parsers.s390.layouts.LOWCORE_FIELDS` ``[era]``, or of a
    kernel's own layout.

    Returns:
        Field name -> int, :class:`Psw`, tuple of ints (arrays) or bytes, in offset order.

    Raises:
        FormatError: unknown era.
        TruncatedError: fewer than 0x2000 bytes at ``offset``.
    """
    decoders = _lowcore_decoders(era)
    if decoders is None:
        raise FormatError(f"unknown lowcore era {era!r}")
    if offset < 0 or len(buf) - offset < LOWCORE_SIZE:
        available = max(len(buf) - offset, 0)
        raise TruncatedError(f"lowcore: needs {LOWCORE_SIZE} bytes, only {available} available")
    values: dict[str, LowcoreValue] = {}
    for name, field_offset, decoder, kind in decoders:
        raw = decoder.unpack_from(buf, offset + field_offset)
        if kind == "psw":
            values[name] = Psw(raw[0], raw[1])
        elif kind in _SCALAR_KINDS or kind == "bytes":
            values[name] = raw[0]
        else:
            values[name] = raw
    return values


@dataclass(frozen=True, slots=True)
class Lowcore:
    """The lowcore fields a stack explorer needs, from one CPU's 8 KiB prefix area.

    Stack pointers are ``stack base + STACK_INIT_OFFSET`` as the kernel stores them.
    Fields an era lacks are None (``mcck_stack`` and ``last_break`` before ≈v5.12/v6.1).
    ``nodat_stack`` holds ``panic_stack`` in the ``v4`` era. The ``sa_*`` fields are the
    store-status save area (0x1200-0x13FF); ``old_psws``/``new_psws`` are keyed
    ``restart external svc program mcck io``.
    """

    era: str
    current_task: int
    kernel_stack: int
    async_stack: int
    nodat_stack: int
    restart_stack: int
    mcck_stack: int | None
    restart_fn: int
    restart_data: int
    restart_source: int
    kernel_asce: int
    user_asce: int
    percpu_offset: int
    preempt_count: int
    cpu_nr: int
    current_pid: int
    last_break: int | None
    ipib: int
    vmcore_info: int
    os_info: int
    mcesad: int
    breaking_event_addr: int
    ext_cpu_addr: int
    ext_int_code: int
    svc_ilc: int
    svc_code: int
    pgm_ilc: int
    pgm_code: int
    trans_exc_code: int
    per_address: int
    mcck_interruption_code: int
    old_psws: Mapping[str, Psw]
    new_psws: Mapping[str, Psw]
    sa_fprs: tuple[int, ...]
    sa_gprs: tuple[int, ...]
    sa_psw: Psw
    sa_prefix: int
    sa_fpc: int
    sa_todpreg: int
    sa_timer: int
    sa_clock_comparator: int
    sa_last_break: int
    sa_acrs: tuple[int, ...]
    sa_crs: tuple[int, ...]


_PSW_KEYS = ("restart", "external", "svc", "program", "mcck", "io")


def decode_lowcore(buf: Buffer, era: str | LowcoreLayout, offset: int = 0) -> Lowcore:
    """Decode one CPU's lowcore (0x2000 bytes at ``offset``) of ``era``.

    Args:
        buf: bytes holding the lowcore (absolute address = the CPU's prefix).
        era: one of :data:`parsers.s390.layouts.LOWCORE_ERAS`, or a kernel's own layout.
        offset: where the lowcore starts in ``buf``.

    Raises:
        FormatError: unknown era.
        TruncatedError: fewer than 0x2000 bytes.
    """
    v = lowcore_values(buf, era, offset)

    def num(name: str) -> int:
        value = v[name]
        assert isinstance(value, int)
        return value

    def opt(name: str) -> int | None:
        return num(name) if name in v else None

    def psw(name: str) -> Psw:
        value = v[name]
        assert isinstance(value, Psw)
        return value

    def array(name: str) -> tuple[int, ...]:
        value = v[name]
        assert isinstance(value, tuple)
        return value

    return Lowcore(
        era=era if isinstance(era, str) else era.name,
        current_task=num("current_task"),
        kernel_stack=num("kernel_stack"),
        async_stack=num("async_stack"),
        nodat_stack=num("nodat_stack" if "nodat_stack" in v else "panic_stack"),
        restart_stack=num("restart_stack"),
        mcck_stack=opt("mcck_stack"),
        restart_fn=num("restart_fn"),
        restart_data=num("restart_data"),
        restart_source=num("restart_source"),
        kernel_asce=num("kernel_asce"),
        user_asce=num("user_asce"),
        percpu_offset=num("percpu_offset"),
        preempt_count=num("preempt_count"),
        cpu_nr=num("cpu_nr"),
        current_pid=num("current_pid"),
        last_break=opt("last_break"),
        ipib=num("ipib"),
        vmcore_info=num("vmcore_info"),
        os_info=num("os_info"),
        mcesad=num("mcesad"),
        breaking_event_addr=num("breaking_event_addr"),
        ext_cpu_addr=num("ext_cpu_addr"),
        ext_int_code=num("ext_int_code"),
        svc_ilc=num("svc_ilc"),
        svc_code=num("svc_code"),
        pgm_ilc=num("pgm_ilc"),
        pgm_code=num("pgm_code"),
        trans_exc_code=num("trans_exc_code"),
        per_address=num("per_address"),
        mcck_interruption_code=num("mcck_interruption_code"),
        old_psws={key: psw(f"{key}_old_psw") for key in _PSW_KEYS},
        new_psws={
            key: psw("restart_psw" if key == "restart" else f"{key}_new_psw") for key in _PSW_KEYS
        },
        sa_fprs=array("floating_pt_save_area"),
        sa_gprs=array("gpregs_save_area"),
        sa_psw=psw("psw_save_area"),
        sa_prefix=num("prefixreg_save_area"),
        sa_fpc=num("fpt_creg_save_area"),
        sa_todpreg=num("tod_progreg_save_area"),
        sa_timer=num("cpu_timer_save_area"),
        sa_clock_comparator=num("clock_comp_save_area"),
        sa_last_break=num("last_break_save_area"),
        sa_acrs=array("access_regs_save_area"),
        sa_crs=array("cregs_save_area"),
    )
