"""Two dumps (or two tasks) compared stack by stack.

A task is one task of one boot: its pid and its fork time (``task_struct.start_boottime``).
When both dumps are of the same boot (pid 1 and kthreadd started at the same nanosecond in
both), a pid whose start time differs was reused by another task; when they are of different
boots (or the types lack the start time), tasks are paired by pid and name, and a pid with
another name in B is another task. The idle tasks (all pid 0) pair by name (``swapper/N``).

A pair is ``changed_verdict`` (its verdict differs, whatever its stack), ``changed`` (same
verdict, another stack) or the same; ``reused_pid`` (the pid names another task in B),
``appeared`` (only in B) and ``disappeared`` (only in A) are not compared.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from explorer.fleet.walk import DumpResult, TaskOutcome

KINDS = ("changed_verdict", "changed", "reused_pid", "appeared", "disappeared")


@dataclass(frozen=True)
class TaskChange:
    """One task's change between A and B (``a`` or ``b`` None when absent there)."""

    kind: str
    a: TaskOutcome | None
    b: TaskOutcome | None


@dataclass(frozen=True)
class DumpDiff:
    """What changed from dump A to dump B."""

    a: DumpResult
    b: DumpResult
    changes: tuple[TaskChange, ...]
    same: int
    #: Stacks whose number of tasks differs: (stack, tasks in A, tasks in B).
    stacks: tuple[tuple[tuple[str, ...], int, int], ...]
    #: True: one boot (tasks paired by pid and start time); False: different boots; None:
    #: the start times are unknown. Otherwise tasks are paired by pid and name.
    same_boot: bool | None = None
    #: What makes the comparison weaker: different kernels, different boots.
    warnings: tuple[str, ...] = ()

    def of_kind(self, kind: str) -> list[TaskChange]:
        return [c for c in self.changes if c.kind == kind]


def same_boot(a: DumpResult, b: DumpResult) -> bool | None:
    """Whether the two dumps are of one boot: the tasks with pid 1 and 2 (init, kthreadd)
    started at the same nanosecond in both; None when neither start time is known."""
    known = []
    for pid in (1, 2):
        ta = next((t for t in a.tasks if t.pid == pid), None)
        tb = next((t for t in b.tasks if t.pid == pid), None)
        if ta is not None and tb is not None and None not in (ta.start_time, tb.start_time):
            known.append(ta.start_time == tb.start_time)
    return all(known) if known else None


def same_kernel(a: DumpResult, b: DumpResult) -> bool:
    """Same release and, where both dumps name it, the same build-id."""
    return a.release == b.release and not (a.build_id and b.build_id and a.build_id != b.build_id)


def same_task(ta: TaskOutcome, tb: TaskOutcome, boot: bool | None) -> bool:
    """Whether two tasks of the same pid are one task (see the module's docstring)."""
    if ta.pid == 0 or not boot:
        return ta.comm == tb.comm
    return ta.start_time == tb.start_time


def kernel_warnings(a: DumpResult, b: DumpResult, boot: bool | None) -> list[str]:
    """Why the comparison is weaker than a task's own history: another kernel, another boot."""
    out = []
    if not same_kernel(a, b):
        out.append(
            f"A and B run different kernels ({_kernel_name(a)} and {_kernel_name(b)}): tasks "
            "are paired by pid and name, and stacks differ by code as well as by what the "
            "tasks do"
        )
    elif boot is False:
        out.append(
            "A and B are different boots (init started at another time): tasks are paired "
            "by pid and name, which only says they hold the same pid"
        )
    elif boot is None:
        out.append("task start times unknown: tasks are paired by pid and name")
    return out


def _kernel_name(r: DumpResult) -> str:
    return f"{r.release or '?'}" + (f" build-id {r.build_id[:12]}" if r.build_id else "")


def diff_dumps(a: DumpResult, b: DumpResult) -> DumpDiff:
    """Compare every task of ``a`` with the same task in ``b``."""
    in_a = {t.key: t for t in a.tasks}
    in_b = {t.key: t for t in b.tasks}
    boot = same_boot(a, b) if same_kernel(a, b) else False
    changes = []
    same = 0
    for key in sorted(in_a.keys() | in_b.keys()):
        ta, tb = in_a.get(key), in_b.get(key)
        if ta is None:
            changes.append(TaskChange("appeared", None, tb))
        elif tb is None:
            changes.append(TaskChange("disappeared", ta, None))
        elif not same_task(ta, tb, boot):
            changes.append(TaskChange("reused_pid", ta, tb))
        elif ta.verdict != tb.verdict:
            changes.append(TaskChange("changed_verdict", ta, tb))
        elif ta.stack != tb.stack:
            changes.append(TaskChange("changed", ta, tb))
        else:
            same += 1
    ca = Counter(t.stack for t in a.tasks)
    cb = Counter(t.stack for t in b.tasks)
    stacks = sorted(
        ((s, ca[s], cb[s]) for s in ca.keys() | cb.keys() if ca[s] != cb[s]),
        key=lambda x: (-abs(x[2] - x[1]), x[0]),
    )
    return DumpDiff(
        a, b, tuple(changes), same, tuple(stacks), boot, tuple(kernel_warnings(a, b, boot))
    )


