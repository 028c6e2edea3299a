"""``arch_stack_walk_reliable()`` and what livepatch makes of it, with the reasons in words.

The kernel accepts a stack for the livepatch consistency model only if, for every frame of
the unwind, in order: the frame is on the task stack, no pt_regs was crossed, the return
address is kernel text, it is not a kretprobe/rethook trampoline, and the entry fits the
caller's buffer (livepatch keeps 100); and then the walk must have ended without an unwind
error (arch/s390/kernel/stacktrace.c). The first failing rule wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from explorer.walk.unwind import Walk

#: Entries livepatch stores (kernel/livepatch/transition.c MAX_STACK_ENTRIES).
MAX_STACK_ENTRIES = 100

RULES = (
    "not_task_stack",
    "crossed_pt_regs",
    "return_address_not_text",
    "kretprobe_trampoline",
    "too_many_entries",
    "unwind_error",
    "task_running",
)
UNWIND_ERRORS = (
    "sp_misaligned",
    "sp_outside_stack",
    "sp_not_increasing",
    "stack_revisited",
    "pt_regs_outside_stack",
    "no_room_for_frame",
    "unreadable_memory",
    "step_limit",
)

EXPLANATIONS = {
    "reliable": "Every frame is on the task stack, no interrupt or exception frame was "
    "crossed, every return address is kernel text, and the walk ended at the "
    "pt_regs at the top of the task stack. Livepatch trusts this stack.",
    "no_stack": "The task has exited and its stack is freed: the kernel treats its empty "
    "stack as reliable.",
    "not_task_stack": "This frame is on a per-CPU stack (irq, nodat, restart or mcck), "
    "not on the task stack. A task is only checked while it sleeps, so a "
    "frame elsewhere means the stack cannot be trusted.",
    "crossed_pt_regs": "The walk crossed a pt_regs: an interrupt, exception or preemption "
    "stopped a function in the middle. What that function had saved is "
    "unknown, so the caller found next may be wrong.",
    "return_address_not_text": "The return address is not in kernel text: the frame is "
    "corrupt or stale, or a trampoline could not be resolved.",
    "kretprobe_trampoline": "The return address is the kretprobe trampoline: the real "
    "caller is hidden behind the probe.",
    "too_many_entries": "The stack has 100 or more entries; livepatch stores 100 and "
    "treats a full buffer as unreliable.",
    "task_running": "The task runs on a CPU at dump time: livepatch never checks a running "
    "task's stack; it waits until the task sleeps.",
    "sp_misaligned": "A stack pointer is not 8-byte aligned: the s390 ABI guarantees "
    "alignment, so the chain is corrupt.",
    "sp_outside_stack": "A back chain points outside every stack this task may use.",
    "sp_not_increasing": "A back chain points down (or to itself): frames must move to "
    "higher addresses, otherwise the chain could loop forever.",
    "stack_revisited": "The chain returns to a stack type it already left: each stack "
    "(task, irq, nodat, restart, mcck) may be entered once.",
    "pt_regs_outside_stack": "The back chain is 0 but there is no room for pt_regs above "
    "the frame: the walk cannot end or continue properly.",
    "no_room_for_frame": "A frame would extend past the end of its stack.",
    "unreadable_memory": "Part of the stack is not in the dump (a filtered or truncated "
    "dump): the kernel could have read it; we cannot.",
    "step_limit": "The walk exceeded the step bound; the chain is corrupt.",
}

#: Why each failing frame rule matters, said after the frame's own facts (which name the
#: stack, the pt_regs or the address): a verdict says each thing once.
CONSEQUENCES = {
    "not_task_stack": "A task is only checked while it sleeps, so a frame elsewhere means "
    "the stack cannot be trusted.",
    "crossed_pt_regs": "What that function had saved is unknown, so the caller found next "
    "may be wrong.",
    "return_address_not_text": "the frame is corrupt or stale, or a trampoline could not "
    "be resolved.",
    "kretprobe_trampoline": "the real caller is hidden behind the probe.",
}
#: After an unwind error's own reason (the check that failed says what is wrong).
UNWIND_STOPS = "The kernel's unwinder stops with an error here: the stack is unreliable."

#: What livepatch logs (kernel/livepatch/transition.c, klp_try_switch_task).
LIVEPATCH = {
    "unreliable": "{comm}:{pid} has an unreliable stack",
    "running": "{comm}:{pid} is running",
    "sleeping_on": "{comm}:{pid} is sleeping on function {function}",
    "ok": "{comm}:{pid} can be switched to the new patch state",
}


@dataclass(frozen=True)
class Verdict:
    """The reliability verdict of one walk.

    Attributes:
        reliable: ``arch_stack_walk_reliable()`` returned 0 (and the task is not running).
        rule: the failing rule id (see :data:`RULES`), None when reliable.
        detail: the unwind-error sub-kind for ``unwind_error``.
        frame: index of the failing frame (for unwind errors: the frame the walk was
            leaving), None when reliable.
        message: the explanation for a trainee.
        entries: return addresses livepatch would have seen (up to the failure).
    """

    reliable: bool
    rule: str | None
    detail: str | None
    frame: int | None
    message: str
    entries: tuple[int, ...] = ()
    #: For a running task: the rules applied to the walk from its CPU's registers, as if the
    #: task checked its own stack at that point (the start frame's registers not counted as a
    #: crossed pt_regs). Shows what else would be wrong besides "is running".
    as_current: Verdict | None = None

    @property
    def label(self) -> str:
        """``reliable``, the rule, or ``unwind_error/<sub-kind>``."""
        if self.reliable:
            return "reliable"
        return f"{self.rule}/{self.detail}" if self.detail else str(self.rule)


def stack_walk_reliable(
    walk: Walk,
    is_text: Callable[[int], bool],
    running: bool = False,
    trampolines: Sequence[int] = (),
    as_current: bool = False,
) -> Verdict:
    """Apply ``arch_stack_walk_reliable()`` to a walk started from the saved ksp.

    Args:
        walk: the unwind.
        is_text: ``__kernel_text_address()`` (``unwind_get_return_address()`` returns 0
            for anything else).
        running: the task is current on a CPU (livepatch answers "is running" first).
        trampolines: kretprobe/rethook trampoline addresses.
        as_current: judge a walk that starts from a CPU's registers as the task's own
            (the start registers are not a crossed pt_regs).
    """
    if running:
        current = stack_walk_reliable(walk, is_text, False, trampolines, as_current=True)
        return Verdict(
            False, "task_running", None, None, EXPLANATIONS["task_running"], as_current=current
        )
    if walk.end.kind == "no_stack":
        return Verdict(True, None, None, None, EXPLANATIONS["no_stack"])
    entries: list[int] = []
    for step in walk.steps:
        if step.stack_type != "task":
            return _fail(
                "not_task_stack",
                step.index,
                entries,
                f"Frame #{step.index} is on the {step.stack_type} stack, a per-CPU stack, not "
                "the task stack. ",
            )
        if step.regs is not None and not (as_current and step.how == "start_regs"):
            return _fail(
                "crossed_pt_regs",
                step.index,
                entries,
                f"Frame #{step.index} comes from the pt_regs at 0x{step.regs.address:x}"
                f" (interrupted PSW 0x{step.regs.psw.addr:x}): an interrupt, exception or "
                "preemption stopped a function in the middle. ",
            )
        if not is_text(step.ip):
            return _fail(
                "return_address_not_text",
                step.index,
                entries,
                f"Frame #{step.index} returns to 0x{step.ip:x}, which is not kernel text: ",
            )
        if step.ip in trampolines:
            return _fail(
                "kretprobe_trampoline",
                step.index,
                entries,
                f"Frame #{step.index} returns to the kretprobe trampoline 0x{step.ip:x}: ",
            )
        entries.append(step.ip)
        if len(entries) >= MAX_STACK_ENTRIES:
            return _fail("too_many_entries", step.index, entries, "")
    if walk.end.error:
        detail = walk.end.detail or "step_limit"
        last = walk.steps[-1].index if walk.steps else 0
        reason = next((c.reason for c in walk.end.checks if c.ok is False), "")
        return Verdict(
            False,
            "unwind_error",
            detail,
            last,
            f"{reason} {UNWIND_STOPS}" if reason else EXPLANATIONS.get(detail, UNWIND_STOPS),
            tuple(entries),
        )
    return Verdict(True, None, None, None, EXPLANATIONS["reliable"], tuple(entries))


def _fail(rule: str, frame: int, entries: list[int], facts: str) -> Verdict:
    """A failing rule: the frame's facts, then why they matter (once)."""
    message = facts + CONSEQUENCES[rule] if facts else EXPLANATIONS[rule]
    return Verdict(False, rule, None, frame, message, tuple(entries))


T = TypeVar("T")


def klp_check_stack(
    funcs: Iterable[T], entries: Sequence[int], inside: Callable[[T, int], bool]
) -> tuple[T, int] | None:
    """``klp_check_stack()``'s loop: the first function (in the patch's order) with any stack
    entry inside it, and the index of the first such entry; None when the stack holds none.

    Args:
        funcs: the patch's functions in ``klp_for_each_object``/``klp_for_each_func`` order.
        entries: the return addresses of a reliable walk, innermost first.
        inside: ``klp_check_stack_func()``'s test of one address against one function.
    """
    for func in funcs:
        for i, address in enumerate(entries):
            if inside(func, address):
                return func, i
    return None


def livepatch_message(comm: str, pid: int, verdict: Verdict, sleeping_on: str | None = None) -> str:
    """The line ``klp_try_switch_task()`` would log for this task."""
    if verdict.rule == "task_running":
        key = "running"
    elif not verdict.reliable:
        key = "unreliable"
    elif sleeping_on:
        key = "sleeping_on"
    else:
        key = "ok"
    return LIVEPATCH[key].format(comm=comm, pid=pid, function=sleeping_on)
