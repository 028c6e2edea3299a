"""Glue between the kernel model and the unwinder: walk a task, a CPU or a raw sp, and
judge the result. Returns data only; the CLI and the TUI present it."""

from __future__ import annotations

import gc
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from explorer.model.kernel import Cpu, Kernel
from explorer.model.tasks import Task
from explorer.walk.reliable import Verdict, klp_check_stack, livepatch_message, stack_walk_reliable
from explorer.walk.stacks import StackRegions, regions_for
from explorer.walk.unwind import TaskStacks, UnwindContext, Walk, era_for_release, walk
from parsers.dumps.memory import LOWCORE_SIZE
from parsers.errors import DumpError
from parsers.s390.records import Psw, PtRegs, lowcore_values
from parsers.s390.stacks import StackRange

_TRAMPOLINES = ("__kretprobe_trampoline", "kretprobe_trampoline", "arch_rethook_trampoline")


def unwind_context(kernel: Kernel, era: str | None = None) -> UnwindContext:
    """The unwinder's view of ``kernel`` under ``era`` (default: from the release)."""
    era = era or kernel.options.era or era_for_release(kernel.release)
    syms = kernel.symbols
    tramps: dict[int, str] = {}
    rth = 0
    if syms is not None:
        for name in _TRAMPOLINES:
            addr = syms.address_of(name)
            if addr is not None:
                tramps[addr] = name
        rth = syms.address_of("return_to_handler") or 0
    types = kernel.types
    entry = ret = 0
    retp = None
    if types is not None and types.has("ftrace_ret_stack") and types.has("ftrace_ret_stack.ret"):
        entry = types.size("ftrace_ret_stack")
        ret = types.offset("ftrace_ret_stack.ret")
        retp = types.offset("ftrace_ret_stack.retp") if types.has("ftrace_ret_stack.retp") else None

    memo: dict[int, bool] = {}

    def is_text(address: int) -> bool:
        known = memo.get(address)
        if known is None:
            known = memo[address] = kernel.is_text(address)
        return known

    return UnwindContext(
        read=kernel.space.read,
        is_text=is_text,
        pt_regs_layout=kernel.pt_regs_layout,
        pt_regs_size=kernel.pt_regs_size,
        era=era,
        return_to_handler=rth,
        kretprobe_trampolines=tramps,
        ftrace_entry_size=entry,
        ftrace_ret_offset=ret,
        ftrace_retp_offset=retp,
    )


def cpu_of(kernel: Kernel, task: Task) -> Cpu | None:
    """The CPU ``task`` is current on, if any."""
    for cpu in kernel.cpus:
        if cpu.current_task == task.address:
            return cpu
    return None


def _has_mcck(kernel: Kernel) -> bool:
    return any(c.lowcore is not None and c.lowcore.mcck_stack is not None for c in kernel.cpus)


def task_stacks(kernel: Kernel, task: Task, cpu: Cpu | None = None) -> TaskStacks:
    """The stacks and shadow stacks of ``task`` (with ``cpu``'s stacks if it runs there)."""
    stack = task.stack_range
    regions = regions_for(stack, cpu, with_mcck=_has_mcck(kernel))
    pt_regs = stack.end - kernel.pt_regs_size if stack else 0
    types = kernel.types
    ret_stack = None
    head = 0
    if types is not None:
        try:
            if types.has("task_struct.ret_stack") and types.has("task_struct.curr_ret_stack"):
                base = kernel.space.read_u64(task.address + types.offset("task_struct.ret_stack"))
                raw = kernel.read(task.address + types.offset("task_struct.curr_ret_stack"), 4)
                ret_stack = (base, struct.unpack(">i", raw)[0])
            for name in ("task_struct.rethooks", "task_struct.kretprobe_instances"):
                if types.has(name):
                    head = kernel.space.read_u64(task.address + types.offset(name))
                    if head:
                        break
        except DumpError:
            pass
    return TaskStacks(regions, pt_regs, ret_stack, head)


def cpu_regs(kernel: Kernel, cpu: Cpu) -> PtRegs:
    """A CPU's registers at dump time as the ``regs`` an unwind may start from.

    A CPU stopped on the first instruction of an interrupt handler (its PSW equals a new
    PSW of its lowcore) has not run any kernel code yet: its GPRs are still those of the
    interrupted context. When the matching old PSW is a user PSW, that context is user
    space, so the old PSW is used and the walk ends at user-mode registers, as
    ``__unwind_start`` does, instead of chasing the user r15 (seen in a rebuilt 5.10 dump:
    CPU 0 at ``ext_int_handler+0`` with the sh loop's user r15).
    """
    r = cpu.registers
    psw = Psw(r.psw.mask, r.psw.addr)
    lc = cpu.lowcore
    if lc is not None and not psw.user_mode:
        for name, new in lc.new_psws.items():
            old = lc.old_psws.get(name)
            if new.addr == psw.addr and new.mask == psw.mask and old is not None and old.user_mode:
                psw = old
                break
        else:
            psw = _returning_to_user(kernel, cpu, psw)
    return PtRegs(
        0,
        kernel.pt_regs_layout,
        0,
        psw,
        r.gprs,
        r.orig_gpr2,
        0,
        0,
        0,
        0,
        None,
        None,
    )


