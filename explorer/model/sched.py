"""When each task last ran, from the scheduler's own fields (``ps -l``, ``ps -m``).

``task_struct.sched_info.last_arrival`` is the runqueue clock (``rq->clock``, sched_clock
nanoseconds) when the task last got a CPU (kernel/sched/stats.h ``sched_info_arrive``).
The time since then is measured on the same clock: ``rq->clock`` of the per-CPU
``runqueues`` of the CPU the task last ran on (crash ``ps -m`` does the same). Offsets come
from the kernel's type graph (BTF or --vmlinux DWARF), never from a table.
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
    if kernel.symbols is None:
        return {}
    runqueues = kernel.symbols.address_of("runqueues")
    offset = member_offset(kernel, "rq", "clock")
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


__all__ = ["LastRun", "last_run_rows", "member_offset", "rq_clocks"]
