"""Every dump format s390x users have: compressed kdump (plain, flattened, split), s390, s390_ext.

Files are written from the synthetic 2-CPU ELF dump with the writers of parsers.write.convert and
read back page for page. Real memory: QEMU's own ELF core of the bundled ``deb12-6.1-idle``
sample (its vmcore.zst) is written as kdump (every compression, plain and flattened) and read
by libkdumpfile and, flattened, reassembled by ``makedumpfile -R``: the pages QEMU wrote, in CI
too. QEMU's own kdump files are compared with their ELF twin when the real-sample generator's
work folder (``cache_dir("real")``) holds them: only a full-system QEMU boot makes them
(``generate_real.py --qemu-files``), so CI skips those (README, "Tests and CI").
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from explorer.cli import main
from parsers.cache import cache_dir
from parsers.dumps import kdump as kdump_mod
from parsers.dumps.dumpfile import open_dump
from parsers.dumps.elfcore import ElfCore
from parsers.dumps.kdump import KdumpFile
from parsers.dumps.s390dump import S390Dump, datetime_to_tod, tod_to_datetime
from parsers.errors import DumpError, FormatError, TruncatedError, UnmappedError
from parsers.write.convert import convert_to_elf, dump_cpu_registers, write_kdump, write_s390
from tests.helpers import oracles
from tests.helpers.dumps import two_cpu_dump

PAGE = 4096
#: samples/generate_real.py leaves <name>/vmcore.elf and vmcore.kdump-zlib[.flat] here.
REAL = cache_dir("real")


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> ElfCore:
    path = two_cpu_dump(tmp_path_factory.mktemp("formats"), vmcoreinfo_note=True)
    core = ElfCore(str(path))
    yield core
    core.close()


def pages(dump) -> list[int]:
    return [a for r in dump.ranges for a in range(r.start, r.end, PAGE)]


def assert_same_memory(a, b, skip: set[int] | None = None) -> None:
    for addr in pages(a):
        if skip and addr in skip:
            continue
        assert a.read(addr, PAGE) == b.read(addr, PAGE), f"page 0x{addr:x} differs"


def save_area_pages(dump) -> set[int]:
    return {c.prefix + 0x1000 for c in dump_cpu_registers(dump)}


# -- compressed kdump ---------------------------------------------------------------------------
@pytest.mark.parametrize("flattened", [False, True])
@pytest.mark.parametrize("compression", ["zlib", "zstd", "lzo", "snappy", "none"])
def test_kdump_round_trip(src, tmp_path, compression, flattened):
    if compression == "lzo":
        oracles.python_lzo()
    out = tmp_path / "vmcore.kdump"
    write_kdump(src, out, compression=compression, flattened=flattened)
    dump = open_dump(str(out))
    assert isinstance(dump, KdumpFile)
    assert dump.format == ("kdump-flat" if flattened else "kdump")
    assert list(dump.ranges) == list(src.ranges)
    assert_same_memory(src, dump)
    assert [(n.name, n.type, n.desc) for n in dump.notes] == [
        (n.name, n.type, n.desc) for n in src.notes
    ]
    assert dump.vmcoreinfo_text == src.vmcoreinfo_text
    facts = dump.format_facts()
    assert facts["header_version"] == 6
    assert facts["compression"] == [compression]
    assert facts["utsname_release"] == "6.1.0-synthetic-s390x"
    assert facts["dumped_pages"] == len(pages(src))
    # reads across page boundaries and of single bytes
    r = next(r for r in src.ranges if r.size > 2 * PAGE)
    assert dump.read(r.start + 100, 2 * PAGE) == src.read(r.start + 100, 2 * PAGE)
    assert dump.read(r.start + 5, 1) == src.read(r.start + 5, 1)
    with pytest.raises(UnmappedError, match="not in the dump"):
        dump.read(src.ranges[-1].end + 16 * PAGE, 8)
    dump.close()


def test_kdump_excluded_pages(src, tmp_path):
    victim = pages(src)[3]
    out = tmp_path / "excl.kdump"
    write_kdump(src, out, dump_level=31, exclude=lambda pfn: pfn == victim // PAGE)
    dump = KdumpFile(str(out))
    with pytest.raises(UnmappedError) as err:
        dump.read(victim + 8, 8)
    assert err.value.message == (
        f"physical address 0x{victim + 8:x} is excluded by makedumpfile (dump level 31)"
    )
    with pytest.raises(UnmappedError, match="excluded by makedumpfile"):
        dump.read(victim - 8, 16)  # a read running into the excluded page
    assert dump.format_facts()["excluded_pages"] == 1
    assert_same_memory(dump, src)


def test_kdump_split(src, tmp_path):
    outs = [str(tmp_path / f"split.{i}") for i in range(3)]
    write_kdump(src, outs, flattened=False)
    dump = open_dump(list(reversed(outs)))
    assert list(dump.ranges) == list(src.ranges)
    assert_same_memory(src, dump)
    facts = dump.format_facts()
    assert facts["split"] and len(facts["split_parts"]) == 3
    part = KdumpFile(outs[0])
    last = pages(src)[-1]
    with pytest.raises(UnmappedError, match="part of the split dump that was not given"):
        part.read(last, 8)
    with pytest.raises(FormatError, match="not the non-overlapping parts"):
        KdumpFile([outs[0], outs[0]])


def test_kdump_real_header_offsets():
    """Header offsets computed from QEMU's kdump structs (include/sysemu/dump.h), as checked
    against QEMU 7.2 output."""
    assert kdump_mod._HEADER.size == 0x1D0
    assert struct.calcsize(">8si390s6x") == 0x198  # timestamp
    assert kdump_mod._SUB_HEADER.size == 0x68


def _layout(path: Path) -> tuple[int, int]:
    """(block size, offset of the page descriptors) of a plain kdump file."""
    head = path.read_bytes()[:0x1D0]
    bs, sub, bitmap = struct.unpack_from(">iiI", head, 0x1AC)
    return bs, (1 + sub + bitmap) * bs


def _patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_kdump_corrupt(src, tmp_path):
    good = tmp_path / "good.kdump"
    write_kdump(src, good)
    blob = good.read_bytes()
    bs, desc = _layout(good)

    def variant(name: str, data: bytes) -> Path:
        p = tmp_path / name
        p.write_bytes(data)
        return p

    with pytest.raises(TruncatedError, match="header is truncated"):
        KdumpFile(str(variant("short", blob[:100])))
    with pytest.raises(TruncatedError, match=r"descriptors .* extend past the end"):
        KdumpFile(str(variant("cut", blob[: desc + 10])))
    bad = bytearray(blob)
    struct.pack_into(">i", bad, 8, 99)
    with pytest.raises(FormatError, match="unsupported kdump header version 99"):
        KdumpFile(str(variant("ver", bytes(bad))))
    bad = bytearray(blob)
    struct.pack_into(">i", bad, 0x1AC, 3000)
    with pytest.raises(FormatError, match="implausible kdump block size"):
        KdumpFile(str(variant("bs", bytes(bad))))
    bad = bytearray(blob)
    struct.pack_into(">Q", bad, bs + 0x60, 1 << 40)  # max_mapnr_64 beyond the bitmaps
    with pytest.raises(FormatError, match=r"bitmaps .* too small"):
        KdumpFile(str(variant("mapnr", bytes(bad))))

    # a descriptor pointing past the end of the file
    bad = bytearray(blob)
    struct.pack_into(">qI", bad, desc, len(blob) + 4096, 100)
    dump = KdumpFile(str(variant("desc", bytes(bad))))
    with pytest.raises(TruncatedError, match="past the end of the file"):
        dump.read(src.ranges[0].start, 8)
    # an absurd size
    bad = bytearray(blob)
    struct.pack_into(">qI", bad, desc, 4096, 1 << 30)
    with pytest.raises(FormatError, match="damaged page descriptor"):
        KdumpFile(str(variant("size", bytes(bad)))).read(0, 8)
    # a decompression bomb: a 1 MiB zlib stream where a page belongs
    bomb = zlib.compress(b"\0" * (1 << 20), 9)
    assert len(bomb) < PAGE
    bad = bytearray(blob) + bomb
    struct.pack_into(">qII", bad, desc, len(blob), len(bomb), 1)
    with pytest.raises(FormatError, match="decompresses to more than 4096"):
        KdumpFile(str(variant("bomb", bytes(bad)))).read(0, 8)
    # garbage instead of zlib data
    bad = bytearray(blob)
    off = struct.unpack_from(">q", bad, desc)[0]
    bad[off : off + 8] = b"\xff" * 8
    with pytest.raises(FormatError, match="does not decompress"):
        KdumpFile(str(variant("garbage", bytes(bad)))).read(0, 8)


def test_kdump_missing_codec(src, tmp_path, monkeypatch):
    out = tmp_path / "z.kdump"
    write_kdump(src, out, compression="zstd")

    def missing():
        raise ImportError("no module")

    monkeypatch.setitem(
        kdump_mod._DECODER_FACTORIES, kdump_mod.DUMP_DH_COMPRESSED_ZSTD, (missing, "zstandard")
    )
    with pytest.raises(DumpError, match="install the Python package 'zstandard'"):
        KdumpFile(str(out)).read(0, 8)


def test_flattened_corrupt(src, tmp_path):
    good = tmp_path / "good.flat"
    write_kdump(src, good, flattened=True)
    blob = good.read_bytes()
    with pytest.raises(TruncatedError, match="runs past the end of the file"):
        KdumpFile(str(_write(tmp_path / "cut.flat", blob[: len(blob) // 2])))
    bad = bytearray(blob)
    struct.pack_into(">qq", bad, 4096, 0, -5)
    with pytest.raises(FormatError, match="negative offset or size"):
        KdumpFile(str(_write(tmp_path / "neg.flat", bytes(bad))))
    # records cut at a record boundary, no end marker: opens, reports incomplete
    dump = KdumpFile(str(_write(tmp_path / "noend.flat", blob[:-16])))
    assert dump.format_facts()["flat_complete"] is False


def test_flattened_overlapping_records(src, tmp_path):
    """A later record overwrites an earlier one, as ``makedumpfile -R`` would."""
    plain = tmp_path / "p.kdump"
    write_kdump(src, plain)
    data = plain.read_bytes()
    half = len(data) // 2
    out = bytearray(b"makedumpfile".ljust(16, b"\0") + struct.pack(">qq", 1, 1)).ljust(4096, b"\0")
    for off, chunk in ((0, b"\xee" * len(data)), (0, data[:half]), (half, data[half:])):
        out += struct.pack(">qq", off, len(chunk)) + chunk
    out += struct.pack(">qq", -1, -1)
    dump = KdumpFile(str(_write(tmp_path / "o.flat", bytes(out))))
    assert_same_memory(src, dump)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# -- s390 stand-alone formats -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("extended", "compress", "block_size"),
    [(False, False, 4096), (True, False, 4096), (True, True, 4096), (True, True, 512)],
)
def test_s390_round_trip(src, tmp_path, extended, compress, block_size):
    out = tmp_path / "dump.s390"
    write_s390(src, out, extended=extended, compress=compress, block_size=block_size)
    dump = open_dump(str(out))
    assert isinstance(dump, S390Dump)
    assert dump.format == ("s390_ext" if extended else "s390")
    if extended:
        assert list(dump.ranges) == list(src.ranges)
        assert dump.block_size == block_size
    # memory equal, except the save areas now holding the registers (as zgetdump -f s390)
    assert_same_memory(src, dump, skip=save_area_pages(src))
    want = dump_cpu_registers(src)
    got = dump.cpu_registers
    assert got is not None and len(got) == 2
    for w, g in zip(want, got, strict=True):
        assert g.source == "lowcore save area"
        assert (g.psw, g.gprs, g.acrs, g.crs, g.prefix) == (w.psw, w.gprs, w.acrs, w.crs, w.prefix)
    facts = dump.format_facts()
    assert facts["cpus_dumped"] == 2
    assert facts["dump_start"] <= facts["dump_end"]
    if extended and compress:
        assert facts["zlib_entry_size"] == 1 << 20


def test_tod_conversion():
    import datetime

    when = datetime.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=datetime.UTC)
    assert tod_to_datetime(datetime_to_tod(when)) == when
    # zgetdump's tod2timeval constant: 0x8126d60e46000000 - 0x3c26700 * 10**6 * 4096
    assert datetime_to_tod(datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)) == (
        0x8126D60E46000000 - 0x3C26700 * 1000000 * 4096
    )


def test_s390_corrupt(src, tmp_path):
    plain = tmp_path / "p.s390"
    write_s390(src, plain, extended=False)
    blob = plain.read_bytes()
    with pytest.raises(TruncatedError, match="header is truncated"):
        S390Dump(str(_write(tmp_path / "h", blob[:2000])))
    with pytest.raises(TruncatedError, match="truncated"):
        S390Dump(str(_write(tmp_path / "cut", blob[: len(blob) // 2])))
    with pytest.raises(FormatError, match="no end marker"):
        S390Dump(str(_write(tmp_path / "em", blob[:-16] + b"XXXXXXXX" + blob[-8:])))
    bad = bytearray(blob)
    struct.pack_into(">I", bad, 0x48, 1)
    with pytest.raises(FormatError, match="31-bit"):
        S390Dump(str(_write(tmp_path / "arch", bytes(bad))))

    ext = tmp_path / "e.s390"
    write_s390(src, ext, extended=True, compress=True)
    blob = ext.read_bytes()
    with pytest.raises(TruncatedError):
        S390Dump(str(_write(tmp_path / "ecut", blob[:-20000])))
    bad = bytearray(blob)
    struct.pack_into(">Q", bad, 0x1000 + 8, 1 << 50)  # first segment length absurd
    with pytest.raises(FormatError, match="outside memory"):
        S390Dump(str(_write(tmp_path / "elen", bytes(bad))))
    bad = bytearray(blob)
    bad[0x2000 + 10 : 0x2000 + 40] = b"\x55" * 30  # inside the first zlib entry
    dump = S390Dump(str(_write(tmp_path / "ezlib", bytes(bad))))
    with pytest.raises(FormatError, match=r"does not decompress|holds"):
        dump.read(0, 8)


# -- convert ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["kdump", "kdump-flat", "s390_ext"])
def test_convert_cli_round_trip(src, tmp_path, capsys, kind):
    mid = tmp_path / f"mid.{kind}"
    if kind == "s390_ext":
        write_s390(src, mid)
    else:
        write_kdump(src, mid, flattened=kind == "kdump-flat")
    out = tmp_path / "out.elf"
    assert main(["convert", str(mid), "-o", str(out)]) == 0
    elf = ElfCore(str(out))
    assert list(elf.ranges) == list(src.ranges)
    skip = save_area_pages(src) if kind == "s390_ext" else None
    assert_same_memory(src, elf, skip=skip)
    mid_dump = open_dump(str(mid))
    assert_same_memory(mid_dump, elf)
    regs = [(c.psw, c.gprs, c.prefix) for c in dump_cpu_registers(elf)]
    assert regs == [(c.psw, c.gprs, c.prefix) for c in dump_cpu_registers(src)]
    # refuses to overwrite; --force does
    capsys.readouterr()
    assert main(["convert", str(mid), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err
    assert main(["convert", str(mid), "-o", str(out), "--force"]) == 0


def test_convert_bad_input(tmp_path, capsys):
    bad = _write(tmp_path / "junk", b"KDUMP   " + b"\0" * 50)
    assert main(["convert", str(bad), "-o", str(tmp_path / "x.elf")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated" in err
    assert not (tmp_path / "x.elf").exists()


def test_convert_progress_and_streaming(src, tmp_path):
    seen: list[tuple[int, int]] = []
    convert_to_elf(src, tmp_path / "p.elf", progress=lambda d, t: seen.append((d, t)))
    total = sum(r.size for r in src.ranges)
    assert seen[-1] == (total, total)
    assert not list(tmp_path.glob("*.part"))


# -- QEMU's own kdump files (a QEMU boot's; skipped without them, in CI too) -------------------
QEMU_RUNS = oracles.qemu_runs()


@pytest.mark.parametrize("kdump", ["vmcore.kdump-zlib", "vmcore.kdump-zlib.flat"])
@pytest.mark.parametrize("name", QEMU_RUNS)
def test_real_kdump_equals_elf(name, kdump):
    path = oracles.qemu_file(name, kdump)
    elf = ElfCore(str(oracles.qemu_file(name, "vmcore.elf")))
    dump = KdumpFile(str(path))
    assert list(dump.ranges) == list(elf.ranges)
    assert_same_memory(elf, dump)
    assert [(n.name, n.type, n.desc) for n in dump.notes] == [
        (n.name, n.type, n.desc) for n in elf.notes
    ]
    facts = dump.format_facts()
    assert facts["header_version"] == 6 and facts["compression"] == ["zlib"]


# -- an independent reader: libkdumpfile (Debian's python3-libkdumpfile) -----------------------
_LIBKDUMPFILE = """
import hashlib, sys, kdumpfile
ctx = kdumpfile.kdumpfile(sys.argv[1])
ctx.attr["arch.name"] = "s390x"
for addr in map(int, sys.argv[2:]):
    data = bytes(ctx.read(kdumpfile.KDUMP_MACHPHYSADDR, addr, 4096))
    print(addr, hashlib.sha256(data).hexdigest())
