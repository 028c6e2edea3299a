"""`backchain check --cfi` (every task unwound with the -dbg vmlinux's DWARF CFI beside the
back chain) against `check --lines`, on the 2-CPU real samples whose -dbg vmlinux is cached.

Goal (issue 25): `check --cfi` within 2x of `check --lines`, warm (caches filled by a first
run). Each run is a fresh process; the fastest of --runs counts (the machine is shared);
both wall and CPU (user+sys) time are printed.

    python benchmarks/bench_cfi.py [--runs 3] [SAMPLE ...]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "samples" / "real"


def _time(cmd: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    from parsers.cache import cache_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("samples", nargs="*", default=["deb12-6.1-idle", "bpo12-6.12-busy"])
    args = parser.parse_args()
    for name in args.samples:
        facts = json.loads((SAMPLES / name / "facts.json").read_text())
        vmlinux = cache_dir("real", "kernels", facts["kernel_release"]) / "vmlinux"
        if not vmlinux.is_file():
            print(f"{name}: no -dbg vmlinux at {vmlinux} (samples/generate_real.py --debug-only)")
            continue
        base = [sys.executable, "-m", "explorer", "check", str(SAMPLES / name / "vmcore.zst")]
        base += ["--vmlinux", str(vmlinux)]
        cmds = {"--cfi": [*base, "--cfi"], "--lines": [*base, "--lines"]}
        for cmd in cmds.values():
            subprocess.run(cmd, check=True, capture_output=True)  # warm every cache
        best = {k: (1e9, 1e9) for k in cmds}
        for _ in range(args.runs):
            for k, cmd in cmds.items():
                wall, cpu = _time(cmd)
                best[k] = (min(best[k][0], wall), min(best[k][1], cpu))
        cfi, lines = best["--cfi"], best["--lines"]
        print(
            f"{name}: check --cfi {cfi[0]:.2f} s wall / {cfi[1]:.2f} s CPU; check --lines "
            f"{lines[0]:.2f} s / {lines[1]:.2f} s; ratio (CPU) {cfi[1] / lines[1]:.2f} "
            "(goal <= 2)"
        )


if __name__ == "__main__":
    main()