def frame_diff(a: tuple[str, ...], b: tuple[str, ...]) -> list[tuple[str, str]]:
    """Two stacks aligned outermost-last as ``(mark, function)``: ``=`` in both, ``-`` only
    in A, ``+`` only in B (innermost first, as the stacks are listed)."""
    out: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=list(a), b=list(b), autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out += [("=", name) for name in a[i1:i2]]
        else:
            out += [("-", name) for name in a[i1:i2]]
            out += [("+", name) for name in b[j1:j2]]
    return out


def _task_json(t: TaskOutcome | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "pid": t.pid,
        "comm": t.comm,
        "state": t.state,
        "cpu": t.cpu,
        "last_cpu": t.last_cpu,
        "start_time_ns": t.start_time,
        "verdict": t.verdict,
        "frame": t.frame,
        "stack": list(t.stack),
    }


def _dump_json(r: DumpResult) -> dict[str, Any]:
    return {
        "path": r.path,
        "release": r.release,
        "build_id": r.build_id,
        "tasks": len(r.tasks),
        "error": r.error,
    }


def diff_json(d: DumpDiff) -> dict[str, Any]:
    """``backchain diff A B --json``."""
    out: dict[str, Any] = {
        "a": _dump_json(d.a),
        "b": _dump_json(d.b),
        "same_boot": d.same_boot,
        "paired_by": "pid and start time" if d.same_boot else "pid and name",
        "warnings": list(d.warnings),
        "same": d.same,
    }
    for kind in KINDS:
        out[kind] = [{"a": _task_json(c.a), "b": _task_json(c.b)} for c in d.of_kind(kind)]
    out["stacks"] = [{"stack": list(s), "a": na, "b": nb} for s, na, nb in d.stacks]
    return out


def _stack_text(stack: tuple[str, ...]) -> str:
    return " <- ".join(stack) if stack else "(no frames)"


def _who(t: TaskOutcome) -> str:
    return f"pid {t.pid:<6} {t.comm:<16}"


def _born(t: TaskOutcome) -> str:
    """A task's name and, when known, its start time (seconds since boot, as ``ps``)."""
    return t.comm + ("" if t.start_time is None else f" (started {t.start_time / 1e9:.6f} s)")


def diff_text(d: DumpDiff) -> list[str]:
    """``backchain diff A B``."""
    lines = [
        f"A: {d.a.path}  {d.a.release or '?'}  {len(d.a.tasks)} tasks",
        f"B: {d.b.path}  {d.b.release or '?'}  {len(d.b.tasks)} tasks",
    ]
    lines += [f"warning: {w}" for w in d.warnings]
    lines.append(f"{d.same} tasks with the same stack and verdict")
    titles = {
        "changed_verdict": "changed verdict",
        "changed": "changed stack (same verdict)",
        "reused_pid": "pid reused by another task (not compared)",
        "appeared": "appeared (only in B)",
        "disappeared": "disappeared (only in A)",
    }
    for kind in KINDS:
        found = d.of_kind(kind)
        lines += ["", f"{titles[kind]}: {len(found)}"]
        for c in found:
            if c.kind == "reused_pid":
                assert c.a is not None and c.b is not None
                lines.append(f"  pid {c.a.pid:<6} {_born(c.a)} in A, {_born(c.b)} in B")
            elif c.a is not None and c.b is not None:
                head = f"  {_who(c.a)}"
                if c.a.verdict != c.b.verdict:
                    head += f" {c.a.verdict} -> {c.b.verdict}"
                lines.append(head)
                if c.a.stack != c.b.stack:
                    lines += [f"      {m} {name}" for m, name in frame_diff(c.a.stack, c.b.stack)]
                else:
                    lines.append(f"      {_stack_text(c.a.stack)}")
            else:
                t = c.a or c.b
                assert t is not None
                lines.append(f"  {_who(t)} {t.verdict}")
                lines.append(f"      {_stack_text(t.stack)}")
    if d.stacks:
        lines += ["", "stacks whose number of tasks changed (A -> B):"]
        for stack, na, nb in d.stacks:
            lines.append(f"  {na:>5} -> {nb:<5} {_stack_text(stack)}")
    return lines


def task_diff_json(a: TaskOutcome, b: TaskOutcome, boot: bool | None) -> dict[str, Any]:
    """``backchain diff A B --pid P [--pid Q] --json``."""
    return {
        "a": _task_json(a),
        "b": _task_json(b),
        "same_task": a.pid == b.pid and same_task(a, b, boot),
        "frames": [{"mark": m, "function": name} for m, name in frame_diff(a.stack, b.stack)],
    }


def task_diff_text(
    a: TaskOutcome, b: TaskOutcome, path_a: str, path_b: str, boot: bool | None
) -> list[str]:
    """``backchain diff A B --pid P [--pid Q]``: the two stacks aligned."""
    lines = [
        f"A: {_who(a)} in {path_a}: {a.verdict}" + ("" if a.frame is None else f" at #{a.frame}"),
        f"B: {_who(b)} in {path_b}: {b.verdict}" + ("" if b.frame is None else f" at #{b.frame}"),
    ]
    if a.pid == b.pid and not same_task(a, b, boot):
        lines.append(f"note: two different tasks: {_born(a)} in A, {_born(b)} in B")
    lines += [
        "",
        "frames (= both, - only A, + only B), innermost first:",
    ]
    lines += [f"  {m} {name}" for m, name in frame_diff(a.stack, b.stack)]
    return lines
