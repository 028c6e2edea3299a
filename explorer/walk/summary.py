"""What ``backchain check`` keeps of each task: the verdict and the stack's function names,
not the walk, so that checking 10,000 tasks needs little memory."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from explorer.model.kernel import Kernel
from explorer.model.tasks import Task
from explorer.walk.analysis import TaskAnalysis
from explorer.walk.reliable import Verdict


@dataclass(frozen=True, slots=True)
class TaskVerdict:
    """One task's outcome, without its frames.

    Attributes:
        stack: function names of the frames (``0x…`` where no symbol), innermost first.
    """

    task: Task
    cpu: int | None
    verdict: Verdict
    livepatch: str
    sleeping_on: str | None
    stack: tuple[str, ...]
    era: str


def summarizer(kernel: Kernel) -> Callable[[TaskAnalysis], TaskVerdict]:
    """A function turning an analysis into a :class:`TaskVerdict` (names memoised)."""
    names: dict[int, str] = {}
    symbols = kernel.symbols

    def name(ip: int) -> str:
        known = names.get(ip)
        if known is None:
            sym = symbols.lookup(ip) if symbols is not None else None
            known = names[ip] = sym.name if sym is not None else f"0x{ip:x}"
        return known

    def summarize(a: TaskAnalysis) -> TaskVerdict:
        return TaskVerdict(
            a.task,
            a.cpu,
            a.verdict,
            a.livepatch,
            a.sleeping_on,
            tuple(name(s.ip) for s in a.walk.steps),
            a.walk.era,
        )

    return summarize


def by_verdict(rows: list[TaskVerdict]) -> list[tuple[str, int]]:
    """Verdict labels with their task counts, most common first."""
    return Counter(r.verdict.label for r in rows).most_common()


def by_stack(rows: list[TaskVerdict]) -> list[tuple[tuple[str, ...], list[TaskVerdict]]]:
    """Tasks grouped by identical stack (function names), largest group first."""
    groups: dict[tuple[str, ...], list[TaskVerdict]] = defaultdict(list)
    for r in rows:
        groups[r.stack].append(r)
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))


def blocking(rows: list[TaskVerdict]) -> list[TaskVerdict]:
    """Tasks that would keep a livepatch transition from completing."""
    return [r for r in rows if not r.verdict.reliable or r.sleeping_on]
