"""Dump mappings keep a bounded resident set: past the budget their pages are dropped
(MADV_DONTNEED) and later reads still return the same bytes."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.reports.walk import analysis_json
from explorer.walk.analysis import analyse_all, unwind_context
from parsers.dumps.residency import FAULT_AROUND, ResidentBudget

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "real" / "deb12-6.1-idle"


def _rss_file_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


def test_release_drops_the_mapped_pages(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    size = 16 << 20
    path.write_bytes(os.urandom(size))
    with path.open("rb") as f:
        m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        before = bytes(m[::4096])  # touches every page
        touched = _rss_file_kb()
        budget = ResidentBudget(m)
        budget.release()
        dropped = _rss_file_kb()
        assert budget.drops == 1
        assert touched - dropped >= 12 << 10  # most of the 16 MiB left the resident set
        assert bytes(m[::4096]) == before  # and reads as before
    finally:
        m.close()


def test_reads_charge_the_budget_and_walks_stay_identical() -> None:
    dump = str(SAMPLE / "vmcore.zst")
    plain = open_kernel(dump)
    tight = open_kernel(dump)
    budget = tight.dump.resident
    budget.limit = 4 * FAULT_AROUND  # drop the pages every few reads
    docs = []
    for kernel in (plain, tight):
        ctx = unwind_context(kernel)
        docs.append(
            analyse_all(
                kernel, find_tasks(kernel).tasks, ctx, keep=lambda a, k=kernel: analysis_json(k, a)
            )
        )
    assert budget.drops > 100
    assert docs[0] == docs[1] and len(docs[0]) > 50
