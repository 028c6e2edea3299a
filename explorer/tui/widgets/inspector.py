"""One frame field by field beside its hex dump (same colours), and pt_regs when crossed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.widgets import Static

from explorer.code.pane import CodeView
from explorer.reports.regsnames import last_break_where, psw_where
from explorer.tui.fit import short_symbol
from explorer.tui.markup import join_lines, markup
from explorer.walk.analysis import TaskAnalysis
from explorer.walk.unwind import Step
from parsers.s390.layouts import STACK_FRAME_BACK_CHAIN, STACK_FRAME_GPRS
from parsers.s390.records import PtRegs, StackFrame

Symbolize = Callable[[int], str | None]
CodeOf = Callable[[Step], CodeView | None]

# Colours of the parts of a frame (struct stack_frame, packed layout), fields and hex alike.
EMPTY, SLOT, R14, R15, CHAIN = (
    "$text-muted",
    "$foreground",
    "b $text-accent",
    "$text-secondary",
    "b $text-success",
)


def short(symbol: str) -> str:
    """``name+0xoff [module]`` without the ``/0xsize`` suffix (a ``/`` in the name stays)."""
    return short_symbol(symbol)


def frame_words(f: StackFrame) -> list[tuple[int, int, str]]:
    """(offset, value, colour) of the 20 words of a frame."""
    out = [(i * 8, v, EMPTY) for i, v in enumerate(f.empty)]
    for n, v in enumerate(f.gprs, start=6):
        colour = R14 if n == 14 else R15 if n == 15 else SLOT
        out.append((STACK_FRAME_GPRS + (n - 6) * 8, v, colour))
    out.append((STACK_FRAME_BACK_CHAIN, f.back_chain, CHAIN))
    return out


def hex_lines(words: list[tuple[int, int, str]]) -> list[Content]:
    """Two big-endian words per line, each in its field's colour."""
    lines = []
    for i in range(0, len(words), 2):
        cells = Content(" ").join(Content.styled(f"{v:016x}", c) for _, v, c in words[i : i + 2])
        lines.append(Content.styled(f"+{words[i][0]:02x}", "$text-muted") + " " + cells)
    return lines


#: Cells of an r14 line before its symbol: "+70 r14        0000037ffe8dbd58 ← ".
_R14_PREFIX = 34


def frame_fields(
    step: Step, next_sp: int | None, symbolize: Symbolize, width: int = 10_000
) -> list[Content]:
    """The frame's fields with what each means for the walk; the r14 symbol fits ``width``
    cells with its name cut by "…", never its offset (:func:`explorer.tui.fit.fit_symbol`)."""
    from explorer.tui.fit import fit_symbol

    f = step.frame
    assert f is not None
    lines = [markup("[b]fields[/b] of struct stack_frame at $at", at=f"0x{f.address:x}")]
    nonzero = [(i, v) for i, v in enumerate(f.empty) if v]
    lines.append(Content.styled("empty[9]: unused by C (KVM: sie_*)", EMPTY))
    if not nonzero:
        lines.append(Content.styled("    all zero", EMPTY))
    for i, v in nonzero:
        lines.append(Content.styled(f"+{i * 8:02x} empty[{i}]   {v:016x}", EMPTY))
    for n, v in enumerate(f.gprs, start=6):
        off = STACK_FRAME_GPRS + (n - 6) * 8
        if n == 14:
            sym = symbolize(v)
            room = max(width - _R14_PREFIX, 8)
            note = f"← {fit_symbol(short(sym), room)}" if sym else "not kernel text"
            lines.append(Content.styled(f"+{off:02x} r14        {v:016x}", R14) + " " + note)
        elif n == 15:
            lines.append(Content.styled(f"+{off:02x} r15        {v:016x}", R15))
        else:
            lines.append(Content.styled(f"+{off:02x} r{n:<10}{v:016x}", SLOT))
    bc = f.back_chain
    if bc == 0:
        note = f"pt_regs at {f.address + 160:x}?"
    elif next_sp is not None and bc == next_sp:
        note = "→ next frame"
    else:
        note = "→ caller"
    lines.append(Content.styled(f"+98 back_chain {bc:016x}", CHAIN) + " " + note)
    return lines


