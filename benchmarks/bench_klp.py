"""`backchain klp` against `backchain check` on the same dump (issue 21: klp within 1.2x).

`klp` walks only the tasks that have not switched yet, but it reads every task's
patch_state and the livepatch lists first; the worst case is a transition no task has
passed, which the synthetic dump here has: --tasks tasks all sleeping on the patched
function. Real dumps given as arguments are measured too. Each command runs in its own
process, --runs times, interleaved; the fastest run counts (the machine is shared).

    python benchmarks/bench_klp.py [DUMP ...] [--tasks 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def build(folder: Path, tasks: int) -> Path:
    """Every task sleeps in do_nanosleep, which a patch in transition replaces."""
    from tests.helpers.kernels import NANOSLEEP, base_kernel
    from tests.helpers.klp_kernel import Func, Livepatch

    k = base_kernel("current")
    for i in range(tasks):
        task = k.add_task(1000 + i, f"worker{i}", "S")
        k.task_stack(task, NANOSLEEP)
    lp = Livepatch(k)
    funcs = [Func("do_nanosleep", "livepatch_do_nanosleep")]
    patch = lp.add_patch("klp_bench", funcs)
    lp.start_transition(patch, 1, funcs, signals_cnt=20)
    for task in k.tasks:
        lp.task_state(task, 0, pending=True)
    return k.save(folder)


def compare(dump: Path, runs: int, extra: list[str]) -> float:
    """Fastest `check` and `klp` of ``runs``; returns klp / check."""
    from bench_check import run_cli

    best = {"check": float("inf"), "klp": float("inf")}
    for _ in range(runs):
        for command in best:
            seconds, _ = run_cli([command, str(dump), *extra])
            best[command] = min(best[command], seconds)
    ratio = best["klp"] / best["check"]
    print(
        f"{dump}: check {best['check']:.3f} s, klp {best['klp']:.3f} s, "
        f"klp/check {ratio:.2f}x (goal <= 1.2x)"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dumps", nargs="*", type=Path, help="real dumps to measure too")
    parser.add_argument("--tasks", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--vmlinux", help="vmlinux with DWARF for the real dumps (else found beside them)"
    )
    args = parser.parse_args()
    folder = Path(tempfile.gettempdir()) / f"backchain-bench-klp-{args.tasks}"
    dump = folder / "vmcore"
    if not dump.exists():
        t = time.perf_counter()
        build(folder, args.tasks)
        print(f"built {dump} ({dump.stat().st_size >> 20} MiB) in {time.perf_counter() - t:.1f} s")
    compare(dump, args.runs, [])
    extra = ["--vmlinux", args.vmlinux] if args.vmlinux else []
    for real in args.dumps:
        compare(real, args.runs, extra)


if __name__ == "__main__":
    main()
