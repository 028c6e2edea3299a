"""`check DUMP... --cluster` on a real Dask cluster against one process, same 100 dumps.

Goal (issue 26): a `dask scheduler` and two `dask worker` processes (one thread each) on this
2-core machine's loopback check 100 dumps >= 1.7x faster than `check --jobs 1`. The dumps are
the bundled samples hard-linked under 100 distinct names (made once into
$TMPDIR/backchain-bench-cluster/, reused). Each command runs as its own process, `--json` to
/dev/null, --runs times, interleaved, after one warm-up run of each (caches filled, the
workers' imports done); the fastest run counts, the median beside it, each with the load
average when it ran (the machine is shared). `--jobs 2` (two local processes) is shown for
reference. CPU seconds: the command's own (user+sys) and, for the cluster, the workers' and
the scheduler's during the run. The client's fixed cost, `import distributed` in a new
process, is printed beside them: the speed-up grows with the work per run (--dumps).

    python benchmarks/bench_cluster.py [--runs 3] [--dumps 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLI = "import sys; from explorer.cli import main; sys.exit(main(sys.argv[1:]))"


def cpu_of(pid: int) -> float:
    """User+system CPU seconds of a live process (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(argv: list[str], others: list[int]) -> tuple[float, float, float]:
    """(wall seconds, the command's CPU seconds, CPU seconds of ``others`` meanwhile)."""
    before = [cpu_of(p) for p in others]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CLI, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"bench_cluster: {' '.join(argv[:3])} ...: {done.stderr.decode()[-500:]}")
    own = after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime
    return wall, own, sum(cpu_of(p) for p in others) - sum(before)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dumps", type=int, default=100)
    args = parser.parse_args()
    from tests.helpers.dask_cluster import dask_cluster, fleet_copies

    work = Path(tempfile.gettempdir()) / "backchain-bench-cluster"
    paths = [str(p) for p in fleet_copies(work / "dumps", args.dumps)]
    with dask_cluster(work / "cluster", workers=2) as cluster:
        pids = cluster.worker_pids(2)
        assert cluster.scheduler is not None
        daemons = [*pids.values(), cluster.scheduler.pid]
        commands = {
            "one process (--jobs 1)": ["check", *paths, "--jobs", "1", "--json"],
            "2 local processes (--jobs 2)": ["check", *paths, "--jobs", "2", "--json"],
            "dask, 2 workers (--cluster)": ["check", *paths, "--cluster", cluster.url, "--json"],
        }
        print(f"{len(paths)} dumps ({len(set(Path(p).name[4:] for p in paths))} samples)")
        print(f"cluster {cluster.address}: {len(pids)} workers of 1 thread, {os.cpu_count()} CPUs")
        for argv in commands.values():  # warm-up: caches, the workers' imports
            run(argv, daemons)
        times: dict[str, list[tuple[float, float, float, float]]] = {n: [] for n in commands}
        for i in range(args.runs):
            for name, argv in commands.items():
                load = os.getloadavg()[0]
                wall, own, others = run(argv, daemons)
                times[name].append((wall, own, others, load))
                print(
                    f"run {i + 1} {name:<30} {wall:6.2f} s wall  {own:5.2f} s CPU"
                    + (f" + workers/scheduler {others:5.2f} s" if "dask" in name else "")
                    + f"  (load {load:.1f})"
                )
    print()
    best = {n: min(w for w, *_ in t) for n, t in times.items()}
    median = {n: statistics.median(w for w, *_ in t) for n, t in times.items()}
    base = "one process (--jobs 1)"
    for name in commands:
        print(
            f"{name:<30} best {best[name]:6.2f} s  median {median[name]:6.2f} s  "
            f"speed-up {best[base] / best[name]:4.2f}x (median {median[base] / median[name]:4.2f}x)"
        )
    imports = []
    code = (
        "import time; t = time.perf_counter(); import distributed; print(time.perf_counter() - t)"
    )
    for _ in range(3):  # the client's fixed cost beyond one process's start
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        imports.append(float(done.stdout))
    print(f"the client's 'import distributed': {min(imports):.2f} s (best of 3)")
    loads = [load for t in times.values() for *_, load in t]
    print(f"load average during the runs: {min(loads):.1f} to {max(loads):.1f}")
    cluster_best = best[base] / best["dask, 2 workers (--cluster)"]
    print(f"goal: the cluster >= 1.7x one process: {'met' if cluster_best >= 1.7 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
