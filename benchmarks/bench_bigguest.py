"""Big guests (issue 26): `info`, `ps`, `check`, `bt -a` and the explorer's first full
overview on the 16 GiB (and 64 GiB) guest against the same kernel's 512 MiB guest, and on a
synthetic 1 TiB address space, each a whole process (wall time and peak RSS).

Goals: each <= 1.5x the 512 MiB dump's time, peak RSS <= 150 MB.

    sudo python3 samples/generate_real.py --big     # once: the 512M and 16G guests (cached)
    python benchmarks/bench_bigguest.py [--repeat 3] [--synthetic 1T] [--only info,ps]

Without the cached guests it says how to make them and exits 0. The machine is shared: the
load average is printed before and after, and each figure is the best of ``--repeat`` runs
(small and big interleaved), peak RSS the largest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import bigguest  # noqa: E402

#: What each measured command runs (after ``python -m explorer``); DUMP is the dump.
COMMANDS = {
    "info": ["info", "DUMP"],
    "ps": ["ps", "DUMP"],
    "check": ["check", "DUMP"],
    "bt -a": ["bt", "DUMP", "-a"],
    "tui": None,  # the explorer's first full overview (every task judged), 120x40, headless
}

TUI_PROBE = """
import asyncio, sys, time
from explorer.model.kernel import Options
from explorer.tui.app import BackchainApp
from explorer.tui.widgets.error import ErrorPanel

async def main():
    app = BackchainApp(sys.argv[1], Options(), export_dir=sys.argv[2])
    app.animation_level = "none"
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            await pilot.pause(0.02)
            if app.overview.checked:
                break
            if app.overview.query_one(ErrorPanel).display:
                raise SystemExit("the explorer shows an error")
        else:
            raise SystemExit("no overview within 600 s")
        await app.workers.wait_for_complete()
        rows = app.overview.query_one("TaskTable").row_count
        sys.stderr.write(f"@@ rows {rows}\\n")
        app.exit()

asyncio.run(main())
"""


BUILD = """
import sys
from pathlib import Path
from tests.helpers.bigguest import build_synthetic
build_synthetic(sys.argv[1], Path(sys.argv[2]))
"""


OPEN_PROBE = """
import resource, sys, time
from parsers.dumps.dumpfile import open_dump
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
best = 1e9
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    dump = open_dump(sys.argv[1])
    best = min(best, time.perf_counter() - t)
    dump.close()
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(f"{best * 1000:.1f} {grown:.1f}")
"""


def open_cost(dump: Path, repeat: int = 10) -> tuple[float, float]:
    """(best ms, peak RSS growth MB) of opening the dump file alone (the reader: headers,
    bitmaps, program headers), in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", OPEN_PROBE, str(dump), str(repeat)],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return float(out[0]), float(out[1])


