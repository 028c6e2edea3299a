"""A hex view over a whole address space (virtual or physical), drawn with the Line API.

Only the lines on screen are rendered: ``render_line`` reads the 4 KiB page a line lies in
(cached), formats two big-endian words and annotates them (symbol, stack frame, pt_regs), and
keeps the strip in an LRU cache keyed by everything the line depends on. Pages the dump does
not hold are drawn as such.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from explorer.tui.fit import fit_symbol
from parsers.errors import DumpError

LINE = 16
#: Below this width the ASCII column gives way to the annotations (80x24: "pt_regs", not "pt_re").
NARROW_WIDTH = 100
PAGE = 4096
VIRTUAL_SPAN = 1 << 48  # s390x kernel addresses seen in dumps are far below this


@dataclass(frozen=True)
class Space:
    """An address space the view can show.

    Attributes:
        name: ``virtual`` or ``physical``.
        span: addresses ``[0, span)``.
        read: reads bytes (raises DumpError when they are not in the dump).
    """

    name: str
    span: int
    read: Callable[[int, int], bytes]


class HexView(ScrollView, can_focus=True):
    """Hex words with annotations. ``cursor`` is the address of the selected word."""

    BINDINGS = [
        Binding("up", "move(-16)", "Up", show=False),
        Binding("down", "move(16)", "Down", show=False),
        Binding("left", "move(-8)", "Left", show=False),
        Binding("right", "move(8)", "Right", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("enter", "follow", "Follow"),
        Binding("backspace", "back", "Back"),
    ]
    COMPONENT_CLASSES = {
        "hexview--address",
        "hexview--zero",
        "hexview--word",
        "hexview--cursor",
        "hexview--symbol",
        "hexview--note",
        "hexview--unreadable",
    }
    DEFAULT_CSS = """
    HexView { height: 1fr; }
    HexView > .hexview--address { color: $text-muted; }
    HexView > .hexview--zero { color: $foreground-muted; }
    HexView > .hexview--word { color: $foreground; }
    HexView > .hexview--cursor { background: $accent; color: $background; text-style: bold; }
    HexView > .hexview--symbol { color: $text-accent; }
    HexView > .hexview--note { color: $text-warning; }
    HexView > .hexview--unreadable { color: $text-error; text-style: italic; }
    """

    cursor: reactive[int] = reactive(0, init=False)

    class Moved(Message):
        """The cursor moved to ``address``."""

        def __init__(self, address: int) -> None:
            super().__init__()
            self.address = address

    def __init__(
        self,
        space: Space,
        symbolize: Callable[[int], str | None],
        notes: dict[int, str] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.space = space
        self.symbolize = symbolize
        self.notes = notes or {}
        self.history: list[int] = []
        self._placed = False
        self._pages: LRUCache[tuple[str, int], bytes | None] = LRUCache(256)
        self._strips: LRUCache[tuple[str, int, int, int], Strip] = LRUCache(1024)
        self.virtual_size = Size(120, space.span // LINE)

    # -- data ------------------------------------------------------------------------------------
    def page(self, address: int) -> bytes | None:
        """The page holding ``address``, None if the dump does not hold it (cached)."""
        base = address & ~(PAGE - 1)
        key = (self.space.name, base)
        if key not in self._pages:
            try:
                self._pages[key] = self.space.read(base, PAGE)
            except DumpError:
                self._pages[key] = None
        return self._pages[key]

    def word(self, address: int) -> int | None:
        """The big-endian word at ``address`` (8-aligned), or None."""
        data = self.page(address)
        if data is None:
            return None
        off = address & (PAGE - 1)
        return int.from_bytes(data[off : off + 8], "big")

    def set_space(self, space: Space) -> None:
        """Show another address space."""
        self.space = space
        self._strips.clear()
        self.virtual_size = Size(120, space.span // LINE)
        self.refresh()

    def set_notes(self, notes: dict[int, str]) -> None:
        """Annotations by word address (stack frames, pt_regs)."""
        self.notes = notes
        self._strips.clear()
        self.refresh()

    def goto(self, address: int, remember: bool = True) -> None:
        """Put the cursor on ``address`` (rounded down to a word) and scroll to it."""
        address = max(0, min(address, self.space.span - 8)) & ~7
        if remember and address != self.cursor:
            self.history.append(self.cursor)
        self.cursor = address
        line = address // LINE
        top = int(self.scroll_offset.y)
        height = max(self.size.height, 1)
        if not top <= line < top + height:
            self.scroll_to(y=max(0, line - height // 3), animate=False)

    # -- actions ---------------------------------------------------------------------------------
    def action_move(self, delta: int) -> None:
        """Move the cursor by ``delta`` bytes."""
        self.goto(self.cursor + delta, remember=False)

    def action_page(self, direction: int) -> None:
        """Move the cursor a screen up or down."""
        self.goto(self.cursor + direction * LINE * max(self.size.height - 1, 1), remember=False)

    def action_follow(self) -> None:
        """Go to the address held in the word under the cursor."""
        value = self.word(self.cursor)
        if value is not None and value < self.space.span:
            self.goto(value)

    def action_back(self) -> None:
        """Return to where ``enter`` came from."""
        if self.history:
            self.goto(self.history.pop(), remember=False)

    def watch_cursor(self, old: int, new: int) -> None:
        """Redraw the two lines and tell the screen."""
        self._strips.clear()
        self.refresh()
        self.post_message(self.Moved(new))

    def on_resize(self, event: events.Resize) -> None:
        """The first layout: scroll to the cursor set before the view had a size."""
        if not self._placed and event.size.height:
            self._placed = True
            line = self.cursor // LINE
            self.scroll_to(y=max(0, line - event.size.height // 3), animate=False)

    def on_click(self, event: events.Click) -> None:
        """Click a word to select it."""
        line = int(self.scroll_offset.y) + event.y
        column = 1 if event.x >= 18 + 17 else 0
        self.goto(line * LINE + column * 8, remember=False)

    def notify_style_update(self) -> None:
        """Theme changed: forget cached strips."""
        super().notify_style_update()
        self._strips.clear()

    # -- drawing ---------------------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        """One line: address, two words, ASCII, annotations."""
        line = int(self.scroll_offset.y) + y
        width = self.size.width
        cursor = self.cursor if self.cursor // LINE == line else -1
        key = (self.space.name, line, width, cursor)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._draw(line, width, cursor)
            self._strips[key] = strip
        return strip

    def _s(self, name: str) -> Style:
        return self.get_component_rich_style(f"hexview--{name}")

    def _draw(self, line: int, width: int, cursor: int) -> Strip:
        address = line * LINE
        if address >= self.space.span:
            return Strip.blank(width)
        segments = [Segment(f"{address:016x}  ", self._s("address"))]
        data = self.page(address)
        if data is None:
            segments.append(
                Segment(
                    f"-- not in the dump (page 0x{address & ~(PAGE - 1):x}) --",
                    self._s("unreadable"),
                )
            )
            return Strip(segments).crop(0, width).adjust_cell_length(width)
        off = address & (PAGE - 1)
        chunk = data[off : off + LINE]
        notes: list[tuple[str, Style]] = []
        for i in range(0, LINE, 8):
            word_addr = address + i
            value = int.from_bytes(chunk[i : i + 8], "big")
            style = self._s("word") if value else self._s("zero")
            if word_addr == cursor:
                style = self._s("cursor")
            segments.append(Segment(f"{value:016x}", style))
            segments.append(Segment(" "))
            note = self.notes.get(word_addr)
            sym = self.symbolize(value) if value else None
            if note:
                notes.append((note, self._s("note")))
            if sym:
                notes.append((sym, self._s("symbol")))
        if width >= NARROW_WIDTH:  # narrow: the annotations matter more than the ASCII
            text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
            segments.append(Segment(f" {text} ", self._s("address")))
        shown = min(width, self.scrollable_content_region.width or width)  # beside the bar
        room = shown - sum(len(s.text) for s in segments)
        over = sum(len(t) + 1 for t, _ in notes) - room
        if notes and over > 0:  # the longest note gives way (names cut, never offsets)
            longest = max(range(len(notes)), key=lambda i: (len(notes[i][0]), i))  # the last
            text, style = notes[longest]
            notes[longest] = (fit_symbol(text, max(len(text) - over, 8)), style)
        segments.extend(Segment(f" {t}", style) for t, style in notes)
        return Strip(segments).crop(0, width).adjust_cell_length(width)
