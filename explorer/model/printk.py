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


class _Vmci:
    def __init__(self, info: VmcoreInfo) -> None:
        self.info = info

    def off(self, name: str) -> int:
        value = self.info.decimal(f"OFFSET({name})")
        if value is None:
            raise DumpError(f"VMCOREINFO lacks OFFSET({name}): cannot read the kernel log")
        return value

    def size(self, name: str) -> int:
        value = self.info.decimal(f"SIZE({name})")
        if value is None:
            raise DumpError(f"VMCOREINFO lacks SIZE({name}): cannot read the kernel log")
        return value


def read_log(kernel: Kernel) -> list[LogRecord]:
    """The kernel log, oldest first.

    Raises:
        DumpError: no VMCOREINFO describing the log, or the ring is unreadable.
    """
    info = kernel.vmcoreinfo
    if info is None:
        raise DumpError("no VMCOREINFO: the kernel log cannot be located", kernel.path)
    try:
        if info.symbol("prb") is not None:
            return _read_ringbuffer(kernel, _Vmci(info))
        if info.symbol("log_buf") is not None:
            return _read_log_buf(kernel, _Vmci(info))
    except DumpError as exc:
        raise exc.with_path(kernel.path) from None
    raise DumpError("VMCOREINFO names neither prb nor log_buf: no kernel log", kernel.path)


def _read_ringbuffer(kernel: Kernel, v: _Vmci) -> list[LogRecord]:
    info = v.info
    prb = kernel.space.read_u64(info.symbol("prb") or 0)
    desc_ring = prb + v.off("printk_ringbuffer.desc_ring")
    text_ring = prb + v.off("printk_ringbuffer.text_data_ring")
    count_bits = _U32.unpack(kernel.read(desc_ring + v.off("prb_desc_ring.count_bits"), 4))[0]
    size_bits = _U32.unpack(kernel.read(text_ring + v.off("prb_data_ring.size_bits"), 4))[0]
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
    o_state = v.off("prb_desc.state_var") + counter
    o_lpos = v.off("prb_desc.text_blk_lpos")
    o_begin, o_next = v.off("prb_data_blk_lpos.begin"), v.off("prb_data_blk_lpos.next")
    o_seq, o_ts = v.off("printk_info.seq"), v.off("printk_info.ts_nsec")
    o_len = v.off("printk_info.text_len")
    records: list[LogRecord] = []
    n = ((head - tail) & _ID_MASK) + 1
    for i in range(min(n, count, MAX_RECORDS)):
        rid = (tail + i) & _ID_MASK
        slot = rid & (count - 1)
        try:
            desc = kernel.read(descs + slot * desc_size, desc_size)
            state_var = _U64.unpack_from(desc, o_state)[0]
            if state_var & _ID_MASK != rid or (state_var >> _STATE_SHIFT) not in (
                _COMMITTED,
                _FINALIZED,
            ):
                continue
            begin = _U64.unpack_from(desc, o_lpos + o_begin)[0]
            nxt = _U64.unpack_from(desc, o_lpos + o_next)[0]
            rec = kernel.read(infos + slot * info_size, info_size)
            seq, ts = _U64.unpack_from(rec, o_seq)[0], _U64.unpack_from(rec, o_ts)[0]
            text_len = min(_U16.unpack_from(rec, o_len)[0], MAX_TEXT)
            if begin & 1 or nxt & 1:  # data-less record (NO_LPOS / FAILED_LPOS)
                continue
            b, e = begin % data_size, nxt % data_size
            start = b if b < e else 0  # a wrapped block starts again at the ring's start
            raw = kernel.read(data + start + 8, min(text_len, data_size - start - 8))
        except DumpError:
            continue
        records.append(LogRecord(seq, ts, raw.decode("utf-8", "replace")))
    return records


def _read_log_buf(kernel: Kernel, v: _Vmci) -> list[LogRecord]:
    """Pre-v5.10: ``log_buf`` of ``struct printk_log`` records from ``log_first_idx``."""
    info = v.info
    buf = kernel.space.read_u64(info.symbol("log_buf") or 0)
    length = _U32.unpack(kernel.read(info.symbol("log_buf_len") or 0, 4))[0]
    first = _U32.unpack(kernel.read(info.symbol("log_first_idx") or 0, 4))[0]
    nxt = _U32.unpack(kernel.read(info.symbol("log_next_idx") or 0, 4))[0]
    if not 0 < length <= 1 << 28:
        raise DumpError(f"log_buf_len {length} is implausible")
    header = v.size("printk_log")
    o_ts, o_len = v.off("printk_log.ts_nsec"), v.off("printk_log.len")
    o_text = v.off("printk_log.text_len")
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
