"""A transition in progress as other commands see it: ``check`` hands over the walks it
makes anyway, ``ps`` asks for the blocking tasks; both mark them."""

from __future__ import annotations

from dataclasses import dataclass, field

from explorer.livepatch.replay import Decision, Replay, decide, kernel_order, replay
from explorer.livepatch.state import (
    LivepatchState,
    TaskPatchState,
    read_livepatch,
    task_patch_states,
)
from explorer.model.kernel import Kernel
from explorer.model.tasks import TaskScan
from explorer.walk.analysis import TaskAnalysis


@dataclass
class Transition:
    """The transition in progress, and the walks of its pending tasks collected so far."""

    kernel: Kernel
    state: LivepatchState
    scan: TaskScan
    pending: set[int]
    states: dict[int, TaskPatchState] = field(default_factory=dict)
    idle_cpus: dict[int, int] = field(default_factory=dict)
    walked: dict[int, TaskAnalysis] = field(default_factory=dict)

    @classmethod
    def of(cls, kernel: Kernel, scan: TaskScan) -> Transition | None:
        """The transition in progress, None when there is none (or no livepatch).

        Raises:
            DumpError: the livepatch state is damaged or cannot be read.
        """
        state = read_livepatch(kernel)
        if not isinstance(state, LivepatchState) or state.transition_patch is None:
            return None
        threads, idle, _ = kernel_order(kernel, scan)
        states = task_patch_states(kernel, [*threads, *(t for _, t in idle)], state.tif_bit)
        target = state.target_state
        pending = {a for a, ps in states.items() if ps.patch_state != target}
        return cls(kernel, state, scan, pending, states, {t.address: c for c, t in idle})

    def keep(self, analysis: TaskAnalysis) -> None:
        """Remember the walk of a pending task (``check`` walks every task)."""
        if analysis.task.address in self.pending:
            self.walked[analysis.task.address] = analysis

    def decide(self, analysis: TaskAnalysis) -> Decision | None:
        """The kernel's decision for one task (None: it is in the target state already, or
        not one ``klp_try_complete_transition()`` visits)."""
        address = analysis.task.address
        if address not in self.pending or self.state.target_state is None:
            return None
        return decide(
            self.state,
            analysis.task,
            self.states[address],
            self.state.target_state,
            analysis,
            self.idle_cpus.get(address),
        )

    def replay(self) -> Replay:
        """The kernel's decision for each pending task (walks only those not kept)."""
        return replay(self.kernel, self.state, self.scan, walked=self.walked)


def cause_text(decision: Decision) -> str:
    """The kernel's words for why the task blocks (``is running``, ...), without names."""
    who = f"{decision.task.comm}:{decision.task.pid} "  # a comm may hold spaces
    return decision.message.removeprefix(who)


def blocking_marks(result: Replay) -> dict[int, str]:
    """``task_struct`` address → ``blocks livepatch: <the kernel's words>``."""
    return {d.task.address: f"blocks livepatch: {cause_text(d)}" for d in result.blocking}


def patch_functions(kernel: Kernel, name: str) -> list[str]:
    """The functions (``old_name``) of the livepatch ``name`` loaded in the dump.

    Raises:
        DumpError: no livepatch of that name (the loaded ones named), or none at all.
    """
    from parsers.errors import DumpError

    state = read_livepatch(kernel)
    if not isinstance(state, LivepatchState):
        raise DumpError(f"--patch {name}: no livepatch loaded ({state.reason})")
    for patch in state.patches:
        if patch.name == name:
            return list(dict.fromkeys(func.old_name for _, func in patch.funcs))
    loaded = ", ".join(p.name for p in state.patches)
    raise DumpError(f"--patch {name}: no such livepatch in the dump (loaded: {loaded})")