def regs_lines(regs: PtRegs, symbolize: Symbolize, title: str, per_row: int = 4) -> list[Content]:
    """A decoded pt_regs: PSW bits, GPRs (``per_row`` a line: 2 fit 80 columns without
    wrapping), interruption code, last break."""
    psw = regs.psw
    where = psw_where(regs, symbolize)
    kind = "USER-mode" if regs.user_mode else "kernel-mode"
    lines = [
        Content.styled(f"{title}: {kind} pt_regs at 0x{regs.address:x}", "b $text-warning")
        + f" ({regs.size} bytes)",
        markup("PSW  [b]$psw[/b] $where", psw=f"0x{psw.mask:016x} 0x{psw.addr:016x}", where=where),
        Content("     ") + Content.styled(psw.describe(), "$text-muted"),
    ]
    for row in range(0, 16, per_row):
        words = " ".join(f"{g:016x}" for g in regs.gprs[row : row + per_row])
        lines.append(Content(f"r{row:<2}-r{row + per_row - 1:<2} {words}"))
    flags = ",".join(regs.flag_names) or "-"
    lines.append(
        Content(
            f"int_code 0x{regs.int_code:08x} (ilc {regs.ilc}, code 0x{regs.code:04x})  "
            f"orig_gpr2 0x{regs.orig_gpr2:x}  flags {flags}"
        )
    )
    if regs.last_break is not None:
        lb = "not kernel text" if regs.user_mode else last_break_where(regs, symbolize)
        lines.append(Content(f"last_break 0x{regs.last_break:016x} {lb}"))
    return lines


_ROLE = {
    "call": ("call", "b $text-success"),
    "nocall": ("!!", "b $text-error"),
    "swap": ("psw", "b $text-warning"),
    "mark": ("=>", "b $text-accent"),
    "inside": ("=>", "b $text-error"),
    "": ("", "$foreground"),
}


def code_lines(view: CodeView) -> list[Content]:
    """The code pane: the instructions around the ip, the call or its absence marked."""
    lines = [Content.styled(view.title, "b")]
    width = max((len(r.where or "") for r in view.rows), default=0)
    for r in view.rows:
        tag, style = _ROLE[r.role]
        lines.append(Content.styled(f"{tag:>4} {r.where or '':<{width}}  {r.text}", style))
    good = "$text-success" if view.ok else "b $text-error" if view.ok is False else "$text-muted"
    lines += [Content.styled(f"  {note}", good) for note in view.notes]
    return lines


