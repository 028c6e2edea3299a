"""Walks and verdicts as plain data (JSON), text listings and Markdown.

The CLI prints these; the TUI shows the same data, so what the explorer shows about a walk
is exactly what ``backchain bt --json`` prints.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from explorer.code.present import (
    after_psw_swap,
    call_fields,
    code_lines,
    not_after_call,
    psw_fields,
)
from explorer.model.kernel import Kernel
from explorer.model.symbols import noreturn_caller
from explorer.reports.regsnames import last_break_where, psw_where
from explorer.walk.analysis import TaskAnalysis
from explorer.walk.reliable import Verdict
from explorer.walk.unwind import Step, Walk, WalkEnd
from parsers.s390.records import PtRegs


def hx(value: int | None) -> str | None:
    """Addresses in JSON: ``"0x…"``."""
    return None if value is None else f"0x{value:x}"


def w16(value: int) -> str:
    """An address in text: ``0x%016x``."""
    return f"0x{value:016x}"


def symbol_of(kernel: Kernel, address: int, user: bool = False) -> str | None:
    """``name+0xoff/0xsize`` of a kernel address (None for user addresses)."""
    return None if user else kernel.symbolize(address)


def pt_regs_json(kernel: Kernel, regs: PtRegs) -> dict[str, Any]:
    """Decoded pt_regs."""
    return {
        "address": hx(regs.address),
        "psw": {
            "mask": hx(regs.psw.mask),
            "addr": hx(regs.psw.addr),
            "bits": regs.psw.describe(),
            "user_mode": regs.user_mode,
            "symbol": symbol_of(kernel, regs.psw.addr, regs.user_mode),
        },
        "gprs": [hx(g) for g in regs.gprs],
        "orig_gpr2": hx(regs.orig_gpr2),
        "int_code": hx(regs.int_code),
        "ilc": regs.ilc,
        "code": hx(regs.code),
        "flags": list(regs.flag_names),
        "last_break": hx(regs.last_break),
        "last_break_symbol": (
            symbol_of(kernel, regs.last_break, regs.user_mode) if regs.last_break else None
        ),
    }


def frame_extras(kernel: Kernel, step: Step) -> dict[str, Any]:
    """The fields other capabilities add to a frame (after ``raw_ip``/``recovered_by``).

    ``check --json`` (explorer.reports.stream) writes the same fields, and remembers them
    per (ip, how) for frames whose ip is a return address (not ``start_regs``/``pt_regs``):
    for those frames they must depend on ip and how only.
    """
    out: dict[str, Any] = {}
    caller = noreturn_caller(kernel, step.ip, step.how)
    if caller is not None:  # the return address lies past the end of the calling function
        out["caller"] = str(caller)
    out.update(call_fields(kernel, step))
    out.update(psw_fields(kernel, step))
    return out


def step_json(kernel: Kernel, step: Step, checks: bool = False) -> dict[str, Any]:
    """One frame as ``bt --json`` prints it."""
    out: dict[str, Any] = {
        "index": step.index,
        "sp": hx(step.sp),
        "ip": hx(step.ip),
        "symbol": kernel.symbolize(step.ip),
        "stack": step.stack_type,
        "reliable": step.reliable,
        "how": step.how,
        "pt_regs": pt_regs_json(kernel, step.regs)
        if step.regs is not None and step.regs.address
        else None,
    }
    if step.raw_ip != step.ip:
        out["raw_ip"] = hx(step.raw_ip)
        out["recovered_by"] = step.recovered_by
    out.update(frame_extras(kernel, step))
    if checks:
        out["checks"] = [{"id": c.id, "ok": c.ok, "reason": c.reason} for c in step.checks]
    return out


def end_json(kernel: Kernel, end: WalkEnd, checks: bool = False) -> dict[str, Any]:
    """How a walk ended."""
    out: dict[str, Any] = {
        "kind": end.kind,
        "detail": end.detail,
        "sp": hx(end.sp),
        "pt_regs": pt_regs_json(kernel, end.regs) if end.regs else None,
    }
    if checks:
        out["checks"] = [{"id": c.id, "ok": c.ok, "reason": c.reason} for c in end.checks]
    return out


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    """The verdict as ``bt --json`` prints it."""
    out: dict[str, Any] = {
        "reliable": verdict.reliable,
        "rule": verdict.rule,
        "detail": verdict.detail,
        "frame": verdict.frame,
        "message": verdict.message,
    }
    if verdict.as_current is not None:  # a running task, judged as its CPU's current task
        out["as_current"] = verdict_json(verdict.as_current)
    return out


def _marked(a: TaskAnalysis, frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each frame's mark as the verdict judges it (``yes``, ``no``, ``not checked``) and, on
    the failing frame, the rule (:mod:`explorer.walk.marks`)."""
    from explorer.walk.marks import frame_marks

    for doc, m in zip(frames, frame_marks(a.walk, a.verdict), strict=True):
        doc["mark"] = m.mark
        if m.rule:
            doc["failing_rule"] = m.rule
    return frames


