"""`backchain check` speed and memory on a synthetic dump with many tasks.

Goals: 10,000 tasks of ~20 frames checked in <= 2 s (issue 5); one interactive step (one
frame, decoded for display) under 5 ms; `check --json` <= 1.25x the text report's time and
peak RSS <= 200 MB as ps/top count it, mapped dump pages included (issue 16). Each command
runs as its own process, --runs times, interleaved; the fastest run counts (the machine is
shared), the peak RSS is the largest of the runs (VmHWM of the process); bytecode caching
is on as for an installed program (PYTHONDONTWRITEBYTECODE dropped).

    python benchmarks/bench_check.py [--tasks 10000] [--frames 20] [--runs 3] [--pipe-only]
        [--baseline DIR]

Issue 26 (the JSON path): ``check --json`` <= 1.1x the text report with the output read
through a pipe by another process (this one): each of ``--runs`` rounds runs the text
report, then ``--json``, each a whole ``backchain`` process (interpreter start included)
whose stdout is a pipe this process drains; min and median of wall and CPU (user+system of
the child) are printed side by side, with the bytes each wrote. ``--baseline DIR`` runs
another checkout's (e.g. ``git worktree add DIR main``) text and ``--json`` in the same
rounds, each command as ``python -m explorer`` with that checkout as its working directory.

The dump is built once into $TMPDIR/backchain-bench-<tasks>x<frames>/ and reused.
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


def build(folder: Path, tasks: int, frames: int) -> Path:
    from explorer.training.synthetic import Frame
    from tests.helpers.kernels import base_kernel

    k = base_kernel("current")
    chain = [Frame("__schedule", 0x43C), Frame("schedule", 0x3E)]
    chain += [Frame("do_nanosleep", 0x5E + 2 * i) for i in range(frames - 4)]
    chain += [Frame("__do_syscall", 0x280, size=0x1E8), Frame("system_call", 0x78)]
    for i in range(tasks):
        task = k.add_task(1000 + i, f"worker{i}", "S")
        k.task_stack(task, chain)
    return k.save(folder)


def measure(dump: Path) -> None:
    from explorer.model.opening import open_kernel
    from explorer.model.tasks import find_tasks
    from explorer.walk.analysis import analyse_all, analyse_task, unwind_context
    from explorer.walk.summary import summarizer

    t0 = time.perf_counter()
    kernel = open_kernel(str(dump))
    t1 = time.perf_counter()
    scan = find_tasks(kernel)
    t2 = time.perf_counter()
    ctx = unwind_context(kernel)
    results = analyse_all(kernel, scan.tasks, ctx, keep=summarizer(kernel))  # as `check`
    t3 = time.perf_counter()
    frames = sum(len(r.stack) for r in results)
    reliable = sum(1 for r in results if r.verdict.reliable)
    # One interactive step: walk one task in display mode, time per frame.
    task = scan.tasks[len(scan.tasks) // 2]
    t4 = time.perf_counter()
    walk = analyse_task(kernel, task, ctx, detailed=True).walk
    t5 = time.perf_counter()
    rss = peak_rss_mb()
    print(f"tasks            {len(scan.tasks)} ({reliable} reliable)")
    print(f"frames           {frames} ({frames / max(len(scan.tasks), 1):.1f} per task)")
    print(f"open             {t1 - t0:.3f} s")
    print(f"find tasks       {t2 - t1:.3f} s")
    print(f"check (walk+verdict) {t3 - t2:.3f} s  = {frames / (t3 - t2):,.0f} frames/s")
    print(f"total            {t3 - t0:.3f} s   (goal <= 2 s)")
    per_step = (t5 - t4) / max(len(walk.steps), 1) * 1000
    print(f"interactive step {per_step:.3f} ms per frame, decoded (goal < 5 ms)")
    status = dict(
        line.split(":", 1)
        for line in Path("/proc/self/status").read_text().splitlines()
        if ":" in line
    )
    anon = int(status.get("RssAnon", "0 kB").split()[0]) / 1024
    mapped = int(status.get("RssFile", "0 kB").split()[0]) / 1024
    print(
        f"peak RSS         {rss:.0f} MB (goal <= 200 MB); now {anon:.0f} MB own memory + "
        f"{mapped:.0f} MB of the dump file mapped (page cache, reclaimable)"
    )


def peak_rss_mb() -> float:
    """VmHWM: this process's peak resident set (anonymous and mapped file pages), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


#: Runs one `backchain` command in this process, output to /dev/null, then prints
#: "<seconds> <peak RSS MB>" on stderr (interpreter start not counted in the seconds).
_RUN_CLI = """
import os, sys, time
sys.path.insert(0, {root!r})
t = time.perf_counter()
from explorer.cli import main
out = os.open(os.devnull, os.O_WRONLY)
os.dup2(out, 1)
status = main(sys.argv[1:])
sys.stdout.flush()
seconds = time.perf_counter() - t
hwm = [ln for ln in open("/proc/self/status") if ln.startswith("VmHWM:")][0].split()[1]
print(seconds, int(hwm) / 1024, status, file=sys.stderr)
"""


