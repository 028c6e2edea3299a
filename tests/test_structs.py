"""Schemas in parsers.s390.structs and fast decoders in parsers.s390.records.

Known bytes are written with plain ``struct.pack`` at the kernel's offsets, so the tests do
not trust the schemas they check. Random data (seeded) proves the fast decoders equal the
construct schemas.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from construct import Container, ListContainer

from parsers.errors import FormatError, TruncatedError
from parsers.s390 import layouts, records, structs
from parsers.s390.layouts import (
    LOWCORE_ERAS,
    LOWCORE_FIELDS,
    LOWCORE_SIZE,
    NOTE_TYPES,
    PT_REGS_LAYOUTS,
    lowcore_era_for_release,
    pt_regs_layout,
    pt_regs_layout_for_release,
)
from parsers.s390.records import (
    Psw,
    decode_fpregs,
    decode_lowcore,
    decode_note,
    decode_prstatus,
    decode_psw,
    decode_pt_regs,
    decode_stack_frame,
    lowcore_values,
)
from parsers.s390.structs import (
    ELF_NOTE,
    ELF_PRSTATUS,
    NOTE_DESC_SCHEMAS,
    PSW,
    S390_FP_REGS,
    STACK_FRAME,
    STACK_FRAME_SIE,
    build_lowcore,
    build_note,
    build_note_desc,
    build_prstatus,
    build_pt_regs,
    build_stack_frame,
    lowcore_schema,
    parse,
    pt_regs_schema,
)

KERNEL_MASK = 0x0704C00180000000
USER_MASK = 0x0705C00180000000
ROUNDS = 50


def plain(value: Any) -> Any:
    """A construct result as plain dicts and lists (dropping construct's private keys)."""
    if isinstance(value, Container):
        return {k: plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, ListContainer | list):
        return [plain(v) for v in value]
    return value


def psw_dict(psw: Psw) -> dict[str, int]:
    return {"mask": psw.mask, "addr": psw.addr}


def rand_bytes(rng: random.Random, size: int) -> bytes:
    return rng.randbytes(size)


# ------------------------------------------------------------------------------------------
# Sizes
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "size"),
    [
        (PSW, 16),
        (STACK_FRAME, 160),
        (STACK_FRAME_SIE, 160),
        (ELF_PRSTATUS, 336),
        (S390_FP_REGS, 136),
        (structs.S390_REGS, 216),
        (structs.ELF64_NHDR, 12),
    ],
)
def test_sizes(schema: Any, size: int) -> None:
    assert schema.sizeof() == size


def test_pt_regs_sizes() -> None:
    sizes = {name: pt_regs_schema(name).sizeof() for name in PT_REGS_LAYOUTS}
    assert sizes == {"v4.14": 184, "v5.12": 192, "v6.1": 200, "v6.16": 192, "v7.2": 200}
    for name, layout in PT_REGS_LAYOUTS.items():
        assert layout.size == sizes[name]


@pytest.mark.parametrize("era", LOWCORE_ERAS)
def test_lowcore_size_and_table(era: str) -> None:
    assert lowcore_schema(era).sizeof() == LOWCORE_SIZE == 0x2000
    fields = LOWCORE_FIELDS[era]
    end = 0
    for field in fields:
        assert field.offset >= end, field
        end = field.offset + field.size
        assert field.meaning
    assert end <= LOWCORE_SIZE


@pytest.mark.parametrize(
    "note_type",
    [t for t in NOTE_DESC_SCHEMAS if t != layouts.NT_S390_PV_CPU_DATA],
)
def test_note_desc_sizes(note_type: int) -> None:
    expected = {
        layouts.NT_PRSTATUS: 336,
        layouts.NT_PRFPREG: 136,
        layouts.NT_S390_HIGH_GPRS: 64,
        layouts.NT_S390_TIMER: 8,
        layouts.NT_S390_TODCMP: 8,
        layouts.NT_S390_TODPREG: 4,
        layouts.NT_S390_CTRS: 128,
        layouts.NT_S390_PREFIX: 4,
        layouts.NT_S390_LAST_BREAK: 8,
        layouts.NT_S390_SYSTEM_CALL: 4,
        layouts.NT_S390_TDB: 256,
        layouts.NT_S390_VXRS_LOW: 128,
        layouts.NT_S390_VXRS_HIGH: 256,
        layouts.NT_S390_GS_CB: 32,
        layouts.NT_S390_GS_BC: 32,
        layouts.NT_S390_RI_CB: 64,
    }
    assert NOTE_DESC_SCHEMAS[note_type].sizeof() == expected[note_type]


