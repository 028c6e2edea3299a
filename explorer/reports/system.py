"""What ``backchain sys`` reports (crash's ``sys``): the system as the kernel saw it.

Each value is read from the kernel's own variables, through its symbols:

* ``init_uts_ns.name`` (``struct new_utsname``: six 65-byte strings; a 4-byte ``kref``
  precedes it before v5.11, found by looking for "Linux" and checked against the release);
* ``_totalram_pages`` (``totalram_pages`` before v5.0): MemTotal in pages;
* ``avenrun[3]``: the load averages in FSHIFT=11 fixed point (include/linux/sched/loadavg.h);
* ``__cpu_online_mask``: online CPUs;
* uptime: the newest TOD clock value a CPU's lowcore holds (``int_clock``, stored at every
  interrupt) minus the boot TOD ``tod_clock_base`` (``sched_clock_base_cc`` before v4.16),
  converted like the kernel's ``sched_clock()``: ``ns = tod * 125 / 512``. printk stamps
  messages with the same clock, so the uptime is at or just after the log's last message;
* time of the dump: VMCOREINFO ``CRASHTIME`` when kdump wrote it, else the same TOD value
  as UTC (TOD epoch 1900-01-01; the machine's TOD is set to UTC).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from explorer.model.kernel import Kernel
from parsers.dumps.memory import LOWCORE_SIZE
from parsers.errors import DumpError
from parsers.s390.records import lowcore_values

FSHIFT = 11
UTS_LEN = 65  # __NEW_UTS_LEN + 1
UTS_FIELDS = ("sysname", "nodename", "release", "version", "machine", "domainname")
TOD_UNIX_EPOCH = 0x7D91048BCA000000  # TOD value of 1970-01-01 00:00:00 UTC
PAGE_SIZE = 4096
T = TypeVar("T")


@dataclass(frozen=True)
class SysInfo:
    """The system at dump time; None where the dump does not tell."""

    release: str | None
    version: str | None
    nodename: str | None
    machine: str | None
    cpus: int
    cpus_online: int | None
    memory: int
    total_ram: int | None
    uptime_s: float | None
    uptime_source: str | None
    load_average: tuple[float, float, float] | None
    panic_cpu: int | None
    panic_message: str | None
    dump_time: int | None
    dump_time_source: str | None
    warnings: tuple[str, ...] = ()


def _sym(kernel: Kernel, *names: str) -> tuple[str, int] | None:
    if kernel.symbols is None:
        return None
    for name in names:
        address = kernel.symbols.address_of(name)
        if address is not None:
            return name, address
    return None


def _utsname(kernel: Kernel) -> dict[str, str] | None:
    found = _sym(kernel, "init_uts_ns")
    if found is None:
        return None
    raw = kernel.read(found[1], 8 + UTS_LEN * len(UTS_FIELDS))
    start = next((o for o in (0, 4, 8) if raw[o : o + 6] == b"Linux\0"), None)
    if start is None:
        return None
    out = {}
    for i, name in enumerate(UTS_FIELDS):
        field = raw[start + i * UTS_LEN : start + (i + 1) * UTS_LEN]
        out[name] = field.split(b"\0", 1)[0].decode("utf-8", "replace")
    if kernel.release and out["release"] != kernel.release:
        return None  # not the struct we think it is
    return out


def _int_clock(raw: bytes, offset: int, comparator: int) -> int | None:
    """The TOD a lowcore's ``int_clock`` holds. Older kernels store it with STCK (a 64-bit
    TOD), newer ones with STCKE (``union tod_clock``: an epoch-index byte, then the TOD):
    the two readings differ by a factor of 256, and the right one is the one next to the
    CPU's clock comparator (the next timer event, always a 64-bit TOD, set moments before
    the dump)."""
    if offset + 9 > len(raw):
        return None
    plain = int.from_bytes(raw[offset : offset + 8], "big")
    extended = int.from_bytes(raw[offset + 1 : offset + 9], "big")
    candidates = [v for v in (plain, extended) if v]
    if not candidates:
        return None
    if not comparator or comparator == (1 << 64) - 1:
        return plain or None
    return min(candidates, key=lambda v: abs(v - comparator))


def newest_tod(kernel: Kernel) -> int | None:
    """The newest TOD clock value the CPUs' lowcores hold (``int_clock``)."""
    field = next((f for f in kernel.lowcore_fields.fields if f.name == "int_clock"), None)
    best = None
    for cpu in kernel.cpus:
        if cpu.registers.prefix is None or field is None:
            continue
        try:
            raw = kernel.dump.read(cpu.registers.prefix, LOWCORE_SIZE)
        except DumpError:
            continue
        values = lowcore_values(raw, kernel.lowcore_fields)
        comparator = cpu.registers.todcmp or values.get("clock_comparator") or 0
        tod = _int_clock(raw, field.offset, comparator if isinstance(comparator, int) else 0)
        if tod and (best is None or tod > best):
            best = tod
    return best


