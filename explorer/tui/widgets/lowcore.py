"""Every decoded lowcore field of one CPU: offset, value, symbol or meaning of the value."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from explorer.model.kernel import Cpu
from explorer.tui.fit import fit_symbol
from explorer.tui.session import LowcoreRow, Session
from parsers.s390.records import Psw

#: Below this terminal width a PSW's words and what it points to take two lines each.
NARROW = 110

# Element names of the lowcore arrays (entry save areas hold r8..r15: stmg %r8,%r15).
ELEMENTS = {
    "save8": [f"r{n}" for n in range(8, 16)],
    "gprs16": [f"r{n}" for n in range(16)],
    "fprs16": [f"f{n}" for n in range(16)],
    "crs16": [f"cr{n}" for n in range(16)],
    "acrs16": [f"a{n}" for n in range(16)],
}


def field_name(row: LowcoreRow) -> str:
    """``save_area_sync[0]`` → ``save_area_sync.r8``."""
    names = ELEMENTS.get(row.kind)
    if names and row.name.endswith("]"):
        base, _, index = row.name[:-1].rpartition("[")
        return f"{base}.{names[int(index)]}"
    return row.name


def value_text(row: LowcoreRow) -> str:
    """The raw value: hex words, PSW as mask and address, bytes shortened."""
    v = row.value
    if isinstance(v, Psw):
        return f"{v.mask:016x} {v.addr:016x}"
    if isinstance(v, bytes):
        shown = v[:8].hex()
        return shown + ("…" if len(v) > 8 or any(v[8:]) else "")
    if isinstance(v, int):
        width = {"u8": 2, "u16": 4, "u32": 8, "s32": 8}.get(row.kind, 16)
        return f"0x{v & ((1 << (width * 4)) - 1):0{width}x}"
    return str(v)


def decoded(session: Session, cpu: Cpu, row: LowcoreRow) -> str:
    """What a value points at: a symbol, a task, a stack, or the PSW bits."""
    v = row.value
    if isinstance(v, Psw):
        if not v.mask and not v.addr:
            return ""
        where = "user space" if v.user_mode else (session.symbolize(v.addr) or "")
        notes = [where] if where else []
        if v.wait:
            notes.append("wait")
        if not v.io and not v.ext:
            notes.append("I/O+ext off")
        return " · ".join(notes)
    if not isinstance(v, int) or not v or row.kind in ("u8", "u16", "u32", "s32"):
        return ""
    task = session.task_at(v)
    if task is not None:
        return f"task {task.comm}:{task.pid}"
    for s in cpu.stacks:
        if s.begin <= v < s.end:
            return f"{s.stack_type} stack +0x{v - s.begin:x}"
    sym = session.text_symbol(v)
    return sym or ""


class LowcoreTable(DataTable[Any]):
    """The lowcore of one CPU. Cells carry theme colours: redrawn when the theme changes."""

    COMPONENT_CLASSES = {"lowcore--zero", "lowcore--psw", "lowcore--meaning"}
    DEFAULT_CSS = """
    LowcoreTable > .lowcore--zero { color: $foreground-muted; }
    LowcoreTable > .lowcore--psw { color: $text-accent; }
    LowcoreTable > .lowcore--meaning { color: $text-muted; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._shown: tuple[Session, Cpu, list[LowcoreRow]] | None = None
        self._narrow = False

    def on_mount(self) -> None:
        """Follow theme changes."""
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._redraw())

    def _redraw(self) -> None:
        if self._shown is not None:
            row = self.cursor_row
            self.show(*self._shown)
            self.move_cursor(row=row, animate=False)

    def find_field(self, text: str) -> int | None:
        """The row of the field named ``text`` (exactly, else the first whose name contains
        it), or the first at or after offset ``0x…``; None when no row matches."""
        if self._shown is None:
            return None
        rows = self._shown[2]
        wanted = text.strip().lower()
        if wanted.startswith("0x"):
            try:
                offset = int(wanted, 16)
            except ValueError:
                return None
            return next((i for i, r in enumerate(rows) if r.offset >= offset), None)
        names = [field_name(r).lower() for r in rows]
        exact = next((i for i, n in enumerate(names) if n == wanted), None)
        return (
            exact
            if exact is not None
            else next((i for i, n in enumerate(names) if wanted in n), None)
        )

    def empty(self) -> None:
        """No lowcore to show."""
        self._shown = None
        self.clear(columns=True)

    def show(self, session: Session, cpu: Cpu, rows: list[LowcoreRow]) -> None:
        """Fill the table with ``rows`` of ``cpu``."""
        self._shown = (session, cpu, rows)
        self.clear(columns=True)
        for key, header in (
            ("off", "OFFSET"),
            ("name", "FIELD"),
            ("value", "VALUE"),
            ("decoded", "POINTS TO"),  # before the long meanings: old PSWs as func+off, visible
            ("meaning", "MEANING"),
        ):
            self.add_column(header, key=key)
        zero = self.get_component_rich_style("lowcore--zero")
        psw = self.get_component_rich_style("lowcore--psw")
        muted = self.get_component_rich_style("lowcore--meaning")
        self._narrow = self.app.size.width < NARROW
        room = self._points_room(rows) if self._narrow else None
        for r in rows:
            empty = r.value in (0, b"") or (isinstance(r.value, bytes) and not any(r.value))
            is_psw = isinstance(r.value, Psw)
            style = psw if is_psw else zero if empty else ""
            value = value_text(r)
            points = decoded(session, cpu, r)
            if room is not None:  # narrow: a PSW's two words and its notes on two lines
                value = value.replace(" ", "\n") if is_psw else value
                points = "\n".join(fit_symbol(p, room) for p in points.split(" · "))
            self.add_row(
                Text(f"0x{r.offset:04x}", style=muted),
                Text(field_name(r), style=psw if is_psw else ""),
                Text(value, style=style),
                Text(points),
                Text(r.meaning, style=muted),
                height=max(value.count("\n"), points.count("\n")) + 1,
            )

    def _points_room(self, rows: list[LowcoreRow]) -> int:
        """Narrow terminals: the cells POINTS TO has on screen beside the other columns
        (a PSW's words one under the other), so that what a value points to is seen whole
        (symbols cut by "…" only if even that is too narrow, never their offsets)."""
        width = self.size.width or self.app.size.width
        name = max((len(field_name(r)) for r in rows), default=5)
        value = max((len(v) for r in rows for v in value_text(r).split(" ")), default=5)
        return max(width - (6 + 2) - (name + 2) - (value + 2) - 2 - 2, 16)

    def on_resize(self) -> None:
        """Lay out again when the width crosses :data:`NARROW`."""
        if self._shown is not None and self._narrow != (self.app.size.width < NARROW):
            self._redraw()
