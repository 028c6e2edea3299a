"""Speed and memory of the DWARF type readers on the -dbg vmlinuxes in the cache: the type
profile built without its cache (``profile_from_dwarf``), and the type graph of ``struct`` /
``task --vmlinux`` (``DwarfTypes``): every struct of the profile found, and every type reachable
from them decoded. Each measurement is a fresh process (as a user runs it).

    python benchmarks/bench_types.py [RELEASE ...]
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROFILE = """
import resource, sys, time
t = time.perf_counter()
from parsers.types.profile import profile_from_dwarf
profile_from_dwarf(sys.argv[1], use_cache=False)
use = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - t, use.ru_utime + use.ru_stime, use.ru_maxrss, 0)
"""

GRAPH = """
import resource, sys, time
t = time.perf_counter()
from parsers.types.graph import DwarfTypes
from parsers.types.profile import STRUCTS
graph = DwarfTypes(sys.argv[1])
queue = []
for names in STRUCTS.values():
    for name in names:
        found = graph.find(name)
        if found is not None:
            queue.append(found)
            break
seen = set()
while queue:
    type_id = queue.pop()
    if type_id in seen:
        continue
    seen.add(type_id)
    t_ = graph.get(type_id)
    queue.extend(m.type for m in t_.members)
    if t_.target is not None:
        queue.append(t_.target)
use = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - t, use.ru_utime + use.ru_stime, use.ru_maxrss, len(seen))
"""


def run(code: str, vmlinux: Path) -> tuple[float, float, float, int]:
    done = subprocess.run(
        [sys.executable, "-c", code, str(vmlinux)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    seconds, cpu, rss_kib, types = done.stdout.split()
    return float(seconds), float(cpu), int(rss_kib) / 1024, int(types)


def main() -> None:
    from parsers.cache import cache_dir

    kernels = cache_dir("real", "kernels")
    releases = sys.argv[1:] or sorted(p.name for p in kernels.iterdir() if p.is_dir())
    for release in releases:
        vmlinux = kernels / release / "vmlinux"
        if not vmlinux.is_file():
            print(f"{release}: skipped, no -dbg vmlinux at {vmlinux}")
            continue
        seconds, cpu, rss, _ = run(PROFILE, vmlinux)
        print(
            f"{release}: profile from DWARF (no cache) {seconds:.2f} s "
            f"({cpu:.2f} s CPU from interpreter start), peak {rss:.0f} MB"
        )
        seconds, cpu, rss, types = run(GRAPH, vmlinux)
        print(
            f"{release}: type graph, the profile's structs and the {types} types they reach "
            f"{seconds:.2f} s ({cpu:.2f} s CPU from interpreter start), peak {rss:.0f} MB"
        )


if __name__ == "__main__":
    main()
