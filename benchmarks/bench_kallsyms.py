"""Symbols from a dump's own kallsyms: cold decode time, and load time from the symbol cache.

Goal (issue 12/16): decode <= 0.3 s for ~95,000 symbols, then milliseconds from the cache
(cache_dir("symbols"), keyed by build-id). Also System.map parse vs its cached table, and the
search for the tables by content (parsers/symbols/kallsyms_scan.py: what a dump whose VMCOREINFO has
no KALLSYMS, such as 5.10, needs; measured on every sample, VMCOREINFO's entries ignored).

    python benchmarks/bench_kallsyms.py [SAMPLE]     (default: samples/real/bpo12-6.12-busy)
    python benchmarks/bench_kallsyms.py samples/real/rebuilt-5.10-busy
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
    from explorer.model.kernel import Options
    from explorer.model.opening import kernel_of
    from parsers.dumps.dumpfile import open_dump
    from parsers.symbols.cache import load_table, save_table
    from parsers.symbols.kallsyms import kallsyms_tables, read_kallsyms
    from parsers.symbols.kallsyms_scan import scan_kallsyms
    from parsers.symbols.table import load_system_map

    sample = Path(args.sample)
    kernel = kernel_of(open_dump(str(sample / "vmcore.zst")), Options())
    read = kernel.image.read
    start = kernel.image.image_start()
    found = scan_kallsyms(read, start)
    first, fastest = best(lambda: scan_kallsyms(read, start), args.runs)
    named = kallsyms_tables(kernel.vmcoreinfo)
    tables = named or found.tables
    table = read_kallsyms(read, tables)
    print(f"{sample.name} ({kernel.release}): {len(table):,} kallsyms symbols")
    print(
        f"  find by content:        first {first * 1000:7.1f} ms, best {fastest * 1000:7.1f} ms"
        f"  (token table 0x{found.tables.token_table:x}, {found.layout}; "
        + ("VMCOREINFO names the same tables)" if named == found.tables else "no KALLSYMS)")
    )
    first, fastest = best(lambda: read_kallsyms(read, tables), args.runs)
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