"""


@pytest.mark.parametrize("kind", ["kdump-zlib", "kdump-zstd", "s390"])
def test_libkdumpfile_reads_the_same_pages(src, tmp_path, kind):
    """Cross-check with libkdumpfile where it is installed (skipped elsewhere)."""
    import hashlib
    import subprocess

    python = oracles.libkdumpfile_python()
    out = tmp_path / kind
    if kind.startswith("kdump"):
        write_kdump(src, str(out), compression=kind.split("-")[1])
    else:
        write_s390(src, str(out), extended=False)
    ours = open_dump(str(out))
    addrs = pages(ours)
    proc = subprocess.run(
        [python, "-c", _LIBKDUMPFILE, str(out), *map(str, addrs)],
        capture_output=True,
        text=True,
        check=True,
    )
    theirs = dict(line.split() for line in proc.stdout.splitlines())
    assert len(theirs) == len(addrs) > 10
    for addr in addrs:
        assert hashlib.sha256(ours.read(addr, PAGE)).hexdigest() == theirs[str(addr)]


@pytest.mark.parametrize("name", QEMU_RUNS)
def test_libkdumpfile_reads_qemus_real_kdump_files(name):
    """QEMU's own kdump-zlib files (reassembled by makedumpfile -R) as libkdumpfile reads
    them: the same pages as ours (512 pages spread over all memory, and the lowcore)."""
    import hashlib

    #: libkdumpfile 0.5.1 refuses the flattened form ("Unknown file format"): the plain one.
    path = oracles.qemu_file(name, "vmcore.kdump-zlib")
    oracles.libkdumpfile_python()
    ours = KdumpFile(str(path))
    addrs = spread_pages(ours)
    theirs = libkdumpfile_pages(path, addrs)
    assert len(theirs) == len(addrs)
    for addr in addrs:
        assert hashlib.sha256(ours.read(addr, PAGE)).hexdigest() == theirs[str(addr)], addr


# -- real memory without a QEMU boot: QEMU's ELF core of a bundled sample, our kdump writer ----
REAL_SAMPLE = oracles.QEMU_FILES_SAMPLE


@pytest.fixture(scope="module")
def real_elf() -> ElfCore:
    """QEMU's own ELF core of the bundled 6.1 sample (vmcore.zst, decompressed once)."""
    core = ElfCore(str(oracles.qemu_elf(REAL_SAMPLE)))
    yield core
    core.close()


