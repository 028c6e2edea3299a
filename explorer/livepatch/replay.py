"""One retry of the transition, replayed: ``klp_try_complete_transition()`` applying
``klp_try_switch_task()`` to every thread in task-list order (``for_each_process_thread``),
then to each online CPU's idle task (kernel/livepatch/transition.c).

For each task whose ``patch_state`` is not the target yet, the kernel's own decision:

1. running on a CPU (``task_curr()``): "is running" — the kernel never looks at its stack;
2. ``stack_trace_save_tsk_reliable()`` fails: "has an unreliable stack" — decided by the same
   walk and rules as ``backchain check`` (:func:`explorer.walk.analysis.analyse_task`);
3. a return address of the stack inside a function to avoid (``klp_check_stack_func()``,
   functions in patch order, then stack entries in order): "is sleeping on function F";
4. otherwise the task would switch now.

A dump is one instant: the replay says what the kernel would decide if it retried at that
instant, which is what its last retry logged for every task that has not moved since.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from explorer.image.lists import walk_list
from explorer.livepatch.state import (
    KLP_PATCHED,
    KLP_UNPATCHED,
    KlpFunc,
    KlpPatch,
    LivepatchState,
    TaskPatchState,
    task_patch_states,
)
from explorer.model.kernel import Kernel
from explorer.model.tasks import PF_KTHREAD, Task, TaskScan
from explorer.walk.analysis import TaskAnalysis, analyse_task, unwind_context
from explorer.walk.reliable import klp_check_stack, livepatch_message
from explorer.walk.unwind import UnwindContext
from parsers.errors import DumpError, FormatError

#: ``SIGNALS_TIMEOUT`` (transition.c): retries between two rounds of fake signals.
SIGNALS_TIMEOUT = 15
#: ``task->__state`` bits (include/linux/sched.h).
TASK_INTERRUPTIBLE = 0x1
TASK_UNINTERRUPTIBLE = 0x2

#: How an idle task of an online CPU switches (klp_try_complete_transition, do_idle).
IDLE_ADVICE = (
    "the kernel wakes its CPU (wake_up_if_idle) and the idle loop switches it "
    "(klp_update_patch_state in do_idle)"
)
#: What :class:`Decision.cause` can be, in the kernel's words where it has them.
CAUSES = ("running", "unreliable", "sleeping_on", "would_switch")


@dataclass(frozen=True)
class Avoided:
    """The function range ``klp_check_stack_func()`` found a return address in.

    Attributes:
        func: the transition patch's ``klp_func`` (its ``old_name`` is the kernel's word).
        code: which code the range is: ``"original"`` (``old_func``, patching, one patch on
            the func_stack), ``"previous patch"`` (the ``new_func`` of the patch under it,
            patching), ``"this patch"`` (its own ``new_func``, unpatching).
        owner: the patch whose ``new_func`` the range is (None for the original code).
        start, end: the range ``[start, end)``.
        frame: the index of the frame whose return address lies in it.
        address: that return address.
    """

    func: KlpFunc
    code: str
    owner: KlpPatch | None
    start: int
    end: int
    frame: int
    address: int


@dataclass(frozen=True)
class Decision:
    """``klp_try_switch_task()`` for one task that has not switched yet.

    Attributes:
        cause: one of :data:`CAUSES`.
        message: the line the kernel logs (without ``livepatch: klp_try_switch_task: ``).
        rule, frame: for an unreliable stack: the failing rule (as ``check`` names it) and
            the frame it failed at.
        avoided: for ``sleeping_on``: the function range and the frame holding it.
        idle_cpu: for an idle task: its CPU.
    """

    task: Task
    state: TaskPatchState
    cause: str
    message: str
    rule: str | None = None
    frame: int | None = None
    avoided: Avoided | None = None
    idle_cpu: int | None = None

    @property
    def blocks(self) -> bool:
        """The task keeps the transition from completing."""
        return self.cause != "would_switch"


@dataclass(frozen=True)
class Replay:
    """A retry of the transition of ``patch`` towards ``target``.

    Attributes:
        decisions: every task not yet in the target state, in the kernel's order.
        switched: tasks already in the target state.
        offline_idle: idle tasks of offline CPUs (switched without a check).
    """

    patch: KlpPatch
    target: int
    decisions: tuple[Decision, ...]
    switched: int
    offline_idle: int
    signals_cnt: int | None

    @property
    def blocking(self) -> list[Decision]:
        """The tasks that keep the transition from completing."""
        return [d for d in self.decisions if d.blocks]

    @property
    def signals_sent(self) -> int | None:
        """How often ``klp_send_signals()`` ran: at retries 15, 30, ... of
        ``klp_signals_cnt`` (counted before its increment)."""
        cnt = self.signals_cnt
        return None if cnt is None else max(cnt - 1, 0) // SIGNALS_TIMEOUT

    def by_cause(self) -> list[tuple[str, int]]:
        """Blocking tasks grouped by cause (``sleeping on function F`` per F), most first."""
        groups: Counter[str] = Counter()
        for d in self.blocking:
            if d.cause == "sleeping_on" and d.avoided is not None:
                groups[f"sleeping on function {d.avoided.func.old_name}"] += 1
            elif d.cause == "running":
                groups["running"] += 1
            else:
                groups["with an unreliable stack"] += 1
        return groups.most_common()


def kernel_order(kernel: Kernel, scan: TaskScan) -> tuple[list[Task], list[tuple[int, Task]], int]:
    """The tasks in the order of ``klp_try_complete_transition()``: every thread of every
    process (``for_each_process_thread``: ``init_task.tasks`` from its first entry, each
    process's ``signal->thread_head``), then ``(cpu, idle task)`` of each online CPU; and
    how many idle tasks of offline CPUs there are."""
    types = kernel.types
    assert types is not None and kernel.symbols is not None
    by_address = {t.address: t for t in scan.tasks}
    init_task = kernel.symbols.require("init_task")
    tasks_off = types.offset("task_struct.tasks")
    warnings: list[str] = []
    threads: list[Task] = []
    seen: set[int] = set()
    for node in walk_list(
        kernel.space.read_u64,
        init_task + tasks_off,
        "init_task.tasks",
        warnings,
        len(by_address) + 1,
    ):
        leader = node - tasks_off
        for address in _threads(kernel, leader, warnings, len(by_address) + 1):
            task = by_address.get(address)
            if task is not None and address not in seen:
                seen.add(address)
                threads.append(task)
    if warnings:
        raise DumpError(f"the task list cannot be walked: {warnings[0]}")
    idle: list[tuple[int, Task]] = []
    offline = 0
    online = _online_cpus(kernel)
    per_cpu_idle = kernel.symbols.address_of("idle_threads")
    for cpu in sorted(kernel.cpus, key=lambda c: c.number):
        task = None
        if per_cpu_idle is not None and cpu.lowcore is not None:
            try:
                address = kernel.space.read_u64(
                    (per_cpu_idle + cpu.lowcore.percpu_offset) & 0xFFFFFFFFFFFFFFFF
                )
                task = by_address.get(address)
            except DumpError:
                task = None
        if task is None and cpu.number == 0:
            task = by_address.get(init_task)
        if task is None:
            continue
        if online is None or cpu.number in online:
            idle.append((cpu.number, task))
        else:
            offline += 1
    return threads, idle, offline


def _threads(kernel: Kernel, leader: int, warnings: list[str], limit: int) -> list[int]:
    """``for_each_thread(leader, t)``: the leader's ``signal->thread_head`` list (the
    ``thread_group`` list of kernels before it, leader first)."""
    types = kernel.types
    assert types is not None
    if types.has("signal_struct.thread_head") and types.has("task_struct.thread_node"):
        signal = kernel.space.read_u64(leader + types.offset("task_struct.signal"))
        if not signal:  # as find_tasks(): a leader without a signal_struct is its only thread
            return [leader]
        node_off = types.offset("task_struct.thread_node")
        head = signal + types.offset("signal_struct.thread_head")
        return [
            n - node_off
            for n in walk_list(
                kernel.space.read_u64, head, f"threads of 0x{leader:x}", warnings, limit
            )
        ]
    off = types.offset("task_struct.thread_group")
    others = walk_list(
        kernel.space.read_u64, leader + off, f"thread group of 0x{leader:x}", warnings, limit
    )
    return [leader, *(n - off for n in others)]


def _online_cpus(kernel: Kernel) -> set[int] | None:
    """``cpu_online_mask`` (``__cpu_online_mask``), None when not known."""
    assert kernel.symbols is not None
    mask = kernel.symbols.address_of("__cpu_online_mask")
    if mask is None:
        return None
    top = max((c.number for c in kernel.cpus), default=0)
    online: set[int] = set()
    try:
        for word_index in range(top // 64 + 1):
            word = kernel.space.read_u64(mask + 8 * word_index)
            online.update(word_index * 64 + b for b in range(64) if word >> b & 1)
    except DumpError:
        return None
    return online


def check_range(
    state: LivepatchState, func: KlpFunc, target: int
) -> tuple[str, KlpPatch | None, int, int]:
    """The range ``klp_check_stack_func()`` avoids for ``func``: (code, owner, start, end).

    Raises:
        DumpError: the function's ``klp_ops`` is missing (the kernel would crash here).
    """
    patch = state.transition_patch
    if target == KLP_UNPATCHED:
        return "this patch", patch, func.new_func, func.new_func + func.new_size
    ops = state.find_ops(func.old_func)
    if ops is None:
        raise FormatError(
            f"livepatch state damaged: no klp_ops for function '{func.old_name}' "
            f"(old_func 0x{func.old_func:x}) of the patch in transition"
        )
    if len(ops.func_stack) == 1:
        return "original", None, func.old_func, func.old_func + func.old_size
    previous = state.previous(func)
    if previous is None:
        raise FormatError(
            f"livepatch state damaged: function '{func.old_name}' has {len(ops.func_stack)} "
            "entries on its func_stack but none under the patch in transition"
        )
    owner, prev = previous
    return "previous patch", owner, prev.new_func, prev.new_func + prev.new_size


def avoided_on_stack(
    state: LivepatchState, entries: tuple[int, ...], frames: tuple[int, ...], target: int
) -> Avoided | None:
    """``klp_check_stack()`` after a reliable walk, over the transition patch's functions of
    its ``patched`` objects, each with its range by :func:`check_range`. ``frames`` gives
    each entry's frame index."""
    patch = state.transition_patch
    assert patch is not None
    ranges = {
        func.address: check_range(state, func, target) for obj, func in patch.funcs if obj.patched
    }
    hit = klp_check_stack(
        (func for obj, func in patch.funcs if obj.patched),
        entries,
        lambda func, address: ranges[func.address][2] <= address < ranges[func.address][3],
    )
    if hit is None:
        return None
    func, i = hit
    code, owner, start, end = ranges[func.address]
    return Avoided(func, code, owner, start, end, frames[i], entries[i])