def test_note_type_values() -> None:
    assert layouts.NT_PRSTATUS == 1 and layouts.NT_PRFPREG == 2 and layouts.NT_PRPSINFO == 3
    assert layouts.NT_S390_HIGH_GPRS == 0x300 and layouts.NT_S390_PREFIX == 0x305
    assert layouts.NT_S390_VXRS_HIGH == 0x30A and layouts.NT_S390_PV_CPU_DATA == 0x30E
    assert NOTE_TYPES[0x304] == "NT_S390_CTRS"
    assert all(0x300 <= t <= 0x30E for t, n in NOTE_TYPES.items() if n.startswith("NT_S390"))


def test_fixed_schemas_compile() -> None:
    # House style: the schemas used to scan must stay compilable (no Computed(lambda)).
    data = bytes(range(160))
    for schema in (PSW, STACK_FRAME, pt_regs_schema("v6.1"), ELF_PRSTATUS):
        compiled = schema.compile()
        size = schema.sizeof()
        assert plain(compiled.parse(data * 3)) == plain(schema.parse((data * 3)[:size]))


# ------------------------------------------------------------------------------------------
# PSW
# ------------------------------------------------------------------------------------------


def test_psw_known_bytes() -> None:
    raw = struct.pack(">QQ", KERNEL_MASK, 0x12345678)
    parsed = parse(PSW, raw, "psw")
    assert (parsed.mask, parsed.addr) == (KERNEL_MASK, 0x12345678)
    assert decode_psw(raw) == Psw(KERNEL_MASK, 0x12345678)
    assert structs.build_psw(KERNEL_MASK, 0x12345678) == raw


def test_psw_describe_kernel() -> None:
    psw = Psw(KERNEL_MASK, 0)
    assert psw.describe() == "R:0 T:1 IO:1 EX:1 Key:0 M:1 W:0 P:0 AS:3 CC:0 PM:0 RI:0 EA:3"
    assert not psw.user_mode
    assert psw.addressing_mode == 64
    assert psw.asc == 3 and psw.dat == 1 and psw.mcheck == 1


def test_psw_describe_user() -> None:
    psw = Psw(USER_MASK, 0)
    assert psw.bits()["P"] == 1
    assert "P:1" in psw.describe()
    assert psw.user_mode


def test_psw_bits_each() -> None:
    assert Psw(0x4000000000000000, 0).bits()["R"] == 1
    assert Psw(0x00F0000000000000, 0).describe().split()[4] == "Key:f"
    assert Psw(0x0002000000000000, 0).wait == 1
    assert Psw(0x0000300000000000, 0).cc == 3
    assert Psw(0x00000F0000000000, 0).bits()["PM"] == 0xF
    assert Psw(0x0000008000000000, 0).ri == 1
    assert Psw(0x0000000080000000, 0).addressing_mode == 31
    assert Psw(0, 0).addressing_mode == 24
    assert Psw(0x0000000100000000, 0).addressing_mode == 0


# ------------------------------------------------------------------------------------------
# Stack frame
# ------------------------------------------------------------------------------------------


def known_frame() -> bytes:
    raw = bytearray(160)
    struct.pack_into(">Q", raw, 0x00, 0xAAAA)  # empty[0] / sie_control_block
    struct.pack_into(">Q", raw, 0x28, 0xBBBB)  # empty[5] / sie_guest_asce
    struct.pack_into(">Q", raw, 0x48, 0x66)  # r6
    struct.pack_into(">Q", raw, 0x88, 0x1000_2000)  # r14
    struct.pack_into(">Q", raw, 0x90, 0x3E98)  # r15
    struct.pack_into(">Q", raw, 0x98, 0x4000)  # back chain
    return bytes(raw)


def test_stack_frame_known_bytes() -> None:
    raw = known_frame()
    parsed = parse(STACK_FRAME, raw, "frame")
    assert parsed.gprs[0] == 0x66 and parsed.gprs[8] == 0x1000_2000
    assert parsed.gprs[9] == 0x3E98 and parsed.back_chain == 0x4000
    sie = parse(STACK_FRAME_SIE, raw, "frame")
    assert sie.sie_control_block == 0xAAAA and sie.sie_guest_asce == 0xBBBB
    frame = decode_stack_frame(b"\xff" * 8 + raw, offset=8, address=0x3E00)
    assert frame.address == 0x3E00
    assert frame.r14 == 0x1000_2000 and frame.r15 == 0x3E98 and frame.reg(6) == 0x66
    assert frame.back_chain == 0x4000
    assert frame.sie_control_block == 0xAAAA and frame.sie_guest_asce == 0xBBBB
    with pytest.raises(ValueError):
        frame.reg(5)


