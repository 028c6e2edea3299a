"""Symbols from a dump's own kallsyms: cold decode time, and load time from the symbol cache.

Goal (issue 12/16): decode <= 0.3 s for ~95,000 symbols, then milliseconds from the cache
(cache_dir("symbols"), keyed by build-id). Also System.map parse vs its cached table.

    python benchmarks/bench_kallsyms.py [SAMPLE]     (default: samples/real/bpo12-6.12-busy)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def best(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """(first run, best of ``runs``) in seconds."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times[0], min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sample", nargs="?", default=str(ROOT / "samples/real/bpo12-6.12-busy"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from explorer.kernel import Kernel, Options
    from parsers.dumps import open_dump
    from parsers.kallsyms import kallsyms_tables, read_kallsyms
    from parsers.symbols import load_system_map
    from parsers.symcache import load_table, save_table

    sample = Path(args.sample)
    kernel = Kernel(open_dump(str(sample / "vmcore.zst")), Options())
    tables = kallsyms_tables(kernel.vmcoreinfo)
    if tables is None:
        print(f"{sample.name}: VMCOREINFO has no KALLSYMS")
        return 1
    read = kernel._identity_read
    table = read_kallsyms(read, tables)
    first, fastest = best(lambda: read_kallsyms(read, tables), args.runs)
    print(f"{sample.name} ({kernel.release}): {len(table):,} kallsyms symbols")
    print(f"  decode from the dump:   first {first * 1000:7.1f} ms, best {fastest * 1000:7.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kallsyms.syms"
        save_table(table, path)
        first, fastest = best(lambda: load_table(path), args.runs)
        size = path.stat().st_size
        print(
            f"  load from the cache:    first {first * 1000:7.1f} ms, best {fastest * 1000:7.1f} ms"
            f"  ({size / 1e6:.1f} MB file)"
        )
        smap = sample / "System.map.zst"
        if smap.is_file():
            mapped = load_system_map(smap)
            first, fastest = best(lambda: load_system_map(smap), max(1, args.runs // 2))
            print(
                f"  System.map ({len(mapped):,}): parse first {first * 1000:7.1f} ms, "
                f"best {fastest * 1000:7.1f} ms"
            )
            save_table(mapped, path)
            first, fastest = best(lambda: load_table(path), args.runs)
            print(
                f"  System.map from cache:  first {first * 1000:7.1f} ms, "
                f"best {fastest * 1000:7.1f} ms"
            )
    print(f"  load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
