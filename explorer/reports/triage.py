"""``backchain report``: the first five minutes of a triage, as ranked findings.

Each :class:`Finding` is one question a kernel engineer asks first (why did the machine
stop, what was each CPU doing, who is blocked, which stacks cannot be trusted and why, is a
livepatch in flight, which modules taint the kernel, what did the log warn about), answered
in a headline and a few detail lines, with the command that shows it in full. Data only:
``explorer.cli.report`` draws text, Markdown and JSON from it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel
    from explorer.model.tasks import TaskScan
    from explorer.walk.analysis import TaskAnalysis

#: Log lines that are warnings or oopses (the kernel's own prefixes).
_ALARM = re.compile(
    r"^(WARNING:|Oops|BUG:|kernel BUG|Kernel panic|general protection|Unable to handle|"
    r"INFO: task .* blocked for more than|watchdog: BUG|rcu: INFO|list_add corruption|"
    r"Kernel stack overflow|Low Address Protection|.*segfault at)"
)
#: Functions a sleeping task's stack starts with that say nothing of why it waits.
_SCHEDULER = frozenset(
    {"__schedule", "schedule", "schedule_timeout", "schedule_preempt_disabled", "io_schedule"}
)


@dataclass(frozen=True)
class Finding:
    """One answer of the report.

    Attributes:
        id: ``stopped``, ``cpus``, ``blocked``, ``unreliable``, ``stack_sanity``,
            ``livepatch``, ``taints``, ``log``.
        title: the question, short (``why it stopped``).
        headline: the answer in one line.
        details: more lines, most important first (the default view shows a few).
        command: the backchain command that shows it in full (``DUMP`` for the dump).
        data: the same facts for ``--json``.
    """

    id: str
    title: str
    headline: str
    details: tuple[str, ...] = ()
    command: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _stack_names(kernel: Kernel, a: TaskAnalysis, skip_scheduler: bool = False) -> list[str]:
    names: list[str] = []
    for s in a.walk.steps:
        sym = kernel.lookup_symbol(s.ip) if kernel.symbols is not None else None
        name = sym.name if sym is not None else f"0x{s.ip:x}"
        if skip_scheduler and not names and name in _SCHEDULER:
            continue
        names.append(name)
    return names


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _who(a: TaskAnalysis) -> str:
    return f"{a.task.comm}:{a.task.pid}"


def stopped(kernel: Kernel, log: list[Any], by_task: dict[int, TaskAnalysis]) -> Finding:
    """Why the machine stopped: the panic or oops text, the panic CPU and task, its stack."""
    from explorer.model.printk import panic_info

    info = panic_info(kernel, log)
    panic_cpu = info.cpu
    cpu = next((c for c in kernel.cpus if c.number == panic_cpu), None)
    a = by_task.get(cpu.current_task or 0) if cpu is not None else None
    details: list[str] = []
    data: dict[str, Any] = {"message": info.message, "cpu": panic_cpu}
    if info.message:
        headline = info.message
    elif panic_cpu is not None:
        headline = f"panic on CPU {panic_cpu} (no panic message in the log)"
    else:
        headline = (
            "no panic: the dump was taken from a running system (no panic_cpu, no panic in the log)"
        )
    if a is not None:
        names = _stack_names(kernel, a)
        if "panic" in names:  # what ran after panic() (notifiers, the dump) is machinery
            names = names[names.index("panic") :]
        details.append(f"CPU {panic_cpu}, {_who(a)}: " + " <- ".join(names))
        data.update(pid=a.task.pid, comm=a.task.comm, stack=names)
    trigger = _trigger(log, info.message)
    if trigger:
        details.insert(0, f"after: {trigger}")
        data["trigger"] = trigger
    return Finding("stopped", "why it stopped", headline, tuple(details), "bt DUMP", data)


def _trigger(log: list[Any], message: str | None) -> str | None:
    """The log line that set the end off (sysrq, an oops), just before the panic line."""
    if not message:
        return None
    for i in range(len(log) - 1, -1, -1):
        if log[i].text == message:
            for rec in reversed(log[max(0, i - 40) : i]):
                text = rec.text.strip()
                if text.startswith(("sysrq:", "Oops", "BUG:", "kernel BUG", "Unable to handle")):
                    return text
            return None
    return None


def cpus(kernel: Kernel, by_task: dict[int, TaskAnalysis]) -> Finding:
    """What each CPU was doing: its current task and the function it stood in."""
    lines = []
    rows = []
    for c in kernel.cpus:
        a = by_task.get(c.current_task or 0)
        if a is None:
            lines.append(f"CPU {c.number}: current task 0x{c.current_task or 0:x} unreadable")
            continue
        where = kernel.symbolize(a.walk.steps[0].ip) if a.walk.steps else None
        if where is None and a.walk.end.kind == "user_regs":
            where = "user space"
        idle = a.task.is_idle
        what = "idle" if idle else _who(a)
        lines.append(f"CPU {c.number}: {what} in {where or '?'}")
        rows.append({"cpu": c.number, "pid": a.task.pid, "comm": a.task.comm, "at": where})
    busy = sum(1 for r in rows if r["pid"] != 0)
    head = f"{len(kernel.cpus)} CPUs, {busy} running a task, {len(rows) - busy} idle"
    return Finding(
        "cpus", "what each CPU was doing", head, tuple(lines), "bt DUMP -a", {"cpus": rows}
    )


def blocked(kernel: Kernel, analyses: list[TaskAnalysis]) -> Finding:
    """Tasks in D state, longest blocked first, with where they wait: how long each has not
    run is its CPU's ``rq->clock_task`` minus its ``se.exec_start``, the scheduler's own
    clock (:func:`explorer.model.sched.blocked_for`)."""
    from explorer.model.sched import blocked_for

    stuck = [a for a in analyses if a.task.state == "D"]
    since: dict[int, int | None] = {}
    how: dict[int, str | None] = {}
    if stuck:
        try:
            rows = blocked_for(kernel, [a.task for a in stuck])
        except DumpError:
            rows = []
        since = {b.task.address: b.ns for b in rows}
        how = {b.task.address: b.how for b in rows}
    stuck.sort(key=lambda a: -(since.get(a.task.address) or -1))
    lines = []
    data = []
    for a in stuck:
        names = _stack_names(kernel, a, skip_scheduler=True)
        ns = since.get(a.task.address)
        clock = how.get(a.task.address)
        how_long = _duration(ns) if ns is not None else "time not recorded"
        if clock == "last_arrival":  # since its last run began: an upper bound
            how_long = "at most " + how_long
        lines.append(f"{_who(a)} for {how_long} in " + " <- ".join(names[:3]))
        data.append(
            {
                "pid": a.task.pid,
                "comm": a.task.comm,
                "blocked_ns": ns,
                "measured_from": clock,
                "stack": names,
            }
        )
    head = f"{_plural(len(stuck), 'task')} in D state" if stuck else "no task in D state"
    return Finding(
        "blocked",
        "tasks blocked (D)",
        head,
        tuple(lines),
        "bt DUMP --all --state D",
        {
            "tasks": data,
            "clock": "rq->clock_task of its CPU - se.exec_start (exec_start 0, the task "
            "migrated: rq->clock - sched_info.last_arrival, an upper bound)",
        },
    )


def _duration(ns: int) -> str:
    """``0.004 s``, ``42.5 s``, ``2 min 5 s``, ``3 h 12 min``."""
    s = ns / 1e9
    if s < 1:
        return f"{s:.3f} s"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{int(s // 60)} min {int(s % 60)} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60)} min"


def unreliable(analyses: list[TaskAnalysis]) -> Finding:
    """Unreliable stacks grouped by cause."""
    causes: Counter[str] = Counter()
    who: dict[str, list[str]] = {}
    for a in analyses:
        if a.verdict.reliable:
            continue
        label = a.verdict.label
        causes[label] += 1
        who.setdefault(label, []).append(_who(a))
    total = sum(causes.values())
    lines = []
    for label, n in causes.most_common():
        names = who[label]
        shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
        lines.append(f"{n:>4}  {label}: {shown}")
    head = f"{total} of {len(analyses)} stacks unreliable" if total else "every stack reliable"
    return Finding(
        "unreliable",
        "unreliable stacks",
        head,
        tuple(lines),
        "check DUMP",
        {"causes": dict(causes.most_common()), "tasks": total, "of": len(analyses)},
    )


def stack_sanity(kernel: Kernel, analyses: list[TaskAnalysis]) -> Finding:
    """Stack-end magic and CPU agreement of every task."""
    from explorer.walk.sanity import stack_sanity as sanity

    bad = []
    intact = 0
    for a in analyses:
        s = sanity(kernel, a.task, a.walk, high_water=False)
        intact += s.magic_intact is True
        bad += [f"{_who(a)}: {c.text}" for c in s.corrupt]
    head = f"{len(bad)} stack problems" if bad else f"STACK_END_MAGIC intact on {intact} stacks"
    return Finding(
        "stack_sanity", "stack sanity", head, tuple(bad), "bt DUMP --all -v", {"problems": bad}
    )


def livepatch(kernel: Kernel) -> Finding | None:
    """Livepatch state when the kernel has a livepatch loaded: the ``klp`` command's summary
    line (:func:`explorer.livepatch.summary.livepatch_summary`)."""
    from explorer.livepatch.summary import livepatch_summary

    line = livepatch_summary(kernel)
    if line is None:
        return None
    return Finding("livepatch", "livepatch", line, (), "klp DUMP", {"summary": line})


def taints(kernel: Kernel) -> Finding | None:
    """Modules with taint flags."""
    tainting = [(m.name, m.taint_letters) for m in kernel.modules.modules if m.taints]
    if not tainting:
        return None
    lines = [f"{name} ({letters})" for name, letters in tainting]
    head = f"{_plural(len(tainting), 'module')} taint the kernel: " + ", ".join(lines[:4])
    return Finding(
        "taints", "modules with taints", head, tuple(lines), "mod DUMP", {"modules": dict(tainting)}
    )


def log_alarms(log: list[Any], stopped_message: str | None) -> Finding | None:
    """Warnings and oopses in the log before the end."""
    hits = [r for r in log if _ALARM.match(r.text.strip()) and r.text != stopped_message]
    if not hits:
        return None
    kinds = Counter(r.text.strip().split(":")[0].split(" ")[0] for r in hits)
    head = f"{len(hits)} warnings/oopses in the log: " + ", ".join(
        f"{n} {k}" for k, n in kinds.most_common(3)
    )
    return Finding(
        "log",
        "warnings in the log",
        head,
        tuple(r.line() for r in hits),
        "log DUMP --grep WARNING",
        {"lines": [r.line() for r in hits]},
    )


def triage(kernel: Kernel, scan: TaskScan) -> list[Finding]:
    """Every finding, in the order a triage reads them."""
    from explorer.model.printk import read_log
    from explorer.walk.analysis import analyse_all, unwind_context

    try:
        log = read_log(kernel)
    except DumpError:
        log = []
    analyses: list[TaskAnalysis] = analyse_all(kernel, scan.tasks, unwind_context(kernel))
    by_task = {a.task.address: a for a in analyses}
    first = stopped(kernel, log, by_task)
    found: list[Finding | None] = [
        first,
        log_alarms(log, first.data.get("message")),
        blocked(kernel, analyses),
        unreliable(analyses),
        stack_sanity(kernel, analyses),
        cpus(kernel, by_task),
        livepatch(kernel),
        taints(kernel),
    ]
    return [f for f in found if f is not None]