def test_build_stack_frame() -> None:
    built = build_stack_frame({6: 0x66, 14: 0x1000_2000, 15: 0x3E98}, 0x4000, [0xAAAA] + [0] * 8)
    expected = bytearray(known_frame())
    struct.pack_into(">Q", expected, 0x28, 0)
    assert built == bytes(expected)
    assert build_stack_frame(list(range(10)))[0x48:0x50] == struct.pack(">Q", 0)


# ------------------------------------------------------------------------------------------
# pt_regs
# ------------------------------------------------------------------------------------------


def known_pt_regs(layout: str) -> bytes:
    size = PT_REGS_LAYOUTS[layout].size
    raw = bytearray(size)
    struct.pack_into(">Q", raw, 0x00, 0xA0)  # args[0]
    struct.pack_into(">QQ", raw, 0x08, USER_MASK, 0x2AA0001234)  # psw
    for n in range(16):
        struct.pack_into(">Q", raw, 0x18 + 8 * n, 0x100 + n)
    struct.pack_into(">Q", raw, 0x98, 0x9898)  # orig_gpr2
    struct.pack_into(">I", raw, 0xA0, 0x0004_0011)  # int_code: ilc 4, code 0x11
    struct.pack_into(">I", raw, 0xA4, 0xA4A4)  # int_parm
    struct.pack_into(">Q", raw, 0xA8, 0xA8A8)  # int_parm_long
    struct.pack_into(">Q", raw, 0xB0, 0b101)  # flags
    if layout in ("v5.12", "v6.1"):
        struct.pack_into(">Q", raw, 0xB8, 0xC1C1)  # cr1
    if layout == "v6.1":
        struct.pack_into(">Q", raw, 0xC0, 0xBEAB)  # last_break
    if layout in ("v6.16", "v7.2"):
        struct.pack_into(">Q", raw, 0xB8, 0xBEAB)  # last_break
    return bytes(raw)


@pytest.mark.parametrize("layout", list(PT_REGS_LAYOUTS))
def test_pt_regs_known_bytes(layout: str) -> None:
    raw = known_pt_regs(layout)
    parsed = parse(pt_regs_schema(layout), raw, "pt_regs")
    assert parsed.psw.mask == USER_MASK and parsed.gprs[15] == 0x10F
    assert parsed.orig_gpr2 == 0x9898 and parsed.flags == 0b101
    regs = decode_pt_regs(raw, 0, 0x3F40, layout)
    assert regs.address == 0x3F40 and regs.layout == layout and regs.size == len(raw)
    assert regs.args0 == 0xA0
    assert regs.psw == Psw(USER_MASK, 0x2AA0001234) and regs.user_mode
    assert regs.gprs == tuple(range(0x100, 0x110)) and regs.sp == 0x10F
    assert (regs.orig_gpr2, regs.int_parm, regs.int_parm_long) == (0x9898, 0xA4A4, 0xA8A8)
    assert regs.code == 0x11 and regs.ilc == 4
    assert regs.cr1 == (0xC1C1 if layout in ("v5.12", "v6.1") else None)
    assert regs.last_break == (0xBEAB if layout in ("v6.1", "v6.16", "v7.2") else None)
    assert regs.flag_names[0] == "SYSCALL"
    assert (
        regs.flag_names[1]
        == {
            "v4.14": "SYSCALL_RESTART",
            "v5.12": "SYSCALL_RET_SET",
            "v6.1": "SYSCALL_RET_SET",
            "v6.16": "SYSCALL_RET_SET",
            "v7.2": "SYSCALL_RET_SET",
        }[layout]
    )
    built = build_pt_regs(
        layout,
        args0=0xA0,
        psw=Psw(USER_MASK, 0x2AA0001234),
        gprs=list(range(0x100, 0x110)),
        orig_gpr2=0x9898,
        int_code=0x0004_0011,
        int_parm=0xA4A4,
        int_parm_long=0xA8A8,
        flags=0b101,
        cr1=0xC1C1,
        last_break=0xBEAB,
    )
    assert built == raw


