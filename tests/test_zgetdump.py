"""Cross-checks with IBM's zgetdump (s390-tools), run under qemu-user on any host.

The sysroot is made by ``dpkg-deb -x`` of Debian's s390-tools, libc6, zlib1g, libfuse2 and
libgcc-s1 (all ``:s390x``); it is looked for in ``cache_dir("zgetdump", "sysroot")``
(``$BACKCHAIN_CACHE/zgetdump/sysroot``, see parsers/cache.py) and run with
``qemu-s390x-static -L SYSROOT``; ``samples/generate_real.py --zgetdump-sysroot`` makes it.
Without either every test here fails in CI and skips elsewhere (tests/helpers/oracles.py). The
real dump is QEMU's own ELF core of the bundled ``deb12-6.1-idle`` sample (its ``vmcore.zst``,
decompressed into the cache), so it runs in CI; our kdump writer's file of it is checked too.
QEMU's own kdump files exist only after a full-system QEMU boot
(``generate_real.py --qemu-files``, the generator's work folder ``cache_dir("real")``): that
test skips without them, in CI too (README, "Tests and CI").

What zgetdump 2.16 (Debian 12) does with our files, as checked here:

* ELF -> ``-f s390``: memory copied as is, except each CPU's store-status save area (lowcore
  0x1200-0x13FF) and, when the ELF has NT_S390_VXRS_* notes and the lowcore's
  ``vector_save_area_addr`` (0x11B0) is non-zero and 1 KiB aligned, the 512-byte vector save
  area it points to. It does not store the TOD programmable register (0x1324). ``-f`` takes
  only "elf" and "s390". An ELF that lacks absolute 0x10418 crashes it (it reads the kdump
  base at 0x10418 unchecked), so the sparse synthetic dump is given to it hole-free.
* s390 and uncompressed s390_ext from a regular file: ``-i`` and ``-f elf`` work;
  zlib-compressed s390_ext is only read from 2.30 on (2.16: "Dump is not complete").
* kdump and flattened kdump: ``-i`` only ("Copying not possible for kdump dumps").
"""

from __future__ import annotations

import datetime
import os
import re
import struct
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from parsers.dumps.dumpfile import open_dump
from parsers.dumps.elfcore import ElfCore, Note, group_cpu_notes
from parsers.dumps.kdump import KdumpFile
from parsers.dumps.physmem import MemoryRange
from parsers.dumps.s390dump import S390Dump, parse_header
from parsers.dumps.vmcoreinfo import vmcoreinfo_from_memory
from parsers.s390.layouts import NT_S390_TODPREG, NT_S390_VXRS_HIGH, NT_S390_VXRS_LOW
from parsers.write.convert import convert_to_elf, dump_cpu_registers, write_kdump, write_s390
from tests.helpers import oracles
from tests.helpers.dumps import two_cpu_dump

PAGE = 4096
MIB = 1 << 20
WHEN = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
SA_START, SA_END, SA_TODPREG = 0x1200, 0x1400, 0x1324
LC_VX_SA, VX_SA_SIZE = 0x11B0, 512

pytestmark = oracles.needs("zgetdump")


# -- running zgetdump -------------------------------------------------------------------------
def zgetdump(*args: str | Path, out: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run zgetdump (stdout to ``out`` if given); card and messages are on stderr."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LC_ALL": "C"}
    cmd = [*oracles.zgetdump_command(), *map(str, args)]
    if out is None:
        return subprocess.run(cmd, capture_output=True, env=env, timeout=120)
    with open(out, "wb") as f:
        return subprocess.run(cmd, stdout=f, stderr=subprocess.PIPE, env=env, timeout=120)


@cache
def zgetdump_version() -> tuple[int, ...]:
    proc = zgetdump("-v")
    found = re.search(rb"version (\d+)\.(\d+)", proc.stdout + proc.stderr)
    assert proc.returncode == 0 and found, proc
    return tuple(int(x) for x in found.groups())


