"""Recovered frames: every text address on a stack, graded, and the chain they make below
a broken back chain (crash's ``bt -t``/``bt -T``, with evidence instead of guesses).

Every 8-byte word of the live stack that points into kernel or module text is graded:

* ``proven``: it follows a call (the call-site check) and links to the frame above it (the
  inner frame, nearer the top of the stack): the call's target is that frame's function or
  reaches it by tail jumps, or the word sits exactly in the return-address slot of the
  caller's frame that the frame above's own prologue implies (its sp plus the frame size its
  code allocates, plus 136);
* ``plausible``: it follows an indirect call (``basr``, an expoline thunk) or one whose
  target or code cannot be read, and nothing proves the link;
* ``stale``: it follows no call, or a direct call of a function that leads nowhere near the
  frame above: a leftover of an earlier call, a function pointer, a saved register.

The kernel's walk stays the kernel's: its frames are marked with their index, and the frames
found beyond the point where it broke are a *recovered* chain, never a new verdict. Below
the break, the chain is the one with the most proven links (then the fewest plausible ones)
from the last frame the walk trusted, each link higher on the stack (frames of
``-mpacked-stack`` kernels can be closer than 160 bytes: 64 between ``do_wait`` and
``kernel_wait4`` in the 6.12 sample).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from explorer.code.branches import relative_target
from explorer.code.callsite import RETURN_ADDRESS_KINDS
from explorer.code.insn import insn_length
from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.code.callsite import CallChecker
    from explorer.code.prologue import PrologueAnalyzer
    from explorer.code.text import CodeText, Function
    from explorer.model.kernel import StackRange
    from explorer.walk.unwind import Step, Walk

GRADES = ("proven", "plausible", "stale")
#: The saved r14 of a frame (``stack_frame.gprs[8]``, packed stack) and the smallest frame.
SAVED_R14 = 0x88
FRAME_OVERHEAD = 160
#: How many tail jumps a call target may take to reach the frame above.
_TAIL_DEPTH = 3
#: Expoline thunks: a call through them is an indirect call.
_THUNK = "__s390_indirect_jump"


@dataclass(frozen=True, slots=True)
class TextWord:
    """One word of the stack that holds a kernel or module text address.

    Attributes:
        slot: where on the stack the word is.
        value: the text address it holds.
        grade: ``proven``, ``plausible`` or ``stale``.
        reason: why, in one phrase.
        frame: the index of the kernel's walk frame whose return address this is, if any.
        recovered: on the chain recovered below the break.
    """

    slot: int
    value: int
    grade: str
    reason: str
    frame: int | None = None
    recovered: bool = False

    @property
    def sp(self) -> int:
        """The frame this word would be the saved r14 of."""
        return self.slot - SAVED_R14


@dataclass(frozen=True)
class Recovery:
    """The graded text words of one stack.

    Attributes:
        scope: ``stack`` (``bt -t``: the live stack) or ``break`` (``bt -T``: from the
            break on).
        begin: first byte scanned; end: one past the last.
        anchor: the last frame of the kernel's walk trusted before the break (None if the
            walk did not break).
        words: the text words, in stack order.
    """

    scope: str
    begin: int
    end: int
    anchor: Step | None
    words: tuple[TextWord, ...]

    @property
    def chain(self) -> tuple[TextWord, ...]:
        """The frames recovered below the break, innermost first."""
        return tuple(w for w in self.words if w.recovered)

    @property
    def counts(self) -> dict[str, int]:
        """Words per grade."""
        return {g: sum(1 for w in self.words if w.grade == g) for g in GRADES}


class Grader:
    """Grades return-address candidates of one kernel (memoised across tasks).

    Args:
        code: the kernel's code bytes. calls: its call-site checker. prologues: its
            prologue analyser (frame sizes).
    """

    def __init__(self, code: CodeText, calls: CallChecker, prologues: PrologueAnalyzer) -> None:
        self.code = code
        self.calls = calls
        self.prologues = prologues
        self._tails: dict[int, tuple[int, ...]] = {}
        self._funcs: dict[int, Function | None] = {}
        self._sizes: dict[int, int | None] = {}
        self._targets: dict[int, tuple[str, int | None, str]] = {}
        self._text: dict[int, bool] = {}

    def is_text(self, address: int) -> bool:
        """``__kernel_text_address()`` (memoised)."""
        known = self._text.get(address)
        if known is None:
            known = self._text[address] = self.code.kernel.is_text(address)
        return known

    def function(self, address: int) -> Function | None:
        """The function holding ``address`` (memoised)."""
        if address not in self._funcs:
            self._funcs[address] = self.code.function_at(address)
        return self._funcs[address]

    def frame_size(self, ip: int, return_address: bool) -> int | None:
        """Bytes the function at ``ip`` has allocated below its entry r15 there."""
        at = ip
        if at not in self._sizes:
            try:
                size = self.prologues.state_at(at).frame_size
            except DumpError:
                size = None
            self._sizes[at] = size if size and size > 0 else None
        return self._sizes[at]

    def call(self, value: int) -> tuple[str, int | None, str]:
        """``(kind, target, text)`` of the call before a return address: kind ``none`` (no
        call ends there), ``unknown`` (code unreadable), ``indirect`` or ``direct``."""
        known = self._targets.get(value)
        if known is not None:
            return known
        site = self.calls.check(value)
        if site.after_call is None:
            out: tuple[str, int | None, str] = ("unknown", None, "code not readable")
        elif not site.after_call or site.call_at is None:
            out = ("none", None, "not after a call")
        else:
            text = self.calls.call_text(site) or "a call"
            raw = self.code.read(site.call_at, value - site.call_at) or b""
            target = relative_target(site.call_at, raw)
            func = None if target is None else self.function(target)
            if target is None or func is None or func.name.startswith(_THUNK):
                out = ("indirect", None, text)
            else:
                out = ("direct", func.start, text)
        self._targets[value] = out
        return out

    def _tail_targets(self, func: Function) -> tuple[int, ...]:
        """Starts of the functions ``func`` jumps to (relative branches leaving it)."""
        known = self._tails.get(func.start)
        if known is not None:
            return known
        data = self.code.read(func.start, func.size) or b""
        out: set[int] = set()
        i = 0
        while i < len(data):
            size = insn_length(data[i])
            raw = data[i : i + size]
            branch = (raw[0] == 0xC0 and len(raw) == 6 and raw[1] & 0xF == 0x4) or (
                raw[0] == 0xA7 and len(raw) == 4 and raw[1] & 0xF == 0x4
            )
            if branch and raw[1] >> 4:  # mask 0 is a nop
                target = relative_target(func.start + i, raw)
                if target is not None and not func.start <= target < func.end:
                    dest = self.function(target)
                    if dest is not None:
                        out.add(dest.start)
            i += size
        self._tails[func.start] = found = tuple(sorted(out))
        return found

    def reaches(self, target: int, above: int) -> bool:
        """True if a call of the function at ``target`` can reach the function starting at
        ``above``: it is that function, or gets there by at most three tail jumps."""
        seen = {target}
        level = [target]
        for _ in range(_TAIL_DEPTH + 1):
            if above in level:
                return True
            nxt = []
            for start in level:
                func = self.function(start)
                if func is None:
                    continue
                for dest in self._tail_targets(func):
                    if dest not in seen:
                        seen.add(dest)
                        nxt.append(dest)
            level = nxt
        return False

    def grade(self, value: int, slot: int, above: _Above | None) -> tuple[str, str]:
        """The grade of return-address candidate ``value`` at ``slot`` below ``above``."""
        kind, target, text = self.call(value)
        if kind == "none":
            return "stale", text
        if above is not None and kind != "unknown":
            if above.caller_slot == slot:
                return "proven", f"after {text}; at sp above + its frame size"
            func = above.function
            if (
                kind == "direct"
                and target is not None
                and func is not None
                and self.reaches(target, func.start)
            ):
                how = "" if target == func.start else " (by tail jumps)"
                return "proven", f"after {text}, the frame above{how}"
        if kind == "unknown":
            return "plausible", text
        if kind == "indirect":
            return "plausible", f"after {text} (indirect)"
        if above is None or above.function is None:
            return "plausible", f"after {text}; the frame above is unknown"
        if above.interrupted:
            return "plausible", (
                f"after {text}; the frame above is an interrupted {above.function.name}, "
                "whose callees are unknown"
            )
        return "stale", f"after {text}, but the frame above is in {above.function.name}"

    def above_of(self, sp: int, ip: int, return_address: bool) -> _Above:
        """The frame at ``sp`` running ``ip`` as the frame above the next one."""
        func = self.function(ip - 1 if return_address else ip)
        size = self.frame_size(ip, return_address) if func is not None else None
        caller = None if size is None else sp + size + SAVED_R14
        return _Above(func, caller, not return_address)


@dataclass(frozen=True, slots=True)
class _Above:
    """The frame above a candidate: its function, the caller's return-address slot its
    prologue implies, and whether its ip is a PSW (an interrupted function)."""

    function: Function | None
    caller_slot: int | None
    interrupted: bool = False


def grader_of(kernel: Any) -> Grader:
    """The kernel's shared grader (its memos serve every task)."""
    from explorer.code.cache import analyzer_of, calls_of, code_of

    found = _GRADERS.get(kernel)
    if found is None:
        found = _GRADERS[kernel] = Grader(code_of(kernel), calls_of(kernel), analyzer_of(kernel))
    return found