@pytest.fixture(scope="module")
def real_kdump(real_elf: ElfCore, tmp_path_factory: pytest.TempPathFactory):
    """(compression, flattened) -> our kdump of ``real_elf``, written once per module."""
    folder = tmp_path_factory.mktemp("real-kdump")
    release = oracles.sample_release(REAL_SAMPLE)
    made: dict[tuple[str, bool], Path] = {}

    def get(compression: str, flattened: bool = False) -> Path:
        if (compression, flattened) not in made:
            out = folder / f"{compression}{'.flat' if flattened else ''}"
            write_kdump(
                real_elf, out, compression=compression, flattened=flattened, release=release
            )
            made[compression, flattened] = out
        return made[compression, flattened]

    return get


def spread_pages(dump, count: int = 512) -> list[int]:
    """The lowcore pages and ``count`` pages spread over all memory (a fixed choice)."""
    import random

    return [0, 0x1000, *random.Random(7).sample(pages(dump), count)]


def libkdumpfile_pages(path: Path, addrs: list[int]) -> dict[str, str]:
    """address -> sha256 of its page, as libkdumpfile reads ``path``."""
    import subprocess

    proc = subprocess.run(
        [oracles.libkdumpfile_python(), "-c", _LIBKDUMPFILE, str(path), *map(str, addrs)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(line.split() for line in proc.stdout.splitlines())


def test_makedumpfile_reassembles_our_flattened_kdump_of_a_real_dump(
    real_elf, real_kdump, tmp_path
):
    """Our flattened kdump of QEMU's ELF core: ``makedumpfile -R`` rebuilds from it, byte for
    byte, the plain file our writer makes, and our reader reads every page of the flattened
    file as QEMU wrote it, with its notes."""
    import subprocess

    flat, plain = real_kdump("zlib", flattened=True), real_kdump("zlib")
    rebuilt = tmp_path / "real.R"
    with open(flat, "rb") as fin:
        proc = subprocess.run(
            [oracles.makedumpfile(), "-R", str(rebuilt)], stdin=fin, capture_output=True
        )
    assert proc.returncode == 0, proc.stderr.decode()
    assert rebuilt.read_bytes() == plain.read_bytes()
    dump = KdumpFile(str(flat))
    assert dump.format_facts()["flattened"]
    assert list(dump.ranges) == list(real_elf.ranges)
    assert_same_memory(real_elf, dump)
    assert [(n.name, n.type, n.desc) for n in dump.notes] == [
        (n.name, n.type, n.desc) for n in real_elf.notes
    ]
    dump.close()


@pytest.mark.parametrize("compression", ["zlib", "lzo", "snappy", "zstd"])
def test_libkdumpfile_reads_our_kdump_of_a_real_dump(real_elf, real_kdump, compression):
    """Our kdump of QEMU's ELF core, each compression libkdumpfile 0.5.1 knows: libkdumpfile
    reads the pages QEMU wrote (the lowcore and 512 spread over all memory), and so do we."""
    import hashlib

    if compression == "lzo":
        oracles.python_lzo()
    path = real_kdump(compression)
    ours = KdumpFile(str(path))
    assert ours.format_facts()["compression"] == [compression]
    addrs = spread_pages(real_elf)
    theirs = libkdumpfile_pages(path, addrs)
    assert len(theirs) == len(addrs)
    for addr in addrs:
        want = hashlib.sha256(real_elf.read(addr, PAGE)).hexdigest()
        assert theirs[str(addr)] == want, hex(addr)
        assert hashlib.sha256(ours.read(addr, PAGE)).hexdigest() == want, hex(addr)
    ours.close()


def test_s390_ext_packed_page_cache(src, tmp_path):
    """Entries inflated once are served from LZ4-packed pages, within the byte budget."""
    import random

    out = tmp_path / "packed.s390"
    write_s390(src, str(out), extended=True, compress=True)
    dump = S390Dump(str(out), cache_entries=1, packed_bytes=1 << 16)
    skip = save_area_pages(src)
    addrs = [a for a in pages(src) if a not in skip]
    random.Random(3).shuffle(addrs)
    for addr in addrs * 2:  # the second round hits the packed pages
        assert dump.read(addr, PAGE) == src.read(addr, PAGE), hex(addr)
        assert dump.read(addr + 100, 8) == src.read(addr + 100, 8)
    assert dump._packed and dump._packed_size <= (1 << 16) + max(
        sum(len(p) for p in v) for v in dump._packed.values()
    )


def test_bitmap_runs_equal_a_bit_by_bit_scan():
    import random

    from parsers.dumps.kdump import _bitmap_runs

    rng = random.Random(5)
    for _ in range(50):
        bm = bytes(rng.choice([0, 0xFF, rng.getrandbits(8)]) for _ in range(rng.randrange(1, 40)))
        first = rng.randrange(0, len(bm) * 8)
        last = rng.randrange(first, len(bm) * 8 + 1)
        bits = [b for b in range(first, last) if bm[b >> 3] >> (b & 7) & 1]
        naive: list[tuple[int, int]] = []
        for b in bits:
            if naive and naive[-1][1] == b:
                naive[-1] = (naive[-1][0], b + 1)
            else:
                naive.append((b, b + 1))
        assert _bitmap_runs(bm, first, last) == naive


def test_bitmap_block_scans_equal_a_bit_by_bit_scan():
    """The 64 KiB block shortcuts (a block of zeros, of ones, mixed; a short last block) give
    the runs, rank table and bit count of a plain bit-by-bit scan."""
    import random

    from parsers.dumps.kdump import _RANK_CHUNK_BYTES, _bitmap_runs, _count_bits, _rank_table

    rng = random.Random(7)
    block = 1 << 16
    mixed = bytes(rng.choice([0, 0xFF, rng.getrandbits(8)]) for _ in range(block))
    bm = bytes(block) + b"\xff" * block + mixed + b"\xff" * 1000 + bytes(24) + b"\x0f"
    bits = [b for b in range(len(bm) * 8) if bm[b >> 3] >> (b & 7) & 1]
    for first, last in [(0, len(bm) * 8), (block * 8 - 3, 3 * block * 8 + 5), (17, 18)]:
        naive: list[tuple[int, int]] = []
        for b in bits:
            if first <= b < last:
                if naive and naive[-1][1] == b:
                    naive[-1] = (naive[-1][0], b + 1)
                else:
                    naive.append((b, b + 1))
        assert _bitmap_runs(bm, first, last) == naive
    assert _count_bits(bm) == len(bits)
    rank = _rank_table(bm)
    assert len(rank) == -(-len(bm) // _RANK_CHUNK_BYTES)
    for i in range(0, len(rank), 37):
        assert rank[i] == sum(1 for b in bits if b < i * _RANK_CHUNK_BYTES * 8)


@pytest.mark.parametrize("max_runs", [kdump_mod._MAX_RUNS, 4])
def test_kdump_written_pages_as_runs_or_bitmap(src, tmp_path, monkeypatch, max_runs):
    """A written-pages bitmap of few runs is kept as runs, one of many as a bitmap with a rank
    table: both read every page, name every excluded one and count the same."""
    monkeypatch.setattr(kdump_mod, "_MAX_RUNS", max_runs)
    out = tmp_path / "sieve.kdump"
    write_kdump(src, out, dump_level=31, exclude=lambda pfn: pfn % 3 == 1)
    dump = KdumpFile(str(out))
    part = dump._parts[0]
    assert (part.bitmap2 is None) == (max_runs > 4)
    kept = [a for a in pages(src) if (a // PAGE) % 3 != 1]
    for addr in kept:
        assert dump.read(addr, PAGE) == src.read(addr, PAGE), hex(addr)
    for addr in [a for a in pages(src) if (a // PAGE) % 3 == 1][:20]:
        with pytest.raises(UnmappedError, match="excluded by makedumpfile"):
            dump.read(addr, 8)
    assert dump.format_facts()["dumped_pages"] == len(kept)
    assert sum(r.size for r in dump.ranges) == len(kept) * PAGE
    dump.close()