def boot_tod(kernel: Kernel) -> int | None:
    """The TOD clock at boot: ``tod_clock_base`` (extended format: epoch byte, then the
    64-bit TOD) or ``sched_clock_base_cc``."""
    found = _sym(kernel, "tod_clock_base", "sched_clock_base_cc")
    if found is None:
        return None
    name, address = found
    if name == "tod_clock_base":
        return int(struct.unpack(">Q", kernel.read(address + 1, 8))[0])
    return kernel.space.read_u64(address)


def tod_to_ns(delta: int) -> int:
    """TOD clock units (2**-12 microseconds) to nanoseconds, as ``tod_to_ns()``."""
    return ((delta >> 9) * 125) + (((delta & 0x1FF) * 125) >> 9)


def sys_info(kernel: Kernel) -> SysInfo:
    """Everything ``backchain sys`` shows; unreadable values are None with a warning."""
    from explorer.model.printk import panic_info

    warnings: list[str] = []

    def attempt(what: str, fn: Callable[[], T]) -> T | None:
        try:
            return fn()
        except DumpError as exc:
            warnings.append(f"{what}: {exc.message}")
            return None

    uts = attempt("init_uts_ns", lambda: _utsname(kernel)) or {}
    ram = _sym(kernel, "_totalram_pages", "totalram_pages")
    total_ram = (
        attempt("totalram_pages", lambda: kernel.space.read_u64(ram[1]) * PAGE_SIZE)
        if ram
        else None
    )
    avenrun = _sym(kernel, "avenrun")
    load = None
    if avenrun is not None:
        raw = attempt("avenrun", lambda: kernel.read(avenrun[1], 24))
        if raw is not None:
            a, b, c = struct.unpack(">3Q", raw)
            load = (a / (1 << FSHIFT), b / (1 << FSHIFT), c / (1 << FSHIFT))
    online_sym = _sym(kernel, "__cpu_online_mask", "cpu_online_mask")
    online = None
    if online_sym is not None:
        word = attempt("cpu_online_mask", lambda: kernel.space.read_u64(online_sym[1]))
        online = None if word is None else bin(word).count("1")
    now = newest_tod(kernel)
    base = attempt("tod_clock_base", lambda: boot_tod(kernel))
    uptime = None
    uptime_source = None
    if now is not None and base is not None and now >= base:
        uptime = tod_to_ns(now - base) / 1e9
        uptime_source = "TOD clock (lowcore int_clock - tod_clock_base)"
    dump_time = kernel.crash_time
    dump_time_source: str | None = "VMCOREINFO CRASHTIME"
    if dump_time is None and now is not None and now > TOD_UNIX_EPOCH:
        dump_time = tod_to_ns(now - TOD_UNIX_EPOCH) // 1_000_000_000
        dump_time_source = "TOD clock of the CPUs"
    if dump_time is None:
        dump_time_source = None
    panic = panic_info(kernel)
    return SysInfo(
        release=kernel.release or uts.get("release"),
        version=uts.get("version"),
        nodename=uts.get("nodename"),
        machine=uts.get("machine") or "s390x",
        cpus=len(kernel.cpus),
        cpus_online=online,
        memory=kernel.memory_size,
        total_ram=total_ram,
        uptime_s=uptime,
        uptime_source=uptime_source,
        load_average=load,
        panic_cpu=panic.cpu,
        panic_message=panic.message,
        dump_time=dump_time,
        dump_time_source=dump_time_source,
        warnings=tuple(warnings),
    )


__all__ = ["SysInfo", "boot_tod", "newest_tod", "sys_info", "tod_to_ns"]