_GRADERS: WeakKeyDictionary[Any, Grader] = WeakKeyDictionary()


def break_anchor(walk: Walk, is_text: Callable[[int], bool]) -> Step | None:
    """The last frame of the kernel's walk trusted before it broke, or None if it did not
    break: the frame before the first whose ip is not text, else the last frame of a walk
    that ended in an unwind error."""
    steps = walk.steps
    for i, step in enumerate(steps):
        if i and not is_text(step.ip):
            return steps[i - 1]
    if walk.end.kind == "error" and steps:
        return steps[-1]
    return None


def _is_ra(step: Step) -> bool:
    return step.how in RETURN_ADDRESS_KINDS


def _first_above(grader: Grader, walk: Walk, switch_to: int | None) -> _Above | None:
    """The frame above frame 0: ``__switch_to`` for a task switched out at its ksp."""
    steps = walk.steps
    if not steps or steps[0].how != "start" or switch_to is None:
        return None
    func = grader.function(switch_to)
    return _Above(func, None)


def _text_words(
    read: Callable[[int, int], bytes], is_text: Callable[[int], bool], begin: int, end: int
) -> list[tuple[int, int]]:
    """``(slot, value)`` of every aligned word in ``[begin, end)`` that is text."""
    begin = (begin + 7) & ~7
    if end <= begin:
        return []
    try:
        data = read(begin, end - begin)
    except DumpError:
        return []
    out = []
    for off in range(0, len(data) - 7, 8):
        value = int.from_bytes(data[off : off + 8], "big")
        if value and is_text(value):
            out.append((begin + off, value))
    return out