def info_card(path: Path) -> dict[str, Any]:
    """``zgetdump -i``: {"Dump format": "s390", ..., "map": [(start, end inclusive), ...]}."""
    proc = zgetdump("-i", path)
    text = proc.stderr.decode()
    assert proc.returncode == 0, text
    card: dict[str, Any] = {"map": []}
    for line in text.splitlines():
        if m := re.match(r"^  (\S.*?)\.*: (.*)$", line):
            card[m.group(1)] = m.group(2)
        elif m := re.match(r"^  ([0-9a-f]{16}) - ([0-9a-f]{16}) ", line):
            card["map"].append((int(m.group(1), 16), int(m.group(2), 16)))
    return card


def card_time(when: str | None) -> str | None:
    """Our ISO time as zgetdump prints it (TZ=UTC, whole seconds)."""
    if when is None:
        return None
    t = datetime.datetime.fromisoformat(when)
    return t.strftime("%a, %d %b %Y %H:%M:%S +0000")


# -- dumps ------------------------------------------------------------------------------------
def pages(dump: Any) -> Iterator[int]:
    for r in dump.ranges:
        yield from range(r.start, r.end, PAGE)


class HoleFree:
    """A dump's memory from 0 without holes (zeros), with extra memory words and notes.

    zgetdump 2.16 crashes on an ELF that does not hold absolute 0x10418.
    """

    format = "elf"
    cpu_registers = None

    def __init__(self, dump: Any, notes: list[Note], pokes: dict[int, bytes]) -> None:
        self.dump, self.notes, self.pokes = dump, notes, pokes
        self.path = self.source_path = dump.path
        self.vmcoreinfo_text = dump.vmcoreinfo_text
        self.ranges = [MemoryRange(0, dump.ranges[-1].end)]

    def read(self, address: int, size: int) -> bytes:
        buf = bytearray(size)
        for r in self.dump.ranges:
            lo, hi = max(address, r.start), min(address + size, r.end)
            if lo < hi:
                buf[lo - address : hi - address] = self.dump.read(lo, hi - lo)
        for a, data in self.pokes.items():
            lo, hi = max(address, a), min(address + size, a + len(data))
            if lo < hi:
                buf[lo - address : hi - address] = data[lo - a : hi - a]
        return bytes(buf)


def with_vector_registers(dump: ElfCore) -> HoleFree:
    """The synthetic dump, hole-free, with vector registers, save areas and a TOD prog reg."""
    notes: list[Note] = []
    pokes: dict[int, bytes] = {}
    for i, group in enumerate(group_cpu_notes(dump.notes)):
        cpu = dump_cpu_registers(dump)[i]
        assert cpu.prefix is not None
        vx = 0x2F00000 + 0x400 * i  # a 1 KiB aligned vector save area in a hole
        pokes[cpu.prefix + LC_VX_SA] = struct.pack(">Q", vx)
        for n in group:
            desc = struct.pack(">I", 0x1234 + i) if n.type == NT_S390_TODPREG else n.desc
            notes.append(Note(n.name, n.type, desc, 0))
        low = bytes(range(16 * i, 16 * i + 128))
        high = bytes((b * 7 + i) & 0xFF for b in range(256))
        notes.append(Note("LINUX", NT_S390_VXRS_LOW, low, 0))
        notes.append(Note("LINUX", NT_S390_VXRS_HIGH, high, 0))
    notes += [n for n in dump.notes if n.name not in ("CORE", "LINUX")]
    return HoleFree(dump, notes, pokes)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ElfCore]:
    path = two_cpu_dump(tmp_path_factory.mktemp("zgetdump"), vmcoreinfo_note=True)
    core = ElfCore(str(path))
    yield core
    core.close()


def real_elf(sample: str = oracles.QEMU_FILES_SAMPLE) -> Path:
    """QEMU's own ELF dump of a bundled sample, by default the 6.1 one (its vmcore.zst,
    decompressed)."""
    return oracles.qemu_elf(sample)


def source(kind: str, synthetic: ElfCore, tmp_path: Path) -> Any:
    """The dump to test: the synthetic one made zgetdump-safe, or a clean copy of a real one."""
    if kind == "synthetic":
        return with_vector_registers(synthetic)
    real = real_elf()
    clean = tmp_path / "real.elf"  # QEMU's damaged section headers make zgetdump refuse it
    core = ElfCore(str(real))
    try:
        convert_to_elf(core, clean)
    finally:
        core.close()
    return ElfCore(str(clean))


