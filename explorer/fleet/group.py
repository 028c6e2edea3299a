"""Identical stacks across dumps: which tasks, in which dumps, share a stack, and in how
many dumps a stack would block a livepatch transition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from explorer.fleet.walk import DumpResult, TaskOutcome


@dataclass(frozen=True)
class StackGroup:
    """Tasks of several dumps with one stack (function names, innermost first).

    Attributes:
        members: (dump index, task) pairs, in dump order then task order.
    """

    stack: tuple[str, ...]
    members: tuple[tuple[int, TaskOutcome], ...]

    @property
    def dumps(self) -> list[int]:
        """Indexes of the dumps holding this stack."""
        return sorted({d for d, _ in self.members})

    @property
    def reliable(self) -> int:
        return sum(1 for _, t in self.members if t.reliable)

    @property
    def blocking(self) -> list[tuple[int, TaskOutcome]]:
        """Members that would block a livepatch transition."""
        return [(d, t) for d, t in self.members if t.blocks]


@dataclass(frozen=True)
class FleetReport:
    """Every dump's outcome and the stacks grouped across them."""

    results: tuple[DumpResult, ...]
    functions: tuple[str, ...]
    groups: tuple[StackGroup, ...]

    @property
    def blocked_dumps(self) -> list[int]:
        """Dumps in which at least one task would block the livepatch transition."""
        return sorted({d for g in self.groups for d, _ in g.blocking})


def group_stacks(results: Sequence[DumpResult], functions: Sequence[str] = ()) -> FleetReport:
    """Group the tasks of ``results`` by identical stack: stacks found in most dumps first,
    then most tasks, then by name (the order does not depend on how the work was spread)."""
    by_stack: dict[tuple[str, ...], list[tuple[int, TaskOutcome]]] = {}
    for i, result in enumerate(results):
        for task in result.tasks:
            by_stack.setdefault(task.stack, []).append((i, task))
    groups = [StackGroup(stack, tuple(members)) for stack, members in by_stack.items()]
    groups.sort(key=lambda g: (-len(g.dumps), -len(g.members), g.stack))
    return FleetReport(tuple(results), tuple(functions), tuple(groups))


def _pids(members: Sequence[tuple[int, TaskOutcome]]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for d, t in members:
        out.setdefault(d, []).append(t.pid)
    return out


def fleet_json(report: FleetReport) -> dict[str, Any]:
    """The report as ``check DUMP... --json`` prints it."""
    paths = [r.path for r in report.results]
    dumps = []
    for r in report.results:
        dumps.append(
            {
                "path": r.path,
                "release": r.release,
                "era": r.era,
                "tasks": len(r.tasks),
                "reliable": sum(1 for t in r.tasks if t.reliable),
                "blocking": sum(1 for t in r.tasks if t.blocks),
                "warnings": list(r.warnings),
                "forced": list(r.forced),
                "error": r.error,
            }
        )
    stacks = []
    for g in report.groups:
        blocking = g.blocking
        stacks.append(
            {
                "stack": list(g.stack),
                "dumps": len(g.dumps),
                "tasks": len(g.members),
                "reliable": g.reliable,
                "members": [
                    {"dump": paths[d], "pids": pids} for d, pids in _pids(g.members).items()
                ],
                "blocking": {
                    "dumps": len({d for d, _ in blocking}),
                    "tasks": [
                        {
                            "dump": paths[d],
                            "pid": t.pid,
                            "comm": t.comm,
                            "verdict": t.verdict,
                            "frame": t.frame,
                            "sleeping_on": t.sleeping_on,
                        }
                        for d, t in blocking
                    ],
                },
            }
        )
    return {
        "dumps": dumps,
        "functions": list(report.functions),
        "blocked_dumps": len(report.blocked_dumps),
        "stacks": stacks,
    }


def fleet_jsonl(report: FleetReport) -> list[str]:
    """``check DUMP... --jsonl``: one JSON object per task (its dump's path first), then one
    per dump that could not be read (``{"dump", "error"}``), for pipelines."""
    import json

    out = []
    for r in report.results:
        for t in r.tasks:
            record = {
                "dump": r.path,
                "release": r.release,
                "pid": t.pid,
                "comm": t.comm,
                "state": t.state,
                "cpu": t.cpu,
                "last_cpu": t.last_cpu,
                "start_time_ns": t.start_time,
                "reliable": t.reliable,
                "verdict": t.verdict,
                "frame": t.frame,
                "stack": list(t.stack),
                "sleeping_on": t.sleeping_on,
                "blocks": t.blocks,
            }
            if r.forced:
                record["forced"] = list(r.forced)
            out.append(json.dumps(record))
    out += [json.dumps({"dump": r.path, "error": r.error}) for r in report.results if r.error]
    return out


def fleet_text(report: FleetReport, every: bool = False) -> list[str]:
    """The report as ``check DUMP...`` prints it; ``every`` (``--all``): every task's name
    and every frame of each stack, not the first few."""
    results = report.results
    n = len(results)
    tasks = sum(len(r.tasks) for r in results)
    ok = sum(1 for r in results for t in r.tasks if t.reliable)
    what = (
        f"livepatch transition for {', '.join(report.functions)}"
        if report.functions
        else "a livepatch transition"
    )
    lines = [
        f"{n} dumps, {tasks} tasks: {ok} reliable, {tasks - ok} not",
        f"{what}: blocked in {len(report.blocked_dumps)} of {n} dumps",
        "",
    ]
    for i, r in enumerate(results, 1):
        if r.error is not None:
            lines.append(f"  {i:>3}. {r.path}: not read: {r.error}")
            continue
        bad = sum(1 for t in r.tasks if t.blocks)
        lines.append(
            f"  {i:>3}. {r.path}  {r.release or '?'}  {len(r.tasks)} tasks, "
            f"{bad} would block (rules: {r.era})"
        )
        lines += [f"       warning: {w}" for w in r.forced]
    lines += ["", "identical stacks across dumps (in most dumps first):"]
    cut = False
    for g in report.groups:
        names = sorted({t.comm for _, t in g.members})
        few, depth = (len(names), len(g.stack)) if every else (4, 6)
        cut = cut or len(names) > few or len(g.stack) > depth
        shown = ", ".join(names[:few]) + (", ..." if len(names) > few else "")
        stack = " <- ".join(g.stack[:depth]) + (" <- ..." if len(g.stack) > depth else "")
        lines.append(
            f"  in {len(g.dumps)} of {n} dumps: {len(g.members)} tasks, {g.reliable} reliable"
            f"  [{shown}]"
        )
        lines.append(f"         {stack or '(no frames)'}")
        blocking = g.blocking
        if blocking:
            where = "; ".join(
                f"{results[d].path} (pid {', '.join(str(p) for p in pids)})"
                for d, pids in _pids(blocking).items()
            )
            verdicts = sorted(
                {
                    f"sleeping on {t.sleeping_on}" if t.sleeping_on else t.verdict
                    for _, t in blocking
                }
            )
            lines.append(
                f"         this stack blocks the patch in {len({d for d, _ in blocking})} of "
                f"{n} dumps ({', '.join(verdicts)}): {where}"
            )
    if cut:
        lines += ["", "(names past 4 and frames past 6 are left out: --all shows them all)"]
    return lines
