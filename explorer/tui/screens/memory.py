"""Memory at any virtual or physical address, words annotated where the walk knows them."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Header, Static

from explorer.tui.markup import markup
from explorer.tui.screens.prompt import Prompt
from explorer.tui.session import Session
from explorer.tui.widgets.footer import KeyFooter
from explorer.tui.widgets.hexview import VIRTUAL_SPAN, HexView, Space
from explorer.walk.analysis import TaskAnalysis
from parsers.errors import DumpError
from parsers.s390.layouts import STACK_FRAME_BACK_CHAIN, STACK_FRAME_R14


def walk_notes(a: TaskAnalysis) -> dict[int, str]:
    """Labels of the words a walk read: frame slots and pt_regs fields."""
    notes: dict[int, str] = {}
    for s in a.walk.steps:
        notes.setdefault(s.sp, f"#{s.index} frame")
        notes[s.sp + STACK_FRAME_R14] = f"#{s.index} r14 slot"
        notes[s.sp + STACK_FRAME_R14 + 8] = f"#{s.index} r15 slot"
        notes[s.sp + STACK_FRAME_BACK_CHAIN] = f"#{s.index} back chain"
        regs = s.regs if s.regs is not None and s.regs.address else None
        for r in (regs, a.walk.end.regs if s is a.walk.steps[-1] else None):
            if r is not None and r.address:
                notes[r.address + 0x08] = "pt_regs psw.mask"
                notes[r.address + 0x10] = "pt_regs psw.addr"
                notes[r.address + 0x18 + 14 * 8] = "pt_regs r14"
                notes[r.address + 0x18 + 15 * 8] = "pt_regs r15"
    if not a.walk.steps and a.walk.end.regs is not None and a.walk.end.regs.address:
        notes[a.walk.end.regs.address + 0x10] = "pt_regs psw.addr"
    return notes


class MemoryScreen(Screen[None]):
    """A hex view; ``ctrl+g`` goes to an address or symbol, ``t`` switches spaces."""

    BINDINGS = [
        Binding("ctrl+g", "goto", "Go to"),
        Binding("t", "toggle_space", "Virt/phys"),  # 80 columns: Quit stays in the footer
        Binding("escape", "app.pop_screen", "Back"),
    ]

    def __init__(
        self,
        session: Session,
        address: int | None = None,
        analysis: TaskAnalysis | None = None,
        physical: bool = False,
    ) -> None:
        super().__init__()
        self.session = session
        kernel = session.kernel
        end = max((r.end for r in kernel.dump.ranges), default=0)
        self.spaces = {
            "virtual": Space("virtual", VIRTUAL_SPAN, kernel.read),
            "physical": Space("physical", max(end, 4096), kernel.dump.read),
        }
        self.start = address if address is not None else self._default_address()
        self.physical = physical
        self.notes = walk_notes(analysis) if analysis is not None else {}
        self.about = f"stack of {analysis.task.comm}:{analysis.task.pid}" if analysis else ""

    def _default_address(self) -> int:
        syms = self.session.kernel.symbols
        return (syms.address_of("init_task") or 0) if syms is not None else 0

    def compose(self) -> ComposeResult:
        """Title, hex view, status."""
        yield Header()
        yield Static(id="mem-title")
        yield HexView(
            self.spaces["physical" if self.physical else "virtual"],
            self.session.text_symbol,
            self.notes,
            id="hex",
        )
        yield Static(id="mem-status")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Go to the start address."""
        self.sub_title = f"{self.session.label} · memory"
        self._title()
        hexview = self.query_one(HexView)
        hexview.focus()
        hexview.goto(self.start, remember=False)
        self._status(self.start)

    def _where(self, address: int) -> str:
        """``init_task+0x28`` for a virtual address inside a symbol, else ``""``."""
        if self.query_one(HexView).space.name != "virtual":
            return ""
        sym = self.session.kernel.symbolize(address)
        return "" if sym is None else sym.split("/", 1)[0]

    def _title(self, start: int | None = None) -> None:
        """Which space, where the view was opened (or last went), what annotates it."""
        if start is not None:
            self.start = start
        space = self.query_one(HexView).space.name
        about = f" · annotated: {self.about}" if self.about else ""
        where = self._where(self.start)
        at = f"0x{self.start:x}" + (f" ({where})" if where else "")
        self.query_one("#mem-title", Static).update(
            markup(
                "[b]$space[/b] addresses from $at$about · [$text-muted]enter follows a "
                "pointer, backspace returns[/]",
                space=space,
                at=at,
                about=about,
            )
        )

    def on_hex_view_moved(self, event: HexView.Moved) -> None:
        """Describe the word under the cursor."""
        self._status(event.address)

    def _status(self, address: int) -> None:
        hexview = self.query_one(HexView)
        value = hexview.word(address)
        where = self._where(address)
        parts: list[Content | str] = [
            markup("$a [b]$where[/b]", a=f"0x{address:x}", where=where)
            if where
            else f"0x{address:x}"
        ]
        if value is None:
            parts.append(markup("[$text-error]not in the dump[/]"))
        else:
            parts.append(f"= 0x{value:x}")
            sym = self.session.text_symbol(value)
            if sym:
                parts.append(markup("[$text-accent]$sym[/]", sym=sym))
            task = self.session.task_at(value)
            if task is not None:
                parts.append(f"task {task.comm}:{task.pid}")
        note = hexview.notes.get(address)
        if note:
            parts.append(markup("[$text-warning]$note[/]", note=note))
        if hexview.space.name == "virtual":
            try:
                physical = self.session.kernel.space.translate(address)
                parts.append(markup("[$text-muted]physical $p[/]", p=f"0x{physical:x}"))
            except DumpError:
                parts.append(markup("[$text-muted]not mapped[/]"))
        self.query_one("#mem-status", Static).update(Content("  ").join(parts))

    def action_goto(self) -> None:
        """Ask for an address or a symbol."""

        def answer(text: str | None) -> None:
            if text is None:
                return
            address = self.session.resolve(text)
            if address is None:
                self.notify(f"no such address or symbol: {text}", severity="warning", markup=False)
                return
            self.query_one(HexView).goto(address)
            self._title(address)

        self.app.push_screen(
            Prompt("go to address or symbol", "0x37ffe803a28, init_task, schedule+0x3e"), answer
        )

    def goto(self, address: int) -> None:
        """Go to ``address`` in the current space."""
        self.query_one(HexView).goto(address)

    def action_toggle_space(self) -> None:
        """Switch between virtual and physical addresses (keeping the cursor's meaning)."""
        hexview = self.query_one(HexView)
        cursor = hexview.cursor
        if hexview.space.name == "virtual":
            try:
                target = self.session.kernel.space.translate(cursor)
            except DumpError:
                target = 0
            hexview.set_space(self.spaces["physical"])
        else:
            target = self.session.kernel.layout.identity_base + cursor
            hexview.set_space(self.spaces["virtual"])
        hexview.goto(target, remember=False)
        self._title(target)