# -- tests ------------------------------------------------------------------------------------
def test_zgetdump_runs():
    """zgetdump -v works; its -f converts to "elf" and "s390" only (no s390_ext output)."""
    assert zgetdump_version() >= (2, 0)
    usage = zgetdump("-h").stdout.decode()
    fmt = re.search(r"-f, --fmt .*", usage)
    assert fmt and '"elf"' in fmt.group() and '"s390"' in fmt.group()
    assert "s390_ext" not in fmt.group()


@pytest.mark.parametrize("kind", ["synthetic", "real"])
def test_zgetdump_elf_to_s390(kind, synthetic, tmp_path):
    """(a) zgetdump -f s390 of our clean ELF: what changed, and that we read all of it."""
    src = source(kind, synthetic, tmp_path)
    elf = tmp_path / "clean.elf"
    convert_to_elf(src, elf)
    theirs = tmp_path / "zgetdump.s390"
    proc = zgetdump(elf, "-f", "s390", out=theirs)
    assert proc.returncode == 0, proc.stderr.decode()
    core = ElfCore(str(elf))
    dump = open_dump(str(theirs))
    assert isinstance(dump, S390Dump) and dump.format == "s390"
    assert list(dump.ranges) == [MemoryRange(0, core.ranges[-1].end)]

    # where zgetdump may write: save areas, and the vector save areas with VXRS notes
    want = dump_cpu_registers(core)
    groups = group_cpu_notes(core.notes)
    allowed: list[tuple[int, int]] = []
    vx_expected: dict[int, bytes] = {}
    for cpu, group in zip(want, groups, strict=True):
        assert cpu.prefix is not None
        allowed.append((cpu.prefix + SA_START, cpu.prefix + SA_END))
        low = next((n.desc for n in group if n.type == NT_S390_VXRS_LOW), None)
        high = next((n.desc for n in group if n.type == NT_S390_VXRS_HIGH), None)
        (vx,) = struct.unpack(">Q", core.read(cpu.prefix + LC_VX_SA, 8))
        if low is not None and high is not None and vx and not vx % 1024:
            fprs = cpu.fprs or (0,) * 16
            vx_expected[vx] = (
                b"".join(struct.pack(">Q", fprs[i]) + low[8 * i : 8 * i + 8] for i in range(16))
                + high
            )
            allowed.append((vx, vx + VX_SA_SIZE))
    if kind == "synthetic":
        assert len(vx_expected) == 2
    changed = set()
    for addr in pages(core):
        a, b = core.read(addr, PAGE), dump.read(addr, PAGE)
        if a == b:
            continue
        changed.add(addr)
        for i in (i for i in range(PAGE) if a[i] != b[i]):
            assert any(s <= addr + i < e for s, e in allowed), f"0x{addr + i:x} changed"
    assert changed  # the registers went somewhere
    assert changed <= {s & ~(PAGE - 1) for s, _ in allowed}
    for vx, data in vx_expected.items():
        assert dump.read(vx, VX_SA_SIZE) == data

    # registers from the lowcore save areas equal the notes, but for the TOD programmable
    # register, which zgetdump leaves as memory had it
    got = dump.cpu_registers
    assert got is not None and len(got) == len(want)
    for w, g in zip(want, got, strict=True):
        assert g.source == "lowcore save area"
        assert (g.psw, g.gprs, g.acrs, g.crs, g.prefix) == (w.psw, w.gprs, w.acrs, w.crs, w.prefix)
        assert (g.timer, g.todcmp, g.fpc, g.fprs) == (w.timer, w.todcmp, w.fpc, w.fprs)
        assert w.prefix is not None
        (mem_todpreg,) = struct.unpack(">I", core.read(w.prefix + SA_TODPREG, 4))
        assert g.todpreg == mem_todpreg
    if kind == "synthetic":
        assert any(w.todpreg != g.todpreg for w, g in zip(want, got, strict=True))

    # header and facts: what an ELF has no attribute for is 0
    facts = dump.format_facts()
    assert facts["version"] == 5 and facts["dump_level"] == 4
    assert facts["dump_start"] is None and facts["dump_end"] is None
    assert facts["cpus_dumped"] == len(want) and facts["cpus_real"] == 0
    assert facts["lowcores"] == [f"0x{c.prefix:x}" for c in want]

    # our writer, from the same ELF: the same memory (but the TOD programmable register,
    # which we store as the stand-alone dumper does) and the same header layout
    ours = tmp_path / "ours.s390"
    write_s390(core, ours, extended=False, when=WHEN)
    mine = S390Dump(str(ours))
    todpregs = {c.prefix + SA_TODPREG for c in want if c.prefix is not None}
    for addr in pages(dump):
        a, b = dump.read(addr, PAGE), mine.read(addr, PAGE)
        if a != b:
            for i in (i for i in range(PAGE) if a[i] != b[i]):
                assert (addr + i) & ~3 in todpregs, f"0x{addr + i:x} differs"
    h1, h2 = dump.header, mine.header
    for field in ("magic", "version", "hdr_size", "dump_level", "page_size", "mem_size"):
        assert getattr(h1, field) == getattr(h2, field), field
    for field in ("mem_start", "mem_end", "num_pages", "arch", "cpu_cnt", "lc_vec"):
        assert getattr(h1, field) == getattr(h2, field), field
    for d in (dump, mine, core):
        d.close()