class FrameInspector(VerticalScroll):
    """The current frame: fields on the left, hex on the right, pt_regs below."""

    DEFAULT_CSS = """
    FrameInspector { height: 1fr; }
    FrameInspector > #frame-pair { height: auto; }
    FrameInspector #frame-fields { width: auto; padding: 0 1 0 2; }
    FrameInspector #frame-hex { width: auto; padding-left: 1; }
    FrameInspector #frame-regs { padding: 1 1 0 1; height: auto; }
    FrameInspector #frame-source { padding: 0 1 1 2; height: auto; }
    FrameInspector #frame-code { padding: 1 1 0 1; height: auto; }
    """

    def compose(self) -> ComposeResult:
        """Source, fields, hex, regs."""
        yield Static(id="frame-source")
        with Horizontal(id="frame-pair"):
            yield Static(id="frame-hex")
            yield Static(id="frame-fields")
        yield Static(id="frame-code")
        yield Static(id="frame-regs")

    def _fields_width(self) -> int:
        """Cells the fields column gets: beside the hex column (40 cells and padding), or
        the whole width where the narrow layout puts it under the hex column."""
        width = self.size.width or self.app.size.width
        if self.screen.has_class("-narrow"):
            return max(width - 6, 20)  # paddings, scrollbar
        return max(width - 43, 20)  # the hex column (37 cells), paddings, scrollbar

    def _regs_per_row(self) -> int:
        """4 registers a line (8 + 4 * 17 cells) when that fits, else 2 (no wrapped rows)."""
        width = self.size.width or self.app.size.width
        return 4 if width >= 8 + 4 * 17 + 6 else 2

    def show(
        self,
        a: TaskAnalysis,
        row: int,
        symbolize: Symbolize,
        hidden: bool = False,
        code: CodeOf | None = None,
    ) -> None:
        """Display walk row ``row`` of ``a`` (``hidden``: not saying how the walk ended;
        ``code``: the code pane of a step)."""
        steps = a.walk.steps
        fields, hexdump, regs = (
            self.query_one(f"#frame-{n}", Static) for n in ("fields", "hex", "regs")
        )
        regs_text: list[Content] = []
        if row < len(steps):
            step = steps[row]
            nxt = steps[row + 1].sp if row + 1 < len(steps) else None
            if step.frame is not None:
                fields.update(join_lines(frame_fields(step, nxt, symbolize, self._fields_width())))
                hexdump.update(
                    join_lines([markup("[b]hex[/b]"), *hex_lines(frame_words(step.frame))])
                )
            else:
                fields.update(
                    Content.styled(f"frame at 0x{step.sp:x} is not readable", "$text-error")
                )
                hexdump.update("")
            if step.regs is not None and step.regs.address:
                regs_text = regs_lines(
                    step.regs, symbolize, f"#{row} came from", self._regs_per_row()
                )
        else:
            end = a.walk.end
            how = "" if hidden else f": {end.kind}"
            fields.update(
                markup("[b]end of the walk[/b] at sp $sp$how", sp=f"0x{end.sp:x}", how=how)
            )
            hexdump.update("")
            if end.regs is not None:
                regs_text = regs_lines(
                    end.regs, symbolize, "above" if hidden else "final", self._regs_per_row()
                )
        regs.update(join_lines(regs_text))
        regs.display = bool(regs_text)
        view = code(steps[row]) if code is not None and row < len(steps) else None
        pane = self.query_one("#frame-code", Static)
        pane.update(join_lines(code_lines(view)) if view is not None else "")
        pane.display = view is not None

    def show_source(self, lines: list[Content]) -> None:
        """The frame's function, source line, inline functions (and code with --source)."""
        block = self.query_one("#frame-source", Static)
        block.update(join_lines(lines))
        block.display = bool(lines)


def source_block(source: Any, steps: Sequence[Step], row: int, context: int = 3) -> list[Content]:
    """Lines for a frame from :class:`explorer.debuginfo.lines.FrameSource`: where in
    the source each inline function and the function are (innermost first), and with a
    source tree the lines around the innermost place."""
    if row >= len(steps):
        return []
    if not source.available:
        if not source.requested:
            return []  # no vmlinux given: nothing to say in every frame
        return [Content.styled(f"source lines: none ({source.why or '?'})", "$text-muted")]
    found = source.for_step(steps[row])
    if found.function is None:
        return [Content.styled(f"no source line: {found.why or '?'}", "$text-muted")]
    out = [markup("[b]source[/b]")]
    for f in found.inlined:
        out.append(
            markup(
                "  $at [$text-muted]inlined[/] [b]$function[/b]",
                at=str(f.source or "?"),
                function=f.function,
            )
        )
    out.append(
        markup("  $at in [b]$function[/b]", at=str(found.source or "?"), function=found.function)
    )
    where = found.inlined[0].source if found.inlined else found.source
    if where is not None:
        for n, text in source.text_of(where, context):
            mark = Content.styled(">", "b $text-accent") if n == where.line else Content(" ")
            out.append(Content("  ") + mark + f"{n:>6}  {text.expandtabs(8).rstrip()}")
    return out
