"""Random page reads from compressed dumps, and ``convert`` throughput.

Builds a kdump-compressed (zlib) file, its flattened form and an s390_ext file from the real
6.12 ELF dump when the real-sample generator's work folder (cache_dir("real")) holds one,
else from the synthetic 2-CPU dump, then
prints random 4 KiB page reads per second (fresh reader, so mostly cache misses) and the
MiB/s of converting each back to ELF. Goal: >= 20,000 random kdump page reads per second.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from parsers.cache import cache_dir
from parsers.dumps.dumpfile import open_dump
from parsers.dumps.elfcore import ElfCore
from parsers.write.convert import convert_to_elf, write_kdump, write_s390

REAL = cache_dir("real", "bpo12-6.12-busy", "vmcore.elf")
PAGE = 4096
READS = 20_000


def source(tmp: Path) -> ElfCore:
    if REAL.is_file():
        return ElfCore(str(REAL))
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import two_cpu_dump

    return ElfCore(str(two_cpu_dump(tmp)))


def random_reads(path: Path, pages: list[int]) -> float:
    dump = open_dump(str(path))
    rng = random.Random(8)
    picks = [rng.choice(pages) for _ in range(READS)]
    t0 = time.perf_counter()
    for a in picks:
        dump.read(a, PAGE)
    dt = time.perf_counter() - t0
    dump.close()
    return READS / dt


def convert_rate(path: Path, out: Path) -> float:
    dump = open_dump(str(path))
    total = sum(r.size for r in dump.ranges)
    t0 = time.perf_counter()
    convert_to_elf(dump, out)
    dt = time.perf_counter() - t0
    dump.close()
    return total / dt / (1 << 20)


def main() -> int:
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        src = source(tmp)
        size = sum(r.size for r in src.ranges)
        print(f"source: {src.path} ({size >> 20} MiB in {len(src.ranges)} range(s))")
        pages = [a for r in src.ranges for a in range(r.start, r.end - PAGE + 1, PAGE)]
        files = {
            "kdump zlib": tmp / "vmcore.kdump",
            "kdump zlib flattened": tmp / "vmcore.flat",
            "s390_ext zlib": tmp / "vmcore.s390",
        }
        t0 = time.perf_counter()
        write_kdump(src, files["kdump zlib"])
        write_kdump(src, files["kdump zlib flattened"], flattened=True)
        write_s390(src, files["s390_ext zlib"], extended=True, compress=True)
        print(f"wrote the test files in {time.perf_counter() - t0:.1f} s")
        for label, path in files.items():
            rate = random_reads(path, pages)
            print(f"{label:22} random 4 KiB reads: {rate:10,.0f} pages/s")
        for label, path in files.items():
            rate = convert_rate(path, tmp / "out.elf")
            print(f"{label:22} convert to ELF:     {rate:10,.1f} MiB/s")
        src.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