S390_KINDS = [("s390", False, False), ("s390_ext", True, False), ("s390_ext-zlib", True, True)]


@pytest.mark.parametrize(
    ("kind", "extended", "compress"), S390_KINDS, ids=[k[0] for k in S390_KINDS]
)
def test_zgetdump_reads_our_s390(kind, extended, compress, synthetic, tmp_path):
    """(b) our writer's s390/s390_ext: zgetdump -i agrees with our facts, -f elf with memory."""
    out = tmp_path / kind
    write_s390(synthetic, out, extended=extended, compress=compress, when=WHEN)
    ours = S390Dump(str(out))
    if compress and zgetdump_version() < (2, 30):  # zlib entries came with s390-tools 2.30
        proc = zgetdump("-i", out)
        assert proc.returncode != 0 and b"Dump is not complete" in proc.stderr
        return
    check_s390_card(info_card(out), ours)
    back = tmp_path / "back.elf"
    proc = zgetdump(out, "-f", "elf", out=back)
    assert proc.returncode == 0, proc.stderr.decode()
    check_same_dump(ours, ElfCore(str(back)))
    assert parse_header(out.read_bytes()[:PAGE], str(out)).mem_end == ours.header.mem_size


@pytest.mark.parametrize("sample", [oracles.QEMU_FILES_SAMPLE, "bpo12-6.12-busy"])
def test_zgetdump_reads_our_s390_of_a_real_dump(tmp_path, sample):
    """Our s390 dump of QEMU's ELF core: 6.1 (kernel image identity-mapped) and 6.12 (high)."""
    real = real_elf(sample)
    out = tmp_path / "real.s390"
    core = ElfCore(str(real))
    try:
        write_s390(core, out, extended=False, when=WHEN)
    finally:
        core.close()
    ours = S390Dump(str(out))
    card = info_card(out)
    check_s390_card(card, ours)
    # zgetdump reads init_uts_ns at its VMCOREINFO address as if it were absolute: right
    # for the identity-mapped 6.1 kernel, out of the dump for 6.12's high kernel image
    found = vmcoreinfo_from_memory(ours).info
    assert found is not None
    uts = int(found.get("SYMBOL(init_uts_ns)") or "0", 16)
    if uts + 1024 <= ours.header.mem_size:
        assert card["UTS kernel release"] == found.get("OSRELEASE")
    else:
        assert "UTS kernel release" not in card
    back = tmp_path / "back.elf"
    proc = zgetdump(out, "-f", "elf", out=back)
    assert proc.returncode == 0, proc.stderr.decode()
    check_same_dump(ours, ElfCore(str(back)))