def recover(
    grader: Grader,
    walk: Walk,
    read: Callable[[int, int], bytes],
    is_text: Callable[[int], bool],
    scope: str = "stack",
    switch_to: int | None = None,
) -> Recovery:
    """Grade the text words of ``walk``'s stack (``scope`` ``stack``: from the walk's first
    sp on its stack to the stack's end; ``break``: from the last trusted frame on) and
    recover the chain below the break.

    Args:
        grader: the kernel's :class:`Grader`.
        read, is_text: the kernel's memory and ``__kernel_text_address()``.
        switch_to: the address of ``__switch_to`` (the frame above a sleeping task's
            frame 0).
    """
    anchor = break_anchor(walk, is_text)
    steps = walk.steps
    if scope == "break":
        if anchor is None:
            return Recovery(scope, 0, 0, None, ())
        region: StackRange = anchor.stack
        begin = anchor.sp + SAVED_R14 + 8 if _is_ra(anchor) else anchor.sp
        fixed: list[Step] = []
    else:
        first = steps[0] if steps else None
        if first is None:
            return Recovery(scope, 0, 0, anchor, ())
        region = (anchor or first).stack
        on_region = [s for s in steps if s.stack.begin == region.begin]
        begin = min(s.sp for s in on_region) if on_region else region.begin
        last = steps.index(anchor) if anchor is not None else len(steps) - 1
        fixed = [s for s in steps[: last + 1] if s.stack.begin == region.begin]
    end = region.end
    found = _text_words(read, is_text, begin, end)
    frames = {s.sp + SAVED_R14: s for s in fixed if _is_ra(s) and s.frame is not None}
    words: list[TextWord] = []
    # The kernel's walk: each frame's word graded against the frame before it.
    above_of_step: dict[int, _Above | None] = {}
    prev: _Above | None = _first_above(grader, walk, switch_to)
    for step in steps:
        above_of_step[step.index] = prev
        prev = grader.above_of(step.sp, step.ip, _is_ra(step))
    limit = anchor.sp + SAVED_R14 if anchor is not None else end
    chain: dict[int, tuple[str, str]] = {}
    if anchor is not None:
        chain = _recover_chain(grader, anchor, found)
    for slot, value in found:
        hit = frames.get(slot)
        if hit is not None and hit.raw_ip == value:
            grade, reason = grader.grade(value, slot, above_of_step[hit.index])
            words.append(TextWord(slot, value, grade, reason, frame=hit.index))
            continue
        if slot in chain:
            grade, reason = chain[slot]
            words.append(TextWord(slot, value, grade, reason, recovered=True))
            continue
        above = _nearest_above(grader, slot, limit, steps, frames, chain, found, anchor)
        grade, reason = grader.grade(value, slot, above)
        words.append(TextWord(slot, value, grade, reason))
    return Recovery(scope, begin, end, anchor, tuple(words))