def run_once(name: str, dump: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds (user + system), peak RSS MB) of one whole process."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # Bytecode cached as a user's install has it: without, every run compiles ~80 modules
    # (0.3-0.7 s), a constant that would flatten every ratio.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if COMMANDS[name] is None:
        cmd = [sys.executable, "-c", TUI_PROBE, str(dump), tempfile.gettempdir()]
    else:
        args = [str(dump) if a == "DUMP" else a for a in COMMANDS[name]]  # type: ignore[union-attr]
        cmd = [sys.executable, "-m", "explorer", *args]
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{name} on {dump}: exit {proc.returncode}\n{err.decode()[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def measure(names: list[str], dumps: dict[str, Path], repeat: int) -> dict:
    """Best wall and CPU time and largest peak RSS per (command, dump), runs interleaved."""
    best: dict = {}
    for _ in range(repeat):
        for name in names:
            for key, dump in dumps.items():
                wall, cpu, rss = run_once(name, dump)
                old = best.get((name, key), (wall, cpu, rss))
                best[(name, key)] = (min(old[0], wall), min(old[1], cpu), max(old[2], rss))
    return best


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def describe(path: Path) -> str:
    st = path.stat()
    return (
        f"{bigguest.elf_size(path) / 2**30 if path.suffix == '.elf' else 0:.0f} GiB described, "
        f"{st.st_size / 2**20:,.0f} MiB file, {st.st_blocks * 512 / 2**20:,.0f} MiB on disk"
    ).replace("0 GiB described, ", "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--synthetic",
        default="1T",
        help="address-space sizes built from the 512M guest (comma-separated; '' for none)",
    )
    parser.add_argument("--only", default="", help="commands to run (info,ps,check,bt -a,tui)")
    parser.add_argument(
        "--formats", default="kdump,elf", help="dump formats: kdump (kdump-zlib), elf"
    )
    args = parser.parse_args()
    sizes = bigguest.made()
    if bigguest.SMALL not in sizes or len(sizes) < 2:
        print(
            f"bench_bigguest: no cached big-guest dumps in {bigguest.folder('16G').parent} "
            f"(have {sizes or 'none'}); make them with: {bigguest.MAKE}"
        )
        return 0
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(COMMANDS)
    formats = [f.strip() for f in args.formats.split(",")]
    dumps: dict[str, Path] = {}
    for label in sizes:
        for fmt in formats:
            path = bigguest.folder(label) / (
                "vmcore.kdump-zlib" if fmt == "kdump" else "vmcore.elf"
            )
            if path.is_file():
                dumps[f"{label} {fmt}"] = path
    for label in filter(None, args.synthetic.split(",")):
        out = Path(tempfile.gettempdir()) / f"backchain-bench-bigguest-{label}"
        t = time.perf_counter()
        # In a process of its own: a child's peak RSS starts from its parent's at fork (exec
        # keeps the larger), so this process stays small while it measures.
        subprocess.run(
            [sys.executable, "-c", BUILD, label, str(out)],
            check=True,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
        )
        print(f"synthetic {label}: {out} ready in {time.perf_counter() - t:.1f} s")
        for fmt in formats:
            dumps[f"{label} synthetic {fmt}"] = out / (
                "vmcore.elf" if fmt == "elf" else "vmcore.kdump"
            )
    print(f"load average before: {load()}  ({os.cpu_count()} CPUs)")
    for key, path in dumps.items():
        print(f"  {key:20} {path}: {describe(path)}")
    print()
    print("the reader alone (open_dump: headers, bitmaps, program headers; best of 10):")
    for key, path in dumps.items():
        ms, grown = open_cost(path)
        print(f"  {key:20} open {ms:7.1f} ms, peak RSS +{grown:.1f} MB")
    print()
    best = measure(names, dumps, args.repeat)
    print(f"load average after:  {load()}")
    print()
    print(
        f"best of {args.repeat} runs; ratio = time / the {bigguest.SMALL} dump's time in the "
        "same format (wall: what a user waits; CPU: user + system, less shaken by the load)"
    )
    header = (
        f"{'command':8} {'dump':20} {'wall s':>7} {'ratio':>6} {'CPU s':>6} {'ratio':>6} "
        f"{'peak RSS MB':>12}"
    )
    print(header)
    print("-" * len(header))
    worst = {"wall": 0.0, "cpu": 0.0, "rss": 0.0}
    for name in names:
        for key in dumps:
            fmt = key.split()[-1]
            wall, cpu, rss = best[(name, key)]
            base = best[(name, f"{bigguest.SMALL} {fmt}")]
            ratio, cpu_ratio = wall / base[0], cpu / base[1]
            if not key.startswith(bigguest.SMALL):
                worst["wall"] = max(worst["wall"], ratio)
                worst["cpu"] = max(worst["cpu"], cpu_ratio)
            worst["rss"] = max(worst["rss"], rss)
            times = f"{wall:7.2f} {ratio:6.2f} {cpu:6.2f} {cpu_ratio:6.2f}"
            print(f"{name:8} {key:20} {times} {rss:12.0f}")
    print()
    print(
        f"worst ratio: wall {worst['wall']:.2f}, CPU {worst['cpu']:.2f} (goal <= 1.5); worst "
        f"peak RSS {worst['rss']:.0f} MB (goal <= 150 MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
