"""Machine-code costs: the call-site check per frame, ``check`` with the check against
without it, and the back-chain audit of a vmlinux.

Goals (issue 13): call-site check <= 10 us per frame; ``check`` of the 10,000-task
benchmark dump with the check on <= 1.5x the walk without it; ``audit`` of a 200 MB
vmlinux <= 30 s.

    python benchmarks/bench_code.py [--vmlinux FILE] [--tasks 10000] [--frames 20]

The synthetic dump is the one of bench_check.py (built once into $TMPDIR and reused). The
audit runs on --vmlinux, else on the -dbg vmlinux of a bundled sample's release under
cache_dir("real", "kernels", RELEASE) when present.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def per_frame() -> None:
    """The check of every return address of a real sample, uncached."""
    from explorer.code.callsite import CallChecker
    from explorer.code.text import CodeText
    from explorer.model.opening import open_kernel
    from explorer.model.tasks import find_tasks
    from explorer.walk.analysis import analyse_task, unwind_context

    dump = ROOT / "samples" / "real" / "bpo12-6.12-busy" / "vmcore.zst"
    kernel = open_kernel(str(dump))
    ctx = unwind_context(kernel)
    steps = [
        s
        for t in find_tasks(kernel).tasks
        for s in analyse_task(kernel, t, ctx).walk.steps
        if s.how in ("start", "backchain", "r14_guess")
    ]
    cold = CallChecker(CodeText(kernel))
    t0 = time.perf_counter()
    for s in steps:
        cold.check_uncached(s.ip)
    t1 = time.perf_counter()
    rounds = 200
    for _ in range(rounds):
        for s in steps:
            cold.check_uncached(s.ip)
    cold.call_text(cold.check(steps[0].ip))  # Capstone loaded, modules scanned once
    t2 = time.perf_counter()
    for s in steps[:50]:
        cold.call_text(cold.check(s.ip))
    t3 = time.perf_counter()
    print(f"return addresses {len(steps)} (bpo12-6.12-busy, every task)")
    print(f"first pass       {(t1 - t0) / len(steps) * 1e6:.1f} us per frame (page reads)")
    print(
        f"call-site check  {(t2 - t1) / (rounds * len(steps)) * 1e6:.2f} us per frame, "
        "unmemoised (goal <= 10 us)"
    )
    print(f"call text        {(t3 - t2) / 50 * 1e6:.0f} us per call (decoded, target named)")


def check_ratio(tasks: int, frames: int) -> None:
    """``check`` of the synthetic many-task dump with the call-site check and without."""
    from benchmarks.bench_check import build
    from explorer.code.cache import calls_of
    from explorer.model.opening import open_kernel
    from explorer.model.tasks import find_tasks
    from explorer.walk.analysis import analyse_all, unwind_context
    from explorer.walk.summary import summarizer

    folder = Path(tempfile.gettempdir()) / f"backchain-bench-{tasks}x{frames}"
    dump = folder / "vmcore"
    if not dump.exists():
        build(folder, tasks, frames)
    kernel = open_kernel(str(dump))
    scan = find_tasks(kernel)
    ctx = unwind_context(kernel)
    summarize = summarizer(kernel)
    analyse_all(kernel, scan.tasks[:100], ctx, keep=summarize)  # warm the page caches
    best_without = best_with = float("inf")
    found = 0
    for _ in range(3):
        t0 = time.perf_counter()
        analyse_all(kernel, scan.tasks, ctx, keep=summarize)
        t1 = time.perf_counter()
        calls = calls_of(kernel)
        hits: list[object] = []

        def keep(a: object, calls: object = calls, hits: list[object] = hits) -> object:
            hits.extend(calls.suspicious(a.walk.steps))  # type: ignore[attr-defined]
            return summarize(a)  # type: ignore[arg-type]

        t2 = time.perf_counter()
        analyse_all(kernel, scan.tasks, ctx, keep=keep)
        t3 = time.perf_counter()
        best_without = min(best_without, t1 - t0)
        best_with = min(best_with, t3 - t2)
        found = len(hits)
    print(f"check, {len(scan.tasks)} tasks x {frames} frames (best of 3)")
    print(f"  without the call-site check  {best_without:.3f} s")
    print(
        f"  with it                      {best_with:.3f} s  = "
        f"{best_with / best_without:.2f}x (goal <= 1.5x); {found} suspicious frames"
    )


def audit(vmlinux: Path | None) -> None:
    """``backchain audit VMLINUX``."""
    if vmlinux is None:
        from parsers.cache import cache_dir

        kernels = cache_dir("real", "kernels")
        found = sorted(kernels.glob("*/vmlinux"), key=lambda p: p.stat().st_size)
        found = [p for p in found if p.stat().st_size >= 200 << 20] or found
        if not found:
            print(
                f"audit: skipped, no -dbg vmlinux under {kernels} (run samples/generate_real.py "
                "or pass --vmlinux)"
            )
            return
        vmlinux = found[0]
    from explorer.code.audit import audit_file

    t0 = time.perf_counter()
    report = audit_file(str(vmlinux))
    t1 = time.perf_counter()
    size = vmlinux.stat().st_size >> 20
    print(
        f"audit {vmlinux} ({size} MB): {report.functions} functions, "
        f"{len(report.findings)} findings in {t1 - t0:.1f} s (goal <= 30 s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--vmlinux", type=Path)
    args = parser.parse_args()
    per_frame()
    check_ratio(args.tasks, args.frames)
    audit(args.vmlinux)


if __name__ == "__main__":
    main()
