"""The s390 back-chain unwinder, step by step, as arch/s390/kernel/unwind_bc.c decides.

:func:`walk` reproduces ``__unwind_start()`` and ``unwind_next_frame()`` for one task and
records every frame the kernel's ``unwind_for_each_frame()`` would produce, with the checks
made to reach it. Nothing here draws or prints: the CLI and the TUI present the same
:class:`Walk`.

Kernel eras (``--era``):

* ``v5.5``: reliable stack tracing as merged for v5.5 (alignment checks, zero back chain
  without room for pt_regs is an error, final pt_regs ends a walk). Return addresses are
  recovered for ftrace's graph tracer only; a bogus r14 after pt_regs is skipped only when
  it is not kernel text; no machine-check stack.
* ``current`` (≈v5.18+): kretprobe/rethook return addresses are recovered too, and the r14
  guess after pt_regs is also skipped when it equals the PSW address just reported.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from explorer.walk.stacks import StackRegions
from parsers.errors import DumpError
from parsers.s390.layouts import (
    STACK_FRAME_BACK_CHAIN,
    STACK_FRAME_R14,
    STACK_FRAME_SIZE,
    kernel_version,
)
from parsers.s390.records import PtRegs, StackFrame, decode_pt_regs, decode_stack_frame
from parsers.s390.stacks import StackRange

ERAS = ("v5.5", "current")
#: No kernel stack holds more frames than this (5 stacks x 16 KiB / 160 bytes is 512).
MAX_STEPS = 4096
_U64 = struct.Struct(">Q")
_R14_R15_CHAIN = struct.Struct(">3Q")  # stack_frame.gprs[8], gprs[9], back_chain
_SF_R14 = STACK_FRAME_R14  # stack_frame.gprs[8]: saved r14
_SF_BACK_CHAIN = STACK_FRAME_BACK_CHAIN


def era_for_release(release: str | None) -> str:
    """The unwinder rules of a kernel release: ``current`` from v5.18 on, else ``v5.5``."""
    if release is None:
        return "current"
    return "current" if kernel_version(release)[:2] >= (5, 18) else "v5.5"


@dataclass(frozen=True, slots=True)
class Check:
    """One rule applied while taking a step.

    Attributes:
        id: stable id (``sp_aligned``, ``on_known_stack``, ``sp_increasing``,
            ``room_for_frame``, ``stack_not_revisited``, ``pt_regs_fit``, ``final_pt_regs``,
            ``ip_is_text``, ``not_trampoline``, ``memory_readable``, ``r14_guess``).
        ok: True passed, False failed, None informational (a warning, no verdict).
        reason: one sentence a trainee understands.
    """

    id: str
    ok: bool | None
    reason: str


#: How a frame was reached (``Step.how``): the values that exist.
StepHow = Literal["start", "start_regs", "backchain", "pt_regs", "r14_guess"]
#: How a walk ended (``WalkEnd.kind``).
EndKind = Literal["final_pt_regs", "error", "user_regs", "no_stack", "step_limit"]


@dataclass(frozen=True, slots=True)
class Step:
    """One frame as the kernel's unwinder reports it (one ``unwind_state``).

    Attributes:
        index: 0 for the first frame.
        sp: ``state->sp``. ip: ``state->ip`` after return-address recovery.
        raw_ip: the ip before recovery (e.g. ``return_to_handler``).
        stack: the stack region ``sp`` lies on (``state->stack_info``).
        how: ``start`` (from the saved ksp or an explicit sp), ``start_regs`` (from a
            CPU's registers), ``backchain``, ``pt_regs`` (from an interrupt frame's PSW),
            ``r14_guess`` (the saved r14 after pt_regs: maybe stale).
        reliable: ``state->reliable`` (False only for an r14 guess).
        regs: the pt_regs this frame was taken from (``state->regs``), if any.
        frame: the 160-byte frame at ``sp``, if readable.
        recovered_by: ``ftrace_graph``, ``kretprobe`` or ``rethook`` when ip was recovered.
        checks: the rules applied to reach this frame.
    """

    index: int
    sp: int
    ip: int
    raw_ip: int
    stack: StackRange
    how: StepHow
    reliable: bool
    regs: PtRegs | None
    frame: StackFrame | None
    recovered_by: str | None
    checks: tuple[Check, ...]

    @property
    def stack_type(self) -> str:
        """``task``, ``irq``, ``nodat``, ``restart`` or ``mcck``."""
        return self.stack.stack_type


@dataclass(frozen=True)
class WalkEnd:
    """How the walk ended.

    Attributes:
        kind: ``final_pt_regs`` (the normal end), ``error`` (``unwind_error()`` is true),
            ``user_regs`` (started from user-mode registers: nothing to unwind),
            ``no_stack`` (an exited task without a stack), ``step_limit``.
        detail: for errors the sub-kind: ``sp_misaligned``, ``sp_outside_stack``,
            ``sp_not_increasing``, ``stack_revisited``, ``pt_regs_outside_stack``,
            ``no_room_for_frame``, ``unreadable_memory``.
        sp: the stack pointer being examined when it ended.
        regs: the final pt_regs (kind ``final_pt_regs``), decoded.
        checks: the rules applied in the last, unsuccessful step.
    """

    kind: EndKind
    detail: str | None
    sp: int
    regs: PtRegs | None = None
    checks: tuple[Check, ...] = ()

    @property
    def error(self) -> bool:
        """``unwind_error()``."""
        return self.kind in ("error", "step_limit")


@dataclass(frozen=True)
class Walk:
    """A complete unwind: frames in order and how it ended."""

    start: str
    era: str
    regions: StackRegions
    steps: tuple[Step, ...]
    end: WalkEnd


@dataclass(frozen=True)
class TaskStacks:
    """What the unwinder needs to know about the task being unwound.

    Attributes:
        regions: the stacks it may use (task stack, plus CPU stacks if it is current).
        task_pt_regs: ``task_pt_regs(task)``: top of the task stack minus sizeof(pt_regs);
            0 for a task without a stack.
        ret_stack: ftrace graph shadow stack: (array address, index of the top entry), or None.
        kretprobe_head: ``task->kretprobe_instances.first`` / ``task->rethooks.first``.
    """

    regions: StackRegions
    task_pt_regs: int
    ret_stack: tuple[int, int] | None = None
    kretprobe_head: int = 0


@dataclass
class UnwindContext:
    """The kernel facts the unwinder needs, independent of where they came from.

    Attributes:
        read: reads kernel virtual memory (raises DumpError).
        is_text: ``__kernel_text_address()``.
        pt_regs_layout: layout name for :func:`parsers.s390.records.decode_pt_regs`.
        pt_regs_size: ``sizeof(struct pt_regs)``.
        era: ``v5.5`` or ``current``.
        return_to_handler: address of ftrace's graph return trampoline, 0 if none.
        kretprobe_trampolines: addresses of kretprobe/rethook trampolines (name by address).
        ftrace_entry_size / ftrace_ret_offset / ftrace_retp_offset: ``struct ftrace_ret_stack``
            layout (≤ v6.7 array form); retp offset None when the kernel has no ``retp``.
    """

    read: Callable[[int, int], bytes]
    is_text: Callable[[int], bool]
    pt_regs_layout: str
    pt_regs_size: int
    era: str = "current"
    return_to_handler: int = 0
    kretprobe_trampolines: dict[int, str] = field(default_factory=dict)
    ftrace_entry_size: int = 0
    ftrace_ret_offset: int = 0
    ftrace_retp_offset: int | None = None


class _Failure(Exception):
    """One step could not be taken: the unwinder's ``goto out_err``."""

    def __init__(self, detail: str, sp: int, checks: list[Check]) -> None:
        super().__init__(detail)
        self.detail = detail
        self.sp = sp
        self.checks = tuple(checks)


