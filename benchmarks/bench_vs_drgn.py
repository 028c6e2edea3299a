"""`backchain check --json` against drgn 0.3.0 on the same real dump, side by side.

Both get the Debian -dbg vmlinux of the dump's kernel and produce every stack of every
task: drgn ``prog.stack_trace(task)`` with each frame's pc and name for every task of
``for_each_task``; backchain ``check --json`` (every task's walk, symbols and verdict).
Both read the same file: the copy of the QEMU dump that drgn opens
(samples/drgn_copy.py: pr_pid byte order fixed, VMCOREINFO note added). Each command runs
as its own process and is timed whole, interpreter start included.

Goals: backchain <= 0.3x drgn's time with its caches warm (issue 16), <= 0.5x on a first
run (an empty BACKCHAIN_CACHE; issue 26, was <= 1x). Each of ``--runs`` rounds runs a first
run (a new empty cache), drgn, and a warm run, interleaved so that a busy machine slows all
three alike; the minimum and the median of the rounds are printed, each ratio taken of
the same statistic of both.

With ``--baseline TREE`` (another checkout, e.g. ``git worktree add /tmp/base main``), a
first run of that tree's code joins each round (``python -m explorer`` run from TREE by this
interpreter; this tree's own runs then start the same way): before and after in the same
rounds, beside the same drgn runs.

    python benchmarks/bench_vs_drgn.py [--sample deb12-6.1-idle] [--runs 5] [--baseline TREE]

Needs: drgn (PyPI ``drgn``, in the dev extra) and the -dbg vmlinux under
cache_dir("real", "kernels", RELEASE) (``python samples/generate_real.py --debug-only``).
When one is missing it says which and exits 0 without numbers.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
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

_DRGN = """
import sys
import drgn
from drgn.helpers.linux.pid import for_each_task

prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2]])
tasks = frames = 0
stacks = []
for task in for_each_task(prog):
    try:
        trace = prog.stack_trace(task)
    except (drgn.FaultError, ValueError):
        continue
    stacks.append([(f.pc, f.name) for f in trace])
    tasks += 1
    frames += len(stacks[-1])
print(tasks, frames, file=sys.stderr)
"""


def missing(sample: str) -> tuple[list[str], Path | None, str | None]:
    """What is missing to run the comparison, the vmlinux and the release."""
    from parsers.cache import cache_dir

    problems = []
    if importlib.util.find_spec("drgn") is None:
        problems.append("drgn is not installed: pip install 'drgn==0.3.0' (or '.[dev]')")
    folder = ROOT / "samples" / "real" / sample
    facts = folder / "facts.json"
    if not (folder / "vmcore.zst").is_file() or not facts.is_file():
        problems.append(f"no bundled sample {folder}")
        return problems, None, None
    release = json.loads(facts.read_text())["kernel_release"]
    vmlinux = cache_dir("real", "kernels", release, "vmlinux")
    if not vmlinux.is_file():
        problems.append(
            f"no -dbg vmlinux for {release} at {vmlinux}; "
            "run: python samples/generate_real.py --debug-only"
        )
    try:
        import samples.drgn_copy  # noqa: F401
    except ImportError as exc:
        problems.append(f"samples/drgn_copy.py is not importable ({exc})")
    return problems, vmlinux, release


def drgn_copy(sample: str) -> Path:
    """The drgn-openable copy of the sample, written once into the cache."""
    from parsers.cache import cache_dir
    from samples.drgn_copy import fix_for_drgn

    out = cache_dir("bench", "vs-drgn") / f"{sample}.drgn.elf"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        fix_for_drgn(ROOT / "samples" / "real" / sample / "vmcore.zst", tmp)
        tmp.replace(out)
    return out


def child_env(**extra: str) -> dict[str, str]:
    """The environment of the measured processes: as an installed program runs, with its
    modules' bytecode cached (PYTHONDONTWRITEBYTECODE would recompile every module on
    every start; the first run of each writes the cache)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | extra


def timed(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[float, str, float]:
    """Wall-clock seconds of one run of ``argv`` (stdout discarded), its stderr, and its
    CPU seconds (user + system)."""
    env = env or child_env()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        check=False,
        cwd=cwd or ROOT,
    )
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    return seconds, done.stderr, cpu


