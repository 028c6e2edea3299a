"""Two dumps (or two tasks) compared stack by stack.

Tasks are matched by pid (the idle tasks, all pid 0, by name). A task is ``appeared`` (only
in B), ``disappeared`` (only in A), ``changed_verdict`` (its verdict differs, whatever its
stack), ``changed`` (same verdict, another stack) or the same.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass
from typing import Any

from explorer.fleet.walk import DumpResult, TaskOutcome

KINDS = ("changed_verdict", "changed", "appeared", "disappeared")


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

    def of_kind(self, kind: str) -> list[TaskChange]:
        return [c for c in self.changes if c.kind == kind]


def diff_dumps(a: DumpResult, b: DumpResult) -> DumpDiff:
    """Compare every task of ``a`` with the task of the same pid in ``b``."""
    in_a = {t.key: t for t in a.tasks}
    in_b = {t.key: t for t in b.tasks}
    changes = []
    same = 0
    for key in sorted(in_a.keys() | in_b.keys()):
        ta, tb = in_a.get(key), in_b.get(key)
        if ta is None:
            changes.append(TaskChange("appeared", None, tb))
        elif tb is None:
            changes.append(TaskChange("disappeared", ta, None))
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
    return DumpDiff(a, b, tuple(changes), same, tuple(stacks))


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
        "verdict": t.verdict,
        "frame": t.frame,
        "stack": list(t.stack),
    }


def _dump_json(r: DumpResult) -> dict[str, Any]:
    return {"path": r.path, "release": r.release, "tasks": len(r.tasks), "error": r.error}


def diff_json(d: DumpDiff) -> dict[str, Any]:
    """``backchain diff A B --json``."""
    out: dict[str, Any] = {"a": _dump_json(d.a), "b": _dump_json(d.b), "same": d.same}
    for kind in KINDS:
        out[kind] = [{"a": _task_json(c.a), "b": _task_json(c.b)} for c in d.of_kind(kind)]
    out["stacks"] = [{"stack": list(s), "a": na, "b": nb} for s, na, nb in d.stacks]
    return out


def _stack_text(stack: tuple[str, ...]) -> str:
    return " <- ".join(stack) if stack else "(no frames)"


def _who(t: TaskOutcome) -> str:
    return f"pid {t.pid:<6} {t.comm:<16}"


def diff_text(d: DumpDiff) -> list[str]:
    """``backchain diff A B``."""
    lines = [
        f"A: {d.a.path}  {d.a.release or '?'}  {len(d.a.tasks)} tasks",
        f"B: {d.b.path}  {d.b.release or '?'}  {len(d.b.tasks)} tasks",
        f"{d.same} tasks with the same stack and verdict",
    ]
    titles = {
        "changed_verdict": "changed verdict",
        "changed": "changed stack (same verdict)",
        "appeared": "appeared (only in B)",
        "disappeared": "disappeared (only in A)",
    }
    for kind in KINDS:
        found = d.of_kind(kind)
        lines += ["", f"{titles[kind]}: {len(found)}"]
        for c in found:
            if c.a is not None and c.b is not None:
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


def task_diff_json(a: TaskOutcome, b: TaskOutcome) -> dict[str, Any]:
    """``backchain diff A B --pid P [--pid Q] --json``."""
    return {
        "a": _task_json(a),
        "b": _task_json(b),
        "frames": [{"mark": m, "function": name} for m, name in frame_diff(a.stack, b.stack)],
    }


def task_diff_text(a: TaskOutcome, b: TaskOutcome, path_a: str, path_b: str) -> list[str]:
    """``backchain diff A B --pid P [--pid Q]``: the two stacks aligned."""
    lines = [
        f"A: {_who(a)} in {path_a}: {a.verdict}" + ("" if a.frame is None else f" at #{a.frame}"),
        f"B: {_who(b)} in {path_b}: {b.verdict}" + ("" if b.frame is None else f" at #{b.frame}"),
        "",
        "frames (= both, - only A, + only B), innermost first:",
    ]
    lines += [f"  {m} {name}" for m, name in frame_diff(a.stack, b.stack)]
    return lines
