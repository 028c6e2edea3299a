"""The CFI unwinder's frames beside the back chain's, as the walk pane and the checks pane
show them: words from :class:`explorer.debuginfo.cfi.Agreement` (the pairing ``bt --cfi``
prints), nothing decoded here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from explorer.tui.fit import short_symbol

if TYPE_CHECKING:
    from explorer.debuginfo.cfi import Agreement, CfiFrame, Explanation

Symbolize = Callable[[int], str | None]

#: What a CFI cell is: the same frame, another frame, none (CFI stopped before), the end row.
SAME, OTHER, NONE, END = "same", "other", "none", "end"


@dataclass(frozen=True)
class CfiCell:
    """One CFI cell of the walk pane."""

    text: str
    kind: str


def frame_text(frame: CfiFrame, symbolize: Symbolize) -> str:
    """``0x37ffe803ac0 schedule+0x3e``: a CFI frame's sp and pc, as ``bt --cfi`` names it."""
    return f"0x{frame.sp:x} {short_symbol(symbolize(frame.pc) or f'0x{frame.pc:x}')}"


def agrees(step: Any, frame: CfiFrame | None) -> bool:
    """Whether the CFI frame is the back chain's frame (same sp and pc)."""
    return step is not None and frame is not None and step.sp == frame.sp and step.ip == frame.pc


def beside(ag: Agreement, row: int) -> tuple[CfiFrame | None, Explanation | None]:
    """The CFI frame paired with back-chain step ``row`` (None: CFI stopped before it or
    steps over it) and why they differ (None: they agree, or not explained)."""
    return ag.beside(row)


def cfi_frame(ag: Agreement, row: int) -> CfiFrame | None:
    """The CFI frame beside walk row ``row`` (None: none)."""
    return beside(ag, row)[0]


def beyond(ag: Agreement) -> list[CfiFrame]:
    """CFI frames no back-chain step is paired with (past its last frame, or between)."""
    return [f for s, f in ag.pairs if s is None and f is not None]


def explanation(ag: Agreement, row: int) -> str | None:
    """Why CFI and the back chain differ at ``row``, in one line, when the comparison
    explains it (``Explanation.text``)."""
    why = beside(ag, row)[1]
    return why.text if why is not None else None


def cell(ag: Agreement, row: int, steps: tuple[Any, ...], symbolize: Symbolize) -> CfiCell:
    """The walk pane's CFI cell of row ``row`` (``len(steps)``: the end of the walk): the
    CFI frame's function when it is another frame (its sp is in :func:`notes`)."""
    if row >= len(steps):
        more = beyond(ag)  # named in the checks pane, with why CFI stopped
        return CfiCell(f"+{len(more)}" if more else "", END)
    frame = cfi_frame(ag, row)
    if frame is None:
        return CfiCell("–", NONE)
    if agrees(steps[row], frame):
        return CfiCell("same", SAME)
    return CfiCell(f"≠ {short_symbol(symbolize(frame.pc) or f'0x{frame.pc:x}')}", OTHER)


def notes(ag: Agreement, row: int, steps: tuple[Any, ...], symbolize: Symbolize) -> list[str]:
    """The checks pane's CFI lines at row ``row``: what CFI found there and why it differs
    (when the comparison explains it), or where and why it stopped."""
    head = f"{ag.agree} of {len(steps)} frames agree"
    if row >= len(steps):
        out = [head, f"CFI stopped: {ag.cfi_end}"]
        out += [f"only CFI has: {frame_text(f, symbolize)}" for f in beyond(ag)]
        return out
    frame = cfi_frame(ag, row)
    if frame is None:
        why = explanation(ag, row)
        return [head, f"CFI has no frame beside #{row}", *([why] if why else [])]
    if agrees(steps[row], frame):
        return [head, f"frame #{row} is the same: {frame_text(frame, symbolize)}"]
    out = [head, f"frame #{row} differs: CFI has {frame_text(frame, symbolize)}"]
    why = explanation(ag, row)
    if why:
        out.append(why)
    return out