class _State:
    """``struct unwind_state``."""

    def __init__(self, ctx: UnwindContext, task: TaskStacks, detailed: bool) -> None:
        self.ctx = ctx
        self.task = task
        self.detailed = detailed
        self.info: StackRange | None = None
        self.mask: set[str] = set()
        self.sp = 0
        self.ip = 0
        self.regs: PtRegs | None = None
        self.graph_idx = 0
        self.kr_cur = 0
        #: back chain of the frame at ``sp``, read together with its r14 (None: not read)
        self.chain: int | None = None
        #: stack pages read so far (a walk touches few pages, many times)
        self.pages: dict[int, bytes] = {}

    def read(self, address: int, size: int) -> bytes:
        """Read through a per-walk page cache (stack frames cluster in a few pages)."""
        off = address & 0xFFF
        if off + size > 0x1000:
            return self.ctx.read(address, size)
        page = address - off
        data = self.pages.get(page)
        if data is None:
            data = self.pages[page] = self.ctx.read(page, 0x1000)
        return data[off : off + size]

    # -- memory --------------------------------------------------------------------------------
    def u64(self, address: int, what: str, checks: list[Check]) -> int:
        try:
            return int(_U64.unpack(self.read(address, 8))[0])
        except DumpError as exc:
            checks.append(
                Check(
                    "memory_readable",
                    False,
                    f"The {what} at 0x{address:x} is not in the dump ({exc.message}).",
                )
            )
            raise _Failure("unreadable_memory", address, checks) from None

    def r14_and_chain(self, sp: int, checks: list[Check]) -> tuple[int, int]:
        """The saved r14 and the back chain of the frame at ``sp``, in one read."""
        try:
            r14, _, chain = _R14_R15_CHAIN.unpack(self.read(sp + _SF_R14, 24))
        except DumpError as exc:
            checks.append(
                Check(
                    "memory_readable",
                    False,
                    f"The stack frame at 0x{sp:x} is not in the dump ({exc.message}).",
                )
            )
            raise _Failure("unreadable_memory", sp, checks) from None
        return int(r14), int(chain)

    def frame(self, sp: int) -> StackFrame | None:
        if not self.detailed:
            return None
        try:
            return decode_stack_frame(self.read(sp, STACK_FRAME_SIZE), 0, sp)
        except DumpError:
            return None

    def pt_regs(self, address: int, checks: list[Check]) -> PtRegs:
        try:
            raw = self.read(address, self.ctx.pt_regs_size)
        except DumpError as exc:
            checks.append(
                Check(
                    "memory_readable",
                    False,
                    f"The pt_regs at 0x{address:x} are not in the dump ({exc.message}).",
                )
            )
            raise _Failure("unreadable_memory", address, checks) from None
        return decode_pt_regs(raw, 0, address, self.ctx.pt_regs_layout)

    # -- get_stack_info / update_stack_info -----------------------------------------------------
    def update_stack_info(self, sp: int, checks: list[Check]) -> None:
        """``get_stack_info(sp) == 0 && on_stack(info, sp, sizeof(struct stack_frame))``."""
        if sp == 0:
            checks.append(Check("on_known_stack", False, "The stack pointer is 0."))
            raise _Failure("sp_outside_stack", sp, checks)
        if sp & 7:
            checks.append(
                Check(
                    "sp_aligned",
                    False,
                    f"0x{sp:x} is not 8-byte aligned, which the s390 ABI requires "
                    "of every stack pointer.",
                )
            )
            raise _Failure("sp_misaligned", sp, checks)
        region = self.task.regions.find(sp)
        if region is None:
            where = (
                "its task stack"
                if self.task.regions.cpu is None
                else f"its task stack or the stacks of CPU {self.task.regions.cpu}"
            )
            checks.append(
                Check(
                    "on_known_stack",
                    False,
                    f"0x{sp:x} lies in none of the stacks this task may use ({where}).",
                )
            )
            raise _Failure("sp_outside_stack", sp, checks)
        checks.append(
            Check("on_known_stack", True, f"0x{sp:x} is on the {region.stack_type} stack.")
        )
        if region.stack_type in self.mask:
            cur = self.info
            if cur is not None and cur.stack_type == region.stack_type:
                if sp <= self.sp:
                    checks.append(
                        Check(
                            "sp_increasing",
                            False,
                            f"The new sp 0x{sp:x} is not above the current one "
                            f"0x{self.sp:x}: frames must move toward higher "
                            "addresses, or the chain could loop.",
                        )
                    )
                    raise _Failure("sp_not_increasing", sp, checks)
                _no_room_for_frame(sp, region, checks)
            checks.append(
                Check(
                    "stack_not_revisited",
                    False,
                    f"The walk already left the {region.stack_type} stack; "
                    "entering a stack type twice is treated as corruption.",
                )
            )
            raise _Failure("stack_revisited", sp, checks)
        if sp + STACK_FRAME_SIZE > region.end:
            _no_room_for_frame(sp, region, checks)
        if self.info is not None and self.info.stack_type != region.stack_type:
            checks.append(
                Check(
                    "stack_not_revisited",
                    True,
                    f"Switching from the {self.info.stack_type} stack to the "
                    f"{region.stack_type} stack, not visited before.",
                )
            )
        self.mask.add(region.stack_type)
        self.info = region

    def outside_of_stack(self, sp: int) -> bool:
        """``sp <= state->sp || sp > info->end - sizeof(struct stack_frame)``."""
        assert self.info is not None
        return sp <= self.sp or sp > self.info.end - STACK_FRAME_SIZE

    # -- return-address recovery (unwind_recover_ret_addr) -------------------------------------
    def recover(self, ip: int, sp: int, checks: list[Check]) -> tuple[int, str | None]:
        ctx = self.ctx
        if ctx.return_to_handler and ip == ctx.return_to_handler:
            real = self.ftrace_ret_addr(sp)
            if real is None:
                checks.append(
                    Check(
                        "not_trampoline",
                        None,
                        "The saved r14 is ftrace's return_to_handler and the "
                        "task's shadow return stack does not say where it "
                        "returns: the real caller is hidden (the kernel keeps "
                        "the trampoline address as the return address).",
                    )
                )
                return ip, None
            checks.append(
                Check(
                    "not_trampoline",
                    True,
                    f"r14 was ftrace's return_to_handler; the shadow stack gives "
                    f"the real return address 0x{real:x}.",
                )
            )
            return real, "ftrace_graph"
        name = ctx.kretprobe_trampolines.get(ip)
        if name is not None and ctx.era == "current":
            real = self.kretprobe_ret_addr(ip, sp)
            kind = "rethook" if "rethook" in name else "kretprobe"
            if real:
                checks.append(
                    Check(
                        "not_trampoline",
                        True,
                        f"r14 was the {kind} trampoline {name}; the task's "
                        f"instance list gives the real return address 0x{real:x}.",
                    )
                )
                return real, kind
            checks.append(
                Check(
                    "not_trampoline",
                    False,
                    f"r14 is the {kind} trampoline {name} but no {kind} instance "
                    f"of this task belongs to the frame at 0x{sp:x}: the kernel "
                    "recovers the address 0.",
                )
            )
            return 0, kind
        return ip, None

    def ftrace_ret_addr(self, sp: int) -> int | None:
        """``ftrace_graph_ret_addr()`` for the array form of ``task->ret_stack`` (≤ v6.7)."""
        ctx, rs = self.ctx, self.task.ret_stack
        if rs is None or not ctx.ftrace_entry_size:
            return None
        base, top = rs
        if not base or not 0 <= top < 1024:
            return None
        try:
            if ctx.ftrace_retp_offset is not None:
                for i in range(top + 1):
                    entry = base + i * ctx.ftrace_entry_size
                    if _U64.unpack(ctx.read(entry + ctx.ftrace_retp_offset, 8))[0] == sp:
                        return int(_U64.unpack(ctx.read(entry + ctx.ftrace_ret_offset, 8))[0])
                return None
            index = top - self.graph_idx
            if index < 0:
                return None
            self.graph_idx += 1
            entry = base + index * ctx.ftrace_entry_size
            return int(_U64.unpack(ctx.read(entry + ctx.ftrace_ret_offset, 8))[0])
        except DumpError:
            return None

    def kretprobe_ret_addr(self, trampoline: int, sp: int) -> int:
        """``kretprobe_find_ret_addr()`` / ``rethook_find_ret_addr()``: walk the task's
        instance list (llist) from ``kr_cur`` for an instance whose frame is ``sp``.

        Instance layout (kretprobe_instance ≈v5.11+, rethook_node v5.18+): rcu_head at 0,
        llist node at 0x10, return address at 0x20, frame at 0x28.
        """
        node = self.kr_cur
        try:
            node = (
                self.task.kretprobe_head
                if not node
                else int(_U64.unpack(self.ctx.read(node, 8))[0])
            )
            for _ in range(4096):
                if not node:
                    return 0
                entry = node - 0x10
                ret, frame = (
                    _U64.unpack(self.ctx.read(entry + 0x20, 8))[0],
                    _U64.unpack(self.ctx.read(entry + 0x28, 8))[0],
                )
                if ret != trampoline:
                    self.kr_cur = node
                    if frame == sp:
                        return int(ret)
                node = int(_U64.unpack(self.ctx.read(node, 8))[0])
        except DumpError:
            return 0
        return 0


