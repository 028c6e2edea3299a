"""The task table of the overview: one row per task (or per identical stack), filtered and
sorted, filled as the verdicts arrive."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from explorer.model.tasks import comm_column, cpu_column, task_order
from explorer.tui.session import TaskRow

#: (key, header) of the task columns: PID CPU ST COMM, the order of ``ps`` and ``check --all``.
TASK_COLUMNS = (
    ("pid", "PID"),
    ("cpu", "CPU"),
    ("state", "ST"),
    ("comm", "COMM"),
    ("verdict", "VERDICT"),
    ("top", "TOP FUNCTION"),
    ("callers", "CALLERS"),
)
#: (key, header) of the columns when tasks are grouped by identical stack.
GROUP_COLUMNS = (  # the callers, what a group is about, before the names (80x24)
    ("tasks", "TASKS"),
    ("verdict", "VERDICT"),
    ("top", "TOP FUNCTION"),
    ("callers", "CALLERS"),
    ("comm", "COMMS"),
)
MAX_CALLERS = 8
#: Callers of a group row: fewer, so that the names after them stay on screen at 120x40.
GROUP_CALLERS = 4
#: Terminal width up to which the grouped view's callers come first (COMMS may be cut); three
#: in four columns beyond it are kept for COMMS, the callers cut between names instead.
CALLERS_FIRST = 80


@dataclass(frozen=True)
class Group:
    """Tasks with the same stack (function names) and the same verdict."""

    rows: tuple[TaskRow, ...]

    @property
    def first(self) -> TaskRow:
        """The group's first task (the one Enter opens)."""
        return self.rows[0]


def _sort_value(key: str, hidden: Callable[[TaskRow], bool]) -> Callable[[TaskRow], Any]:
    def value(r: TaskRow) -> Any:
        t = r.task
        if key == "verdict" and hidden(r):
            return (True, "", t.pid)
        return {
            "pid": (*task_order(t), t.address),
            "comm": (t.comm, t.pid),
            "state": (t.state, t.pid),
            "cpu": (r.analysis.cpu is None, task_order(t)[1], t.pid),
            "verdict": (r.reliable, r.label, t.pid),
            "top": (r.top, t.pid),
            "callers": (r.functions[1:], t.pid),
        }[key]

    return value


def _never(_row: TaskRow) -> bool:
    return False


def group_rows(rows: Iterable[TaskRow], hidden: Callable[[TaskRow], bool] = _never) -> list[Group]:
    """Rows grouped by (function names, verdict), biggest group first; a ``hidden`` verdict
    does not split a group."""
    groups: dict[tuple[tuple[str, ...], str], list[TaskRow]] = {}
    for r in rows:
        groups.setdefault((r.functions, "?" if hidden(r) else r.label), []).append(r)
    return [
        Group(tuple(members))
        for members in sorted(groups.values(), key=lambda m: (-len(m), m[0].label, m[0].top))
    ]