def test_pt_regs_unknown_flag_bit() -> None:
    raw = build_pt_regs("v6.16", flags=1 << 2 | 1 << 1 | 1 << 9)
    assert decode_pt_regs(raw, 0, 0, "v6.16").flag_names == ("bit1", "SYSCALL_RET_SET", "bit9")


@pytest.mark.parametrize(
    ("release", "layout", "size"),
    [
        ("4.19.0-21-s390x", "v4.14", 184),
        ("5.10.0-30-s390x", "v4.14", 184),
        ("5.12.0", "v5.12", 192),
        ("6.1.0-40-s390x", "v6.1", 200),
        ("6.12.57+deb13-s390x", "v6.1", 200),
        ("6.16.3", "v6.16", 192),
        ("6.17.0", "v6.16", 192),
    ],
)
def test_pt_regs_layout_for_release(release: str, layout: str, size: int) -> None:
    assert pt_regs_layout_for_release(release) == layout
    assert PT_REGS_LAYOUTS[layout].size == size
    assert pt_regs_layout(size, release) == layout
    assert pt_regs_layout(None, release) == layout


def test_pt_regs_layout_by_size() -> None:
    assert pt_regs_layout(184) == "v4.14"
    assert pt_regs_layout(200) == "v6.1"
    assert pt_regs_layout(192) == "v6.16"  # ambiguous without a release: the current one
    assert pt_regs_layout(192, "5.13.0") == "v5.12"
    assert pt_regs_layout(192, "6.17.0") == "v6.16"
    assert pt_regs_layout(200, "6.17.0") == "v6.1"  # the size (e.g. from DWARF) wins
    assert pt_regs_schema(200) is pt_regs_schema("v6.1")
    with pytest.raises(FormatError, match="176 bytes"):
        pt_regs_layout(176)
    with pytest.raises(FormatError):
        pt_regs_layout(None, None)
    with pytest.raises(FormatError):
        pt_regs_schema("v9")
    with pytest.raises(FormatError, match="kernel version"):
        pt_regs_layout_for_release("linux")


# ------------------------------------------------------------------------------------------
# Lowcore
# ------------------------------------------------------------------------------------------

# (current_task, kernel_stack, nodat/panic_stack, mcck_stack, kernel_asce, percpu_offset,
#  preempt_count) offsets per era, from docs/kernel-facts.md (lowcore).
LOWCORE_KNOWN = {
    "v4": (0x338, 0x340, 0x350, None, 0x378, 0x398, 0x3B0),
    "v5.4": (0x340, 0x348, 0x358, None, 0x380, 0x3B8, 0x3A8),
    "v6.1": (0x340, 0x348, 0x358, 0x368, 0x388, 0x3B8, 0x3A8),
    "v6.16": (0x340, 0x348, 0x358, 0x368, 0x388, 0x3B8, 0x3A8),
}