def _no_room_for_frame(sp: int, region: StackRange, checks: list[Check]) -> NoReturn:
    checks.append(
        Check(
            "room_for_frame",
            False,
            f"A 160-byte frame at 0x{sp:x} would run past the end of the "
            f"{region.stack_type} stack at 0x{region.end:x}.",
        )
    )
    raise _Failure("no_room_for_frame", sp, checks)


def walk(
    ctx: UnwindContext,
    task: TaskStacks,
    *,
    sp: int | None = None,
    regs: PtRegs | None = None,
    start: str = "ksp",
    detailed: bool = True,
) -> Walk:
    """Unwind one task like ``unwind_for_each_frame(&state, task, regs, 0)``.

    Args:
        ctx: kernel facts.
        task: the task's stacks and shadow stacks.
        sp: where to start without registers (``thread.ksp``, or an explicit sp).
        regs: start from these registers (a running CPU's PSW and GPRs) instead.
        start: a label for the start (``ksp``, ``cpu``, ``sp``).
        detailed: decode every frame for display (the ``check`` fast path skips it).

    Returns:
        The walk; it always terminates (monotonic sp, visit mask, :data:`MAX_STEPS`).
    """
    st = _State(ctx, task, detailed)
    steps: list[Step] = []
    if task.regions.task_stack is None and regs is None and sp is None:
        return Walk(start, ctx.era, task.regions, (), WalkEnd("no_stack", None, 0))
    # __unwind_start
    if regs is not None and regs.user_mode:
        return Walk(start, ctx.era, task.regions, (), WalkEnd("user_regs", None, regs.sp, regs))
    checks: list[Check] = []
    try:
        first_sp = regs.sp if regs is not None else (sp or 0)
        st.update_stack_info(first_sp, checks)
        if regs is not None:
            ip = regs.psw.addr
            how: StepHow = "start_regs"
        else:
            ip, st.chain = st.r14_and_chain(first_sp, checks)
            how = "start"
    except _Failure as f:
        return Walk(
            start, ctx.era, task.regions, (), WalkEnd("error", f.detail, f.sp, checks=f.checks)
        )
    st.sp = first_sp
    st.regs = regs
    real, by = st.recover(ip, first_sp, checks)
    checks.append(_text_check(ctx, real))
    st.ip = real
    assert st.info is not None
    steps.append(
        Step(0, first_sp, real, ip, st.info, how, True, regs, st.frame(first_sp), by, tuple(checks))
    )
    while True:
        if len(steps) >= MAX_STEPS:
            end = WalkEnd("step_limit", None, st.sp)
            break
        result = _next_frame(st, len(steps))
        if isinstance(result, WalkEnd):
            end = result
            break
        steps.append(result)
    return Walk(start, ctx.era, task.regions, tuple(steps), end)