def replay(
    kernel: Kernel,
    state: LivepatchState,
    scan: TaskScan,
    ctx: UnwindContext | None = None,
    walked: Mapping[int, TaskAnalysis] | None = None,
) -> Replay:
    """Replay one retry of the transition in progress.

    Args:
        walked: analyses already made (by ``task_struct`` address), e.g. by ``check``,
            which walks every task anyway: not walked twice.

    Raises:
        DumpError: no transition is in progress, or the state is damaged.
    """
    patch, target = state.transition_patch, state.target_state
    if patch is None or target not in (KLP_UNPATCHED, KLP_PATCHED):
        raise DumpError("no livepatch transition in progress")
    threads, idle, offline = kernel_order(kernel, scan)
    states = task_patch_states(kernel, [*threads, *(t for _, t in idle)], state.tif_bit)
    ctx = ctx or unwind_context(kernel)
    decisions = []
    switched = 0
    for cpu, task in [(None, t) for t in threads] + [(c, t) for c, t in idle]:
        ps = states[task.address]
        if ps.patch_state == target:
            switched += 1
            continue
        known = walked.get(task.address) if walked is not None else None
        analysis = known or analyse_task(kernel, task, ctx, detailed=False)
        decisions.append(decide(state, task, ps, target, analysis, cpu))
    return Replay(patch, target, tuple(decisions), switched, offline, state.signals_cnt)