@pytest.mark.parametrize("era", LOWCORE_ERAS)
def test_lowcore_known_bytes(era: str) -> None:
    task, kstack, nodat, mcck, asce, percpu, preempt = LOWCORE_KNOWN[era]
    raw = bytearray(LOWCORE_SIZE)
    struct.pack_into(">Q", raw, task, 0x8000_1000)
    struct.pack_into(">Q", raw, kstack, 0x8000_3E98)
    struct.pack_into(">Q", raw, nodat, 0x8000_7E98)
    if mcck is not None:
        struct.pack_into(">Q", raw, mcck, 0x8000_BE98)
    struct.pack_into(">Q", raw, asce, 0x1234_5007)
    struct.pack_into(">Q", raw, percpu, 0x4242_0000)
    struct.pack_into(">I", raw, preempt, 0x8000_0001)
    struct.pack_into(">Q", raw, 0xE0C, 0x0123_4567_89AB_CDEF)  # vmcore_info, unaligned
    struct.pack_into(">Q", raw, 0xE18, 0x7000)  # os_info
    struct.pack_into(">Q", raw, 0x110, 0x1110)  # breaking_event_addr
    struct.pack_into(">HH", raw, 0x8C, 4, 0x11)  # pgm_ilc, pgm_code
    struct.pack_into(">QQ", raw, 0x130, KERNEL_MASK, 0xEEE0)  # external old PSW
    struct.pack_into(">QQ", raw, 0x1D0, KERNEL_MASK, 0xD0D0)  # program new PSW
    struct.pack_into(">Q", raw, 0x1280 + 15 * 8, 0x3E00)  # save area r15
    struct.pack_into(">QQ", raw, 0x1300, USER_MASK, 0x1300)  # save area PSW
    struct.pack_into(">I", raw, 0x1318, 0x7F000)  # prefix
    struct.pack_into(">I", raw, 0x1340 + 4, 0xAC1)  # ar1
    struct.pack_into(">Q", raw, 0x1380 + 13 * 8, 0x5007)  # cr13
    struct.pack_into(">Q", raw, 0x1328, 0x1328)  # cpu timer
    struct.pack_into(">Q", raw, 0x1330, 0x1330)  # clock comparator

    lowcore = decode_lowcore(bytes(raw), era)
    assert lowcore.era == era
    assert lowcore.current_task == 0x8000_1000 and lowcore.kernel_stack == 0x8000_3E98
    assert lowcore.nodat_stack == 0x8000_7E98
    assert lowcore.mcck_stack == (0x8000_BE98 if mcck else None)
    assert lowcore.kernel_asce == 0x1234_5007 and lowcore.percpu_offset == 0x4242_0000
    expected_preempt = 0x8000_0001 if era == "v4" else 0x8000_0001 - (1 << 32)
    assert lowcore.preempt_count == expected_preempt
    assert lowcore.vmcore_info == 0x0123_4567_89AB_CDEF and lowcore.os_info == 0x7000
    assert lowcore.breaking_event_addr == 0x1110
    assert (lowcore.pgm_ilc, lowcore.pgm_code) == (4, 0x11)
    assert lowcore.old_psws["external"] == Psw(KERNEL_MASK, 0xEEE0)
    assert lowcore.new_psws["program"] == Psw(KERNEL_MASK, 0xD0D0)
    assert lowcore.sa_gprs[15] == 0x3E00 and lowcore.sa_psw.user_mode
    assert lowcore.sa_prefix == 0x7F000 and lowcore.sa_acrs[1] == 0xAC1
    assert lowcore.sa_crs[13] == 0x5007
    assert (lowcore.sa_timer, lowcore.sa_clock_comparator) == (0x1328, 0x1330)
    assert (lowcore.last_break is None) == (era in ("v4", "v5.4"))

    parsed = parse(lowcore_schema(era), raw, "lowcore")
    assert parsed.current_task == 0x8000_1000 and parsed.vmcore_info == 0x0123_4567_89AB_CDEF
    assert parsed.cregs_save_area[13] == 0x5007


@pytest.mark.parametrize("era", LOWCORE_ERAS)
def test_build_lowcore(era: str) -> None:
    task, kstack, nodat, mcck, *_ = LOWCORE_KNOWN[era]
    nodat_name = "panic_stack" if era == "v4" else "nodat_stack"
    fields: dict[str, Any] = {
        "current_task": 0x8000_1000,
        nodat_name: 0x7E98,
        "vmcore_info": 0xE0C0,
        "io_old_psw": (KERNEL_MASK, 0x170),
        "psw_save_area": Psw(USER_MASK, 0x1300),
        "gpregs_save_area": list(range(16)),
    }
    if mcck is not None:
        fields["mcck_stack"] = 0xBE98
    raw = build_lowcore(era, **fields)
    assert len(raw) == LOWCORE_SIZE
    assert struct.unpack_from(">Q", raw, task)[0] == 0x8000_1000
    assert struct.unpack_from(">Q", raw, nodat)[0] == 0x7E98
    assert struct.unpack_from(">Q", raw, 0xE0C)[0] == 0xE0C0
    assert struct.unpack_from(">QQ", raw, 0x170) == (KERNEL_MASK, 0x170)
    assert struct.unpack_from(">QQ", raw, 0x1300) == (USER_MASK, 0x1300)
    assert struct.unpack_from(">16Q", raw, 0x1280) == tuple(range(16))
    if mcck is not None:
        assert struct.unpack_from(">Q", raw, mcck)[0] == 0xBE98
    assert struct.unpack_from(">Q", raw, kstack)[0] == 0  # unspecified: zero
    with pytest.raises(ValueError, match="no field"):
        build_lowcore(era, no_such_field=1)


