"""Where an interrupted function stood: before its frame, frame allocated but back chain not
yet stored, normal body, or epilogue with the frame released.

A saved PSW names the next instruction to execute; the state wanted is the one before it.
It comes from a forward data flow over the function's control flow, from its symbol start:
state = (phase, r15 minus the entry r15, where the return address is). A decrement of r15
allocates the frame (back chain not written); a store at 152(%r15) writes the back chain;
``lmg ..%r15`` or adding the size back releases it. Conditional branches, compare-and-branch
and jump-label nops take both ways; ``br``, tail calls and ``BUG()`` end a path. Code the
flow cannot reach (after a jump table) is judged by address order instead: after the first
decrement and up to the first back-chain store the frame has no back chain yet.

Measured on Debian 6.1 (machine-code.md): 3.85% of kernel instructions sit in a window
with a frame but no back chain; in ``__schedule`` 0xa296e8..0xa296fa.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from explorer.code.statecache import StateCache, state_key
from explorer.code.text import CodeText, Function
from parsers.errors import DumpError

if TYPE_CHECKING:  # decoding and its effects are imported when a function is analysed: a
    # state remembered from an earlier run (explorer.code.statecache) needs neither
    from explorer.code.effects import Effect
    from explorer.code.insn import Instruction

#: Phases, in the words the faces use.
PHASES = {
    "no_frame": "runs on its caller's frame (allocates none)",
    "before_frame": "before its frame is allocated",
    "no_back_chain": "frame allocated, back chain not yet stored",
    "body": "frame allocated and back chain stored",
    "epilogue": "frame released (epilogue)",
    "stack_switched": "on another stack (r15 loaded)",
}
_MAX_STATES = 8
_CACHE = 512


@dataclass(frozen=True, slots=True)
class _State:
    phase: str  # entry, allocated, chained, released, switched
    delta: int | None  # r15 - entry r15
    saved: int | None  # return address saved at entry r15 + saved
    r14_live: bool  # r14 still holds the return address
    copies: frozenset[tuple[int, int]] = frozenset()  # (register, r15 delta it holds)
    saved15: int | None = None  # entry r15 saved at entry r15 + saved15


_ENTRY = _State("entry", 0, None, True)


def _step(s: _State, e: Effect) -> _State:
    """The state after an instruction with effect ``e``."""
    phase, delta, saved, live, copies = s.phase, s.delta, s.saved, s.r14_live, s.copies
    saved15 = s.saved15
    if e.r14_saved_at is not None and live and delta is not None and saved is None:
        saved = delta + e.r14_saved_at
    if e.r15_saved_at is not None and delta == 0 and saved15 is None:
        saved15 = e.r15_saved_at
    if e.chain_store is not None and phase == "allocated":
        phase = "chained"
    if e.r15_add and delta is not None:
        delta += e.r15_add
        if e.r15_add < 0 and phase in ("entry", "released"):
            phase = "allocated"
        elif delta >= 0 and phase in ("allocated", "chained"):
            phase, delta = "released", 0
    elif e.r15_from is not None:
        src = e.r15_from
        copied = dict(copies).get(int(src[5:])) if src.startswith("copy:") else None
        if src.startswith("slot:"):
            src = "restore" if restores(src, delta, copies, saved15) else "other"
        if src == "dynamic":
            # A frame moved down by a run-time amount (alloca, add_random_kstack_offset()):
            # its back chain must be stored again at the new r15.
            phase, delta = ("allocated" if phase != "switched" else phase), None
        elif src in ("restore", "chain") or copied == 0:
            if phase in ("allocated", "chained"):
                phase = "released"
            delta = 0
        elif copied is not None:
            delta = copied
        else:
            phase, delta = "switched", None
    if e.copy_r15_to is not None and delta is not None:
        copies = frozenset(
            {(r, d) for r, d in copies if r != e.copy_r15_to} | {(e.copy_r15_to, delta)}
        )
    if e.r14_written == "restore":
        live = saved is not None or live
    elif e.r14_written is not None:
        live = False
    return _State(phase, delta, saved, live, copies, saved15)


def restores(
    src: str, delta: int | None, copies: frozenset[tuple[int, int]], saved15: int | None
) -> bool:
    """Whether ``lg %r15,D(%rB)`` (``slot:B:D``) reloads the entry r15 saved by the
    prologue's ``stmg``: an epilogue, not a stack switch."""
    _, base, disp = src.split(":")
    if saved15 is None:
        return False
    at = delta if base == "15" else dict(copies).get(int(base))
    return at is not None and at + int(disp) == saved15


@dataclass(frozen=True)
class PrologueState:
    """Where execution stood at ``address`` (before the instruction there runs).

    Attributes:
        address: the PSW address.
        function: the function holding it.
        phase: a key of :data:`PHASES` (``ambiguous`` if paths disagree, ``unknown`` without
            code).
        frame_size: bytes allocated below the entry r15 at this point (None: unknown).
        return_address_in: ``r14``, ``saved`` (in the caller's frame), ``both`` or ``lost``.
        saved_at: where it is saved, as an offset from the caller's sp (136 normally).
        how: ``flow`` (data flow over the control flow) or ``address order`` (unreachable
            code, e.g. behind a jump table).
    """

    address: int
    function: Function | None
    phase: str
    frame_size: int | None
    return_address_in: str | None
    how: str
    saved_at: int | None = None

    @property
    def text(self) -> str:
        """One phrase: ``frame allocated, back chain not yet stored``."""
        return PHASES.get(self.phase, self.phase)

    @property
    def back_chain_stored(self) -> bool | None:
        """Whether r15 points at a frame whose back chain is valid for the walk."""
        if self.phase == "body":
            return True
        if self.phase in ("no_back_chain",):
            return False
        return None

    def caller(
        self, gprs: tuple[int, ...] | list[int], read_u64: Callable[[int], int]
    ) -> tuple[int | None, int | None]:
        """The caller's sp (the entry r15) and the return address, from the registers of
        the interrupted context; None where not known."""
        if self.frame_size is None or len(gprs) < 16:
            return None, None
        sp = gprs[15] + self.frame_size
        where = self.return_address_in
        if where in ("r14", "both"):
            return sp, gprs[14]
        if where == "saved":
            try:
                from explorer.code.effects import SAVED_R14

                return sp, read_u64(sp + (self.saved_at or SAVED_R14))
            except DumpError:
                return sp, None
        return sp, None


