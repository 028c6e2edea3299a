"""The pre-v5.10 kernel log (log_buf of struct printk_log), built into a synthetic dump."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from explorer.model.opening import open_kernel
from explorer.model.printk import read_log
from parsers.errors import DumpError
from tests.helpers.kernels import base_kernel


def _record(ts: int, text: bytes) -> bytes:
    size = (16 + len(text) + 7) & ~7  # struct printk_log header is 16 bytes, 8-aligned
    return struct.pack(">QHHHBB", ts, size, len(text), 0, 0, 6) + text.ljust(size - 16, b"\0")


def test_log_buf_records(tmp_path: Path) -> None:
    k = base_kernel()
    buf = k.alloc(4096, 8)
    data = _record(1_500_000, b"Linux version 4.19.0") + _record(2_000_001_000, b"second")
    k.write(buf, data)
    ptr, length, first, nxt = k.alloc(8), k.alloc(4), k.alloc(4), k.alloc(4)
    k.put_u64(ptr, buf)
    k.write(length, struct.pack(">I", 4096))
    k.write(first, struct.pack(">I", 0))
    k.write(nxt, struct.pack(">I", len(data)))
    for key, value in {
        "SYMBOL(log_buf)": ptr,
        "SYMBOL(log_buf_len)": length,
        "SYMBOL(log_first_idx)": first,
        "SYMBOL(log_next_idx)": nxt,
    }.items():
        k.vmcoreinfo[key] = f"{value:x}"
    k.vmcoreinfo.update(
        {
            "SIZE(printk_log)": "16",
            "OFFSET(printk_log.ts_nsec)": "0",
            "OFFSET(printk_log.len)": "8",
            "OFFSET(printk_log.text_len)": "10",
        }
    )
    log = read_log(open_kernel(str(k.save(tmp_path))))
    assert [r.line() for r in log] == [
        "[    0.001500] Linux version 4.19.0",
        "[    2.000001] second",
    ]


def test_no_log_description(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="names neither prb nor log_buf"):
        read_log(open_kernel(str(base_kernel().save(tmp_path))))


SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"


@pytest.mark.parametrize("name", ["bpo12-6.12-busy", "sid-7.2-modules", "deb12-6.1-idle"])
def test_ring_read_whole_is_read_record_by_record(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The printk ring's descriptors, infos and text are read whole once, each record's
    reads then slices of them: the same records as three reads a record, and as those with
    every whole read refused (a ring holding an unreadable page is read record by record)."""
    from explorer.model import printk

    kernel = open_kernel(str(SAMPLES / name / "vmcore.zst"))
    log = [(r.seq, r.ts_nsec, r.text) for r in read_log(kernel)]
    assert len(log) > 500 and log[0][2].startswith("Linux version")
    monkeypatch.setattr(printk, "_WHOLE", 0)  # every read a record's own
    assert [(r.seq, r.ts_nsec, r.text) for r in read_log(kernel)] == log
    monkeypatch.undo()
    space = type(kernel.space)
    plain = space.read

    def refuse_large(self: object, va: int, size: int) -> bytes:
        if size > 4096:
            raise DumpError(f"0x{va:x}: refused for the test")
        return plain(self, va, size)  # type: ignore[arg-type]

    monkeypatch.setattr(space, "read", refuse_large)
    assert [(r.seq, r.ts_nsec, r.text) for r in read_log(kernel)] == log