def _nearest_above(
    grader: Grader,
    slot: int,
    limit: int,
    steps: tuple[Step, ...] | list[Step],
    frames: dict[int, Step],
    chain: dict[int, tuple[str, str]],
    found: list[tuple[int, int]],
    anchor: Step | None,
) -> _Above | None:
    """The frame above a word that is neither the walk's nor the recovered chain's: the
    nearest frame of either below it."""
    best: _Above | None = None
    best_slot = -1
    for s in steps:
        s_slot = s.sp + SAVED_R14
        if s_slot < slot and s_slot > best_slot and (anchor is None or s_slot <= limit):
            best_slot = s_slot
            best = grader.above_of(s.sp, s.ip, _is_ra(s))
    for c_slot, value in found:
        if c_slot in chain and best_slot < c_slot < slot:
            best_slot = c_slot
            best = grader.above_of(c_slot - SAVED_R14, value, True)
    return best


def _recover_chain(
    grader: Grader, anchor: Step, found: list[tuple[int, int]]
) -> dict[int, tuple[str, str]]:
    """The chain below the break: slot -> (grade, reason) of its words.

    A dynamic programme over the words that follow a call, in stack order: a word links to
    an earlier one (or the anchor) at least one frame lower when :meth:`Grader.grade` says
    proven or plausible against it; the chain kept has the most proven links, then the
    fewest plausible ones.
    """
    start_slot = anchor.sp + SAVED_R14 if _is_ra(anchor) else anchor.sp
    cands = [
        (slot, value)
        for slot, value in found
        if slot > start_slot and grader.call(value)[0] != "none"
    ]
    # best[i] = (score, predecessor index or -1 for the anchor, grade, reason)
    Score = tuple[int, int]
    best: list[tuple[Score, int, str, str] | None] = []
    anchor_above = grader.above_of(anchor.sp, anchor.ip, _is_ra(anchor))
    aboves: list[_Above] = []
    for i, (slot, value) in enumerate(cands):
        options: list[tuple[Score, int, str, str]] = []
        grade, reason = grader.grade(value, slot, anchor_above)
        if grade != "stale":
            options.append((_score((0, 0), grade), -1, grade, reason))
        for j in range(i):
            prior = best[j]
            if prior is None:
                continue
            grade, reason = grader.grade(value, slot, aboves[j])
            if grade != "stale":
                options.append((_score(prior[0], grade), j, grade, reason))
        best.append(max(options, key=lambda o: o[0]) if options else None)
        aboves.append(grader.above_of(slot - SAVED_R14, value, True))
    ends = [(b[0], -i) for i, b in enumerate(best) if b is not None]
    if not ends:
        return {}
    score, neg = max(ends)
    if score[0] == 0:  # no proven link at all: nothing recovered
        return {}
    out: dict[int, tuple[str, str]] = {}
    i = -neg
    while i >= 0:
        entry = best[i]
        assert entry is not None
        out[cands[i][0]] = (entry[2], entry[3])
        i = entry[1]
    return out


def _score(prior: tuple[int, int], grade: str) -> tuple[int, int]:
    """(proven links, minus plausible links) of a chain extended by one link."""
    return (prior[0] + 1, prior[1]) if grade == "proven" else (prior[0], prior[1] - 1)
