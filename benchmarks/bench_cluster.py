"""`check DUMP... --cluster` on a real Dask cluster against one process, same 100 dumps.

Goal (issue 26): a `dask scheduler` and two `dask worker` processes (one thread each) on this
2-core machine's loopback check 100 dumps >= 1.7x faster than `check --jobs 1`. The dumps are
the bundled samples hard-linked under 100 distinct names (made once into
$TMPDIR/backchain-bench-cluster/, reused). The scheduler and workers are started as the
README starts them (`--preload explorer.fleet.preload`) before the timed runs: they are
long-lived in a real cluster. Each command runs as its own process, timed whole, `--json` to
/dev/null, --runs times, interleaved, after one warm-up run of each (caches filled, the
same cache state for every command); min and median count, each run with the load average
when it started (the machine is shared). `--jobs 2` (two local processes) is shown for
reference. CPU seconds: the command's own (user+sys) and, for the cluster, the workers' and
the scheduler's during the run, per dump beside one process's.

--baseline then does the same with the cluster as it was before batching and the preload
(workers started without it, one task per dump), against its own one-process runs.

    python benchmarks/bench_cluster.py [--runs 5] [--dumps 100] [--baseline]
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
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLI = "import sys; from explorer.cli import main; sys.exit(main(sys.argv[1:]))"
#: The client as it was before batching: a task per dump.
UNBATCHED = "import explorer.fleet.cluster as c; c.MAX_BATCH = 1; " + CLI

ONE = "one process (--jobs 1)"


class Run(NamedTuple):
    wall: float
    own: float  # the command's CPU seconds
    others: float  # the workers' and the scheduler's CPU seconds meanwhile
    load: float


def cpu_of(pid: int) -> float:
    """User+system CPU seconds of a live process (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(code: str, argv: list[str], others: list[int]) -> Run:
    """One command in its own process, timed whole."""
    load = os.getloadavg()[0]
    before = [cpu_of(p) for p in others]
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"bench_cluster: {' '.join(argv[:3])} ...: {done.stderr.decode()[-500:]}")
    own = after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime
    return Run(wall, own, sum(cpu_of(p) for p in others) - sum(before), load)


def phase(title: str, paths: list[str], runs: int, preload: bool, client: str, local: bool) -> None:
    """A cluster started, its commands run interleaved, the summary printed."""
    from tests.helpers.dask_cluster import PRELOAD, dask_cluster

    work = Path(tempfile.gettempdir()) / "backchain-bench-cluster"
    with dask_cluster(work / "cluster", workers=2, preload=PRELOAD if preload else ()) as cluster:
        pids = cluster.worker_pids(2)
        assert cluster.scheduler is not None
        daemons = [*pids.values(), cluster.scheduler.pid]
        name = f"dask, 2 workers ({title})"
        commands = {ONE: (CLI, ["check", *paths, "--jobs", "1", "--json"])}
        if local:
            commands["2 local processes (--jobs 2)"] = (
                CLI,
                ["check", *paths, "--jobs", "2", "--json"],
            )
        commands[name] = (client, ["check", *paths, "--cluster", cluster.url, "--json"])
        print(f"\n== {title}: cluster {cluster.address}, {len(pids)} workers of 1 thread")
        for code, argv in commands.values():  # warm-up: caches, the workers' imports
            run(code, argv, daemons)
        times: dict[str, list[Run]] = {n: [] for n in commands}
        for i in range(runs):
            for label, (code, argv) in commands.items():
                r = run(code, argv, daemons)
                times[label].append(r)
                print(
                    f"run {i + 1} {label:<44} {r.wall:6.2f} s wall  {r.own:5.2f} s CPU"
                    + (f" + workers/scheduler {r.others:5.2f} s" if "dask" in label else "")
                    + f"  (load {r.load:.1f})"
                )
    n = len(paths)
    base = [r.wall for r in times[ONE]]
    one_cpu = statistics.median(r.own for r in times[ONE])
    for label, rs in times.items():
        walls = [r.wall for r in rs]
        # the cluster's CPU is the client's, the workers' and the scheduler's; one process's
        # is its own (the idle cluster's meanwhile is left out)
        cpu = statistics.median(r.own + (r.others if "dask" in label else 0.0) for r in rs)
        print(
            f"{label:<44} min {min(walls):6.2f} s  median {statistics.median(walls):6.2f} s  "
            f"speed-up {min(base) / min(walls):4.2f}x "
            f"(median {statistics.median(base) / statistics.median(walls):4.2f}x)  "
            f"CPU {cpu / n * 1000:5.1f} ms/dump ({cpu / one_cpu:4.2f}x one process)"
            + (
                f", the client {statistics.median(r.own for r in rs):4.2f} s a run"
                if "dask" in label
                else ""
            )
        )
    loads = [r.load for rs in times.values() for r in rs]
    print(f"load average at the runs' starts: {min(loads):.1f} to {max(loads):.1f}")
    speed = min(base) / min(r.wall for r in times[name])
    median = statistics.median(base) / statistics.median(r.wall for r in times[name])
    met = "met" if speed >= 1.7 else "NOT met"
    print(f"goal: the cluster >= 1.7x one process: {met} (min {speed:.2f}x, median {median:.2f}x)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dumps", type=int, default=100)
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    from tests.helpers.dask_cluster import fleet_copies

    work = Path(tempfile.gettempdir()) / "backchain-bench-cluster"
    paths = [str(p) for p in fleet_copies(work / "dumps", args.dumps)]
    samples = len(set(Path(p).name[4:] for p in paths))
    print(f"{len(paths)} dumps ({samples} samples), {os.cpu_count()} CPUs")
    phase("preload, batches", paths, args.runs, True, CLI, local=True)
    if args.baseline:
        phase("no preload, a task per dump", paths, args.runs, False, UNBATCHED, local=False)
    code = (
        "import time; from explorer.fleet.cluster import import_distributed; "
        "t = time.process_time(); import_distributed(); print(time.process_time() - t)"
    )
    imports = []
    for _ in range(3):  # the client's fixed cost beyond one process's start
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        imports.append(float(done.stdout))
    print(f"\nthe client's import of distributed: {min(imports):.2f} s CPU (best of 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
