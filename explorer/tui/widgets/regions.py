"""The stacks of a walk drawn to scale: one vertical band per stack, low addresses at the top.

Each row stands for :data:`ROW_BYTES` bytes. Frames are slices of alternating colour, pt_regs
blocks are marked ``▓``, the current step is highlighted, stack switches are marked between
bands. Drawn with the Line API (``render_line`` and a cache of strips).
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.cache import LRUCache
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from explorer.walk.analysis import TaskAnalysis
from parsers.s390.stacks import StackRange

ROW_BYTES = 128
BAND = 4
#: Columns before a row's label: ``+0000`` offset, marker, band, space.
PREFIX = 5 + 1 + BAND + 1


@dataclass(frozen=True)
class Slice:
    """A part of a stack: a frame (``index`` >= 0) or a pt_regs block (``index`` -1)."""

    begin: int
    end: int
    index: int
    label: str


@dataclass(frozen=True)
class MapRow:
    """One line of the map: a header, a stack row, or a switch marker."""

    kind: str  # "head", "row", "switch", "foot", "unused"
    text: str
    region: StackRange | None = None
    address: int = 0


def _slices(a: TaskAnalysis, names: tuple[str, ...], upto: int | None = None) -> list[Slice]:
    steps = a.walk.steps[:upto]
    out: list[Slice] = []
    for i, s in enumerate(steps):
        end = s.sp + 160
        if i + 1 < len(steps) and steps[i + 1].stack == s.stack and steps[i + 1].sp > s.sp:
            end = steps[i + 1].sp
        name = names[i] if i < len(names) else "?"
        out.append(Slice(s.sp, end, i, f"#{i} {name}"))
        if s.regs is not None and s.regs.address:
            out.append(Slice(s.regs.address, s.regs.address + s.regs.size, -1, "pt_regs"))
    end_regs = a.walk.end.regs
    ended = upto is None or upto > len(a.walk.steps)
    if ended and end_regs is not None and end_regs.address:
        out.append(Slice(end_regs.address, end_regs.address + end_regs.size, -1, "final pt_regs"))
    return out


def map_rows(a: TaskAnalysis, upto: int | None = None) -> list[MapRow]:
    """The lines of the map: visited stacks in walk order, then the others collapsed.
    ``upto``: only the first ``upto`` walk rows are known (exercise mode unfolds the walk)."""
    steps = a.walk.steps[:upto]
    order: list[StackRange] = []
    for s in steps:
        if s.stack not in order:
            order.append(s.stack)
    if not order and a.walk.regions.task_stack is not None:
        order.append(a.walk.regions.task_stack)
    rows: list[MapRow] = []
    prev: StackRange | None = None
    for region in order:
        if prev is not None:
            first = next(s for s in steps if s.stack == region)
            via = "pt_regs" if first.how in ("pt_regs", "r14_guess") else "back chain"
            rows.append(MapRow("switch", f"↓ {prev.stack_type}→{region.stack_type} ({via})"))
        rows.append(MapRow("head", f"{region.stack_type} 0x{region.begin:x}", region))
        for addr in range(region.begin, region.end, ROW_BYTES):
            rows.append(MapRow("row", "", region, addr))
        rows.append(MapRow("foot", f"end 0x{region.end:x}", region))
        prev = region
    for region in a.walk.regions.all:
        if region not in order:
            later = "" if upto is None or upto > len(a.walk.steps) else " yet"
            rows.append(MapRow("unused", f"{region.stack_type} (not visited{later})", region))
    return rows


class RegionsMap(ScrollView):
    """The map. Set :attr:`current` (a walk row) to move the highlight.

    As wide as its longest label (``width: auto``; the app's CSS bounds it); when the pane is
    narrower, it scrolls sideways.
    """

    COMPONENT_CLASSES = {
        "regions--frame-a",
        "regions--frame-b",
        "regions--regs",
        "regions--current",
        "regions--free",
        "regions--label",
        "regions--head",
        "regions--switch",
    }
    DEFAULT_CSS = """
    RegionsMap { width: auto; min-width: 28; }
    RegionsMap > .regions--frame-a { color: $primary; }
    RegionsMap > .regions--frame-b { color: $secondary; }
    RegionsMap > .regions--regs { color: $warning; }
    RegionsMap > .regions--current { color: $accent; text-style: bold reverse; }
    RegionsMap > .regions--free { color: $foreground-muted; }
    RegionsMap > .regions--label { color: $foreground; }
    RegionsMap > .regions--head { color: $text-accent; text-style: bold; }
    RegionsMap > .regions--switch { color: $text-warning; }
    """

    def __init__(
        self,
        analysis: TaskAnalysis,
        names: tuple[str, ...],
        upto: int | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.analysis = analysis
        self.names = names
        self.current = 0
        self._cache: LRUCache[tuple[int, int, int, int], Strip] = LRUCache(512)
        self.upto: int | None = -1
        self.unfold(upto)

    def unfold(self, upto: int | None) -> None:
        """Draw only the first ``upto`` walk rows (None: the whole walk)."""
        if upto == self.upto:
            return
        self.upto = upto
        self.rows = map_rows(self.analysis, upto)
        self.slices = _slices(self.analysis, self.names, upto)
        self._cache.clear()
        self.virtual_size = Size(self._content_width(), len(self.rows))
        self.refresh()

    def _content_width(self) -> int:
        """Columns of the widest line (every slice starting on a row shares its label)."""
        widths = [len(r.text) for r in self.rows if r.kind != "row"]
        for r in self.rows:
            if r.kind == "row":
                labels = [
                    s.label for s in self.slices if r.address <= s.begin < r.address + ROW_BYTES
                ]
                widths.append(PREFIX + len(" ".join(labels)))
        return max(widths, default=PREFIX)

    def notify_style_update(self) -> None:
        """Colours come from the theme: forget cached strips."""
        super().notify_style_update()
        self._cache.clear()

    def show(self, row: int) -> None:
        """Highlight walk row ``row`` and scroll it into view."""
        self.current = row
        self.refresh()
        steps = self.analysis.walk.steps
        sp = steps[row].sp if row < len(steps) else self.analysis.walk.end.sp
        for y, r in enumerate(self.rows):
            if r.kind == "row" and r.address <= sp < r.address + ROW_BYTES:
                self.scroll_to(y=max(0, y - self.size.height // 2), animate=False)
                break

    def render_line(self, y: int) -> Strip:
        """One line of the map."""
        index = y + int(self.scroll_offset.y)
        x = int(self.scroll_offset.x)
        width = self.size.width
        key = (index, self.current, width, x)
        if key in self._cache:
            return self._cache[key]
        full = max(width + x, self.virtual_size.width)
        strip = self._line(index, full).crop(x, x + width)
        self._cache[key] = strip
        return strip

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"regions--{name}")

    def _line(self, index: int, width: int) -> Strip:
        if index >= len(self.rows):
            return Strip.blank(width)
        row = self.rows[index]
        if row.kind != "row":
            style = {"switch": "switch", "unused": "free"}.get(row.kind, "head")
            return Strip([Segment(row.text, self._style(style))]).adjust_cell_length(width)
        lo, hi = row.address, row.address + ROW_BYTES
        inside = [s for s in self.slices if s.begin < hi and s.end > lo]
        starts = [s for s in self.slices if lo <= s.begin < hi]
        current = self._current_slice()
        if current is not None and current in inside:
            band, bstyle = "█" * BAND, self._style("current")
        elif any(s.index < 0 for s in inside):
            band, bstyle = "▓" * BAND, self._style("regs")
        elif inside:
            band = "█" * BAND
            bstyle = self._style("frame-a" if inside[0].index % 2 == 0 else "frame-b")
        else:
            band, bstyle = "·" * BAND, self._style("free")
        marker = "▶" if current is not None and current in starts else " "
        label = " ".join(s.label for s in starts)
        begin = row.region.begin if row.region else 0
        segments = [
            Segment(f"+{row.address - begin:04x}", self._style("free")),
            Segment(marker, self._style("current") if marker != " " else Style()),
            Segment(band, bstyle),
            Segment(" " + label, self._style("regs" if label.startswith("pt_regs") else "label")),
        ]
        return Strip(segments).crop(0, width).adjust_cell_length(width)

    def _current_slice(self) -> Slice | None:
        for s in self.slices:
            if s.index == self.current:
                return s
        if self.current >= len(self.analysis.walk.steps):
            return next((s for s in reversed(self.slices) if s.label == "final pt_regs"), None)
        return None