def _returning_to_user(kernel: Kernel, cpu: Cpu, psw: Psw) -> Psw:
    """A CPU stopped on the ``lpswe`` the kernel keeps in its lowcore (``return_lpswe``,
    0x400 in v6.x, 0x402 in a 5.10 dump) is leaving for user space: its registers are
    already the user's, so start from ``lowcore.return_psw`` when that is a user PSW."""
    if psw.addr >= LOWCORE_SIZE or cpu.registers.prefix is None:
        return psw
    try:
        fields = lowcore_values(
            kernel.dump.read(cpu.registers.prefix, LOWCORE_SIZE), kernel.lowcore_fields
        )
    except DumpError:
        return psw
    ret = fields.get("return_psw")
    return ret if isinstance(ret, Psw) and ret.user_mode else psw


@dataclass(frozen=True)
class TaskAnalysis:
    """A task's walk and verdict.

    Attributes:
        task: the task.
        walk: frames from the saved ksp (sleeping) or from its CPU's registers (running).
        verdict: ``arch_stack_walk_reliable()`` as livepatch applies it.
        livepatch: the line livepatch would log.
        sleeping_on: the first of ``--functions`` found on the stack, if any.
        cpu: the CPU it runs on, if any.
    """

    task: Task
    walk: Walk
    verdict: Verdict
    livepatch: str
    sleeping_on: str | None
    cpu: int | None


def analyse_task(
    kernel: Kernel,
    task: Task,
    ctx: UnwindContext | None = None,
    functions: Sequence[str] = (),
    detailed: bool = True,
) -> TaskAnalysis:
    """Walk ``task`` and judge its stack."""
    ctx = ctx or unwind_context(kernel)
    cpu = cpu_of(kernel, task)
    stacks = task_stacks(kernel, task, cpu)
    if cpu is not None:
        w = walk(ctx, stacks, regs=cpu_regs(kernel, cpu), start="cpu", detailed=detailed)
    else:
        w = walk(ctx, stacks, sp=task.ksp if task.stack else None, start="ksp", detailed=detailed)
    verdict = stack_walk_reliable(
        w, ctx.is_text, running=cpu is not None, trampolines=tuple(ctx.kretprobe_trampolines)
    )
    sleeping_on = None
    if verdict.reliable and functions:
        sleeping_on = _sleeping_on(kernel, verdict.entries, functions)
    message = livepatch_message(task.comm, task.pid, verdict, sleeping_on)
    return TaskAnalysis(
        task, w, verdict, message, sleeping_on, cpu.number if cpu is not None else None
    )


def _sleeping_on(kernel: Kernel, entries: Sequence[int], functions: Sequence[str]) -> str | None:
    """``klp_check_stack()`` for a patch of ``functions`` (by name, every symbol of that name):
    the first of them, in the given order, that holds a stack entry."""
    if kernel.symbols is None:
        return None
    names: dict[int, str | None] = {}

    def inside(name: str, address: int) -> bool:
        if address not in names:  # core kernel, else a loaded module's (a patched module's)
            sym = kernel.lookup_symbol(address)
            names[address] = sym.name if sym is not None else None
        return names[address] == name

    hit = klp_check_stack(functions, entries, inside)
    return hit[0] if hit is not None else None


def walk_sp(
    kernel: Kernel, sp: int, task: Task | None = None, ctx: UnwindContext | None = None
) -> Walk:
    """Walk from an explicit stack pointer. Without ``task``, the stack holding ``sp`` is
    taken from the tasks' and CPUs' stacks when known, else a 160-byte-aligned guess."""
    ctx = ctx or unwind_context(kernel)
    if task is not None:
        return walk(ctx, task_stacks(kernel, task, cpu_of(kernel, task)), sp=sp, start="sp")
    for cpu in kernel.cpus:
        for region in cpu.stacks:
            if region.on_stack(sp, 1):
                regions = StackRegions(None, (region,), cpu.number)
                return walk(ctx, TaskStacks(regions, 0), sp=sp, start="sp")
    base = sp & ~(kernel.thread_size - 1)
    regions = StackRegions(StackRange("task", base, base + kernel.thread_size))
    return walk(
        ctx, TaskStacks(regions, base + kernel.thread_size - kernel.pt_regs_size), sp=sp, start="sp"
    )


T = TypeVar("T")


def _identity(analysis: TaskAnalysis) -> TaskAnalysis:
    return analysis


def analyse_all(
    kernel: Kernel,
    tasks: Iterable[Task],
    ctx: UnwindContext | None = None,
    functions: Sequence[str] = (),
    detailed: bool = False,
    progress: Callable[[int], None] | None = None,
    keep: Callable[[TaskAnalysis], T] = _identity,  # type: ignore[assignment]
) -> list[T]:
    """Walk and judge many tasks (``backchain check``), fast.

    Walks build many small objects and no reference cycles, so the cyclic garbage
    collector is paused meanwhile: on 10,000 tasks it would otherwise cost a third of
    the time.

    Args:
        progress: called with the number of tasks done, every 256 tasks.
        keep: what to keep of each analysis (default: all of it); e.g. a summary without
            the frames, to bound memory.
    """
    ctx = ctx or unwind_context(kernel)
    out: list[T] = []
    enabled = gc.isenabled()
    gc.disable()
    try:
        for i, task in enumerate(tasks, 1):
            out.append(keep(analyse_task(kernel, task, ctx, functions, detailed)))
            if progress is not None and i % 256 == 0:
                progress(i)
    finally:
        if enabled:
            gc.enable()
    if progress is not None:
        progress(len(out))
    return out
