"""`backchain info` time and peak memory on a dump of >= 1 GiB (a sparse file).

Goal (issue 2): <= 0.5 s beyond interpreter start and <= 100 MB RSS.

    python benchmarks/bench_info.py [--gib 4]
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


def build_sparse(path: Path, gib: int) -> None:
    """A 2-CPU synthetic kernel in a single PT_LOAD of ``gib`` GiB (holes stay sparse)."""
    from parsers.write.elfwriter import build_elf_header, build_phdr, encode_note
    from tests.helpers.dumps import two_cpu_dump

    small = Path(tempfile.mkdtemp()) / "small"
    dump = two_cpu_dump(small)
    from parsers.dumps.elfcore import ElfCore

    core = ElfCore(str(dump))
    notes = b"".join(encode_note(_spec(n)) for n in core.notes)
    size = gib << 30
    head_len = 64 + 2 * 56
    data_off = (head_len + len(notes) + 0xFFF) & ~0xFFF
    with open(path, "wb") as f:
        f.write(
            build_elf_header(2)
            + build_phdr("PT_NOTE", head_len, 0, len(notes))
            + build_phdr("PT_LOAD", data_off, 0, size)
        )
        f.write(notes)
        for r in core.ranges:
            f.seek(data_off + r.start)
            f.write(core.read(r.start, r.size))
        f.truncate(data_off + size)
    (path.parent / "System.map").write_text((small / "System.map").read_text())
    core.close()


def _spec(note):
    from parsers.write.elfwriter import NoteSpec

    return NoteSpec(note.name, note.type, note.desc)


PROBE = """
import resource, sys, time
t = time.perf_counter()
from explorer.cli import main
code = main(["info", sys.argv[1]])
sys.stderr.write(f"@@ {time.perf_counter() - t:.3f} "
                 f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}\\n")
raise SystemExit(code)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=int, default=4)
    args = parser.parse_args()
    folder = Path(tempfile.gettempdir()) / f"backchain-bench-info-{args.gib}g"
    folder.mkdir(exist_ok=True)
    dump = folder / "vmcore"
    if not dump.exists():
        build_sparse(dump, args.gib)
    st = os.stat(dump)
    print(
        f"dump             {dump}: {st.st_size / (1 << 30):.1f} GiB apparent, "
        f"{st.st_blocks * 512 / (1 << 20):.1f} MiB on disk"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=env)
    bare = time.perf_counter() - t
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", PROBE, str(dump)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append((time.perf_counter() - t, proc.stderr))
    wall, err = min(runs)
    inner, rss = next(line for line in err.splitlines() if line.startswith("@@")).split()[1:]
    print(f"interpreter      {bare:.3f} s (python -c pass)")
    print(
        f"info, wall       {wall:.3f} s  = {wall - bare:.3f} s beyond interpreter start "
        f"(goal <= 0.5 s)"
    )
    print(f"info, in-process {float(inner):.3f} s (imports + open + card)")
    print(f"peak RSS         {rss} MB (goal <= 100 MB)")


if __name__ == "__main__":
    main()
