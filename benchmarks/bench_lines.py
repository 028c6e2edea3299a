"""`backchain check --lines` speed and memory on the real samples whose -dbg vmlinux is in
the cache (samples/generate_real.py puts it under cache_dir("real", "kernels", RELEASE)).

Goal (issue 14): every task of a 4-CPU real dump in <= 2 s with a cold line cache, <= 0.5 s
with it; <= 300 MB peak RSS while indexing. Each run is a fresh process (as a user runs it);
"cold" removes the vmlinux's line index from the cache first (the OS page cache may still
hold the file: drop it with `echo 3 > /proc/sys/vm/drop_caches` for a truly cold disk).

    python benchmarks/bench_lines.py [SAMPLE ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUN = """
import resource, sys, time
from explorer.cli import main
t = time.perf_counter()
with open('/dev/null', 'w') as sys.stdout:
    main(sys.argv[1:])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.stderr.write(f"{time.perf_counter() - t} {peak}\\n")
"""


def run(args: list[str]) -> tuple[float, float]:
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args], capture_output=True, text=True, check=True, cwd=ROOT
    )
    seconds, rss_kib = done.stderr.strip().splitlines()[-1].split()
    return float(seconds), int(rss_kib) / 1024


def main() -> None:
    from parsers.cache import cache_dir
    from parsers.dwarf.lines import default_cache_dir, open_dwarf_lines

    real = ROOT / "samples" / "real"
    names = sys.argv[1:] or sorted(p.name for p in real.iterdir() if p.is_dir())
    measured = 0
    for name in names:
        facts = json.loads((real / name / "facts.json").read_text())
        release = facts["kernel_release"]
        vmlinux = cache_dir("real", "kernels", release, "vmlinux")
        if not vmlinux.is_file():
            print(f"{name}: skipped, no -dbg vmlinux at {vmlinux}")
            continue
        with open_dwarf_lines(vmlinux) as dwarf:
            build_id = dwarf.build_id
        base = [
            "check",
            str(real / name / "vmcore.zst"),
            "--json",
            "--map",
            str(real / name / "System.map.zst"),
            "--vmlinux",
            str(vmlinux),
        ]
        run(base)  # warm the dump and type caches: what is measured is the line lookups
        plain, _ = run(base)
        for old in default_cache_dir().glob(f"{build_id}.*.lines.json"):
            old.unlink()
        t0 = time.perf_counter()
        cold, cold_rss = run([*base, "--lines"])
        wall = time.perf_counter() - t0
        cached, cached_rss = run([*base, "--lines"])
        print(
            f"{name} ({facts.get('cpus', '?')} CPUs, {release}): check --json {plain:.2f} s; "
            f"check --json --lines cold {cold:.2f} s (process {wall:.2f} s, peak "
            f"{cold_rss:.0f} MB), cached {cached:.2f} s (peak {cached_rss:.0f} MB); "
            f"lines cost {cold - plain:+.2f} s cold, {cached - plain:+.2f} s cached"
        )
        measured += 1
    if not measured:
        print("no sample has its -dbg vmlinux in the cache: run samples/generate_real.py")


if __name__ == "__main__":
    main()