def analysis_json(kernel: Kernel, a: TaskAnalysis, checks: bool = False) -> dict[str, Any]:
    """One task's walk and verdict (``bt --json``; ``check --json`` is a list of these)."""
    from explorer.model.tasks import task_fields

    t = a.task
    doc = {
        **task_fields(t),
        "era": a.walk.era,
        "start": a.walk.start,
        "stacks": {r.stack_type: [hx(r.begin), hx(r.end)] for r in a.walk.regions.all},
        "frames": _marked(a, [step_json(kernel, s, checks) for s in a.walk.steps]),
        "end": end_json(kernel, a.walk.end, checks),
        "verdict": verdict_json(a.verdict),
        "livepatch": a.livepatch,
    }
    from explorer.walk.sanity import corrupt_field

    return doc | recovered_field(kernel, a.walk) | corrupt_field(kernel, t, a.walk)


def recovered_field(kernel: Kernel, walk: Walk) -> dict[str, Any]:
    """``{"recovered": ...}`` for a walk that broke (the chain below the break), else {}."""
    from explorer.code.recovered import broke, recovery_json, recovery_of

    if not broke(kernel, walk):
        return {}
    return {"recovered": recovery_json(kernel, recovery_of(kernel, walk, "break"), words=False)}


# -- text ----------------------------------------------------------------------------------------
def _regs_lines(kernel: Kernel, regs: PtRegs, indent: str) -> list[str]:
    kind = "USER-MODE" if regs.user_mode else "KERNEL-MODE"
    where = psw_where(regs, kernel.psw_name)
    lines = [
        f"{indent}{kind} pt_regs at {w16(regs.address)}:",
        f"{indent}  PSW:  {w16(regs.psw.mask)} {w16(regs.psw.addr)} ({where})",
        f"{indent}        {regs.psw.describe()}",
    ]
    for row in range(4):
        regs4 = " ".join(f"{g:016x}" for g in regs.gprs[row * 4 : row * 4 + 4])
        lines.append(f"{indent}  GPRS{row * 4:02d}: {regs4}")
    flags = ",".join(regs.flag_names) or "-"
    lines.append(
        f"{indent}  int_code 0x{regs.int_code:08x} (ilc {regs.ilc}, code "
        f"0x{regs.code:04x})  orig_gpr2 0x{regs.orig_gpr2:x}  flags {flags}"
    )
    if regs.last_break is not None:
        where = "not kernel text" if regs.user_mode else last_break_where(regs, kernel.symbolize)
        lines.append(f"{indent}  last_break {w16(regs.last_break)} ({where})")
    return lines


def walk_text(
    kernel: Kernel,
    walk: Walk,
    steps: bool = False,
    under: Callable[[Step], list[str]] | None = None,
    verdict: Verdict | None = None,
) -> list[str]:
    """crash-like frame listing: ``#N [sp] symbol at ip``; unreliable frames in parentheses.

    ``under`` gives lines to print under each frame (``bt -l`` source lines, ``bt -f`` words).
    With ``verdict``, the marks agree with it (:mod:`explorer.walk.marks`): the failing frame is
    in parentheses with its rule, and ``steps`` shows its ``[FAIL]`` line.
    """
    from explorer.walk.marks import NO, NOT_CHECKED, frame_marks, judged

    lines: list[str] = []
    prev_stack = None
    marks = frame_marks(walk, verdict) if verdict is not None else None
    for s in walk.steps:
        mark = marks[s.index] if marks is not None and s.index < len(marks) else None
        if prev_stack is not None and s.stack_type != prev_stack:
            via = "pt_regs" if s.how == "pt_regs" else "back chain"
            lines.append(f"    -- {prev_stack} stack -> {s.stack_type} stack (via {via}) --")
        if s.regs is not None and s.regs.address:
            lines.extend(_regs_lines(kernel, s.regs, "    "))
        sym = kernel.symbolize(s.ip) or "?"
        if not s.reliable or (mark is not None and mark.mark == NO):
            sym = f"({sym})"
        extra = f"  [recovered from {s.recovered_by}]" if s.recovered_by else ""
        caller = noreturn_caller(kernel, s.ip, s.how)
        if caller is not None:
            extra += f"  [called from {caller}: the call does not return]"
        if mark is not None and mark.rule:
            extra += f"  <- UNRELIABLE: {mark.rule}"
        elif mark is not None and mark.mark == NOT_CHECKED and s.reliable:
            extra += "  [not checked]"
        if not_after_call(kernel, s):
            extra += "  [! return address not after a call]"
        else:
            swap = after_psw_swap(kernel, s)
            if swap is not None:
                extra += f"  [after {swap}: a PSW swap, not a call]"
        stack = "" if s.stack_type == "task" else f" <{s.stack_type}>"
        lines.append(f" #{s.index:<2} [{w16(s.sp)}] {sym} at {w16(s.ip)}{stack}{extra}")
        lines.extend(code_lines(kernel, s))
        if under is not None:
            lines.extend(under(s))
        if steps:
            lines.extend(_checks_lines(s.checks))
            if (
                mark is not None
                and mark.rule
                and verdict is not None
                and not any(c.ok is False and c.id == mark.rule for c in s.checks)
            ):
                lines.append(f"        [FAIL] {mark.rule}: {judged(verdict).message}")
        prev_stack = s.stack_type
    end = walk.end
    if end.kind == "final_pt_regs" and end.regs is not None:
        lines.extend(_regs_lines(kernel, end.regs, "    "))
        lines.append("    -- end: final pt_regs at the top of the stack --")
    elif end.kind == "error":
        lines.append(f"    -- end: unwind error ({end.detail}) at {w16(end.sp)} --")
    elif end.kind == "user_regs":
        lines.append("    -- running in user mode: no kernel frames to unwind --")
    elif end.kind == "no_stack":
        lines.append("    -- exited task: no kernel stack --")
    else:
        lines.append(f"    -- end: {end.kind} --")
    if steps and end.checks:
        lines.extend(_checks_lines(end.checks))
    return lines