def backchain_command() -> list[str]:
    script = Path(sys.executable).parent / "backchain"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "explorer"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", default="deb12-6.1-idle", help="a samples/real/ name")
    parser.add_argument("--runs", type=int, default=5, help="runs of each (fastest counts)")
    parser.add_argument(
        "--baseline", metavar="TREE", type=Path, help="also time the first run of this checkout"
    )
    args = parser.parse_args()
    if args.baseline is not None and not (args.baseline / "explorer" / "__main__.py").is_file():
        parser.error(f"--baseline {args.baseline}: not a checkout of backchain")
    problems, vmlinux, release = missing(args.sample)
    if problems:
        print("bench_vs_drgn: SKIPPED, missing:")
        for p in problems:
            print(f"  - {p}")
        return 0
    assert vmlinux is not None
    dump = drgn_copy(args.sample)
    import drgn

    print(f"dump     {dump} ({args.sample}, {release}, {dump.stat().st_size >> 20} MiB)")
    print(f"vmlinux  {vmlinux} ({vmlinux.stat().st_size >> 20} MiB)")
    command = backchain_command() if args.baseline is None else [sys.executable, "-m", "explorer"]
    ours = [*command, "check", str(dump), "--json", "--vmlinux", str(vmlinux)]
    theirs = [sys.executable, "-c", _DRGN, str(dump), str(vmlinux)]
    probe = subprocess.run(
        ours, capture_output=True, text=True, env=child_env(), check=False, cwd=ROOT
    )
    if probe.returncode != 0 and "does not belong" in probe.stderr:
        print(f"note: backchain refused the vmlinux: {probe.stderr.strip()}")
        print("note: measured with --force (the check itself still runs on every start)")
        ours.append("--force")
    base = [sys.executable, "-m", "explorer", *ours[len(command) :]]
    keys = ["drgn", "first", "warm", *(["base"] if args.baseline else [])]
    walls: dict[str, list[float]] = {key: [] for key in keys}
    cpus: dict[str, list[float]] = {key: [] for key in keys}
    drgn_counts: list[str] = []
    with tempfile.TemporaryDirectory(prefix="backchain-cache-") as cache:
        env = child_env(BACKCHAIN_CACHE=cache)
        for run in range(args.runs):
            if args.baseline is not None:  # before this tree's, then after it: alternately
                firsts = [("base", args.baseline), ("first", ROOT)][:: 1 if run % 2 else -1]
            else:
                firsts = [("first", ROOT)]
            for key, tree in firsts:
                argv = base if key == "base" else ours
                with tempfile.TemporaryDirectory(prefix="backchain-first-") as empty:
                    seconds, _, cpu = timed(argv, child_env(BACKCHAIN_CACHE=empty), cwd=tree)
                walls[key].append(seconds)
                cpus[key].append(cpu)
            seconds, err, cpu = timed(theirs)
            walls["drgn"].append(seconds)
            cpus["drgn"].append(cpu)
            drgn_counts = err.split()
            if run == 0:
                timed(ours, env)  # fills the cache
            seconds, _, cpu = timed(ours, env)
            walls["warm"].append(seconds)
            cpus["warm"].append(cpu)
    out = subprocess.run(
        ours, capture_output=True, text=True, env=child_env(), check=True, cwd=ROOT
    ).stdout
    tasks = json.loads(out)
    frames = sum(len(t["frames"]) for t in tasks)
    load = os.getloadavg()[0]
    print(f"\n{args.runs} runs, each a whole process (interpreter start included), load {load:.1f}")
    print(
        f"on {os.cpu_count()} CPUs; seconds as min / median of the runs, wall then user+system CPU:"
    )
    labels = {
        "drgn": f"drgn {drgn.__version__} stack_trace of every task",
        "first": "backchain check --json, first run",
        "warm": "backchain check --json, caches warm",
    }
    if args.baseline is not None:
        labels["base"] = f"first run of {args.baseline}"[:38]
    goals = {"first": "goal <= 0.5x", "warm": "goal <= 0.3x", "base": "goal <= 0.5x"}
    for key, label in labels.items():
        w, c = walls[key], cpus[key]
        line = (
            f"  {label:38} {min(w):6.3f} / {statistics.median(w):6.3f} s  "
            f"CPU {min(c):6.3f} / {statistics.median(c):6.3f} s"
        )
        if key != "drgn":
            lo, mid = (
                min(w) / min(walls["drgn"]),
                statistics.median(w) / statistics.median(walls["drgn"]),
            )
            clo = min(c) / min(cpus["drgn"])
            cmid = statistics.median(c) / statistics.median(cpus["drgn"])
            line += (
                f"   {lo:4.2f}x / {mid:4.2f}x drgn ({goals[key]}; CPU {clo:4.2f}x / {cmid:4.2f}x)"
            )
        print(line)
    print(
        f"  (drgn: {drgn_counts[0]} tasks, {drgn_counts[1]} frames; "
        f"backchain: {len(tasks)} tasks, {frames} frames)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
