"""Type-information fixtures: the committed DWARF objects and their expected offsets, and
BTF blobs built by code (``mock_btf``), shared by the type, DWARF and hostile-input tests."""

from __future__ import annotations

import struct
from pathlib import Path

from parsers.types.profile import TypeProfile

DATA = Path(__file__).resolve().parents[1] / "data"


SOURCE = DATA / "types_mock.c"


OBJECTS = [DATA / "types_mock.o", DATA / "types_mock_dwarf2.o"]


# offsetof()/sizeof() in types_mock.c on s390x, as printed by
# `s390x-linux-gnu-gcc -DPRINT_OFFSETS -S -o - tests/data/types_mock.c | grep '^->'`.
EXPECTED_OFFSETS = {
    "task_struct.thread_info": 0,
    "task_struct.thread_info.flags": 0,
    "task_struct.thread_info.syscall_work": 8,
    "task_struct.__state": 16,
    "task_struct.stack": 24,
    "task_struct.flags": 36,
    "task_struct.on_cpu": 40,  # anonymous struct in an anonymous union
    "task_struct.cpu": 44,
    "task_struct.cpu_word": 40,
    "task_struct.tasks": 56,
    "task_struct.exit_state": 72,
    "task_struct.pid": 76,
    "task_struct.tgid": 80,
    "task_struct.real_parent": 88,
    "task_struct.thread_node": 96,
    "task_struct.signal": 112,
    "task_struct.comm": 120,
    "task_struct.curr_ret_stack": 136,
    "task_struct.ret_stack": 144,
    "task_struct.kretprobe_instances": 152,
    "task_struct.thread": 160,  # volatile thread_struct_t (a typedef)
    "task_struct.thread.ksp": 224,
    "signal_struct.thread_head": 8,
    "list_head.next": 0,
    "list_head.prev": 8,
    "ftrace_ret_stack.ret": 0,
    "ftrace_ret_stack.func": 8,
    "pt_regs.args": 0,
    "pt_regs.psw": 8,
    "pt_regs.psw.mask": 8,
    "pt_regs.psw.addr": 16,
    "pt_regs.gprs": 24,
    "pt_regs.orig_gpr2": 0x98,
    "pt_regs.int_code": 0xA0,
    "pt_regs.tpi_info": 0xA0,
    "pt_regs.flags": 0xB0,
    "pt_regs.cr1": 0xB8,
    "pt_regs.last_break": 0xC0,
    "stack_frame.sie_flags": 24,
    "stack_frame.gprs": 0x48,
    "stack_frame.back_chain": 0x98,
    "lowcore.current_task": 0x340,
    "lowcore.kernel_stack": 0x348,
    "lowcore.async_stack": 0x350,
    "lowcore.nodat_stack": 0x358,
    "lowcore.restart_stack": 0x360,
    "lowcore.mcck_stack": 0x368,
    "lowcore.kernel_asce": 0x388,
    "lowcore.preempt_count": 0x3A8,
    "lowcore.percpu_offset": 0x3B8,
    "lowcore.vmcore_info": 0xE0C,
    "lowcore.os_info": 0xE18,
}


EXPECTED_SIZES = {
    "task_struct": 248,
    "thread_union": 16384,
    "pt_regs": 200,
    "stack_frame": 160,
    "lowcore": 8192,
    "ftrace_ret_stack": 40,
    "list_head": 16,
    "task_struct.comm": 16,
    "task_struct.__state": 4,
    "task_struct.thread": 88,
    "pt_regs.gprs": 128,
    "lowcore.preempt_count": 4,
}


def check_profile(profile: TypeProfile) -> None:
    assert {k: profile.offsets.get(k) for k in EXPECTED_OFFSETS} == EXPECTED_OFFSETS
    assert {k: profile.sizes.get(k) for k in EXPECTED_SIZES} == EXPECTED_SIZES
    assert not profile.has("task_struct.sched_reset_on_fork")  # a bitfield
    assert profile.thread_size == 16384
    assert profile.missing == ()


class BtfBuilder:
    """Writes BTF blobs (include/uapi/linux/btf.h) for the tests, in either byte order."""

    def __init__(self, order: str = ">") -> None:
        self.order = order
        self.records: list[bytes] = []
        self.strings = bytearray(b"\0")

    def name(self, text: str | None) -> int:
        if not text:
            return 0
        offset = len(self.strings)
        self.strings += text.encode() + b"\0"
        return offset

    def add(
        self,
        kind: int,
        name: str | None,
        value: int,
        vlen: int = 0,
        kflag: int = 0,
        tail: bytes = b"",
        type_id: int | None = None,
    ) -> int:
        """Append a type (or fill the id ``reserve`` returned); return its id."""
        info = (kflag << 31) | (kind << 24) | vlen
        record = struct.pack(self.order + "III", self.name(name), info, value) + tail
        if type_id is None:
            self.records.append(record)
            return len(self.records)
        self.records[type_id - 1] = record
        return type_id

    def reserve(self) -> int:
        """Return an id for a type that refers to itself, to be filled by ``add``."""
        self.records.append(b"")
        return len(self.records)

    def u32s(self, *values: int) -> bytes:
        return struct.pack(f"{self.order}{len(values)}I", *values)

    def int_(self, name: str, size: int, bits: int | None = None, offset: int = 0) -> int:
        encoding = (offset << 16) | (8 * size if bits is None else bits)
        return self.add(1, name, size, tail=self.u32s(encoding))

    def aggregate(
        self,
        name: str | None,
        size: int,
        members: list[tuple],
        union: bool = False,
        type_id: int | None = None,
    ) -> int:
        """members: (name, type, bit offset[, bitfield size]); any bitfield size sets kflag."""
        kflag = int(any(len(m) > 3 for m in members))
        tail = b""
        for member in members:
            offset = member[2] | (member[3] << 24 if len(member) > 3 else 0)
            tail += struct.pack(self.order + "III", self.name(member[0]), member[1], offset)
        kind = 5 if union else 4
        return self.add(kind, name, size, len(members), kflag, tail, type_id)

    def blob(self) -> bytes:
        types = b"".join(self.records)
        header = struct.pack(
            self.order + "HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(self.strings)
        )
        return header + types + bytes(self.strings)


