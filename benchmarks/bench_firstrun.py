"""What a first run (empty cache) spends on a -dbg vmlinux, step by step, and what the caches
then cost to load.

For each -dbg vmlinux under cache_dir("real", "kernels"): the symbol table from ``.symtab``
(:func:`parsers.symbols.table.load_vmlinux_symbols`), the type profile from DWARF
(:func:`parsers.types.profile.profile_from_dwarf`, no cache) and, with ``--general``, the same
profile by pyelftools' general reader (the fallback, and the way it was made before); then
loading the compact symbol cache and the JSON profile cache. Fastest of ``--runs``, wall and
CPU (user+sys) seconds of this process.

With ``--samples``, first (empty cache) and second runs of ``backchain check`` on each
bundled sample, each its own process.

    python benchmarks/bench_firstrun.py [--runs 5] [--general] [--samples]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def best(runs: int, step: Callable[[], object]) -> tuple[float, float]:
    """Fastest wall and CPU seconds of ``runs`` calls of ``step``."""
    wall = cpu = float("inf")
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        step()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu


def measure(vmlinux: Path, runs: int, general: bool) -> list[tuple[str, tuple[float, float]]]:
    """The steps' times on one vmlinux."""
    from elftools.elf.elffile import ELFFile

    from parsers.elf.sections import ElfSections
    from parsers.symbols.cache import load_table, save_table
    from parsers.symbols.table import load_vmlinux_symbols
    from parsers.types import profile as T

    table = load_vmlinux_symbols(vmlinux)
    profile = T.profile_from_dwarf(vmlinux, use_cache=False)
    rows = [
        (f"symtab ({len(table)} symbols)", best(runs, partial(load_vmlinux_symbols, vmlinux))),
        (
            f"DWARF profile ({len(profile.offsets)} offsets)",
            best(runs, partial(T.profile_from_dwarf, vmlinux, use_cache=False)),
        ),
    ]
    if general:

        def by_elftools() -> None:
            with ElfSections(vmlinux) as elf:
                build_id, release = elf.build_id(), T._banner_release(elf)
            with open(vmlinux, "rb") as stream:
                T._profile_from_elftools(ELFFile(stream), "", build_id, release)

        rows.append(("DWARF profile, general reader", best(max(1, runs // 2), by_elftools)))
    try:  # the cache key: a digest of the bytes the table is read from (not the build-id)
        from explorer.sources.symcache import file_symbols_key

        key = partial(file_symbols_key, str(vmlinux), "vmlinux")
        rows.append(("symbol cache key (.symtab digest)", best(runs, key)))
    except ImportError:  # an older backchain, measured for comparison: keyed by build-id
        pass
    with tempfile.TemporaryDirectory() as tmp:
        syms, prof = Path(tmp) / "t.syms", Path(tmp) / "p.json"
        save_table(table, syms)
        profile.save(prof)
        rows.append(
            (
                f"symbol cache load ({syms.stat().st_size >> 10} KiB)",
                best(runs, partial(load_table, syms)),
            )
        )
        rows.append(
            (
                f"profile cache load ({prof.stat().st_size >> 10} KiB)",
                best(runs, partial(T.TypeProfile.load, prof)),
            )
        )
    return rows


def first_runs(runs: int) -> list[tuple[str, float, float]]:
    """``backchain check`` on each bundled sample as its own process: with an empty cache
    (decompressing the dump, decoding kallsyms, keying both by digest) and again with the
    cache it left. Fastest of ``runs``, wall seconds."""
    out = []
    for dump in sorted((ROOT / "samples" / "real").glob("*/vmcore.zst")):
        cold = warm = float("inf")
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                env = {**os.environ, "BACKCHAIN_CACHE": tmp}
                argv = [sys.executable, "-m", "explorer", "check", str(dump)]
                for first in (True, False):
                    t = time.perf_counter()
                    subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=False)
                    took = time.perf_counter() - t
                    cold, warm = (min(cold, took), warm) if first else (cold, min(warm, took))
        out.append((dump.parent.name, cold, warm))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each step (fastest counts)")
    parser.add_argument("--general", action="store_true", help="also time pyelftools' reader")
    parser.add_argument(
        "--samples", action="store_true", help="also time `check` on each bundled sample"
    )
    args = parser.parse_args()
    if args.samples:
        print(f"backchain check, fastest of {args.runs}: empty cache / the cache it left")
        for name, cold, warm in first_runs(args.runs):
            print(f"  {name:24} {cold:7.2f} s  {warm:7.2f} s")
    from parsers.cache import cache_dir

    vmlinuxes = sorted(cache_dir("real", "kernels").glob("*/vmlinux"))
    if not vmlinuxes:
        print("bench_firstrun: SKIPPED, no -dbg vmlinux under", cache_dir("real", "kernels"))
        return 0
    print(f"fastest of {args.runs} runs; wall / CPU seconds (on {os.cpu_count()} CPUs)")
    for vmlinux in vmlinuxes:
        rows = measure(vmlinux, args.runs, args.general)
        print(f"\n{vmlinux.parent.name} ({vmlinux.stat().st_size >> 20} MiB)")
        for label, (wall, cpu) in rows:
            print(f"  {label:38} {wall:7.3f} s  {cpu:7.3f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
