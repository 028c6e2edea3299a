"""How long a blocked task has not run (``report``'s BLOCKED finding, issue 25 item 4): its
CPU's ``rq->clock_task`` minus its ``se.exec_start``, the scheduler's own clock.

Checked three ways: drgn computes the same from the same fields on every task off a CPU of
two samples with a -dbg vmlinux; a D-state task planted in a copy of a sample (state and
exec_start written by the test) is reported with the planted duration; and the one task of
the klp samples blocked in ``msleep(100)`` (samples/klp_modules/bcklp_patch.c) has slept
less than the 100 ms plus a jiffy it asked for."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers import dbg, oracles
from tests.helpers.edited import EditedDump, cli

REAL = Path(__file__).resolve().parent.parent / "samples" / "real"


def _blocked_finding(out: str) -> dict:  # type: ignore[type-arg]
    doc = json.loads(out)
    return next(f for f in doc["findings"] if f["id"] == "blocked")


@oracles.needs("drgn")
@pytest.mark.parametrize("sample", ["bpo12-6.12-busy", "deb12-6.1-idle"])
def test_blocked_for_equals_drgn(sample: str, tmp_path: Path) -> None:
    from drgn.helpers.linux.percpu import per_cpu
    from drgn.helpers.linux.pid import find_task
    from drgn.helpers.linux.sched import task_cpu

    from explorer.model.sched import blocked_for
    from explorer.model.tasks import find_tasks

    prog = dbg.drgn_program(sample, tmp_path)
    kernel = dbg.open_sample(sample)
    off_cpu = [t for t in find_tasks(kernel).tasks if t.cpu is None and t.pid > 0]
    rows = blocked_for(kernel, off_cpu)
    assert len(rows) > 40
    hows = []
    for row in rows:
        task = find_task(prog, row.task.pid)
        rq = per_cpu(prog["runqueues"], task_cpu(task))
        assert row.cpu == task_cpu(task), row.task.pid
        since_arrival = int(rq.clock) - int(task.sched_info.last_arrival)
        if int(task.se.exec_start):
            want = int(rq.clock_task) - int(task.se.exec_start)
            assert (row.how, row.ns) == ("exec_start", want), (row.task.pid, row.ns, want)
            # since its last run began is longer, by that run's length
            assert since_arrival >= want
        else:  # migrate_task_rq_fair() zeroed it
            assert (row.how, row.ns) == ("last_arrival", since_arrival), row.task.pid
        hows.append(row.how)
    assert hows.count("exec_start") > 40, hows


def test_planted_d_tasks_are_reported_with_their_durations(tmp_path: Path) -> None:
    """In a copy of the 6.12 sample (16.7 s of uptime): init (pid 1, sleeping in do_wait)
    made TASK_UNINTERRUPTIBLE with ``se.exec_start`` = its CPU's ``rq->clock_task`` - 12.5 s,
    and kthreadd (pid 2) made D with ``se.exec_start`` = 0 (as after a migration) and
    ``sched_info.last_arrival`` = ``rq->clock`` - 3.5 s: BLOCKED says 12.5 s and at most
    3.5 s, longest first."""
    from explorer.model.sched import member_offset, rq_clock_tasks, rq_clocks

    dump = EditedDump.of(tmp_path, "bpo12-6.12-busy")
    init, kthreadd = (next(t for t in dump.scan.tasks if t.pid == p) for p in (1, 2))
    for t in (init, kthreadd):
        assert t.state == "S" and t.cpu is None and t.last_cpu is not None
    offsets = {
        m: member_offset(dump.kernel, "task_struct", m)
        for m in ("__state", "se.exec_start", "sched_info.last_arrival")
    }
    assert None not in offsets.values()
    for t in (init, kthreadd):
        dump.poke_u32(t.address + offsets["__state"], 0x2)  # type: ignore[operator]
    assert init.last_cpu is not None and kthreadd.last_cpu is not None
    init_start = rq_clock_tasks(dump.kernel)[init.last_cpu] - 12_500_000_000
    arrival = rq_clocks(dump.kernel)[kthreadd.last_cpu] - 3_500_000_000
    dump.poke_u64(init.address + offsets["se.exec_start"], init_start)  # type: ignore[operator]
    dump.poke_u64(kthreadd.address + offsets["se.exec_start"], 0)  # type: ignore[operator]
    at = kthreadd.address + offsets["sched_info.last_arrival"]  # type: ignore[operator]
    dump.poke_u64(at, arrival)
    rc, out, err = cli("report", str(dump.path), "--json")
    assert rc == 0, err
    found = _blocked_finding(out)
    assert found["headline"] == "2 tasks in D state"
    rows = [(r["pid"], r["blocked_ns"], r["measured_from"]) for r in found["data"]["tasks"]]
    assert rows == [(1, 12_500_000_000, "exec_start"), (2, 3_500_000_000, "last_arrival")]
    assert found["data"]["tasks"][0]["stack"][:2] == ["do_wait", "kernel_wait4"]
    rc, out, err = cli("report", str(dump.path), "--all")
    assert rc == 0, err
    assert re.search(r"^BLOCKED    2 tasks in D state", out, re.M), out
    assert "           init:1 for 12.5 s in do_wait <- kernel_wait4" in out, out
    assert "           kthreadd:2 for at most 3.5 s in kthreadd" in out, out


@pytest.mark.parametrize("sample", ["klp-6.12-reversed"])
def test_a_task_in_msleep_100_slept_at_most_its_100_ms(sample: str) -> None:
    source = (REAL.parent / "klp_modules" / "bcklp_patch.c").read_text()
    assert "msleep(100);" in source
    rc, out, err = cli("report", str(REAL / sample / "vmcore.zst"), "--json")
    assert rc == 0, err
    (row,) = _blocked_finding(out)["data"]["tasks"]
    assert row["comm"] == "bcklp_new" and row["stack"][0] == "msleep", row
    # msleep(100) sleeps msecs_to_jiffies(100) + 1 jiffies: at most 110 ms at HZ=100
    assert 0 < row["blocked_ns"] <= 110_000_000, row