def mock_btf(order: str) -> bytes:
    b = BtfBuilder(order)
    # Kinds the profile never uses, to be stepped over.
    u32 = b.int_("unsigned int", 4)
    int_ = b.int_("int", 4)
    u64 = b.int_("long unsigned int", 8)
    char = b.int_("char", 1)
    b.add(16, "double", 8)  # FLOAT
    b.add(6, "color", 4, 2, tail=b.u32s(b.name("RED"), 0, b.name("BLUE"), 1))  # ENUM
    b.add(19, "big", 8, 1, tail=b.u32s(b.name("HUGE"), 0, 1))  # ENUM64
    proto = b.add(13, None, int_, 1, tail=b.u32s(0, u64))  # FUNC_PROTO int (unsigned long)
    func = b.add(12, "do_thing", proto)  # FUNC
    b.add(17, "tag", func, tail=b.u32s(0xFFFFFFFF))  # DECL_TAG on the function
    var = b.add(14, "jiffies", u64, tail=b.u32s(1))  # VAR
    b.add(15, ".data", 8, 1, tail=b.u32s(var, 0, 8))  # DATASEC
    b.add(7, "lowcore", 0)  # FWD: a declaration is not a definition
    user = b.add(18, "user", u64)  # TYPE_TAG

    list_head = b.reserve()
    list_ptr = b.add(2, None, list_head)
    b.aggregate("list_head", 16, [("next", list_ptr, 0), ("prev", list_ptr, 64)], type_id=list_head)

    index = b.int_("__ARRAY_SIZE_TYPE__", 4)
    acrs = b.add(3, None, 0, tail=b.u32s(u32, index, 16))
    thread = b.aggregate("thread_struct", 88, [("acrs", acrs, 0), ("ksp", user, 512)])
    thread_t = b.add(8, "thread_struct_t", thread)  # TYPEDEF
    volatile_thread = b.add(9, None, thread_t)  # VOLATILE
    const_u32 = b.add(10, None, u32)  # CONST
    restrict_ptr = b.add(11, None, b.add(2, None, 0))  # RESTRICT void *
    thread_info = b.aggregate("thread_info", 16, [("flags", u64, 0), ("syscall_work", u64, 64)])
    cpu_pair = b.aggregate(None, 8, [("on_cpu", int_, 0), ("cpu", u32, 32)])
    cpu_union = b.aggregate(None, 8, [(None, cpu_pair, 0), ("cpu_word", u64, 0)], union=True)
    comm = b.add(3, None, 0, tail=b.u32s(char, index, 16))
    task = b.aggregate(
        "task_struct",
        248,
        [
            ("thread_info", thread_info, 0),
            ("__state", const_u32, 128),
            ("stack", restrict_ptr, 192),
            ("flags", u32, 288),
            (None, cpu_union, 320),
            ("sched_reset_on_fork", u32, 384, 1),  # kind_flag bitfield
            ("sched_contributes_to_load", u32, 385, 1),
            ("tasks", list_head, 448),
            ("pid", int_, 608),
            ("comm", comm, 960),
            ("thread", volatile_thread, 1280),
        ],
    )
    bit3 = b.int_("unsigned int", 4, bits=3)  # old-style bitfield: a narrow INT
    b.aggregate(
        "signal_struct",
        24,
        [("sigcnt", int_, 0), ("group_stop", bit3, 32), ("thread_head", list_head, 64)],
    )
    psw = b.add(8, "psw_t", b.aggregate(None, 16, [("mask", u64, 0), ("addr", u64, 64)]))
    args = b.add(3, None, 0, tail=b.u32s(u64, index, 1))
    gprs = b.add(3, None, 0, tail=b.u32s(u64, index, 16))
    regs_struct = b.aggregate(None, 152, [("args", args, 0), ("psw", psw, 64), ("gprs", gprs, 192)])
    regs_union = b.aggregate(None, 152, [(None, regs_struct, 0)], union=True)
    b.aggregate(
        "pt_regs",
        200,
        [(None, regs_union, 0), ("orig_gpr2", u64, 1216), ("last_break", u64, 1536)],
    )
    stack = b.add(3, None, 0, tail=b.u32s(u64, index, 2048))
    b.aggregate("thread_union", 16384, [("task", task, 0), ("stack", stack, 0)], union=True)
    b.aggregate("task_struct", 8, [("pid", int_, 0)])  # a later namesake loses
    return b.blob()


def corrupt(blob: bytes, offset: int, fmt: str, value: int) -> bytes:
    data = bytearray(blob)
    struct.pack_into(fmt, data, offset, value)
    return bytes(data)


def header_field(blob: bytes, name: str, value: int) -> bytes:
    offsets = {"hdr_len": 4, "type_off": 8, "type_len": 12, "str_off": 16, "str_len": 20}
    return corrupt(blob, offsets[name], ">I", value)
