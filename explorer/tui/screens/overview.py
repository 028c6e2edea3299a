"""The overview: the triage card and every task's verdict, checked in a thread worker."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Checkbox, DataTable, Header, Input, Label, ProgressBar
from textual.worker import get_current_worker

from explorer.model.kernel import Options
from explorer.tui.protocol import Explorer, explorer_of
from explorer.tui.session import Session, TaskRow, preopened
from explorer.tui.widgets.error import ErrorPanel, error_text
from explorer.tui.widgets.field import Field
from explorer.tui.widgets.footer import KeyFooter
from explorer.tui.widgets.tasks import TaskTable
from explorer.tui.widgets.triage import TriageCard

BATCH = 16


class OverviewScreen(Screen[None]):
    """Triage card, filter, task table. Opens the dump and checks every task in workers."""

    AUTO_FOCUS = None  # the table takes focus once the dump is open
    BINDINGS = [
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("q", "app.quit", "Quit"),
        # A livepatch exercise only (check_action); first, so that 80 columns show them.
        Binding("a", "answer", "Answer"),
        Binding("R", "reveal", "Reveal", key_display="R"),
        Binding("i", "story", "Story"),
        Binding("slash", "focus_filter", "Filter", key_display="/"),
        Binding("u", "toggle_unreliable", "Unreliable"),
        Binding("G", "toggle_group", "Group", key_display="G"),
        Binding("s", "sort", "Sort"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    class Progress(Message):
        """Loading progress: ``what`` is being done, ``done`` of ``total`` (None: unknown)."""

        def __init__(self, what: str, done: int = 0, total: int | None = None) -> None:
            super().__init__()
            self.what, self.done, self.total = what, done, total

    class Loaded(Message):
        """The dump is open."""

        def __init__(self, session: Session) -> None:
            super().__init__()
            self.session = session

    class LoadFailed(Message):
        """The dump could not be opened."""

        def __init__(self, error: BaseException) -> None:
            super().__init__()
            self.error = error

    class Checked(Message):
        """Verdicts of a batch of tasks (``done`` of ``total`` so far)."""

        def __init__(self, rows: list[TaskRow], done: int, total: int, era: str) -> None:
            super().__init__()
            self.rows, self.done, self.total, self.era = rows, done, total, era

    def __init__(self, path: str, options: Options) -> None:
        super().__init__()
        self.path = path
        self.options = options
        self.session: Session | None = None
        self.checked = False

    @property
    def explorer(self) -> Explorer:
        """The app, as its screens see it."""
        return explorer_of(self.app)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Exercise mode: no "unreliable only" (the verdicts are hidden). A livepatch
        exercise asks about the whole dump: answer, reveal and its story here too."""
        ex = self.explorer.exercise
        if action in ("answer", "reveal", "story"):
            if ex is None or not ex.klp or self.session is None:
                return False
            return action == "story" or not ex.done
        return not (action == "toggle_unreliable" and ex is not None)

    def action_answer(self) -> None:
        """``a``: a livepatch exercise's answer."""
        self.explorer.answer_klp()

    def action_reveal(self) -> None:
        """``R``: give up a livepatch exercise (after a confirmation)."""
        self.explorer.reveal_klp()

    def action_story(self) -> None:
        """``i``: a livepatch exercise's situation, or its debriefing once answered."""
        self.explorer.klp_story()

    def compose(self) -> ComposeResult:
        """Card, status line, filters, table, summary."""
        yield Header()
        with Vertical(id="overview"):
            yield TriageCard(id="card")
            yield ErrorPanel(id="error")
            with Horizontal(id="status"):
                yield Label("opening the dump…", id="status-text")
                yield ProgressBar(id="progress", show_eta=False)
            with Horizontal(id="filters"):
                yield Field(
                    placeholder="filter: comm, pid, function, rule (pid:1 fn:do_wait rule:task)",
                    id="filter",
                    compact=True,
                )
                yield Checkbox("unreliable only", id="unreliable", compact=True)
                yield Checkbox("group by stack", id="group", compact=True)
            yield TaskTable(id="tasks")
            yield Label("", id="summary")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Start loading."""
        exercise = self.explorer.exercise
        if exercise is not None:
            self.query_one(TaskTable).hidden = lambda r: exercise.hidden(r.task.address)
            self.query_one("#unreliable", Checkbox).disabled = True
        self.query_one(ErrorPanel).display = False
        self.query_one("#filters").display = False
        self.query_one(TaskTable).display = False
        ahead = preopened(self.path, self.options)
        if ahead is not None:  # opened before this explorer started (a served dump)
            self.on_overview_screen_loaded(self.Loaded(ahead))
        else:
            self.load()

    # -- workers ---------------------------------------------------------------------------------
    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def load(self) -> None:
        """Open the dump and find its tasks (a thread: decompressing can take a while)."""
        last = [-1]

        def progress(done: int, total: int) -> None:
            pct = 100 * done // total if total else 100
            if pct != last[0]:
                last[0] = pct
                self.post_message(self.Progress("decompressing the dump once", done, total))

        try:
            session = Session.open(self.path, self.options, progress=progress)
        except Exception as exc:  # shown in the error panel: never a traceback
            self.post_message(self.LoadFailed(exc))
            return
        _ = session.transition  # a livepatch transition in progress: read here, not in the UI
        self.post_message(self.Loaded(session))

    @work(thread=True, exclusive=True, group="check", exit_on_error=False)
    def check_all(self, session: Session, era: str) -> None:
        """Judge every task, posting verdicts in batches (the table fills as they arrive)."""
        worker = get_current_worker()
        tasks = list(session.tasks)
        batch: list[TaskRow] = []
        for i, task in enumerate(tasks, start=1):
            if worker.is_cancelled:
                return
            try:
                batch.append(session.check(task, era))
            except Exception as exc:
                self.app.call_from_thread(
                    self.notify, f"pid {task.pid}: {error_text(exc)}", severity="warning"
                )
            if len(batch) >= BATCH or i == len(tasks):
                self.post_message(self.Checked(batch, i, len(tasks), era))
                batch = []
        if not tasks:
            self.post_message(self.Checked([], 0, 0, era))

    # -- messages --------------------------------------------------------------------------------
    def on_overview_screen_progress(self, event: Progress) -> None:
        """Show progress."""
        self.query_one("#status-text", Label).update(Content(event.what))
        self.query_one(ProgressBar).update(total=event.total, progress=event.done)

    def on_overview_screen_load_failed(self, event: LoadFailed) -> None:
        """Show the error in place; the app keeps running."""
        self.set_focus(None)
        self.query_one("#status").display = False
        self.query_one("#filters").display = False
        self.query_one(TaskTable).display = False
        self.query_one(TriageCard).display = False
        self.query_one("#summary", Label).update("")
        self.query_one(ErrorPanel).show(
            "cannot open the dump",
            event.error,
            "Check the file, or name the symbols: backchain DUMP --map System.map. "
            "Press ? for help, q to quit.",
        )
        self.notify(
            error_text(event.error), title="cannot open the dump", severity="error", markup=False
        )

    def on_overview_screen_loaded(self, event: Loaded) -> None:
        """Show the card and start checking every task."""
        self.session = event.session
        self.explorer.session = event.session
        exercise = self.explorer.exercise
        if exercise is not None and exercise.scenario is not None:
            event.session.label = "vmcore"  # its folder is named after the scenario: the answer
        self.sub_title = event.session.label
        self.query_one(TriageCard).show(event.session)
        self.query_one("#filters").display = True
        table = self.query_one(TaskTable)
        table.display = True
        if event.session.transition is not None:  # found by the load worker
            session = event.session
            table.blocks_livepatch = lambda r: session.blocks_livepatch(r.analysis)
        table.rebuild()
        table.focus()
        for forced in event.session.kernel.forced:  # --force used another kernel's file
            self.notify(forced, title="--force", severity="error", timeout=30, markup=False)
        for warning in event.session.scan.warnings:
            self.notify(warning, severity="warning", markup=False)
        self.recheck()
        self.refresh_bindings()  # a livepatch exercise's keys, now that the dump is open
        self.explorer.opened(event.session)

    def verdicts_changed(self) -> None:
        """Exercise mode: a verdict was revealed; show it in the table."""
        if self.session is not None:
            self.query_one(TaskTable).rebuild()
            self._summary()

    def recheck(self) -> None:
        """(Re)judge every task under the session's era."""
        if self.session is None:
            return
        self.checked = False
        self.query_one(TriageCard).show(self.session)
        self.query_one(TaskTable).clear_results()
        ahead = self.session.checked(self.session.era)
        self.query_one("#status").display = ahead is None
        self.query_one("#status-text", Label).update(
            f"checking every task (rules {self.session.era})"
        )
        self.query_one(ProgressBar).update(total=len(self.session.tasks), progress=0)
        if ahead is not None:
            # Judged before this explorer started (a served dump): shown as the worker's
            # last batch, once the table has taken the focus (the app's queue, then the
            # table's: its cells are styled as focused) and is laid out (its callers cut
            # to its width).
            rows = list(ahead)
            done = self.Checked(rows, len(rows), len(rows), self.session.era)
            table = self.query_one(TaskTable)
            self.app.call_later(table.call_after_refresh, self.on_overview_screen_checked, done)
            return
        self.check_all(self.session, self.session.era)

    def on_overview_screen_checked(self, event: Checked) -> None:
        """Add a batch of verdicts."""
        if self.session is None or event.era != self.session.era:
            return
        table = self.query_one(TaskTable)
        last = event.done >= event.total
        table.add_results(event.rows, show=not last)  # the last batch: rebuilt below
        self.query_one(ProgressBar).update(total=event.total, progress=event.done)
        if last:
            self.checked = True
            self.query_one("#status").display = False
            table.rebuild()  # every column's width known now: callers cut between names
        self._summary()

    def _summary(self) -> None:
        table = self.query_one(TaskTable)
        rows = table.results
        bad = sum(1 for r in rows if not r.reliable)
        shown = table.row_count
        what = ("stack" if table.grouped else "task") + ("" if shown == 1 else "s")
        total = len(self.session.tasks) if self.session else 0
        pending = "" if self.checked else f" · checked {len(rows)} of {total}"
        counts = f": {len(rows) - bad} reliable, {bad} not"
        exercise = self.explorer.exercise
        if exercise is not None and exercise.klp:
            counts = " · exercise: " + (
                "answered" if exercise.done else "who blocks? a answers, i tells what happened"
            )
        elif exercise is not None:
            known = sum(1 for r in rows if not exercise.hidden(r.task.address))
            counts = f" · exercise: verdicts hidden, {known} revealed"
        # What matters first, so that 80 columns cut nothing: the counts, then the rules,
        # what the table shows when it is not every task, and the key last.
        showing = "" if shown == len(rows) and not table.grouped else f" · showing {shown} {what}"
        self.query_one("#summary", Label).update(
            f"{len(rows)} task{'' if len(rows) == 1 else 's'}{counts}{pending} · "
            f"rules {self.session.era if self.session else '-'}{showing} · enter: stack"
        )

    # -- filter, toggles, sort -------------------------------------------------------------------
    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        table = self.query_one(TaskTable)
        table.words = event.value.split()
        table.rebuild()
        self._summary()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(TaskTable).focus()

    @on(Checkbox.Changed, "#unreliable")
    def _unreliable(self, event: Checkbox.Changed) -> None:
        table = self.query_one(TaskTable)
        table.unreliable_only = event.value
        table.rebuild()
        self._summary()

    @on(Checkbox.Changed, "#group")
    def _group(self, event: Checkbox.Changed) -> None:
        table = self.query_one(TaskTable)
        table.grouped = event.value
        table.rebuild()
        self._summary()

    def action_focus_filter(self) -> None:
        """``/``: type a filter."""
        if self.session is not None:
            self.query_one("#filter", Input).focus()

    def action_clear_filter(self) -> None:
        """Escape: clear the filter and go back to the table."""
        self.query_one("#filter", Input).value = ""
        self.query_one(TaskTable).focus()

    def action_toggle_unreliable(self) -> None:
        """``u``: only tasks whose stack is not reliable."""
        if self.explorer.exercise is not None:  # the command palette's toggle
            self.notify("exercise mode: verdicts are hidden", timeout=2)
            return
        box = self.query_one("#unreliable", Checkbox)
        box.value = not box.value

    def action_toggle_group(self) -> None:
        """``G``: one row per identical stack."""
        box = self.query_one("#group", Checkbox)
        box.value = not box.value

    def action_sort(self) -> None:
        """``s``: sort by the next column (or click a header)."""
        table = self.query_one(TaskTable)
        table.sort_next()
        self.notify(f"sorted by {table.sort_key}", timeout=1.5, markup=False)

    @on(DataTable.RowSelected, "#tasks")
    def _open(self, event: DataTable.RowSelected) -> None:
        row = self.query_one(TaskTable).selected()
        if row is not None:
            self.explorer.open_task(row.task)
