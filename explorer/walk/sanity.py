"""Stack sanity, crash's ``bt -v``: is each task's stack intact at its end, does the task
agree with the CPU that runs it, and how much room was left below the deepest frame.

* ``STACK_END_MAGIC`` (0x57AC6E9D, include/uapi/linux/magic.h) is written by
  ``set_task_stack_end_magic()`` at ``end_of_stack()``: the lowest word of the stack (the
  stack grows down towards it; ``task->stack`` with ``THREAD_INFO_IN_TASK``, as on s390). A
  stack that overflowed or was overwritten from below loses it first; the kernel's
  ``task_stack_end_corrupted()`` compares exactly this word.
* A running task must be its CPU's: ``thread_info.cpu`` (``task_struct.cpu`` from v5.16) is
  that CPU, the lowcore's ``kernel_stack`` lies on the task's stack, and the lowcore's
  ``current_pid`` (where the era has it) is the task's pid.
* Headroom: bytes between the deepest stack pointer seen (the saved ksp, a CPU's r15, every
  frame of the walk on the task stack) and the magic word; and the high-water mark, the
  lowest word above the magic that is not zero (stacks are zeroed when allocated, so below
  it the stack was never used; ``stack_not_used()`` counts the same way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel
    from explorer.model.tasks import Task
    from explorer.walk.unwind import Walk

STACK_END_MAGIC = 0x57AC6E9D
_WORD = 8


@dataclass(frozen=True, slots=True)
class SanityCheck:
    """One sanity rule applied to one task.

    Attributes:
        id: ``stack_end_magic``, ``cpu_matches``, ``lowcore_stack``, ``lowcore_pid``,
            ``sp_above_end``.
        ok: True passed, False failed, None not applicable or unreadable.
        text: one sentence, with the values.
        found: the bytes found, for a failed magic.
    """

    id: str
    ok: bool | None
    text: str
    found: bytes | None = None


@dataclass(frozen=True)
class StackSanity:
    """The sanity of one task's stack.

    Attributes:
        end: ``end_of_stack()`` (the magic's address), None without a stack.
        deepest: the lowest stack pointer seen on the task stack.
        headroom: ``deepest`` minus the first byte above the magic word.
        high_water: the lowest non-zero word above the magic (None: unreadable).
        checks: the rules, in order.
    """

    task: Task
    end: int | None
    deepest: int | None
    headroom: int | None
    high_water: int | None
    checks: tuple[SanityCheck, ...]

    @property
    def corrupt(self) -> tuple[SanityCheck, ...]:
        """The failed rules."""
        return tuple(c for c in self.checks if c.ok is False)

    @property
    def magic_intact(self) -> bool | None:
        """The stack-end magic check's result."""
        return next((c.ok for c in self.checks if c.id == "stack_end_magic"), None)


def _magic(kernel: Kernel, end: int) -> SanityCheck:
    try:
        raw = kernel.read(end, _WORD)
    except DumpError:
        return SanityCheck("stack_end_magic", None, f"stack end 0x{end:x} is not in the dump")
    value = int.from_bytes(raw, "big")
    if value == STACK_END_MAGIC:
        return SanityCheck(
            "stack_end_magic", True, f"STACK_END_MAGIC 0x{STACK_END_MAGIC:x} intact at 0x{end:x}"
        )
    return SanityCheck(
        "stack_end_magic",
        False,
        f"STACK_END_MAGIC overwritten at 0x{end:x}: found {raw.hex(' ')} "
        f"instead of 0x{STACK_END_MAGIC:016x} (stack overflow or a write below the stack)",
        raw,
    )


def _high_water(kernel: Kernel, end: int, size: int) -> int | None:
    try:
        data = kernel.read(end + _WORD, size - _WORD)
    except DumpError:
        return None
    for off in range(0, len(data), _WORD):
        if data[off : off + _WORD] != bytes(_WORD):
            return end + _WORD + off
    return None


def _cpu_checks(kernel: Kernel, task: Task) -> list[SanityCheck]:
    """A running task against its CPU's lowcore."""
    out: list[SanityCheck] = []
    cpu = next((c for c in kernel.cpus if c.current_task == task.address), None)
    if cpu is None:
        return out
    if task.last_cpu == cpu.number:
        out.append(SanityCheck("cpu_matches", True, f"thread_info.cpu is {cpu.number}"))
    else:
        out.append(
            SanityCheck(
                "cpu_matches",
                False,
                f"CPU {cpu.number} runs this task but its thread_info.cpu says {task.last_cpu}",
            )
        )
    lc = cpu.lowcore
    if lc is None or not task.stack:
        return out
    begin, end = task.stack, task.stack + task.thread_size
    ks = lc.kernel_stack
    out.append(
        SanityCheck(
            "lowcore_stack",
            begin < ks <= end,
            f"lowcore.kernel_stack 0x{ks:x} "
            + ("is on" if begin < ks <= end else "is not on")
            + f" the task stack 0x{begin:x}-0x{end:x}",
        )
    )
    if lc.current_pid:
        same = lc.current_pid == task.pid
        out.append(
            SanityCheck(
                "lowcore_pid",
                same,
                f"lowcore.current_pid {lc.current_pid}" + ("" if same else f" is not {task.pid}"),
            )
        )
    return out


def stack_sanity(
    kernel: Kernel, task: Task, walk: Walk | None = None, high_water: bool = True
) -> StackSanity:
    """Check ``task``'s stack end, CPU agreement and headroom (``walk``: its walk, for the
    deepest frame; ``high_water``: also scan for the high-water mark)."""
    checks = _cpu_checks(kernel, task)
    if not task.stack:
        return StackSanity(task, None, None, None, None, tuple(checks))
    end = task.stack
    size = task.thread_size
    checks.insert(0, _magic(kernel, end))
    sps = [task.ksp] if task.ksp and task.cpu is None else []
    if walk is not None:
        sps += [s.sp for s in walk.steps if s.stack_type == "task"]
    on_stack = [sp for sp in sps if end - 4 * size <= sp < end + size]
    deepest = min(on_stack) if on_stack else None
    headroom = None if deepest is None else deepest - (end + _WORD)
    if deepest is not None:
        ok = deepest >= end + _WORD
        checks.append(
            SanityCheck(
                "sp_above_end",
                ok,
                f"deepest sp 0x{deepest:x}: {headroom} bytes above the stack end"
                if ok
                else f"deepest sp 0x{deepest:x} is {-(headroom or 0)} bytes past the stack end "
                f"0x{end + _WORD:x}: the stack overflowed",
            )
        )
    mark = _high_water(kernel, end, size) if high_water else None
    return StackSanity(task, end, deepest, headroom, mark, tuple(checks))


def corrupt_lines(s: StackSanity) -> list[str]:
    """One line per failed rule (what ``bt`` and ``check`` always print)."""
    return [f"STACK CORRUPT: {c.text}" for c in s.corrupt]


def corrupt_field(kernel: Kernel, task: Task, walk: Walk) -> dict[str, object]:
    """``{"sanity": ...}`` for a task whose stack fails a sanity rule, else {}."""
    s = stack_sanity(kernel, task, walk, high_water=False)
    return {"sanity": sanity_json(s)} if s.corrupt else {}


def sanity_lines(s: StackSanity) -> list[str]:
    """``bt -v``: the sanity of one stack, one line per rule."""
    out = []
    for c in s.checks:
        mark = {True: "ok", False: "CORRUPT", None: "n/a"}[c.ok]
        out.append(f"  {mark:<7} {c.text}")
    if s.high_water is not None and s.end is not None:
        used = s.end + s.task.thread_size - s.high_water
        size = s.task.thread_size
        out.append(f"  {'':<7} high water 0x{s.high_water:x}: {used} of {size} bytes used")
    return ["stack sanity:", *out]


def sanity_json(s: StackSanity) -> dict[str, object]:
    """The ``sanity`` object of ``bt -v --json`` and ``check --json``."""
    return {
        "end_of_stack": None if s.end is None else f"0x{s.end:x}",
        "magic_intact": s.magic_intact,
        "deepest_sp": None if s.deepest is None else f"0x{s.deepest:x}",
        "headroom": s.headroom,
        "high_water": None if s.high_water is None else f"0x{s.high_water:x}",
        "checks": [
            {"id": c.id, "ok": c.ok, "text": c.text}
            | ({"found": c.found.hex()} if c.found is not None else {})
            for c in s.checks
        ],
    }
