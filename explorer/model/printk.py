"""The kernel log (``dmesg``) from the printk ring buffer, and panic facts.

Since v5.10 the log is the lockless ``printk_ringbuffer`` (kernel/printk/printk_ringbuffer.h):
a ring of descriptors (state and data positions), a parallel ring of ``printk_info`` (sequence,
timestamp, text length) and a data ring holding each record's text after its id. The kernel
exports every offset needed in VMCOREINFO for exactly this purpose, so no type information is
required. Older kernels kept ``log_buf`` as a sequence of ``struct printk_log`` records, also
described in VMCOREINFO. Everything read is bounded by the ring sizes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from explorer.model.kernel import Kernel
from parsers.dumps.vmcoreinfo import VmcoreInfo
from parsers.errors import DumpError

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_U16 = struct.Struct(">H")
# prb_desc.state_var: 2 state bits at the top, the record id below (DESC_FLAGS_SHIFT 62).
_STATE_SHIFT = 62
_ID_MASK = (1 << _STATE_SHIFT) - 1
_COMMITTED, _FINALIZED = 1, 2
MAX_RECORDS = 1 << 20
MAX_TEXT = 4096


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One kernel message: sequence number, time since boot (ns), text."""

    seq: int
    ts_nsec: int
    text: str

    def line(self) -> str:
        """As dmesg prints it: ``[    1.234567] text``."""
        return (
            f"[{self.ts_nsec // 1_000_000_000:5d}.{self.ts_nsec % 1_000_000_000 // 1000:06d}] "
            f"{self.text}"
        )


#: Largest struct the printk readers accept from VMCOREINFO's SIZE() (prb_desc is 24 bytes,
#: printk_info 88, printk_log 16): a size or offset beyond it is damage, not a layout.
MAX_STRUCT = 4096


class _Vmci:
    """VMCOREINFO's printk offsets and sizes, each checked before it is used."""

    def __init__(self, info: VmcoreInfo) -> None:
        self.info = info

    def off(self, name: str, width: int = 8) -> int:
        """``OFFSET(name)`` of a member ``width`` bytes wide, inside ``SIZE(struct)`` when
        VMCOREINFO gives that size, else inside :data:`MAX_STRUCT`."""
        value = self.info.decimal(f"OFFSET({name})")
        if value is None:
            raise DumpError(f"VMCOREINFO lacks OFFSET({name}): cannot read the kernel log")
        struct_name = name.split(".", 1)[0]
        limit = self.info.decimal(f"SIZE({struct_name})")
        if not 0 <= value <= (limit if limit is not None else MAX_STRUCT) - width:
            raise DumpError(
                f"VMCOREINFO has OFFSET({name})={value}, outside its "
                f"{limit if limit is not None else MAX_STRUCT}-byte struct: the kernel log "
                "description is damaged"
            )
        return value

    def size(self, name: str) -> int:
        value = self.info.decimal(f"SIZE({name})")
        if value is None:
            raise DumpError(f"VMCOREINFO lacks SIZE({name}): cannot read the kernel log")
        if not 0 < value <= MAX_STRUCT:
            raise DumpError(f"VMCOREINFO has SIZE({name})={value}: the kernel log is damaged")
        return value


def read_log(kernel: Kernel, warnings: list[str] | None = None) -> list[LogRecord]:
    """The kernel log, oldest first; records that cannot be read are counted in ``warnings``.

    Raises:
        DumpError: no VMCOREINFO describing the log, a damaged description, or a ring none of
            whose records can be read.
    """
    info = kernel.vmcoreinfo
    if info is None:
        raise DumpError("no VMCOREINFO: the kernel log cannot be located", kernel.path)
    lost: list[str] = []
    try:
        if info.symbol("prb") is not None:
            records = _read_ringbuffer(kernel, _Vmci(info), lost)
        elif info.symbol("log_buf") is not None:
            records = _read_log_buf(kernel, _Vmci(info))
        else:
            raise DumpError("VMCOREINFO names neither prb nor log_buf: no kernel log")
    except DumpError as exc:
        raise exc.with_path(kernel.path) from None
    except (struct.error, ValueError, OverflowError, IndexError) as exc:  # a reader's slip
        raise DumpError(f"the kernel log is damaged ({exc})", kernel.path) from None
    if lost and not records:
        raise DumpError(f"the kernel log is unreadable: {lost[0]}", kernel.path)
    if warnings is not None:
        warnings.extend(lost)
    return records


