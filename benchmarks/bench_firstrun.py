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

With ``--info`` (issue 26), on each bundled sample: the decompression of its ``.zst`` into
an empty cache, each its own process timed around the call (MB/s of output, by wall and by
CPU time of all its threads; goal >= 400 MB/s; the copy's size and what it takes on disk,
its zero pages being holes), with ``--baseline TREE`` beside the same decompression by
another checkout (``git worktree add /tmp/base main``) in the same rounds, with ``--floor``
beside zstd's decoder alone (its output dropped: what no copy can beat); and ``backchain
info`` as its own process on the decompressed copy with an otherwise empty cache (what a
first ``info`` costs beyond decompression; goal <= 0.3 s), beside ``info`` on the ``.zst``
with an empty cache (both together). Best and median of ``--runs``.

    python benchmarks/bench_firstrun.py [--runs 5] [--general] [--samples]
        [--info [--baseline TREE] [--no-info] [--floor]]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
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


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user+system) seconds of one process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def _stats(values: list[float]) -> str:
    return f"{min(values):6.3f} / {statistics.median(values):6.3f}"


#: Run as its own process: one decompression into an empty cache by the backchain of a
#: tree (this one, or ``--baseline``'s), timed around the call alone.
_DECOMPRESS = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from parsers.compressed import decompressed_path
t, c = time.perf_counter(), time.process_time()
copy = decompressed_path(sys.argv[2], cache_dir=Path(sys.argv[3]))
wall, cpu = time.perf_counter() - t, time.process_time() - c
st = copy.stat()
print(json.dumps([wall, cpu, st.st_size, st.st_blocks * 512, str(copy)]))
"""


#: The decoder alone: the same stream reader, its output read into one buffer and dropped.
_DECODE = r"""
import json, sys, time
import zstandard
t, c = time.perf_counter(), time.process_time()
with open(sys.argv[1], "rb") as f:
    reader = zstandard.ZstdDecompressor(max_window_size=1 << 31).stream_reader(
        f, read_size=1 << 20, read_across_frames=True
    )
    buffer, size = memoryview(bytearray(1 << 22)), 0
    while n := reader.readinto(buffer):
        size += n
    del reader
print(json.dumps([time.perf_counter() - t, time.process_time() - c, size]))
"""


def _decode(dump: Path) -> tuple[float, float]:
    """Wall and CPU seconds of zstd decoding ``dump`` with nothing written (a floor)."""
    out = subprocess.run(
        [sys.executable, "-c", _DECODE, str(dump)], capture_output=True, text=True, check=True
    ).stdout
    wall, cpu, _ = json.loads(out)
    return wall, cpu


def _decompress(tree: Path, dump: Path, cache: Path) -> tuple[float, float, int, int, Path]:
    """Wall and CPU seconds (all threads) of one decompression by ``tree``'s code; the
    copy's size, bytes on disk and path."""
    out = subprocess.run(
        [sys.executable, "-c", _DECOMPRESS, str(tree), str(dump), str(cache)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall, cpu, size, disk, path = json.loads(out)
    return wall, cpu, size, disk, Path(path)


def _rates(size: int, seconds: list[float]) -> str:
    rates = [size / s / 1e6 for s in seconds]
    return f"{max(rates):5.0f} / {statistics.median(rates):5.0f}"


def info_runs(
    runs: int, baseline: Path | None, first_info: bool = True, floor: bool = False
) -> None:
    """Decompression into an empty cache (beside ``baseline``'s, interleaved; with ``floor``
    beside the decoder alone), and (with ``first_info``) a first ``info`` beyond it, per
    sample."""
    script = Path(sys.executable).parent / "backchain"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "explorer"]
    env0 = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    print(f"min / median of {runs} runs, load {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        "decompression: MB/s of output, best / median, by wall and by CPU (user+sys, all threads)"
        + (f"; baseline {baseline}" if baseline else "")
    )
    print(
        f"  {'sample':20} {'MiB':>4} {'disk':>4}  "
        + ("base wall    base CPU     " if baseline else "")
        + ("decode wall  decode CPU   " if floor else "")
        + "MB/s wall    MB/s CPU   info plain, empty cache: wall s / CPU s"
        "   info .zst, empty cache: wall s"
    )
    for dump in sorted((ROOT / "samples" / "real").glob("*/vmcore.zst")):
        bwall: list[float] = []
        bcpu: list[float] = []
        fwall: list[float] = []
        fcpu: list[float] = []
        dwall: list[float] = []
        dcpu: list[float] = []
        iwall: list[float] = []
        icpu: list[float] = []
        zwall: list[float] = []
        size = disk = 0
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as tmp:
                cache = Path(tmp) / "cache"
                if baseline is not None:
                    wall, cpu, _, _, _ = _decompress(baseline, dump, cache / "base")
                    bwall.append(wall)
                    bcpu.append(cpu)
                    shutil.rmtree(cache)
                if floor:
                    wall, cpu = _decode(dump)
                    fwall.append(wall)
                    fcpu.append(cpu)
                wall, cpu, size, disk, copy = _decompress(ROOT, dump, cache / "dumps")
                dwall.append(wall)
                dcpu.append(cpu)
                if not first_info:
                    continue
                plain = Path(tmp) / "vmcore"
                copy.rename(plain)
                shutil.rmtree(cache)
                env = {**env0, "BACKCHAIN_CACHE": str(cache)}
                wall, cpu = _run([*command, "info", str(plain)], env)
                iwall.append(wall)
                icpu.append(cpu)
                plain.unlink()
                shutil.rmtree(cache, ignore_errors=True)
                wall, _ = _run([*command, "info", str(dump)], env)
                zwall.append(wall)
        base = f"{_rates(size, bwall)}  {_rates(size, bcpu)}  " if baseline else ""
        base += f"{_rates(size, fwall)}  {_rates(size, fcpu)}  " if floor else ""
        info = f"{_stats(iwall)} / {_stats(icpu)}            {_stats(zwall)}" if iwall else "-"
        print(
            f"  {dump.parent.name:20} {size >> 20:4} {disk >> 20:4}  {base}"
            f"{_rates(size, dwall)}  {_rates(size, dcpu)}   {info}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each step (fastest counts)")
    parser.add_argument("--general", action="store_true", help="also time pyelftools' reader")
    parser.add_argument(
        "--samples", action="store_true", help="also time `check` on each bundled sample"
    )
    parser.add_argument(
        "--info", action="store_true", help="decompression and a first `info` per sample"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        metavar="TREE",
        help="with --info: also decompress with the backchain checked out in TREE (a git "
        "worktree of main), interleaved, for the before/after in one run",
    )
    parser.add_argument(
        "--no-info", action="store_true", help="with --info: the decompression alone"
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="with --info: also the zstd decoder alone (output dropped), in the same rounds",
    )
    args = parser.parse_args()
    if args.info:
        info_runs(args.runs, args.baseline, not args.no_info, args.floor)
        return 0
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