def _next_frame(st: _State, index: int) -> Step | WalkEnd:
    """``unwind_next_frame()``: one more frame, or how the walk ends."""
    ctx = st.ctx
    # Fast path of ``backchain check`` (no display): a non-zero back chain that moves up
    # within the current stack, to a frame whose page was read before. Same result as the
    # general path below, without the checks' prose.
    sp = st.chain or 0
    info = st.info
    if (
        sp
        and st.regs is None
        and not st.detailed
        and info is not None
        and not sp & 7
        and st.sp < sp <= info.end - STACK_FRAME_SIZE
    ):
        off = sp & 0xFFF
        page = st.pages.get(sp - off) if off <= 0x1000 - STACK_FRAME_SIZE else None
        if page is not None:
            r14, _, st.chain = _R14_R15_CHAIN.unpack_from(page, off + _SF_R14)
            st.sp = sp
            if r14 == ctx.return_to_handler or r14 in ctx.kretprobe_trampolines:
                ip, by = st.recover(r14, sp, [])
            else:
                ip, by = r14, None
            st.ip = ip
            return Step(index, sp, ip, r14, info, "backchain", True, None, None, by, ())
    checks: list[Check] = []
    assert st.info is not None
    try:
        if st.regs is not None:
            # Case 1: after pt_regs, guess the caller from the r14 slot of the interrupted
            # function's frame; it may be stale (the function may not have called yet).
            sp = st.sp
            ip, st.chain = st.r14_and_chain(sp, checks)
            # The kernel tests __kernel_text_address() first and recovers only then.
            not_text = not ctx.is_text(ip)
            skip_same = not not_text and ctx.era == "current" and st.ip == st.recover(ip, sp, [])[0]
            if not_text or skip_same:
                why = "is not kernel text" if not_text else "equals the PSW address just reported"
                st.regs = None
                rest = _next_frame(st, index)
                note = Check(
                    "r14_guess", None, f"The saved r14 0x{ip:x} after the pt_regs {why}: skipped."
                )
                if isinstance(rest, Step):
                    return _with_checks(rest, (note, *rest.checks))
                return WalkEnd(rest.kind, rest.detail, rest.sp, rest.regs, (note, *rest.checks))
            checks.append(
                Check(
                    "r14_guess",
                    None,
                    "After an interrupt the caller is guessed from the saved r14 "
                    "slot, which may be stale: this frame is unreliable.",
                )
            )
            real, by = st.recover(ip, sp, checks)
            checks.append(_text_check(ctx, real))
            st.regs = None
            st.ip = real
            return Step(
                index,
                sp,
                real,
                ip,
                st.info,
                "r14_guess",
                False,
                None,
                st.frame(sp),
                by,
                tuple(checks),
            )
        chain = st.chain
        if chain is None:
            chain = st.u64(st.sp + _SF_BACK_CHAIN, "back chain", checks)
        if chain:
            # Case 2: a non-zero back chain points to the caller's frame.
            sp = chain
            if st.outside_of_stack(sp):
                st.update_stack_info(sp, checks)
            elif st.detailed:
                checks.append(
                    Check(
                        "sp_increasing",
                        True,
                        f"Back chain 0x{sp:x} is above sp 0x{st.sp:x} on the "
                        f"same {st.info.stack_type} stack, with room for a frame.",
                    )
                )
            ip, next_chain = st.r14_and_chain(sp, checks)
            regs = None
            how: StepHow = "backchain"
        else:
            # Case 3: a zero back chain: look for pt_regs right above this frame.
            regs_addr = st.sp + STACK_FRAME_SIZE
            if not st.info.on_stack(regs_addr, ctx.pt_regs_size):
                checks.append(
                    Check(
                        "pt_regs_fit",
                        False,
                        f"The back chain is 0 but a {ctx.pt_regs_size}-byte "
                        f"pt_regs at 0x{regs_addr:x} would not fit in the "
                        f"{st.info.stack_type} stack (ends 0x{st.info.end:x}).",
                    )
                )
                raise _Failure("pt_regs_outside_stack", regs_addr, checks)
            if st.detailed:
                checks.append(
                    Check(
                        "pt_regs_fit",
                        True,
                        f"The back chain is 0: pt_regs at 0x{regs_addr:x} fit in "
                        f"the {st.info.stack_type} stack.",
                    )
                )
            regs = st.pt_regs(regs_addr, checks)
            final = _is_final_pt_regs(st, regs)
            if final:
                checks.append(Check("final_pt_regs", True, final))
                return WalkEnd("final_pt_regs", None, regs_addr, regs, tuple(checks))
            checks.append(
                Check(
                    "final_pt_regs",
                    None,
                    f"These pt_regs are not the task's final ones (those are at "
                    f"0x{st.task.task_pt_regs:x}): an interrupt or exception "
                    "happened here; the walk continues at the interrupted PSW.",
                )
            )
            ip = regs.psw.addr
            sp = regs.sp
            if st.outside_of_stack(sp):
                st.update_stack_info(sp, checks)
            how = "pt_regs"
            next_chain = None
        if sp & 7:
            checks.append(
                Check(
                    "sp_aligned",
                    False,
                    f"0x{sp:x} is not 8-byte aligned, which the s390 ABI "
                    "requires of every stack pointer.",
                )
            )
            raise _Failure("sp_misaligned", sp, checks)
    except _Failure as f:
        return WalkEnd("error", f.detail, f.sp, checks=f.checks)
    st.sp = sp
    st.regs = regs
    st.chain = next_chain
    real, by = st.recover(ip, sp, checks)
    if st.detailed:
        checks.append(_text_check(ctx, real))
    st.ip = real
    return Step(index, sp, real, ip, st.info, how, True, regs, st.frame(sp), by, tuple(checks))