def _read_ringbuffer(kernel: Kernel, v: _Vmci, lost: list[str]) -> list[LogRecord]:
    info = v.info
    prb = kernel.space.read_u64(info.symbol("prb") or 0)
    desc_ring = prb + v.off("printk_ringbuffer.desc_ring")
    text_ring = prb + v.off("printk_ringbuffer.text_data_ring")
    count_bits = _U32.unpack(kernel.read(desc_ring + v.off("prb_desc_ring.count_bits", 4), 4))[0]
    size_bits = _U32.unpack(kernel.read(text_ring + v.off("prb_data_ring.size_bits", 4), 4))[0]
    if not 0 < count_bits <= 20 or not 0 < size_bits <= 31:
        raise DumpError(
            f"printk ring buffer looks damaged (count_bits {count_bits}, size_bits {size_bits})"
        )
    descs = kernel.space.read_u64(desc_ring + v.off("prb_desc_ring.descs"))
    infos = kernel.space.read_u64(desc_ring + v.off("prb_desc_ring.infos"))
    counter = v.off("atomic_long_t.counter")
    head = kernel.space.read_u64(desc_ring + v.off("prb_desc_ring.head_id") + counter)
    tail = kernel.space.read_u64(desc_ring + v.off("prb_desc_ring.tail_id") + counter)
    data = kernel.space.read_u64(text_ring + v.off("prb_data_ring.data"))
    count, data_size = 1 << count_bits, 1 << size_bits
    desc_size, info_size = v.size("prb_desc"), v.size("printk_info")
    memory = kernel.memory_size
    if data_size > memory or count * (desc_size + info_size) > memory:
        raise DumpError(
            f"printk ring of {count} records and {data_size} bytes of text is larger than the "
            f"dump's {memory} bytes of memory: it is damaged"
        )
    o_state = v.off("prb_desc.state_var") + counter
    o_lpos = v.off("prb_desc.text_blk_lpos", 16)
    o_begin, o_next = v.off("prb_data_blk_lpos.begin"), v.off("prb_data_blk_lpos.next")
    if o_state + 8 > desc_size or o_lpos + max(o_begin, o_next) + 8 > desc_size:
        raise DumpError("VMCOREINFO's prb_desc members lie outside SIZE(prb_desc)")
    o_seq, o_ts = v.off("printk_info.seq"), v.off("printk_info.ts_nsec")
    o_len = v.off("printk_info.text_len", 2)
    records: list[LogRecord] = []
    n = min(((head - tail) & _ID_MASK) + 1, count, MAX_RECORDS)
    budget = data_size  # the text of every record together fits in the data ring
    unreadable = 0
    first = tail & (count - 1)  # the slots read: from the tail's, n of them, round once
    slots = [(first, min(n, count - first)), (0, n - min(n, count - first))]
    read = _ring_reader(
        kernel,
        *((descs + at * desc_size, k * desc_size) for at, k in slots),
        *((infos + at * info_size, k * info_size) for at, k in slots),
        (data, data_size),
    )
    for i in range(n):
        rid = (tail + i) & _ID_MASK
        slot = rid & (count - 1)
        try:
            desc = read(descs + slot * desc_size, desc_size)
            state_var = _U64.unpack_from(desc, o_state)[0]
            if state_var & _ID_MASK != rid or (state_var >> _STATE_SHIFT) not in (
                _COMMITTED,
                _FINALIZED,
            ):
                continue
            begin = _U64.unpack_from(desc, o_lpos + o_begin)[0]
            nxt = _U64.unpack_from(desc, o_lpos + o_next)[0]
            rec = read(infos + slot * info_size, info_size)
            seq, ts = _U64.unpack_from(rec, o_seq)[0], _U64.unpack_from(rec, o_ts)[0]
            if begin & 1 or nxt & 1:  # data-less record (NO_LPOS / FAILED_LPOS)
                continue
            b, e = begin % data_size, nxt % data_size
            start = b if b < e else 0  # a wrapped block starts again at the ring's start
            block = e - start - 8  # the text after the id, inside the block
            text_len = min(_U16.unpack_from(rec, o_len)[0], MAX_TEXT, max(block, 0), budget)
            raw = read(data + start + 8, text_len)
        except DumpError:
            unreadable += 1
            continue
        budget -= text_len
        records.append(LogRecord(seq, ts, raw.decode("utf-8", "replace")))
    if n and not records and not unreadable:
        lost.append(f"none of its {n} descriptors at 0x{descs:x} holds a finished record")
    if unreadable:
        lost.append(
            f"{unreadable} of {n} printk records unreadable (descriptors at 0x{descs:x}, "
            f"text at 0x{data:x})"
        )
    return records