class PrologueAnalyzer:
    """Prologue states of one kernel's functions (analysed once per function, cached)."""

    def __init__(self, code: CodeText, remembered: StateCache | None = None) -> None:
        self.code = code
        self._flows: dict[int, tuple[list[Instruction], dict[int, set[_State]], bool]] = {}
        #: states of earlier runs (:mod:`explorer.code.statecache`): a warm run decodes nothing
        self.remembered = remembered
        self._states: dict[int, PrologueState] = {}

    def _flow(self, func: Function) -> tuple[list[Instruction], dict[int, set[_State]], bool]:
        known = self._flows.get(func.start)
        if known is not None:
            return known
        data = self.code.read(func.start, func.size)
        from explorer.code.effects import effect_of
        from explorer.code.insn import decode

        insns = decode(data, func.start) if data else []
        states = flow(insns, func)
        allocates = any(effect_of(i).r15_add < 0 for i in insns)
        if len(self._flows) >= _CACHE:
            self._flows.clear()
        self._flows[func.start] = result = (insns, states, allocates)
        return result

    def instructions(self, func: Function) -> list[Instruction]:
        """The function's instructions (decoded once, cached with its flow)."""
        return self._flow(func)[0]

    def state_at(self, address: int) -> PrologueState:
        """The state before the instruction at ``address`` executes."""
        func = self.code.function_at(address)
        if func is None:
            return PrologueState(address, None, "unknown", None, None, "no code")
        if self.remembered is None:
            return self._state_at(address, func)
        seen = self._states.get(address)  # many tasks stop at the same PSW: hash it once
        if seen is not None and seen.function == func:
            return seen
        data = self.code.read(func.start, func.size)
        if not data:
            return self._state_at(address, func)
        key = state_key(func.start, func.size, data, address)
        known = self.remembered.get(key)
        if known is not None:
            state = PrologueState(address, func, *known)
        else:
            state = self._state_at(address, func)
            self.remembered.put(
                key,
                (state.phase, state.frame_size, state.return_address_in, state.how, state.saved_at),
            )
        if len(self._states) >= _CACHE:
            self._states.clear()
        self._states[address] = state
        return state

    def _state_at(self, address: int, func: Function) -> PrologueState:
        insns, states, allocates = self._flow(func)
        if not insns:
            return PrologueState(address, func, "unknown", None, None, "no code")
        here = states.get(address)
        if here:
            return _summary(address, func, here, allocates, "flow")
        return _by_address_order(address, func, insns, allocates)


def flow(insns: list[Instruction], func: Function) -> dict[int, set[_State]]:
    """States before each reachable instruction, from the function's entry."""
    index = {i.address: n for n, i in enumerate(insns)}
    from explorer.code.effects import effect_of

    effects = [effect_of(i) for i in insns]
    states: dict[int, set[_State]] = {}
    work = [(0, _ENTRY)] if insns else []
    while work:
        n, state = work.pop()
        insn = insns[n]
        seen = states.setdefault(insn.address, set())
        if state in seen or len(seen) >= _MAX_STATES:
            continue
        seen.add(state)
        e = effects[n]
        after = _step(state, e)
        if e.falls_through and n + 1 < len(insns):
            work.append((n + 1, after))
        for target in e.targets:
            m = index.get(target)
            if m is not None:  # outside the function: a tail call ends this path
                work.append((m, after))
    return states


def _summary(
    address: int, func: Function, here: set[_State], allocates: bool, how: str
) -> PrologueState:
    phases = {_phase(s, allocates) for s in here}
    sizes = {None if s.delta is None else -s.delta for s in here}
    where = {_where(s) for s in here}
    slots = {s.saved for s in here}
    phase = phases.pop() if len(phases) == 1 else "ambiguous"
    size = sizes.pop() if len(sizes) == 1 else None
    ra = where.pop() if len(where) == 1 else None
    slot = slots.pop() if len(slots) == 1 else None
    return PrologueState(address, func, phase, size, ra, how, slot)


def _phase(s: _State, allocates: bool) -> str:
    return {
        "entry": "before_frame" if allocates else "no_frame",
        "allocated": "no_back_chain",
        "chained": "body",
        "released": "epilogue",
        "switched": "stack_switched",
    }[s.phase]


def _where(s: _State) -> str:
    if s.r14_live and s.saved is not None:
        return "both"
    if s.r14_live:
        return "r14"
    return "saved" if s.saved is not None else "lost"


def _by_address_order(
    address: int, func: Function, insns: list[Instruction], allocates: bool
) -> PrologueState:
    """Unreachable for the flow: the first decrement and the first back-chain store."""
    from explorer.code.effects import effect_of

    state = _ENTRY
    for insn in insns:
        if insn.address >= address:
            break
        e = effect_of(insn)
        if e.r15_add > 0 or e.r15_from is not None:
            continue  # epilogues on other paths: address order cannot follow them
        state = _step(state, e)
    return _summary(address, func, {state}, allocates, "address order")