def _is_final_pt_regs(st: _State, regs: PtRegs) -> str | None:
    """``is_final_pt_regs()``; returns why they are final, or None."""
    if regs.address == st.task.task_pt_regs:
        kind = "user mode" if regs.user_mode else "a kernel thread"
        return (
            f"Reached the pt_regs at the top of the task stack (0x{regs.address:x}, "
            f"{kind}): the normal end of a complete walk."
        )
    info = st.info
    if (
        info is not None
        and info.stack_type == "irq"
        and regs.address == info.end - st.ctx.pt_regs_size
        and regs.user_mode
    ):
        return (
            "Reached user-mode pt_regs at the top of the irq stack: the normal end of a "
            "walk that began in an interrupt of user space."
        )
    return None


def _text_check(ctx: UnwindContext, ip: int) -> Check:
    if ctx.is_text(ip):
        return Check("ip_is_text", True, f"The return address 0x{ip:x} is kernel text.")
    return Check(
        "ip_is_text",
        False,
        f"The return address 0x{ip:x} is not kernel text: the walk can go on, but "
        "a reliable stack trace cannot include it.",
    )


def _with_checks(step: Step, checks: tuple[Check, ...]) -> Step:
    return Step(
        step.index,
        step.sp,
        step.ip,
        step.raw_ip,
        step.stack,
        step.how,
        step.reliable,
        step.regs,
        step.frame,
        step.recovered_by,
        checks,
    )
