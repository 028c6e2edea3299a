"""Recovered frames as the faces show them: text lines for ``bt -t``/``bt -T`` and the
``recovered`` JSON of ``bt``/``check --json``. Data comes from :mod:`explorer.code.recover`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

if TYPE_CHECKING:  # the grader is imported by a walk that broke (3 dataclasses, 5 ms)
    from explorer.code.recover import Recovery, TextWord
    from explorer.model.kernel import Kernel
    from explorer.walk.unwind import Walk

#: crash's letters: ``bt -t`` the whole live stack, ``bt -T`` from the break on.
SCOPES = {"t": "stack", "T": "break"}


def recovery_of(kernel: Kernel, walk: Walk, scope: str) -> Recovery:
    """Grade ``walk``'s stack in ``scope`` (``stack`` or ``break``)."""
    from explorer.code.recover import grader_of, recover

    syms = kernel.symbols
    switch_to = syms.address_of("__switch_to") if syms is not None else None
    grader = grader_of(kernel)
    return recover(grader, walk, kernel.space.read, grader.is_text, scope, switch_to)


def broke(kernel: Kernel, walk: Walk) -> bool:
    """True if the walk ended in an unwind error or reached an ip that is not text."""
    if walk.end.kind == "error":
        return True
    memo = _TEXT.get(kernel)
    if memo is None:
        memo = _TEXT[kernel] = {}
    if all(map(memo.get, [s.ip for s in walk.steps[1:]])):  # every ip known to be text
        return False
    for i, s in enumerate(walk.steps):
        known = memo.get(s.ip)
        if known is None:
            known = memo[s.ip] = kernel.is_text(s.ip)
        if i and not known:
            return True
    return False


#: ``is_text`` answers per kernel for :func:`broke` (``check --json`` asks for every frame).
_TEXT: WeakKeyDictionary[Any, dict[int, bool]] = WeakKeyDictionary()


def _mark(w: TextWord) -> str:
    if w.frame is not None:
        return f"#{w.frame}"
    return "R" if w.recovered else ""


def recovery_lines(kernel: Kernel, rec: Recovery) -> list[str]:
    """``bt -t``/``-T``: one line per text word, then the recovered chain."""
    if rec.scope == "break" and rec.anchor is None:
        return ["text on the stack (-T): the walk did not break; nothing to recover"]
    what = "the live stack" if rec.scope == "stack" else "the break on"
    c = rec.counts
    lines = [
        f"text on the stack, from {what} (0x{rec.begin:016x}-0x{rec.end:016x}): "
        f"{c['proven']} proven, {c['plausible']} plausible, {c['stale']} stale"
    ]
    for w in rec.words:
        sym = kernel.symbolize(w.value) or "?"
        lines.append(f" {_mark(w):>4} [0x{w.slot:016x}] {w.grade:<9} {sym}  ({w.reason})")
    chain = rec.chain
    if rec.anchor is not None:
        a = rec.anchor
        lines.append(
            f"recovered below the break after frame #{a.index} "
            f"(RECOVERED from the stack's contents, not the kernel's walk; the verdict stands):"
        )
        if not chain:
            lines.append("  nothing: no word links to the frame above by a proven call")
        for n, w in enumerate(chain, a.index + 1):
            sym = kernel.symbolize(w.value) or "?"
            lines.append(f" R#{n:<2} [0x{w.sp:016x}] {sym} at 0x{w.value:016x}  {w.grade}")
    return lines


def _word_json(kernel: Kernel, w: TextWord) -> dict[str, Any]:
    return {
        "slot": f"0x{w.slot:x}",
        "value": f"0x{w.value:x}",
        "symbol": kernel.symbolize(w.value),
        "grade": w.grade,
        "reason": w.reason,
        "frame": w.frame,
        "recovered": w.recovered,
    }


def recovery_json(kernel: Kernel, rec: Recovery, words: bool = True) -> dict[str, Any]:
    """The ``recovered`` object: the chain below the break (``frames``, each marked
    ``"recovered": true``) and, with ``words``, every graded text word."""
    anchor = rec.anchor
    doc: dict[str, Any] = {
        "scope": rec.scope,
        "after_frame": None if anchor is None else anchor.index,
        "frames": [
            {
                "index": n,
                "sp": f"0x{w.sp:x}",
                "ip": f"0x{w.value:x}",
                "symbol": kernel.symbolize(w.value),
                "grade": w.grade,
                "reason": w.reason,
                "recovered": True,
            }
            for n, w in enumerate(rec.chain, (anchor.index + 1) if anchor else 0)
        ],
        "counts": rec.counts,
    }
    if words:
        doc["words"] = [_word_json(kernel, w) for w in rec.words]
    return doc
