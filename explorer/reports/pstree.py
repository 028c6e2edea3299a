"""Tasks as ``ps`` selects and relates them: filters, parents, children, the process tree,
counts per state. Parents come from ``real_parent`` (the ``ppid`` of each task)."""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from explorer.model.tasks import Task, comm_column, task_order

#: Order of ``ps -S``: the kernel's own state order (``task_state_array``), idle last.
STATE_ORDER = "RSDTtXZPI"


def matches(
    tasks: Iterable[Task],
    states: set[str] | None = None,
    comm: str | None = None,
    pids: set[int] | None = None,
) -> list[Task]:
    """Tasks in ``states`` (ps letters, case-insensitive except t/T), whose name matches the
    glob ``comm`` (a plain word matches exactly), with a pid in ``pids``."""
    out = []
    for t in tasks:
        if states is not None and t.state.upper() not in {s.upper() for s in states}:
            continue
        if comm is not None and not fnmatch.fnmatchcase(t.comm, comm):
            continue
        if pids is not None and t.pid not in pids:
            continue
        out.append(t)
    return out


def state_counts(tasks: Iterable[Task]) -> dict[str, int]:
    """``ps -S``: tasks per state letter, in the kernel's order."""
    counts = Counter(t.state for t in tasks)
    return {s: counts[s] for s in sorted(counts, key=lambda s: (STATE_ORDER.find(s), s))}


def _parent_map(tasks: list[Task]) -> dict[int, Task | None]:
    by_pid: dict[int, Task] = {}
    for t in sorted(tasks, key=task_order):
        by_pid.setdefault(t.pid, t)
    parents: dict[int, Task | None] = {}
    for t in tasks:
        parent = None if t.pid == 0 or t.ppid is None else by_pid.get(t.ppid)
        parents[t.address] = parent if parent is not None and parent is not t else None
    return parents


def parents_of(tasks: list[Task], task: Task) -> list[Task]:
    """``ps -p``: ``task`` then its parent, grandparent, ... up to the first idle task."""
    parents = _parent_map(tasks)
    chain, seen = [task], {task.address}
    while (p := parents.get(chain[-1].address)) is not None and p.address not in seen:
        chain.append(p)
        seen.add(p.address)
    return chain


def children_of(tasks: list[Task], task: Task) -> list[Task]:
    """``ps -c``: the tasks whose parent is ``task``, in pid order."""
    parents = _parent_map(tasks)
    return sorted(
        (t for t in tasks if (p := parents.get(t.address)) is not None and p is task),
        key=task_order,
    )


#: Deepest process tree drawn: real ones are a few levels deep; a parent chain forged
#: through thousands of tasks is cut here (and the drawing and its JSON stay shallow).
MAX_DEPTH = 128


@dataclass
class Node:
    """One task of the process tree and its children.

    Attributes:
        cycle: a root only because its ancestors loop back to it (``real_parent`` damaged).
        cut: how many descendants are not shown, below :data:`MAX_DEPTH`.
    """

    task: Task
    children: list[Node] = field(default_factory=list)
    cycle: bool = False
    cut: int = 0


def roots(tasks: list[Task], selected: list[Task]) -> list[Node]:
    """The trees of ``selected``: each selected task whose parent is not selected, with all
    its descendants; then each task whose parents loop (none of them a root otherwise), so
    a parent cycle hides no task."""
    parents = _parent_map(tasks)
    kids: dict[int, list[Task]] = {}
    for t in sorted(tasks, key=task_order):
        p = parents.get(t.address)
        if p is not None:
            kids.setdefault(p.address, []).append(t)
    chosen = {t.address for t in selected}
    seen: set[int] = set()

    def build(t: Task, depth: int = 0) -> Node:
        seen.add(t.address)
        below = [c for c in kids.get(t.address, []) if c.address not in seen]
        if depth >= MAX_DEPTH:  # the rest of this branch is counted, not drawn
            hidden, stack = 0, below
            while stack:
                c = stack.pop()
                if c.address not in seen:
                    seen.add(c.address)
                    hidden += 1
                    stack.extend(kids.get(c.address, []))
            return Node(t, cut=hidden)
        return Node(t, [build(c, depth + 1) for c in below if c.address not in seen])

    out = []
    for t in sorted(selected, key=task_order):
        p = parents.get(t.address)
        if (p is None or p.address not in chosen) and t.address not in seen:
            out.append(build(t))
    for t in sorted(selected, key=task_order):
        if t.address not in seen:
            node = build(t)
            node.cycle = True
            out.append(node)
    return out


def tree_warnings(nodes: list[Node]) -> list[str]:
    """What :func:`roots` had to do with damaged parents: loops broken, deep trees cut."""
    out = []
    cycles = [n.task.pid for n in nodes if n.cycle]
    if cycles:
        out.append(
            f"the parents of pid {', '.join(map(str, cycles))} loop back (real_parent is "
            "damaged): each shown as a root of the tree"
        )
    stack, cut = list(nodes), 0
    while stack:
        node = stack.pop()
        cut += node.cut
        stack.extend(node.children)
    if cut:
        out.append(f"process tree deeper than {MAX_DEPTH} levels: cut there ({cut} task(s))")
    return out


def tree_lines(nodes: list[Node]) -> list[str]:
    """``ps --tree`` of :func:`roots` (like ``pstree -p``): one line per task, children
    indented."""
    lines: list[str] = []

    def draw(node: Node, prefix: str, last: bool, top: bool) -> None:
        t = node.task
        label = f"{comm_column(t)}({t.pid})"
        lines.append(label if top else f"{prefix}{'└─ ' if last else '├─ '}{label}")
        inner = "" if top else prefix + ("   " if last else "│  ")
        for i, child in enumerate(node.children):
            draw(child, inner, i == len(node.children) - 1, False)

    for root in nodes:
        draw(root, "", True, True)
    return lines


__all__ = [
    "Node",
    "children_of",
    "matches",
    "parents_of",
    "roots",
    "state_counts",
    "tree_lines",
    "tree_warnings",
]