def check_s390_card(card: dict[str, Any], dump: S390Dump) -> None:
    facts = dump.format_facts()
    assert card["Dump format"] == dump.format
    assert card["Version"] == str(facts["version"])
    assert card.get("Dump created") == card_time(facts["dump_start"])
    assert card.get("Dump ended") == card_time(facts["dump_end"])
    assert card["System arch"] == "s390x (64 bit)"
    assert card["CPU count (online)"] == str(facts["cpus_dumped"])
    assert card["CPU count (real)"] == str(facts["cpus_real"])
    assert card["Dump memory range"] == f"{facts['memory_size'] // MIB} MB"
    assert card["Real memory range"] == f"{facts['memory_size_real'] // MIB} MB"
    assert ("Dump CPU ID" in card) == (facts["cpu_id"] != "0x0")
    # zgetdump reads the gaps between s390_ext segments as zeros: one range from 0
    assert card["map"] == [(0, facts["memory_size"] - 1)]
    if dump.extended:
        dumped = sum(s.length for s in dump.segments)
        assert card["Dump file size"] == f"{dumped // MIB} MB"


def check_same_dump(ours: Any, elf: ElfCore) -> None:
    """zgetdump's ELF holds the memory we read, and our registers in its notes."""
    assert list(elf.ranges) == list(ours.ranges)  # s390_ext gaps: PT_LOADs with no file data
    for addr in pages(ours):
        assert elf.read(addr, PAGE) == ours.read(addr, PAGE), f"page 0x{addr:x} differs"
    theirs = dump_cpu_registers(elf)
    mine = dump_cpu_registers(ours)
    assert len(theirs) == len(mine) > 0
    for t, m in zip(theirs, mine, strict=True):
        assert (t.psw, t.gprs, t.acrs, t.crs, t.prefix) == (m.psw, m.gprs, m.acrs, m.crs, m.prefix)
        assert (t.timer, t.todcmp, t.todpreg, t.fpc, t.fprs) == (
            m.timer,
            m.todcmp,
            m.todpreg,
            m.fpc,
            m.fprs,
        )
    elf.close()


def kdump_files(tmp_path: Path, synthetic: ElfCore, writer: str) -> list[Path]:
    """Our writer's kdump files (plain and flattened) of the synthetic dump ("ours") or of
    QEMU's ELF core of the bundled 6.1 sample ("ours-real"), or QEMU's own ("qemu": only
    after a QEMU boot, skipped without, in CI too)."""
    if writer == "qemu":
        kinds = ("vmcore.kdump-zlib", "vmcore.kdump-zlib.flat")
        return [oracles.qemu_file(name, kind) for name in oracles.qemu_runs() for kind in kinds]
    plain, flat = tmp_path / "ours.kdump", tmp_path / "ours.kdump-flat"
    if writer == "ours":
        write_kdump(synthetic, plain)
        write_kdump(synthetic, flat, flattened=True)
        return [plain, flat]
    core = ElfCore(str(real_elf()))
    release = oracles.sample_release(oracles.QEMU_FILES_SAMPLE)
    try:
        write_kdump(core, plain, release=release)
        write_kdump(core, flat, flattened=True, release=release)
    finally:
        core.close()
    return [plain, flat]


@pytest.mark.parametrize("writer", ["ours", "ours-real", "qemu"])
def test_zgetdump_info_on_kdump(synthetic, tmp_path, writer):
    """(c) zgetdump -i on our kdump writer's files (of the synthetic dump and of QEMU's ELF
    core of a real guest) and on QEMU's own: the same facts as ours."""
    for path in kdump_files(tmp_path, synthetic, writer):
        dump = KdumpFile(str(path))
        facts = dump.format_facts()
        card = info_card(path)
        assert card["Dump format"] == ("kdump_flat" if facts["flattened"] else "kdump"), path
        assert card["Version"] == str(facts["header_version"])
        assert card["UTS kernel release"] == facts["utsname_release"]
        assert card["System arch"] == "s390x (64 bit)"
        assert card["CPU count (real)"] == str(facts["nr_cpus"])
        assert card["Dump memory range"] == f"{facts['max_mapnr'] * PAGE // MIB} MB"
        assert card["map"] == [(0, facts["max_mapnr"] * PAGE - 1)]
        ts = facts["timestamp"]
        when = datetime.datetime.fromtimestamp(int(ts), datetime.UTC).isoformat() if ts else None
        assert card.get("Dump created") == card_time(when)
        assert sum(r.size for r in dump.ranges) == facts["dumped_pages"] * PAGE
        proc = zgetdump(path, "-f", "elf", out=tmp_path / "no.elf")
        assert proc.returncode != 0 and b"Copying not possible" in proc.stderr
        dump.close()