def test_lowcore_eras_for_release() -> None:
    assert lowcore_era_for_release("4.14.0") == "v4"
    assert lowcore_era_for_release("5.10.0-30-s390x") == "v5.4"
    assert lowcore_era_for_release("6.1.0-40-s390x") == "v6.1"
    assert lowcore_era_for_release("6.12.57+deb13-s390x") == "v6.1"
    assert lowcore_era_for_release("6.17.0") == "v6.16"
    with pytest.raises(FormatError):
        lowcore_schema("v2")
    with pytest.raises(FormatError):
        decode_lowcore(bytes(LOWCORE_SIZE), "v2")


# ------------------------------------------------------------------------------------------
# ELF notes
# ------------------------------------------------------------------------------------------


def known_prstatus() -> bytes:
    raw = bytearray(336)
    struct.pack_into(">h", raw, 0x0C, 11)  # pr_cursig
    struct.pack_into(">i", raw, 0x20, 2)  # pr_pid
    struct.pack_into(">QQ", raw, 0x70, KERNEL_MASK, 0x1234)  # psw
    for n in range(16):
        struct.pack_into(">Q", raw, 0x80 + 8 * n, 0x200 + n)
        struct.pack_into(">I", raw, 0x100 + 4 * n, 0x300 + n)
    struct.pack_into(">Q", raw, 0x140, 0x140)  # orig_gpr2
    struct.pack_into(">i", raw, 0x148, 1)  # pr_fpvalid
    return bytes(raw)


def test_prstatus_known_bytes() -> None:
    raw = known_prstatus()
    parsed = parse(ELF_PRSTATUS, raw, "prstatus")
    assert parsed.pr_pid == 2 and parsed.pr_cursig == 11 and parsed.pr_fpvalid == 1
    assert parsed.pr_reg.psw.addr == 0x1234 and parsed.pr_reg.orig_gpr2 == 0x140
    status = decode_prstatus(raw)
    assert status.pid == 2 and status.cursig == 11 and status.fpvalid == 1
    assert status.psw == Psw(KERNEL_MASK, 0x1234)
    assert status.gprs == tuple(range(0x200, 0x210))
    assert status.acrs == tuple(range(0x300, 0x310))
    assert status.orig_gpr2 == 0x140
    built = build_prstatus(
        pid=2,
        cursig=11,
        psw=(KERNEL_MASK, 0x1234),
        gprs=list(range(0x200, 0x210)),
        acrs=list(range(0x300, 0x310)),
        orig_gpr2=0x140,
    )
    assert built == raw
    assert decode_note(layouts.NT_PRSTATUS, raw) == status


def test_fpregs_and_simple_notes() -> None:
    raw = struct.pack(">I4x16Q", 0x0800_0000, *range(16))
    regs = decode_fpregs(raw)
    assert regs.fpc == 0x0800_0000 and regs.fprs == tuple(range(16))
    assert build_note_desc(layouts.NT_PRFPREG, fpc=0x0800_0000, fprs=list(range(16))) == raw
    prefix = build_note_desc(layouts.NT_S390_PREFIX, prefix=0x7F000)
    assert prefix == struct.pack(">I", 0x7F000)
    assert decode_note(layouts.NT_S390_PREFIX, prefix) == records.decode_prefix(prefix) == 0x7F000
    crs = struct.pack(">16Q", *range(16))
    assert decode_note(layouts.NT_S390_CTRS, crs) == records.decode_ctrs(crs) == tuple(range(16))
    high = bytes(range(256))
    vxrs = decode_note(layouts.NT_S390_VXRS_HIGH, high)
    assert isinstance(vxrs, tuple) and vxrs[1] == int.from_bytes(high[16:32], "big")
    assert decode_note(layouts.NT_S390_PV_CPU_DATA, b"xyz") == b"xyz"
    assert decode_note(0x999, b"abc") == b"abc"
    with pytest.raises(ValueError):
        build_note_desc(0x999)


@pytest.mark.parametrize("note_type", list(NOTE_DESC_SCHEMAS))
def test_notes_fast_equals_construct(note_type: int) -> None:
    rng = random.Random(note_type)
    schema = NOTE_DESC_SCHEMAS[note_type]
    size = 40 if note_type == layouts.NT_S390_PV_CPU_DATA else schema.sizeof()
    for _ in range(ROUNDS):
        raw = rand_bytes(rng, size)
        if note_type in (layouts.NT_PRSTATUS, layouts.NT_PRFPREG):
            continue  # covered by the record tests below
        parsed = plain(parse(schema, raw, "note"))
        fast = decode_note(note_type, raw)
        values = list(parsed.values())
        if len(values) == 1:
            expected = values[0]
            expected = tuple(expected) if isinstance(expected, list) else expected
        else:
            expected = tuple(values)
        assert fast == expected
        assert schema.build(parse(schema, raw, "note")) == raw