#: The ring's arrays are read whole up to this size (a record's three reads are then slices).
_WHOLE = 8 << 20


def _ring_reader(kernel: Kernel, *areas: tuple[int, int]) -> Callable[[int, int], bytes]:
    """``kernel.read`` for the ring's reads: each of ``areas`` (address, size) read whole
    once when it can be (one read instead of a thousand), a read inside it then a slice of
    it. The bytes are the same: other reads, and every read of an area larger than
    :data:`_WHOLE` or unreadable as a whole, go to ``kernel.read`` (a record's unreadable
    piece fails alone, as before), and so does a read of no bytes."""
    whole: list[tuple[int, int, bytes]] = []
    for address, size in areas:
        if 0 < size <= _WHOLE:
            try:
                whole.append((address, address + size, kernel.read(address, size)))
            except DumpError:
                continue

    def read(address: int, size: int) -> bytes:
        for start, end, data in whole:
            if size > 0 and start <= address and address + size <= end:
                return data[address - start : address - start + size]
        return kernel.read(address, size)

    return read


def _read_log_buf(kernel: Kernel, v: _Vmci) -> list[LogRecord]:
    """Pre-v5.10: ``log_buf`` of ``struct printk_log`` records from ``log_first_idx``."""
    info = v.info
    buf = kernel.space.read_u64(info.symbol("log_buf") or 0)
    length = _U32.unpack(kernel.read(info.symbol("log_buf_len") or 0, 4))[0]
    first = _U32.unpack(kernel.read(info.symbol("log_first_idx") or 0, 4))[0]
    nxt = _U32.unpack(kernel.read(info.symbol("log_next_idx") or 0, 4))[0]
    if not 0 < length <= min(1 << 28, kernel.memory_size):
        raise DumpError(f"log_buf_len {length} is implausible")
    header = v.size("printk_log")
    o_ts, o_len = v.off("printk_log.ts_nsec"), v.off("printk_log.len", 2)
    o_text = v.off("printk_log.text_len", 2)
    raw = kernel.read(buf, length)
    records: list[LogRecord] = []
    pos, seq = first, 0
    while len(records) < MAX_RECORDS and pos + header <= length:
        rec_len = _U16.unpack_from(raw, pos + o_len)[0]
        if rec_len == 0:  # wrap marker
            if pos == 0 or (nxt >= first and pos >= nxt):
                break
            pos = 0
            continue
        ts = _U64.unpack_from(raw, pos + o_ts)[0]
        text_len = _U16.unpack_from(raw, pos + o_text)[0]
        text = raw[pos + header : pos + header + text_len].decode("utf-8", "replace")
        records.append(LogRecord(seq, ts, text))
        seq += 1
        pos += rec_len
        if pos == nxt:
            break
    return records


@dataclass(frozen=True)
class PanicInfo:
    """Whether the kernel was panicking when dumped.

    Attributes:
        cpu: ``panic_cpu`` (the CPU running panic()), None if no panic.
        message: the last "Kernel panic" / "Oops" / BUG line of the log, if found.
    """

    cpu: int | None
    message: str | None


def panic_info(kernel: Kernel, log: list[LogRecord] | None = None) -> PanicInfo:
    """``panic_cpu`` and the panic message; never raises."""
    cpu = None
    addr = kernel.vmcoreinfo.symbol("panic_cpu") if kernel.vmcoreinfo else None
    if addr is None and kernel.symbols is not None:
        addr = kernel.symbols.address_of("panic_cpu")
    if addr is not None:
        try:
            value = struct.unpack(">i", kernel.read(addr, 4))[0]
            cpu = value if value >= 0 else None
        except DumpError:
            cpu = None
    message = None
    if log is None:
        try:
            log = read_log(kernel)
        except DumpError:
            log = []
    for rec in reversed(log):
        text = rec.text
        if text.startswith(("Kernel panic", "Oops", "BUG:", "kernel BUG")):
            message = text
            break
    return PanicInfo(cpu, message)
