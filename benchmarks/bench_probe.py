"""``--types probe``: time to infer the struct offsets of each bundled real sample.

Prints, per sample, the fastest of --runs inferences (``probe_types`` on an opened dump, the
dump's decompressed copy already cached), the tasks it checked and the values it found. No
goal is set in the issue; these are the numbers.

    python benchmarks/bench_probe.py [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    from explorer.model.kernel import Options
    from explorer.model.opening import open_kernel
    from explorer.sources.probe import probe_types

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    samples = sorted(
        p for p in (ROOT / "samples" / "real").glob("*") if (p / "vmcore.zst").is_file()
    )
    print(f"{'sample':<20} {'probe s':>8} {'tasks':>6} {'values':>6}")
    for folder in samples:
        kernel = open_kernel(str(folder / "vmcore.zst"), Options(types="probe"))
        best = float("inf")
        for _ in range(args.runs):
            start = time.perf_counter()
            profile, _ = probe_types(kernel)
            best = min(best, time.perf_counter() - start)
        source = profile.source_of("task_struct.tasks")
        tasks = source.split(" through ")[1].split()[0] if " through " in source else "?"
        values = len(profile.offsets) + len(profile.sizes)
        print(f"{folder.name:<20} {best:8.2f} {tasks:>6} {values:>6}")
        kernel.close()


if __name__ == "__main__":
    main()