def decide(
    state: LivepatchState,
    task: Task,
    ps: TaskPatchState,
    target: int,
    analysis: TaskAnalysis,
    idle_cpu: int | None,
) -> Decision:
    """``klp_try_switch_task()`` for a task not in the target state, from its walk."""
    verdict = analysis.verdict
    message = livepatch_message(task.comm, task.pid, verdict)
    if verdict.rule == "task_running":
        return Decision(task, ps, "running", message, idle_cpu=idle_cpu)
    if not verdict.reliable:
        return Decision(
            task, ps, "unreliable", message, verdict.label, verdict.frame, idle_cpu=idle_cpu
        )
    frames = tuple(s.index for s in analysis.walk.steps[: len(verdict.entries)])
    avoided = avoided_on_stack(state, verdict.entries, frames, target)
    if avoided is None:
        return Decision(task, ps, "would_switch", message, idle_cpu=idle_cpu)
    message = livepatch_message(task.comm, task.pid, verdict, avoided.func.old_name)
    return Decision(
        task, ps, "sleeping_on", message, frame=avoided.frame, avoided=avoided, idle_cpu=idle_cpu
    )


def unblock(decision: Decision, replay: Replay) -> list[str]:
    """What would let the task switch, from the kernel's logic (transition.c
    ``klp_send_signals()``, ``klp_update_patch_state()`` on the way to user space and in
    the idle loop)."""
    task = decision.task
    kthread = bool(task.flags & PF_KTHREAD)
    state = task.state_raw & 0xFFFFFFFF
    where = (
        f"it switches only once {decision.avoided.func.old_name} has returned"
        if decision.avoided is not None
        else "it switches once its stack is reliable"
    )
    if decision.cause == "running":
        if decision.idle_cpu is not None or task.is_idle:
            return [IDLE_ADVICE]
        if kthread:
            return [
                "the next retry (every second) checks it again once it sleeps; a kthread that "
                "calls cond_resched() checks itself there (klp_sched_try_switch, v6.7+)"
            ]
        return [
            "it switches itself on its way back to user space, or at the next retry once it sleeps"
        ]
    if decision.cause == "would_switch":
        return ["nothing: the next retry switches it"]
    if task.is_idle:
        return [IDLE_ADVICE]
    if kthread:
        if state & TASK_INTERRUPTIBLE:
            return [
                "the kernel wakes it (wake_up_state TASK_INTERRUPTIBLE) with its signals every "
                f"{SIGNALS_TIMEOUT} retries; {where}"
            ]
        return [
            f"nothing the kernel does moves it: a kthread in {task.state} is not woken by "
            f"klp_send_signals() (TASK_INTERRUPTIBLE only); {where}"
            + (
                "; if it waits there for ever, it can never switch"
                if decision.avoided is not None
                else ""
            )
        ]
    if state & TASK_INTERRUPTIBLE:
        sent = replay.signals_sent
        already = (
            f" (sent {sent} time{'s' if sent != 1 else ''} already, and it still waits here)"
            if sent
            else ""
        )
        return [
            f"the kernel sends it a fake signal every {SIGNALS_TIMEOUT} retries "
            f"(set_notify_signal){already}; woken, it leaves the kernel and switches on its "
            "way back to user space"
        ]
    return [
        f"a fake signal does not wake a task in {task.state} (uninterruptible); it switches "
        f"on its way back to user space; {where}"
    ]


def force_cost(replay: Replay, patches: tuple[KlpPatch, ...]) -> str:
    """What ``echo 1 > /sys/kernel/livepatch/PATCH/force`` costs (``klp_force_transition()``
    since v5.19: the patches being removed get ``forced``, their modules can never be
    removed)."""
    patch = replay.patch
    if replay.target == KLP_UNPATCHED:
        doomed = [patch.name]
    elif patch.replace:
        doomed = [p.name for p in patches if p is not patch]
    else:
        doomed = []
    cost = (
        f"the module{'s' if len(doomed) > 1 else ''} {', '.join(doomed)} can then never be "
        "removed (forced)"
        if doomed
        else "no module is marked forced"
    )
    return (
        f"last resort: echo 1 > /sys/kernel/livepatch/{patch.name}/force switches every task "
        f"at once, breaking the consistency model for the tasks above; {cost}"
    )