def _checks_lines(checks: tuple[Any, ...]) -> list[str]:
    marks = {True: "ok", False: "FAIL", None: "note"}
    return [f"        [{marks[c.ok]:>4}] {c.id}: {c.reason}" for c in checks]


def verdict_text(a: TaskAnalysis) -> list[str]:
    """The verdict lines."""
    v = a.verdict
    if v.reliable:
        head = "verdict: RELIABLE"
    else:
        where = f" at frame #{v.frame}" if v.frame is not None else ""
        head = f"verdict: UNRELIABLE: {v.label}{where}"
    lines = [head, f"  {v.message}"]
    if v.as_current is not None:
        cur = v.as_current
        where = f" at frame #{cur.frame}" if cur.frame is not None else ""
        lines.append(f"  judged as its own CPU's current task: {cur.label}{where}")
        if not cur.reliable:
            lines.append(f"    {cur.message}")
    lines.append(f"livepatch: {a.livepatch}")
    return lines


def task_header(kernel: Kernel, a: TaskAnalysis) -> str:
    """``PID: … TASK: … CPU: … COMM: …`` like crash."""
    from explorer.model.tasks import cpu_column

    t = a.task
    cpu = cpu_column(t)
    return (
        f'PID: {t.pid:<7} TASK: {w16(t.address)}  CPU: {cpu:<3} COMM: "{t.comm}"  STATE: {t.state}'
    )


def walk_markdown(kernel: Kernel, a: TaskAnalysis, steps: bool = False) -> str:
    """A walk as Markdown for course material and bug reports: the frames with marks that
    agree with the verdict, the pt_regs met on the way, and with ``steps`` every check."""
    from explorer.walk.marks import frame_marks

    marks = frame_marks(a.walk, a.verdict)
    t = a.task
    out = [
        f"### Stack of {t.comm} (pid {t.pid}, task `{w16(t.address)}`)",
        "",
        f"Kernel {kernel.release or '?'}, unwinder rules `{a.walk.era}`, started from "
        f"`{a.walk.start}`.",
        "",
        "| # | sp | stack | function | reliable | via |",
        "|---|---|---|---|---|---|",
    ]
    for s, m in zip(a.walk.steps, marks, strict=True):
        sym = kernel.symbolize(s.ip) or f"0x{s.ip:x}"
        if m.mark == "no":
            sym = f"({sym})"
        mark = f"**no** (`{m.rule}`)" if m.rule else m.mark
        out.append(f"| {s.index} | `{w16(s.sp)}` | {s.stack_type} | `{sym}` | {mark} | {s.how} |")
    out.append("")
    regs: list[tuple[int | None, PtRegs]] = [
        (s.index, s.regs) for s in a.walk.steps if s.regs is not None and s.regs.address
    ]
    if a.walk.end.regs is not None:
        regs.append((None, a.walk.end.regs))
    for index, r in regs:
        where = "the top of the stack (final)" if index is None else f"frame #{index}"
        out += [f"pt_regs at {where}:", "", "```text"]
        out += [line[2:] for line in _regs_lines(kernel, r, "  ")]
        out += ["```", ""]
    if steps:
        out += ["Checks of every step:", ""]
        for s in a.walk.steps:
            out.append(f"- frame #{s.index}:")
            out += [f"  - {line.strip()}" for line in _checks_lines(s.checks)]
        out.append("- the end of the walk:")
        out += [f"  - {line.strip()}" for line in _checks_lines(a.walk.end.checks)]
        out.append("")
    end = a.walk.end
    out.append(f"The walk ended: **{end.kind}**" + (f" ({end.detail})" if end.detail else "") + ".")
    failing = [c for c in end.checks if c.ok is False]
    if failing:
        out.append("")
        out.append(f"Failing check `{failing[0].id}`: {failing[0].reason}")
    v = a.verdict
    out.append("")
    out.append(
        f"**Verdict: {'reliable' if v.reliable else 'unreliable'}** "
        f"(`{v.label}`{'' if v.frame is None else f', frame #{v.frame}'}). {v.message}"
    )
    out.append("")
    out.append(f"Livepatch would log: `{a.livepatch}`")
    return "\n".join(out) + "\n"