def run_cli(args: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of ``backchain ARGS`` in a fresh process."""
    code = _RUN_CLI.format(root=str(ROOT))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = subprocess.run(
        [sys.executable, "-c", code, *args], check=True, capture_output=True, text=True, env=env
    )
    seconds, rss, status = done.stderr.split()[-3:]
    if status != "0":
        raise SystemExit(f"backchain {' '.join(args)} exited {status}: {done.stderr}")
    return float(seconds), float(rss)


def compare_cli(dump: Path, runs: int) -> None:
    """`check` text vs `check --json` vs `check --jsonl`, each in its own process."""
    modes = {"text": [], "--json": ["--json"], "--jsonl": ["--jsonl"]}
    best = dict.fromkeys(modes, float("inf"))
    peak = dict.fromkeys(modes, 0.0)
    for _ in range(runs):
        for mode, extra in modes.items():
            seconds, rss = run_cli(["check", str(dump), *extra])
            best[mode] = min(best[mode], seconds)
            peak[mode] = max(peak[mode], rss)
    print(f"\nbackchain check, separate processes (fastest of {runs}; peak RSS = VmHWM):")
    for mode in modes:
        print(f"  check {mode:<8} {best[mode]:7.3f} s   peak RSS {peak[mode]:6.0f} MB")
    ratio = best["--json"] / best["text"]
    print(f"  --json / text    {ratio:7.2f}x  (goal <= 1.25x)")
    print(f"  peak RSS         {max(peak.values()):7.0f} MB (goal <= 200 MB)")


def run_piped(args: list[str], module: bool = False, root: Path = ROOT) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user+system) and bytes written of ``backchain ARGS`` in
    its own process, its stdout a pipe that this process reads to the end; ``module``: as
    ``python -m explorer`` in the checkout ``root`` (to measure another checkout with one
    venv)."""
    script = Path(sys.executable).parent / "backchain"
    use_script = script.is_file() and not module and root == ROOT
    argv = [str(script)] if use_script else [sys.executable, "-m", "explorer"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(
        [*argv, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=root
    )
    assert proc.stdout is not None
    fd, size = proc.stdout.fileno(), 0
    while chunk := os.read(fd, 1 << 20):
        size += len(chunk)
    status = proc.wait()
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if status != 0:
        raise SystemExit(f"backchain {' '.join(args)} exited {status}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return seconds, cpu, size


def compare_pipe(dump: Path, runs: int, module: bool = False, baseline: Path | None = None) -> None:
    """`check` text vs `check --json`, stdout a pipe read by this process (issue 26);
    ``baseline``: another checkout's text and --json too, in the same rounds (both as
    ``python -m explorer``)."""
    modes = {"text": (ROOT, []), "--json": (ROOT, ["--json"])}
    if baseline is not None:
        module = True
        modes = {
            "text, base": (baseline, []),
            "--json, base": (baseline, ["--json"]),
            **modes,
        }
    walls: dict[str, list[float]] = {m: [] for m in modes}
    cpus: dict[str, list[float]] = {m: [] for m in modes}
    sizes = dict.fromkeys(modes, 0)
    for _ in range(runs):
        for mode, (root, extra) in modes.items():
            wall, cpu, size = run_piped(["check", str(dump), *extra], module, root)
            walls[mode].append(wall)
            cpus[mode].append(cpu)
            sizes[mode] = size
    print(f"\nbackchain check, stdout a pipe read by another process ({runs} runs, interleaved):")
    if baseline is not None:
        print(f"  base: {baseline}; now: {ROOT}")
    print("                     wall min  wall median    CPU min  CPU median   output")
    for mode in modes:
        w, c = walls[mode], cpus[mode]
        print(
            f"  check {mode:<12} {min(w):7.3f} s  {statistics.median(w):7.3f} s  "
            f"{min(c):7.3f} s  {statistics.median(c):7.3f} s  {sizes[mode] / 1e6:8.2f} MB"
        )
    pairs = [("", "text", "--json")]
    if baseline is not None:
        pairs.insert(0, ("base ", "text, base", "--json, base"))
    for tag, text, js in pairs:
        for label, table in (("wall", walls), ("CPU", cpus)):
            lo = min(table[js]) / min(table[text])
            mid = statistics.median(table[js]) / statistics.median(table[text])
            print(
                f"  {tag}--json / text, {label:4}  min {lo:5.2f}x  median {mid:5.2f}x"
                "  (goal <= 1.1x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3, help="runs of each CLI command")
    parser.add_argument(
        "--pipe-only", action="store_true", help="only the text/--json comparison through a pipe"
    )
    parser.add_argument(
        "--module", action="store_true", help="run `python -m explorer` from this checkout"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. main): its text and --json in the same pipe rounds",
    )
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure)
        return
    folder = Path(tempfile.gettempdir()) / f"backchain-bench-{args.tasks}x{args.frames}"
    dump = folder / "vmcore"
    if not dump.exists():
        t = time.perf_counter()
        build(folder, args.tasks, args.frames)
        print(f"built {dump} ({dump.stat().st_size >> 20} MiB) in {time.perf_counter() - t:.1f} s")
    if not args.pipe_only:
        # Measure in a fresh process so the builder's memory does not count.
        subprocess.run([sys.executable, __file__, "--measure", str(dump)], check=True)
        compare_cli(dump, args.runs)
    compare_pipe(dump, args.runs, args.module, args.baseline)


if __name__ == "__main__":
    main()
