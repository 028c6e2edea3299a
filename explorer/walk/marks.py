"""One mark per frame that agrees with the verdict, for every face (text, Markdown, JSON,
the TUI): ``yes`` (livepatch accepted the frame), ``no`` (this frame fails, or the
unwinder itself doubts it), ``not checked`` (after the failing frame: livepatch stopped).

``arch_stack_walk_reliable()`` stops at the first frame that breaks a rule, so the frame
the verdict names is "no" even when the unwinder had no doubt about it (a frame reached
through pt_regs is a real PSW, but crossing pt_regs is what makes the stack unreliable),
and no frame after it was looked at. A running task is judged as its own CPU's current
task (``Verdict.as_current``), as the verdict lines say.
"""

from __future__ import annotations

from dataclasses import dataclass

from explorer.walk.reliable import Verdict
from explorer.walk.unwind import Walk

YES, NO, NOT_CHECKED = "yes", "no", "not checked"
#: Rules livepatch applies frame by frame (explorer.walk.reliable.RULES[:5]).
FRAME_RULES = (
    "not_task_stack",
    "crossed_pt_regs",
    "return_address_not_text",
    "kretprobe_trampoline",
    "too_many_entries",
)


@dataclass(frozen=True, slots=True)
class FrameMark:
    """The mark of one frame and, for the failing frame, the rule it breaks."""

    mark: str
    rule: str | None = None


def judged(verdict: Verdict) -> Verdict:
    """The verdict the frames are marked by: a running task's as-current verdict."""
    if verdict.rule == "task_running" and verdict.as_current is not None:
        return verdict.as_current
    return verdict


#: The marks without a rule, shared (a mark is immutable): one walk has many frames.
_YES, _NO, _NOT_CHECKED = FrameMark(YES), FrameMark(NO), FrameMark(NOT_CHECKED)


def failing_frame(verdict: Verdict) -> tuple[int | None, str | None]:
    """The frame a frame rule fails at and that rule, else (None, None): with the steps'
    ``index`` and ``reliable``, all that :func:`frame_marks` depends on."""
    v = judged(verdict)
    if v.rule in FRAME_RULES and v.frame is not None:
        return v.frame, v.rule
    return None, None


def frame_marks(walk: Walk, verdict: Verdict) -> list[FrameMark]:
    """A :class:`FrameMark` per step of ``walk``."""
    failing, rule = failing_frame(verdict)
    out = []
    for s in walk.steps:
        if failing is not None:
            if s.index > failing:
                out.append(_NOT_CHECKED)
                continue
            if s.index == failing:
                out.append(FrameMark(NO, rule))
                continue
        out.append(_YES if s.reliable else _NO)
    return out


__all__ = ["NO", "NOT_CHECKED", "YES", "FrameMark", "failing_frame", "frame_marks", "judged"]
