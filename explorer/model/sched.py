"""When each task last ran, from the scheduler's own fields (``ps -l``, ``ps -m``).

``task_struct.sched_info.last_arrival`` is the runqueue clock (``rq->clock``, sched_clock
nanoseconds) when the task last got a CPU (kernel/sched/stats.h ``sched_info_arrive``).
The time since then is measured on the same clock: ``rq->clock`` of the per-CPU
``runqueues`` of the CPU the task last ran on (crash ``ps -m`` does the same). Offsets come
from the kernel's type graph (BTF or --vmlinux DWARF), never from a table.

How long a sleeping task has not run (``report``'s blocked tasks) is the scheduler's own
``delta_exec``: ``task_struct.se.exec_start`` is ``rq_clock_task()`` when ``update_curr()``
last charged it, which for a task that went to sleep is the moment ``__schedule()``
dequeued it (``last_arrival`` is when its last run began, earlier by that run's length);
"now" is ``rq->clock_task`` of the CPU it last ran on (kernel/sched/fair.c
``update_curr_se``). ``migrate_task_rq_fair()`` zeroes ``exec_start`` when a task moves to
another CPU; then only ``rq->clock - last_arrival`` is left, an upper bound (``how``
says which; on s390 ``sched_clock()`` is the TOD clock, one clock for every CPU).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from explorer.model.kernel import Kernel
from explorer.model.tasks import Task, task_order
from parsers.errors import DumpError


@dataclass(frozen=True, slots=True)
class LastRun:
    """One task's last run.

    Attributes:
        last_arrival: ``sched_info.last_arrival`` (ns of its CPU's clock), None if unknown.
        since: its CPU's ``rq->clock`` minus ``last_arrival`` (0 for a running task).
        clock: that ``rq->clock``.
    """

    task: Task
    last_arrival: int | None
    since: int | None
    clock: int | None


def member_offset(kernel: Kernel, struct_name: str, path: str) -> int | None:
    """Byte offset of ``a.b.c`` in ``struct_name`` from the type graph, None if absent."""
    from explorer.model.structview import type_graph
    from parsers.types.graph import members_flat

    graph = type_graph(kernel)
    type_id = graph.find(struct_name)
    if type_id is None:
        return None
    bits = 0
    for part in path.split("."):
        hit = next((m for name, m in members_flat(graph, type_id) if name == part), None)
        if hit is None:
            return None
        bits += hit.bit_offset
        type_id = hit.type
    return bits // 8


def rq_clocks(kernel: Kernel) -> dict[int, int]:
    """``rq->clock`` of each CPU's runqueue, by CPU number."""
    return _rq_field(kernel, "clock")


def _rq_field(kernel: Kernel, member: str) -> dict[int, int]:
    """A u64 member of each CPU's ``struct rq``, by CPU number."""
    if kernel.symbols is None:
        return {}
    runqueues = kernel.symbols.address_of("runqueues")
    offset = member_offset(kernel, "rq", member)
    if runqueues is None or offset is None:
        return {}
    out = {}
    for cpu in kernel.cpus:
        if cpu.lowcore is None:
            continue
        try:
            rq = (runqueues + cpu.lowcore.percpu_offset) & 0xFFFFFFFFFFFFFFFF
            out[cpu.number] = kernel.space.read_u64(rq + offset)
        except DumpError:
            continue
    return out


def last_run_rows(kernel: Kernel, tasks: Iterable[Task]) -> tuple[list[LastRun], list[str]]:
    """Every task's last run, most recent first (crash ``ps -l`` order), and notes.

    Raises:
        DumpError: no type graph (no BTF, no --vmlinux).
    """
    notes: list[str] = []
    offset = member_offset(kernel, "task_struct", "sched_info.last_arrival")
    if offset is None:
        raise DumpError(
            "task_struct.sched_info.last_arrival is not in this kernel's types "
            "(CONFIG_SCHED_INFO off?)",
            kernel.path,
        )
    clocks = rq_clocks(kernel)
    if not clocks:
        notes.append("no runqueue clock (runqueues/rq.clock unknown): time since unknown")
    rows = []
    for t in tasks:
        try:
            arrival: int | None = kernel.space.read_u64(t.address + offset)
        except DumpError:
            arrival = None
        cpu = t.cpu if t.cpu is not None else t.last_cpu
        clock = clocks.get(cpu)
        since = None
        if arrival is not None and clock is not None:
            since = 0 if t.cpu is not None else max(clock - arrival, 0)
        rows.append(LastRun(t, arrival, since, clock))
    rows.sort(key=lambda r: (-(r.last_arrival or -1), task_order(r.task)))
    return rows, notes


@dataclass(frozen=True, slots=True)
class Blocked:
    """How long a task that is not on a CPU has not run.

    Attributes:
        exec_start: ``se.exec_start`` (ns of ``rq_clock_task``), None if unreadable.
        clock_task: ``rq->clock_task`` of the CPU it last ran on.
        cpu: that CPU.
        ns: ``clock_task - exec_start`` (None if either is unknown; never negative).
        how: ``exec_start``; ``last_arrival`` where exec_start is 0 (the task migrated
            since it last ran): ``rq->clock - sched_info.last_arrival``, an upper bound;
            ``running`` (0); None when unknown.
    """

    task: Task
    exec_start: int | None
    clock_task: int | None
    cpu: int | None
    ns: int | None
    how: str | None = None


def rq_clock_tasks(kernel: Kernel) -> dict[int, int]:
    """``rq->clock_task`` of each CPU's runqueue, by CPU number."""
    return _rq_field(kernel, "clock_task")


def blocked_for(kernel: Kernel, tasks: Iterable[Task]) -> list[Blocked]:
    """How long each task has not run: its CPU's ``rq->clock_task`` minus its
    ``se.exec_start`` (a running task: 0).

    Raises:
        DumpError: no type graph, or ``se.exec_start`` not in it.
    """
    offset = member_offset(kernel, "task_struct", "se.exec_start")
    if offset is None:
        raise DumpError("task_struct.se.exec_start is not in this kernel's types", kernel.path)
    arrival = member_offset(kernel, "task_struct", "sched_info.last_arrival")
    clocks = rq_clock_tasks(kernel)
    plain = rq_clocks(kernel)
    out = []
    for t in tasks:
        cpu = t.cpu if t.cpu is not None else t.last_cpu
        try:
            start: int | None = kernel.space.read_u64(t.address + offset)
        except DumpError:
            start = None
        clock = clocks.get(cpu) if cpu is not None else None
        ns: int | None = None
        how: str | None = None
        if t.cpu is not None:
            ns, how = 0, "running"
        elif start and clock is not None:
            ns, how = max(clock - start, 0), "exec_start"
        elif start == 0 and arrival is not None and cpu in plain:
            try:
                began = kernel.space.read_u64(t.address + arrival)
                ns, how = max(plain[cpu] - began, 0), "last_arrival"
            except DumpError:
                pass
        out.append(Blocked(t, start, clock, cpu, ns, how))
    return out


__all__ = [
    "Blocked",
    "LastRun",
    "blocked_for",
    "last_run_rows",
    "member_offset",
    "rq_clock_tasks",
    "rq_clocks",
]
