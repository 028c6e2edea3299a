"""`backchain bt -t` (every text word on the stack, graded) on the busiest task of the bundled
real samples: the task whose live stack holds the most text words.

Goal (issue 25): <= 0.5 s warm, as a command (its own process, symbol cache and dump cache
warm from a first run); the fastest of --runs counts (the machine is shared). Also printed:
the grading alone in-process, cold (first task of a fresh kernel) and warm (again).

    python benchmarks/bench_recover.py [--runs 5]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLES = ROOT / "samples" / "real"


def busiest() -> tuple[Path, int, int, int]:
    """(dump, pid, text words, frames) of the task with the most text words on its stack."""
    from explorer.code.recovered import recovery_of
    from explorer.model.opening import open_kernel
    from explorer.model.tasks import find_tasks
    from explorer.walk.analysis import analyse_task

    best: tuple[int, Path, int, int] | None = None
    for dump in sorted(SAMPLES.glob("*/vmcore.zst")):
        kernel = open_kernel(str(dump))
        for task in find_tasks(kernel).tasks:
            if task.pid == 0:
                continue
            walk = analyse_task(kernel, task).walk
            words = len(recovery_of(kernel, walk, "stack").words)
            if best is None or words > best[0]:
                best = (words, dump, task.pid, len(walk.steps))
    assert best is not None
    return best[1], best[2], best[0], best[3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    dump, pid, words, frames = busiest()
    print(f"busiest task: {dump.parent.name} pid {pid}: {words} text words, {frames} frames")

    from explorer.code.recovered import recovery_of
    from explorer.model.opening import open_kernel
    from explorer.model.tasks import find_tasks
    from explorer.walk.analysis import analyse_task

    kernel = open_kernel(str(dump))
    (task,) = find_tasks(kernel).by_pid(pid)[:1]
    walk = analyse_task(kernel, task).walk
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        recovery_of(kernel, walk, "stack")
        print(f"grading in-process, {label}: {1000 * (time.perf_counter() - t0):.1f} ms")

    base = [sys.executable, "-m", "explorer", "bt", str(dump), "--pid", str(pid)]
    cmds = {"bt -t": [*base, "-t"], "bt (no -t, for comparison)": base}
    subprocess.run(cmds["bt -t"], check=True, capture_output=True)  # warm the caches
    times: dict[str, list[float]] = {name: [] for name in cmds}
    cpu: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(args.runs):  # interleaved: the machine is shared
        for name, cmd in cmds.items():
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            times[name].append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    for name, got in times.items():
        print(
            f"{name} as a command, warm: fastest {min(got):.3f} s wall, "
            f"{min(cpu[name]):.3f} s CPU (of {args.runs})"
        )
    print("goal: bt -t <= 0.5 s")


if __name__ == "__main__":
    main()
