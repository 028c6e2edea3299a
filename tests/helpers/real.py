"""The bundled real samples: opened once per test run, and their truth (the kernel's own
console Call Traces and ps output in facts.json, tasks that moved before the dump)."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

from explorer.model.kernel import Kernel
from explorer.model.opening import open_kernel
from explorer.model.tasks import TaskScan, find_tasks
from explorer.walk.analysis import TaskAnalysis, analyse_task, unwind_context

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "real"


#: Samples with a test file of their own, which reuses the helpers here: newer kernels whose
#: era facts differ (tests/test_real_7x.py), the rebuilt kernel with livepatches
#: (tests/test_real_klp.py).
OWN_FILE = {"sid-7.2-modules", "klp-6.12-stalled", "klp-6.12-reversed", "klp-6.12-stacked"}


NAMES = sorted(
    p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file() and p.name not in OWN_FILE
)


#: Tasks that ran or changed state between the guest's printout and the dump: init (it wrote
#: the sysrq trigger, then waits), the CPU hogs (sh loop, dd), and in the idle 6.1 guest the
#: RCU grace-period thread, which went from its fqs wait to waiting for the next period.
MOVED = {
    "bpo12-6.12-busy": {1, 158, 159},
    "bpo12-6.12-nmi": {1, 157, 158},
    "bpo12-6.12-panic": {1, 155, 156},
    "deb12-6.1-idle": {1, 14},
    # Rebuilt 5.10: init and the CPU hogs (sh loop on CPU 0, dd on CPU 1).
    "rebuilt-5.10-busy": {1, 171, 172},
    # 6.1 and sid 7.2 with modules: init and the CPU hogs (sh loop, dd); in 6.1 also the
    # RCU grace-period thread.
    "deb12-6.1-modules": {1, 14, 120, 121},
    "sid-7.2-modules": {1, 139, 140},
    # The livepatch samples (rebuilt 6.12): init, the CPU hogs (sh loop, dd) and the RCU
    # grace-period thread (from its fqs wait to waiting for the next period).
    "klp-6.12-stalled": {1, 16, 115, 116},
    "klp-6.12-reversed": {1, 16, 116, 117},
    "klp-6.12-stacked": {1, 16, 118, 119},
}


#: What each era of sample must show: (sizeof(pt_regs) from DWARF, pt_regs layout, lowcore
#: era, unwinder rules, per-CPU stack types). 5.10 predates the mcck stack and cr1/last_break
#: in pt_regs (v5.12 generic entry); its lowcore has the v5.4 offsets (checked against the
#: DWARF struct lowcore of the rebuilt kernel) and its reliable-stacktrace rules are v5.5's.
ERA = {
    "5.10": (184, "v4.14", "v5.4", "v5.5", ["irq", "nodat", "restart"]),
    "6": (200, "v6.1", "v6.1", "current", ["irq", "nodat", "restart", "mcck"]),
}


def era_facts(kernel: Kernel) -> tuple[int, str, str, str, list[str]]:
    return ERA["5.10"] if kernel.release.startswith("5.10.") else ERA["6"]


@cache
def open_sample(name: str) -> tuple[Kernel, TaskScan, dict, dict[int, TaskAnalysis]]:
    kernel = open_kernel(str(SAMPLES / name / "vmcore.zst"))
    scan = find_tasks(kernel)
    facts = json.loads((SAMPLES / name / "facts.json").read_text())
    ctx = unwind_context(kernel)
    analyses = {}
    for task in scan.tasks:
        analyses.setdefault(task.pid, analyse_task(kernel, task, ctx))
    return kernel, scan, facts, analyses


def check_ps(name: str) -> None:
    """Every task the guest listed in /proc is found with its comm, state and parent."""
    _, scan, facts, _ = open_sample(name)
    found = {t.pid: t for t in scan.tasks}
    assert not scan.warnings
    for truth in facts["proc_stat"]:
        task = found[truth["pid"]]
        # task->comm holds 15 characters; /proc appends a kworker's workqueue after "-"
        # (idle) or "+" (running a work item: the livepatch samples' blocked kworker).
        assert truth["comm"].startswith(task.comm) and len(task.comm) >= min(
            15, len(re.split("[-+]", truth["comm"])[0])
        )
        if truth["pid"] not in MOVED[name] | {17}:
            assert task.state == truth["state"], truth
        assert task.ppid == truth["ppid"] or truth["pid"] == 1
    idle = [t for t in scan.tasks if t.pid == 0]
    assert sorted(t.comm for t in idle) == [f"swapper/{i}" for i in range(facts["cpus"])]


def module_tasks(name: str) -> set[int]:
    """Pids whose sysrq-t Call Trace has a frame in module code (``[jbd2]``)."""
    _, _, facts, _ = open_sample(name)
    return {t["pid"] for t in facts["sysrq_t"] if any("module" in f for f in t["frames"])}


def compare_walks(name: str) -> int:
    """Compare the walk of every task that stayed put (not in MOVED) with the kernel's own
    sysrq-t Call Trace: function names, reliable marks, final pt_regs, verdict. Tasks with
    module frames are compared in tests/test_real_modules.py. Returns how many were
    compared."""
    kernel, _, facts, analyses = open_sample(name)
    compared = 0
    for trace in facts["sysrq_t"]:
        pid = trace["pid"]
        if pid in MOVED[name] | module_tasks(name) or pid not in analyses:
            continue
        a = analyses[pid]
        got = [kernel.symbols.lookup(s.ip).name for s in a.walk.steps]
        assert got == trace["functions"], (pid, trace["comm"])
        assert [s.reliable for s in a.walk.steps] == [f["reliable"] for f in trace["frames"]]
        assert a.walk.end.kind == "final_pt_regs"
        assert a.verdict.reliable, (pid, a.verdict)
        compared += 1
    return compared


def kernel_text(frame: dict) -> str:
    """A Call Trace frame as the kernel printed it: ``kjournald2+0x2d0/0x330 [jbd2]``."""
    return frame["symbol"] + (f" [{frame['module']}]" if "module" in frame else "")


def elf_physical(name: str, phys: int, size: int) -> bytes:
    """``size`` bytes of absolute memory at ``phys`` straight from sample ``name``'s
    compressed ELF file: its program headers (by e_phoff) map physical addresses to file
    offsets."""
    import struct

    import zstandard

    with (SAMPLES / name / "vmcore.zst").open("rb") as f:
        reader = zstandard.ZstdDecompressor().stream_reader(f)
        head = reader.read(0x1000)
        (phoff,) = struct.unpack_from(">Q", head, 0x20)
        phentsize, phnum = struct.unpack_from(">HH", head, 0x36)
        for k in range(phnum):
            kind, _, offset, _, paddr, filesz = struct.unpack_from(
                ">IIQQQQ", head, phoff + k * phentsize
            )
            if kind == 1 and paddr <= phys < paddr + filesz:
                skip = offset + phys - paddr - len(head)
                while skip > 0:
                    skip -= len(reader.read(min(skip, 1 << 20)))
                return reader.read(size)
    raise AssertionError(f"0x{phys:x} in no PT_LOAD")