class TaskTable(DataTable[Any]):
    """Tasks and their verdicts.

    Rows are keyed by task address (pid 0 exists once per CPU). Click a header or press
    ``s`` to sort; the filter and toggles live on the overview screen.

    Attributes:
        hidden: exercise mode: whether a row's verdict is hidden (shown as ``?``, not
            matched by the filter, not sorted on, not splitting groups).
    """

    COMPONENT_CLASSES = {"tasktable--bad", "tasktable--ok", "tasktable--running", "tasktable--dim"}
    DEFAULT_CSS = """
    TaskTable > .tasktable--bad { color: $text-error; }
    TaskTable > .tasktable--ok { color: $text-success; }
    TaskTable > .tasktable--running { color: $text-warning; }
    TaskTable > .tasktable--dim { color: $text-muted; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self.results: list[TaskRow] = []
        self.words: list[str] = []
        self.unreliable_only = False
        self.grouped = False
        self.sort_key: str | None = None
        self.hidden: Callable[[TaskRow], bool] = _never
        #: Whether a row's task blocks a livepatch transition in progress (marked).
        self.blocks_livepatch: Callable[[TaskRow], bool] = _never
        self.reverse = False
        self._shown: list[TaskRow | Group] = []

    def on_mount(self) -> None:
        """Cells carry theme colours: redraw them when the theme changes."""
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self.rebuild())

    def on_resize(self) -> None:
        """Callers are cut to the width: lay the rows out again."""
        if self.results:
            self.rebuild()

    # -- data ----------------------------------------------------------------------------------
    def clear_results(self) -> None:
        """Forget every verdict (before re-checking)."""
        self.results = []
        self.rebuild()

    def add_results(self, rows: list[TaskRow], show: bool = True) -> None:
        """Add verdicts as they arrive; appended in place unless sorted or grouped (or
        not ``show``n: the caller rebuilds the table next)."""
        self.results.extend(rows)
        if not show:
            return
        if self.grouped or self.sort_key is not None:
            self.rebuild()
            return
        for r in rows:
            if self._wanted(r):
                self._add_task_row(r)

    def filtered(self) -> list[TaskRow]:
        """Rows that pass the filter and the unreliable-only toggle, in table order."""
        rows = [r for r in self.results if self._wanted(r)]
        if self.sort_key is not None:
            rows.sort(key=_sort_value(self.sort_key, self.hidden), reverse=self.reverse)
        return rows

    def _wanted(self, r: TaskRow) -> bool:
        hidden = self.hidden(r)
        if self.unreliable_only and (r.reliable or hidden):
            return False
        return r.matches(self.words, verdict=not hidden)

    # -- presentation --------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Redraw every row (after a filter, sort, group or theme change)."""
        selected = self.selected()
        keep = selected.key if selected is not None else None
        self.clear(columns=True)
        self._shown = []
        columns = GROUP_COLUMNS if self.grouped else TASK_COLUMNS
        for key, header in columns:
            mark = ""
            if key == self.sort_key and not self.grouped:
                mark = " ▼" if self.reverse else " ▲"
            self.add_column(header + mark, key=key)
        if self.grouped:
            groups = group_rows(self.filtered(), self.hidden)
            room = self._callers_room(groups)
            for i, g in enumerate(groups):
                self._add_group_row(i, g, room)
        else:
            rows = self.filtered()
            room = self._task_callers_room(rows)
            for r in rows:
                self._add_task_row(r, room)
        if keep is not None:
            self.select(keep)

    def _style(self, r: TaskRow) -> str:
        if r.reliable:
            return "tasktable--ok"
        running = r.analysis.verdict.rule == "task_running"
        return "tasktable--running" if running else "tasktable--bad"

    def _verdict(self, r: TaskRow) -> Text:
        if self.hidden(r):
            return Text("?", style=self.get_component_rich_style("tasktable--dim"))
        v = r.analysis.verdict
        text = r.label + ("" if v.frame is None else f" #{v.frame}")
        if self.blocks_livepatch(r):
            text += " · blocks klp"
        return Text(text, style=self.get_component_rich_style(self._style(r)))

    def _callers(
        self,
        functions: tuple[str, ...],
        limit: int = MAX_CALLERS,
        room: int = 10_000,
        hidden: bool = False,
    ) -> Text:
        """Up to ``limit`` callers in at most ``room`` cells, cut between names ("< …"), the
        first one always (the pane scrolls sideways); only "…" for a hidden task (exercise
        mode: the walk unfolds in the stack)."""
        if hidden:
            return Text("…", style=self.get_component_rich_style("tasktable--dim"))
        callers = list(functions[1 : 1 + limit])
        more = len(functions) > 1 + limit
        while len(callers) > 1 and len(" < ".join(callers)) + (4 if more else 0) > room:
            callers.pop()
            more = True
        shown = " < ".join(callers) + (" < …" if more and callers else "…" if more else "")
        return Text(shown, style=self.get_component_rich_style("tasktable--dim"))

    def _callers_room(self, groups: list[Group]) -> int:
        """Cells the grouped view's CALLERS may take: at 80 columns what a group is about
        comes first (COMMS beyond the pane's edge, cut between names); beyond
        :data:`CALLERS_FIRST` columns, COMMS get most of the rest."""
        comms = max((self.app.size.width - CALLERS_FIRST) * 3 // 4, 0)  # 80: off to the side
        if not self.size.width or not groups:
            return 10_000
        verdict = max(len(g.first.label) + 4 for g in groups)
        top = max(len(g.first.top) for g in groups)
        used = (5 + 2) + (verdict + 2) + (top + 2) + 2 + (comms + 2 if comms else 0) + 2
        return max(self.size.width - used, 12)

    def _task_callers_room(self, rows: list[TaskRow]) -> int:
        """Cells CALLERS has on screen beside the other task columns of ``rows``, so that
        the callers are cut between names ("< …"), never inside one by the pane's edge."""
        region = self.scrollable_content_region
        width = region.width or self.size.width
        if not width or not rows:
            return 10_000
        if (
            not self.show_vertical_scrollbar
            and self.styles.overflow_y == "auto"
            and region.height
            and len(rows) + (self.header_height if self.show_header else 0) > region.height
        ):  # the rows will not fit: the vertical scrollbar will take its columns
            width -= self.styles.scrollbar_size_vertical
        widths = [
            max(len(header), *(len(text) for text in texts))
            for header, texts in (
                ("PID", [str(r.task.pid) for r in rows]),
                ("CPU", [cpu_column(r.task) for r in rows]),
                ("ST", [r.task.state for r in rows]),
                ("COMM", [comm_column(r.task) for r in rows]),
                ("VERDICT", [self._verdict(r).plain for r in rows]),
                ("TOP FUNCTION", [r.top for r in rows]),
            )
        ]
        return max(width - sum(w + 2 for w in widths) - 2 - 1, 12)

    def _add_task_row(self, r: TaskRow, room: int = 10_000) -> None:
        t = r.task
        comm = comm_column(t)
        cpu = cpu_column(t)
        self.add_row(
            Text(str(t.pid), justify="right"),
            Text(cpu, justify="right"),
            t.state,
            Text(comm),
            self._verdict(r),
            Text(r.top),
            self._callers(r.functions, room=room, hidden=self.hidden(r)),
            key=r.key,
        )
        self._shown.append(r)

    def _add_group_row(self, index: int, g: Group, room: int = 10_000) -> None:
        first = g.first
        comms = sorted({r.task.comm for r in g.rows})
        shown = ", ".join(comms[:3]) + (f" +{len(comms) - 3}" if len(comms) > 3 else "")
        self.add_row(
            Text(str(len(g.rows)), justify="right"),
            self._verdict(first)
            if len(g.rows) == 1 or self.hidden(first)
            else Text(first.label, style=self.get_component_rich_style(self._style(first))),
            Text(first.top),
            self._callers(first.functions, GROUP_CALLERS, room, self.hidden(first)),
            Text(shown),
            key=f"group-{first.key}",
        )
        self._shown.append(g)

    # -- selection -----------------------------------------------------------------------------
    def selected(self) -> TaskRow | None:
        """The task under the cursor (a group's first task)."""
        if not self._shown or not 0 <= self.cursor_row < len(self._shown):
            return None
        item = self._shown[self.cursor_row]
        return item.first if isinstance(item, Group) else item

    def select(self, key: str) -> None:
        """Move the cursor to the row of the task keyed ``key`` (or its group)."""
        for i, item in enumerate(self._shown):
            rows = item.rows if isinstance(item, Group) else (item,)
            if any(r.key == key for r in rows):
                self.move_cursor(row=i, animate=False)
                return

    def sort_by(self, key: str) -> None:
        """Sort by column ``key``; the same column again reverses the order."""
        if self.grouped:
            return
        if self.sort_key == key:
            self.reverse = not self.reverse
        else:
            self.sort_key, self.reverse = key, False
        self.rebuild()

    def sort_next(self) -> None:
        """Sort by the next column (the ``s`` key)."""
        keys = [k for k, _ in TASK_COLUMNS]
        nxt = keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key else keys[0]
        self.sort_key, self.reverse = nxt, False
        self.rebuild()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """Clicking a header sorts by it."""
        event.stop()
        self.sort_by(str(event.column_key.value))