def test_build_note_layout() -> None:
    desc = struct.pack(">I", 0x7F000)
    note = build_note("LINUX", layouts.NT_S390_PREFIX, desc)
    assert note == struct.pack(">III", 6, 4, 0x305) + b"LINUX\0\0\0" + desc
    qemu = build_note("CORE", layouts.NT_PRSTATUS, b"abcde", name_align=8)
    assert qemu == struct.pack(">III", 5, 5, 1) + b"CORE\0\0\0\0" + b"abcde\0\0\0"
    vmci = build_note("VMCOREINFO", 0, b"OSRELEASE=6.1\n")
    assert vmci[:12] == struct.pack(">III", 11, 14, 0)
    assert len(vmci) == 12 + 12 + 16
    parsed = parse(ELF_NOTE, vmci, "note")
    assert parsed.name == b"VMCOREINFO\0" and parsed.desc == b"OSRELEASE=6.1\n"
    wide = build_note("VMCOREINFO", 0, b"", name_align=8)
    assert len(wide) == 12 + 16
    assert build_note("", 0, b"") == bytes(12)
    header = parse(structs.Elf64_Nhdr, note, "nhdr")
    assert (header.namesz, header.descsz, header.type) == (6, 4, 0x305)


# ------------------------------------------------------------------------------------------
# Fast decoders equal the construct schemas; round trips
# ------------------------------------------------------------------------------------------


def test_stack_frame_fast_equals_construct() -> None:
    rng = random.Random(1)
    for _ in range(ROUNDS):
        raw = rand_bytes(rng, 160)
        parsed = parse(STACK_FRAME, raw, "frame")
        frame = decode_stack_frame(raw, 0, 0x1000)
        assert list(frame.empty) == list(parsed.empty)
        assert list(frame.gprs) == list(parsed.gprs)
        assert frame.back_chain == parsed.back_chain
        rebuilt = build_stack_frame(list(frame.gprs), frame.back_chain, list(frame.empty))
        assert rebuilt == raw == STACK_FRAME.build(parsed)
        assert STACK_FRAME_SIE.build(parse(STACK_FRAME_SIE, raw, "frame")) == raw


@pytest.mark.parametrize("layout", list(PT_REGS_LAYOUTS))
def test_pt_regs_fast_equals_construct(layout: str) -> None:
    rng = random.Random(layout)
    schema = pt_regs_schema(layout)
    for _ in range(ROUNDS):
        raw = rand_bytes(rng, schema.sizeof())
        parsed = plain(parse(schema, raw, "pt_regs"))
        regs = decode_pt_regs(raw, 0, 0, layout)
        fast = {
            "args": [regs.args0],
            "psw": psw_dict(regs.psw),
            "gprs": list(regs.gprs),
            "orig_gpr2": regs.orig_gpr2,
            "int_code": regs.int_code,
            "int_parm": regs.int_parm,
            "int_parm_long": regs.int_parm_long,
            "flags": regs.flags,
        }
        if regs.cr1 is not None:
            fast["cr1"] = regs.cr1
        if regs.last_break is not None:
            fast["last_break"] = regs.last_break
        if regs.cpu is not None:  # 7.2
            fast["cpu"] = regs.cpu
            parsed.pop("percpu_register")
        assert fast == parsed
        rebuilt = build_pt_regs(
            layout,
            args0=regs.args0,
            psw=regs.psw,
            gprs=regs.gprs,
            orig_gpr2=regs.orig_gpr2,
            int_code=regs.int_code,
            int_parm=regs.int_parm,
            int_parm_long=regs.int_parm_long,
            flags=regs.flags,
            cr1=regs.cr1 or 0,
            last_break=regs.last_break or 0,
        )
        assert rebuilt == (raw[:0xC0] + bytes(8) if layout == "v7.2" else raw)  # cpu not built


