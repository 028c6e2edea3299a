"""`backchain --help` start-up time beyond the interpreter's own, and what it imports.

Goal (issue 16): <= 100 ms beyond `python -c pass`, with no Textual, construct, pyelftools,
Rich or Capstone imported for --help (handlers import what they need when they run).

    python benchmarks/bench_help.py [--runs 15]

Each command runs --runs times, interleaved, as a fresh process; the fastest run counts
(the machine is shared). The processes run as an installed program does, with bytecode
caching on (PYTHONDONTWRITEBYTECODE, set on some machines, is dropped: with it every
module would be compiled again on every start).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("textual", "construct", "elftools", "rich", "capstone", "zstandard", "cramjam")
COMMANDS = (["--help"], ["check", "--help"], ["bt", "--help"])
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

_IMPORTS = """
import sys
sys.path.insert(0, {root!r})
from explorer.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
heavy = sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))
print(" ".join(heavy), file=sys.stderr)
"""


def _time(argv: list[str]) -> tuple[float, float]:
    """Wall-clock and CPU (user + system) seconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=ENV)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def backchain_command() -> list[str]:
    """The installed ``backchain`` script beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "backchain"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "explorer"]


def heavy_imports(argv: list[str]) -> str:
    """Heavy packages imported by ``backchain ARGV`` (empty when none)."""
    code = _IMPORTS.format(root=str(ROOT), argv=argv, heavy=HEAVY)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return done.stderr.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    runs: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"]}
    runs |= {" ".join(c): [*backchain_command(), *c] for c in COMMANDS}
    for argv in runs.values():  # writes the bytecode cache once
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT, env=ENV)
    wall = dict.fromkeys(runs, float("inf"))
    cpu = dict.fromkeys(runs, float("inf"))
    for _ in range(args.runs):
        for key, argv in runs.items():
            w, c = _time(argv)
            wall[key] = min(wall[key], w)
            cpu[key] = min(cpu[key], c)
    base, base_cpu = wall["python -c pass"], cpu["python -c pass"]
    print(f"{backchain_command()[0]}, fastest of {args.runs} runs, wall clock (CPU time)")
    print(f"interpreter start (python -c pass) {base * 1000:6.1f} ms ({base_cpu * 1000:.1f} ms)")
    for c in COMMANDS:
        key = " ".join(c)
        extra, extra_cpu = (wall[key] - base) * 1000, (cpu[key] - base_cpu) * 1000
        heavy = heavy_imports(list(c)) or "none"
        print(
            f"backchain {key:<13} {wall[key] * 1000:6.1f} ms = {extra:+6.1f} ms beyond start "
            f"({extra_cpu:+.1f} ms CPU; goal <= 100 ms); heavy imports: {heavy}"
        )


if __name__ == "__main__":
    main()
