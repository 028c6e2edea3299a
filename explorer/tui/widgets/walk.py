"""The walk of one stack, frame by frame, revealed one step at a time.

The walk is precomputed by the model (:func:`explorer.walk.analysis.analyse_task`); stepping only
decides how many of its rows are shown. Row ``len(steps)`` is how the walk ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from explorer.tui.cfi import cell as cfi_cell
from explorer.tui.fit import fit_symbol, short_symbol
from explorer.walk.analysis import TaskAnalysis
from explorer.walk.unwind import Step, WalkEnd

if TYPE_CHECKING:
    from explorer.debuginfo.cfi import Agreement

#: From this terminal width the stack screen puts the walk in a narrow column.
WIDE = 110

HOW = {
    "start": "saved ksp",
    "start_regs": "CPU registers",
    "backchain": "back chain",
    "pt_regs": "pt_regs PSW",
    "r14_guess": "r14 guess",
}


def end_text(end: WalkEnd) -> str:
    """How a walk ended, in words."""
    if end.kind == "final_pt_regs":  # the "#" column already says "end"
        mode = "user" if end.regs is not None and end.regs.user_mode else "kernel"
        return f"final {mode} pt_regs"
    if end.kind == "error":
        return f"unwind error: {end.detail}"
    if end.kind == "user_regs":
        return "end: running in user mode, nothing to unwind"
    if end.kind == "no_stack":
        return "end: exited task, no stack"
    return f"end: {end.kind}"


class WalkTable(DataTable[Any]):
    """Frames of the walk shown so far: index, sp, stack, function (unreliable in parentheses).

    Attributes:
        revealed: rows shown (1 .. len(steps) + 1; the last one is the end of the walk).
        hidden: exercise mode: neither the failing frame nor how the walk ended is marked.
    """

    COMPONENT_CLASSES = {"walktable--bad", "walktable--switch", "walktable--end", "walktable--dim"}
    DEFAULT_CSS = """
    WalkTable > .walktable--bad { color: $text-error; text-style: bold; }
    WalkTable > .walktable--switch { color: $text-warning; }
    WalkTable > .walktable--end { color: $text-accent; }
    WalkTable > .walktable--dim { color: $text-muted; }
    """

    def __init__(
        self,
        analysis: TaskAnalysis,
        symbolize: Any,
        lines: Callable[[Step], Any] | None = None,
        flag: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.analysis = analysis
        self.symbolize = symbolize
        self.lines = lines  # frame -> FrameLines (source line, inline functions), or None
        self._laid = False
        self.flag = flag  # step -> True if its return address does not follow a call
        self.revealed = 1
        self.hidden = False
        #: Whether the STACK column shows its cells (it gives way to long names).
        self.stack_shown = True
        #: The CFI unwind paired with the walk (shown in a CFI column), or None.
        self.cfi: Agreement | None = None
        self._laid_widths = (10_000, 10_000)  # FUNCTION and CFI cells, as this fill lays them

    @property
    def total(self) -> int:
        """Rows of the complete walk (steps plus the end)."""
        return len(self.analysis.walk.steps) + 1

    @property
    def current(self) -> int:
        """The row under the cursor (a step index, or ``len(steps)`` for the end)."""
        return min(max(self.cursor_row, 0), self.revealed - 1)

    def on_mount(self) -> None:
        """Columns."""
        for key, header in (("i", "#"), ("sp", "SP"), ("stack", "STACK"), ("fn", "FUNCTION")):
            self.add_column(header, key=key)

        self._fill(0)
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._fill(self.current))

    def reveal(self, count: int, cursor: int | None = None) -> None:
        """Show ``count`` rows (clamped) and put the cursor on ``cursor`` (default: last)."""
        count = max(1, min(count, self.total))
        if count == self.revealed and cursor is None:
            cursor = count - 1
        self.revealed = count
        self._fill(count - 1 if cursor is None else min(cursor, count - 1))

    def set_hidden(self, hidden: bool) -> None:
        """Hide (exercise mode) or show the verdict's marks."""
        self.hidden = hidden
        if self.is_mounted:
            self._fill(self.current)

    def show_cfi(self, agreement: Agreement | None) -> None:
        """Show the CFI unwinder's frame beside each frame (a CFI column), or stop."""
        self.cfi = agreement
        if agreement is not None and ColumnKey("cfi") not in self.columns:
            self.add_column("CFI", key="cfi")
        elif agreement is None and ColumnKey("cfi") in self.columns:
            self.remove_column("cfi")
        if self.is_mounted:
            self._fill(self.current)

    def _fill(self, cursor: int) -> None:
        steps = self.analysis.walk.steps
        bad = None if self.hidden else self.analysis.verdict.frame
        self.clear()
        self.stack_shown = self._stack_column_needed()
        self.columns[ColumnKey("stack")].label = Text("STACK" if self.stack_shown else "")
        self._laid_widths = self._widths()
        for column in self.columns.values():  # widths fit these rows, not an earlier fill's
            column.content_width = column.label.cell_len
        self._laid = self._two_lines
        prev: Step | None = None
        height = 2 if self._two_lines else 1  # the source line under the function
        for s in steps[: self.revealed]:
            row = self._step_cells(s, prev, bad) + self._cfi_cells(s.index)
            self.add_row(*row, key=str(s.index), height=height)
            prev = s
        if self.revealed > len(steps):
            end = self.analysis.walk.end
            style = self.get_component_rich_style("walktable--end")
            if end.error and not self.hidden:
                style = self.get_component_rich_style("walktable--bad")
            self.add_row(
                Text("end", style=style),
                Text(f"0x{end.sp:x}" if end.sp else "", style=style),
                "",
                Text(fit_symbol(self._end_text(), self._function_width()), style=style),
                *self._cfi_cells(len(steps)),
                key="end",
            )
        self._fit_columns()
        self.move_cursor(row=cursor, animate=False, scroll=True)

    def _fit_columns(self) -> None:
        """Every column as wide as its widest cell, now: the table measures new rows only
        when idle, and a frame drawn before that (keys arriving in a burst, as from a browser)
        kept the label widths, cutting every row to ``#`` and ``0x``."""
        for index, column in enumerate(self.ordered_columns):
            widest = column.label.cell_len
            for row in range(self.row_count):
                cell = self.get_row_at(row)[index]
                lines = str(getattr(cell, "plain", cell)).split("\n")
                widest = max(widest, *(cell_len(line) for line in lines))
            column.content_width = widest

    def _room(self, stack: bool | None = None) -> int:
        """Cells left for FUNCTION and CFI: the width minus the other columns and every
        column's padding (``stack``: with the STACK column's cells, default as laid now)."""
        width = self.size.width
        if not width:
            return 10_000
        steps = self.analysis.walk.steps
        sp = max((len(f"0x{s.sp:x}") for s in steps), default=3)
        sp = max(sp, len(f"0x{self.analysis.walk.end.sp:x}"))
        index = max(len(f"#{len(steps)}"), 3)
        shown = self.stack_shown if stack is None else stack
        cells = max((len(s.stack_type) + 1 for s in steps), default=5) if shown else 0
        cfi = 2 if self.cfi is not None else 0
        return width - (index + 2) - (sp + 2) - (cells + 2) - 2 - cfi - 2

    def _widths(self, stack: bool | None = None) -> tuple[int, int]:
        """Cells of FUNCTION and of CFI: both whole if they fit; else CFI keeps what the
        names leave, at least half (both are names of frames), and both are cut by "…"."""
        room = self._room(stack)
        if self.cfi is None:
            return max(room, 12), 0
        cfi = max((len(self._cfi_text(r)) for r in range(self._rows())), default=0)
        cfi = max(cfi, 3)
        names = [self._symbol_text(s) for s in self.analysis.walk.steps[: self.revealed]]
        if self.revealed > len(self.analysis.walk.steps):
            names.append(self._end_text())
        function = max(map(len, names), default=8)
        if function + cfi <= room:
            return function, cfi
        cfi_width = max(room - function, min(cfi, room // 2))
        return max(room - cfi_width, 12), max(cfi_width, 6)

    def _function_width(self, stack: bool | None = None) -> int:
        """Cells for FUNCTION (as laid by this fill unless ``stack`` is asked about)."""
        return self._widths(stack)[0] if stack is not None else self._laid_widths[0]

    def _rows(self) -> int:
        return min(self.revealed, self.total)

    def _cfi_text(self, row: int) -> str:
        assert self.cfi is not None
        return cfi_cell(self.cfi, row, self.analysis.walk.steps, self.symbolize).text

    def _cfi_cells(self, row: int) -> tuple[Text, ...]:
        """The CFI cell of walk row ``row``, fitted, if the CFI column is shown."""
        if self.cfi is None:
            return ()
        found = cfi_cell(self.cfi, row, self.analysis.walk.steps, self.symbolize)
        style = {
            "same": "walktable--dim",
            "other": "walktable--switch",
            "none": "walktable--dim",
            "end": "walktable--end",
        }[found.kind]
        text = fit_symbol(found.text, self._laid_widths[1])
        return (Text(text, style=self.get_component_rich_style(style)),)

    def _stack_column_needed(self) -> bool:
        """Whether the STACK column keeps its cells: the least telling column gives way
        first when a function would be cut, if every frame is on one stack (the map and the
        frame pane's title name it); a stack switch (``→irq``) always keeps it."""
        steps = self.analysis.walk.steps[: self.revealed]
        if len({s.stack_type for s in steps}) > 1:
            return True
        texts = [self._symbol_text(s) for s in steps]
        if self.revealed > len(self.analysis.walk.steps):
            texts.append(self._end_text())
        return max(map(len, texts), default=0) <= self._function_width(stack=True)

    def _end_text(self) -> str:
        return "end (why here?)" if self.hidden else end_text(self.analysis.walk.end)

    def _symbol_text(self, s: Step) -> str:
        """The FUNCTION cell of a frame, before it is fitted to the column."""
        sym = short_symbol(self.symbolize(s.ip) or f"0x{s.ip:x}")
        if not s.reliable:
            sym = f"({sym})"
        if s.recovered_by:
            sym += f" [{s.recovered_by}]"
        if self.flag is not None and self.flag(s):
            sym = f"! {sym}"  # no call ends at its return address (the code pane says more)
        return sym

    def _step_cells(self, s: Step, prev: Step | None, bad: int | None) -> tuple[Text, ...]:
        sym = fit_symbol(self._symbol_text(s), self._function_width())
        style = self.get_component_rich_style("walktable--bad") if s.index == bad else ""
        stack = Text(s.stack_type if self.stack_shown else "")
        if prev is not None and prev.stack_type != s.stack_type:
            stack = Text(
                f"→{s.stack_type}", style=self.get_component_rich_style("walktable--switch")
            )
        cells = (
            Text(f"#{s.index}", style=style, justify="right"),
            Text(f"0x{s.sp:x}", style=style),
            stack,
            Text(sym, style=style),
        )
        if self.lines is not None and self.cfi is None:  # the frame pane has them too
            cells[3].append("\n" if self._two_lines else "  ").append_text(self._source_text(s))
        return cells

    @property
    def _two_lines(self) -> bool:
        """Source lines go under the function when the walk is a narrow column (wide
        terminals), beside it when the walk has the full width (narrow terminals); none
        while the CFI column is shown (the frame pane shows them)."""
        return self.lines is not None and self.cfi is None and self.app.size.width >= WIDE

    def on_resize(self) -> None:
        """Re-lay the rows: function names fit the new width (cut with "…", never their
        offsets), and source lines move when the width crosses :data:`WIDE`."""
        if self.columns and self.row_count:
            self._fill(self.current)

    def _source_text(self, s: Step) -> Text:
        """``core.c:6562 < context_switch``: the file's name and line, and the innermost
        inline function (with how many more) when the code there was inlined."""
        assert self.lines is not None
        dim = self.get_component_rich_style("walktable--dim")
        found = self.lines(s)
        if found is None or found.source is None:
            return Text("no source line", style=dim)
        text = Text(f"{found.source.path.rpartition('/')[2]}:{found.source.line}", style=dim)
        if found.inlined:
            more = f" +{len(found.inlined) - 1}" if len(found.inlined) > 1 else ""
            text.append(f" > {found.inlined[0].function}{more}"[:26], style=dim)
        return text