def test_prstatus_and_fpregs_fast_equal_construct() -> None:
    rng = random.Random(7)
    for _ in range(ROUNDS):
        raw = rand_bytes(rng, 336)
        parsed = parse(ELF_PRSTATUS, raw, "prstatus")
        status = decode_prstatus(raw)
        assert status.pid == parsed.pr_pid and status.cursig == parsed.pr_cursig
        assert psw_dict(status.psw) == plain(parsed.pr_reg.psw)
        assert list(status.gprs) == list(parsed.pr_reg.gprs)
        assert list(status.acrs) == list(parsed.pr_reg.acrs)
        assert status.orig_gpr2 == parsed.pr_reg.orig_gpr2
        assert status.fpvalid == parsed.pr_fpvalid
        # Padding rebuilds as zeros: parse -> build -> parse is stable.
        assert plain(parse(ELF_PRSTATUS, ELF_PRSTATUS.build(parsed), "p")) == plain(parsed)
        fp_raw = raw[:136]
        fp = decode_fpregs(fp_raw)
        fp_parsed = parse(S390_FP_REGS, fp_raw, "fpregs")
        assert fp.fpc == fp_parsed.fpc and list(fp.fprs) == list(fp_parsed.fprs)


@pytest.mark.parametrize("era", LOWCORE_ERAS)
def test_lowcore_fast_equals_construct(era: str) -> None:
    rng = random.Random(era)
    schema = lowcore_schema(era)
    for _ in range(5):
        raw = rand_bytes(rng, LOWCORE_SIZE)
        parsed = plain(parse(schema, raw, "lowcore"))
        fast = lowcore_values(raw, era)
        assert list(fast) == [field.name for field in LOWCORE_FIELDS[era]]
        for name, value in fast.items():
            if isinstance(value, Psw):
                assert psw_dict(value) == parsed[name], name
            elif isinstance(value, tuple):
                assert list(value) == parsed[name], name
            else:
                assert value == parsed[name], name
        # Round trip: the named fields survive build (gaps rebuild as zeros).
        rebuilt = build_lowcore(era, **parsed)
        assert plain(parse(schema, rebuilt, "lowcore")) == parsed
        assert lowcore_values(rebuilt, era) == fast
        decode_lowcore(raw, era)


# ------------------------------------------------------------------------------------------
# Truncation and errors
# ------------------------------------------------------------------------------------------


def test_truncated_construct() -> None:
    with pytest.raises(TruncatedError, match=r"pt_regs at 0x10: needs 200 bytes, only 199"):
        parse(pt_regs_schema("v6.1"), bytes(199), "pt_regs at 0x10")
    with pytest.raises(TruncatedError, match="needs 8192 bytes"):
        parse(lowcore_schema("v6.1"), bytes(100), "lowcore")
    note = build_note("CORE", 1, b"abcdefgh")
    with pytest.raises(TruncatedError, match="note: data ends early"):
        parse(ELF_NOTE, note[:-3], "note")


def test_truncated_fast() -> None:
    with pytest.raises(TruncatedError, match=r"stack frame at 0x3e00: needs 160 bytes, only 150"):
        decode_stack_frame(bytes(160), offset=10, address=0x3E00)
    with pytest.raises(TruncatedError, match=r"pt_regs at 0x0: needs 192 bytes"):
        decode_pt_regs(bytes(191), 0, 0, "v6.16")
    with pytest.raises(TruncatedError, match="NT_PRSTATUS: needs 336 bytes"):
        decode_prstatus(bytes(300))
    with pytest.raises(TruncatedError, match="lowcore: needs 8192"):
        decode_lowcore(bytes(0x1FFF), "v6.16")
    with pytest.raises(TruncatedError):
        decode_note(layouts.NT_S390_TIMER, bytes(4))
    with pytest.raises(TruncatedError):
        decode_note(layouts.NT_S390_TDB, bytes(4))
    with pytest.raises(TruncatedError):
        decode_psw(bytes(15))
    with pytest.raises(FormatError):
        decode_pt_regs(bytes(200), 0, 0, "v9")


def test_build_errors() -> None:
    with pytest.raises(ValueError, match="expected 16 values"):
        build_pt_regs("v6.1", gprs=[1, 2, 3])
    with pytest.raises(ValueError, match="register 3 out of range"):
        build_stack_frame({3: 1})
    with pytest.raises(ValueError, match="cannot build"):
        build_stack_frame(back_chain=-1)


def test_records_are_frozen() -> None:
    frame = decode_stack_frame(bytes(160))
    with pytest.raises(AttributeError):
        frame.back_chain = 1  # type: ignore[misc]
    assert not hasattr(frame, "__dict__")
