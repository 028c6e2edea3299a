"""The stack of one task: regions map, walk, frame inspector and checks, linked.

The walk is precomputed; stepping (``n`` ``p`` ``r`` ``0`` ``g``) only reveals rows. Moving
the cursor in the walk shows that step everywhere else.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from explorer.code.pane import CodeView, code_view
from explorer.code.present import not_after_call
from explorer.model.tasks import Task, cpu_column
from explorer.reports.walk import walk_markdown
from explorer.training.exercise import PLACEHOLDER, Exercise, Guess, expected_differs
from explorer.training.results import ENV_SESSION
from explorer.tui.cfi import notes as cfi_notes
from explorer.tui.export import export_name, write_new
from explorer.tui.markup import markup
from explorer.tui.protocol import Explorer, explorer_of
from explorer.tui.screens.answer import AnswerForm
from explorer.tui.screens.form import REVEAL
from explorer.tui.screens.prompt import Confirm, Prompt
from explorer.tui.screens.scenario import DebriefScreen, debrief_markdown, situation_markdown
from explorer.tui.session import Session
from explorer.tui.widgets.checks import ChecksPane
from explorer.tui.widgets.footer import KeyFooter
from explorer.tui.widgets.inspector import FrameInspector, source_block
from explorer.tui.widgets.regions import RegionsMap
from explorer.tui.widgets.verdict import VerdictBar
from explorer.tui.widgets.walk import WalkTable
from explorer.walk.analysis import TaskAnalysis
from explorer.walk.unwind import Step
from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.debuginfo.cfi import Agreement

#: Below this width one lower pane at a time (``v`` cycles): checks, inspector, map.
NARROW = 110
PANES = ("checks", "inspector", "map")
#: The walk pane's subtitle: the stepping keys the footer leaves out.
STEP_KEYS = "n next · p prev · r run · 0 restart · g go to #"


def task_title(a: TaskAnalysis) -> Content:
    """``PID 1 init (S) task 0x… CPU - · rules current``."""
    t = a.task
    kind = " kthread" if t.is_kthread else ""
    return markup(
        "[b]PID $pid[/b] [b $text-accent]$comm[/] ($state) · task $task · CPU $cpu · "
        "from $start · rules [b]$era[/b]",
        pid=t.pid,
        comm=t.comm,
        state=f"{t.state}{kind}",
        task=f"0x{t.address:x}",
        cpu=cpu_column(t),
        start=a.walk.start,
        era=a.walk.era,
    )


def walk_title(revealed: int, steps: int, hidden: bool) -> str:
    """``walk 3/10 frames``; in exercise mode, until answered, the walk's length stays
    unknown: ``walk: 3 frames so far``."""
    ended = " · ended" if revealed > steps else ""
    if hidden:
        shown = min(revealed, steps)
        return f"walk: {shown} frame{'s' if shown != 1 else ''} so far{ended}"
    return f"walk {min(revealed, steps)}/{steps} frames{ended}"


class StackScreen(Screen[None]):
    """One task's walk, step by step."""

    BINDINGS = [
        # Back, Help, Quit and the exercise keys first: at 80 columns they must stay visible.
        Binding("escape", "app.pop_screen", "Back"),
        Binding("question_mark", "app.help", "Help", key_display="?"),
        Binding("q", "app.quit", "Quit"),
        Binding("a", "answer", "Answer"),
        Binding("R", "reveal", "Reveal", key_display="R"),
        Binding("i", "debrief", "Story"),
        Binding("n,space", "next", "Next", key_display="n"),
        Binding("p", "previous", "Prev", show=False),  # p, r, 0: in the walk's subtitle
        Binding("r", "run", "Run"),
        Binding("0", "restart", "Restart", show=False),
        Binding("g", "goto_frame", "Go #", show=False),  # in the walk's subtitle
        Binding("f", "cfi", "CFI"),
        Binding("x", "export", "Export"),
        Binding("m", "memory", "Memory"),
        Binding("v", "cycle_pane", "Pane"),
        Binding("c", "code", "Code", show=False),  # in the frame pane's subtitle
    ]

    def __init__(self, session: Session, task: Task) -> None:
        super().__init__()
        self.session = session
        self.shown_task = task
        self.analysis = session.detail(task)
        self.pane = "checks"
        #: The CFI toggle (f): the CFI unwind beside the walk, or why there is none.
        self.cfi: Agreement | str | None = None

    @property
    def explorer(self) -> Explorer:
        """The app, as its screens see it."""
        return explorer_of(self.app)

    @property
    def exercise(self) -> Exercise | None:
        """The exercise, in exercise mode."""
        return self.explorer.exercise

    @property
    def hidden(self) -> bool:
        """Exercise mode and this task's verdict is not revealed yet."""
        ex = self.exercise
        return ex is not None and ex.hidden(self.shown_task.address)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Exercise keys only in exercise mode; answer and reveal only while hidden, export
        only when not."""
        if action in ("answer", "reveal"):
            return self.hidden
        if action in ("export", "cfi"):  # the export has the verdict: offered once
            return not self.hidden  # answered; so has where CFI parts from the back chain
        if action == "cycle_pane":  # one lower pane at a time only when narrow
            return self.app.size.width < NARROW
        if action == "debrief":  # the situation before the answer, the debriefing after
            ex = self.exercise
            return ex is not None and (ex.scenario is not None or not self.hidden)
        return True

    def compose(self) -> ComposeResult:
        """Title, map | (walk | checks) / inspector, verdict."""
        a = self.analysis
        yield Header()
        yield Static(task_title(a), id="task-title")
        with Horizontal(id="body"):
            upto = 1 if self.hidden else None  # exercise mode: the map unfolds with the walk
            regions = RegionsMap(a, self.session.functions(a.walk), upto, id="regions")
            regions.border_title = "stacks"
            yield regions
            with Vertical(id="main"):
                with Horizontal(id="top"):
                    lines = self.session.frame_lines if self.session.lines.available else None
                    walk = WalkTable(
                        a, self.session.symbolize, lines, id="walk", flag=self._no_call
                    )
                    walk.hidden = self.hidden
                    walk.border_title = "walk"
                    walk.border_subtitle = STEP_KEYS
                    yield walk
                    with VerticalScroll(id="checks-box") as box:
                        box.border_title = "checks"
                        yield ChecksPane(id="checks")
                inspector = FrameInspector(id="inspector")
                inspector.border_title = "frame"
                inspector.border_subtitle = "c code"
                yield inspector
        yield VerdictBar(id="verdict")
        yield KeyFooter()

    def on_mount(self) -> None:
        """Show step #0."""
        self.sub_title = self.session.label
        self._verdict()
        self._layout(self.app.size.width)
        self.query_one(WalkTable).focus()
        self.show_row(0)
        ex = self.exercise
        if ex is not None:
            if ex.scenario is None:  # a scenario is named in the title ("exercise 3 of 12")
                self.sub_title += " · exercise"
            if ex.scenario is not None and ex.scenario.pid == self.shown_task.pid:
                differs = expected_differs(self.analysis.verdict, ex.scenario.answer)
                if differs:
                    self.notify(
                        differs, title="scenario answer differs", severity="error", markup=False
                    )

    def _verdict(self) -> None:
        bar = self.query_one(VerdictBar)
        ex = self.exercise
        if ex is not None and self.hidden:
            address = self.shown_task.address
            hint = ex.hints.get(address, "")
            tries = ex.attempts(address)
            if ex.klp:  # one question about the whole dump
                hint, tries = ex.klp_hint, len(ex.klp_guesses)
            keys = "a answer · R reveal"
            if ex.scenario is not None:
                keys = "i situation · " + keys
            bar.hide(ex.placeholder, f"try {tries}: {hint}" if hint else "", keys)
        else:
            bar.show(self.analysis, self.session.livepatch_line(self.analysis))

    def on_resize(self, event: events.Resize) -> None:
        """Narrow terminals show one lower pane at a time."""
        self._layout(event.size.width)
        self.refresh_bindings()

    def _layout(self, width: int) -> None:
        self.set_class(width < NARROW, "-narrow")
        for pane in PANES:
            self.set_class(self.pane == pane, f"-pane-{pane}")

    # -- showing a step --------------------------------------------------------------------------
    @property
    def walk(self) -> WalkTable:
        """The walk table."""
        return self.query_one(WalkTable)

    def show_row(self, row: int) -> None:
        """Show walk row ``row`` in the map, the inspector and the checks."""
        a = self.analysis
        steps = a.walk.steps
        hidden = self.hidden
        regions = self.query_one(RegionsMap)
        regions.unfold(self.walk.revealed if hidden else None)
        regions.show(row)
        inspector = self.query_one(FrameInspector)
        inspector.show(a, row, self.session.symbolize, hidden, code=self._code_view)
        inspector.show_source(source_block(self.session.lines, a.walk.steps, row))
        ex = self.exercise
        if hidden and ex is not None and ex.klp:
            answers = "a answers (task, why, function) · R reveals"
            self.query_one(ChecksPane).hide(ex.placeholder, answers)
        elif hidden:
            self.query_one(ChecksPane).hide(PLACEHOLDER)
        else:
            self.query_one(ChecksPane).show(a, row, self._cfi_notes(row))
        inspector = self.query_one(FrameInspector)
        if row < len(steps):
            s = steps[row]
            inspector.border_title = f"frame #{row} at 0x{s.sp:x} ({s.stack_type} stack, {s.how})"
        else:
            inspector.border_title = "end of the walk"
        self.query_one("#checks-box").border_title = (
            f"checks #{row}" if row < len(steps) else "checks: end"
        )
        self.query_one("#walk").border_title = walk_title(self.walk.revealed, len(steps), hidden)

    def _cfi_notes(self, row: int) -> list[str] | None:
        """The checks pane's CFI lines at ``row`` while the CFI toggle is on."""
        if self.cfi is None:
            return None
        if isinstance(self.cfi, str):
            return [self.cfi]
        return cfi_notes(self.cfi, row, self.analysis.walk.steps, self.session.symbolize)

    def _no_call(self, step: Step) -> bool:
        """The walk pane's mark: the frame's return address does not follow a call."""
        return not_after_call(self.session.kernel, step)

    def _code_view(self, step: Step) -> CodeView | None:
        """The code pane of a frame (None if the code cannot be shown)."""
        try:
            return code_view(self.session.kernel, step)
        except DumpError:
            return None

    @on(DataTable.RowHighlighted, "#walk")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_row(self.walk.current)

    # -- actions ---------------------------------------------------------------------------------
    def action_next(self) -> None:
        """Reveal the next step (the end of the walk after the last frame)."""
        walk = self.walk
        if walk.cursor_row < walk.revealed - 1:
            walk.move_cursor(row=walk.cursor_row + 1)
        elif walk.revealed < walk.total:
            walk.reveal(walk.revealed + 1)
        else:
            self.notify("the walk has ended", timeout=1.5)

    def action_previous(self) -> None:
        """Hide the last step."""
        walk = self.walk
        walk.reveal(walk.revealed - 1)

    def action_run(self) -> None:
        """Reveal the whole walk."""
        self.walk.reveal(self.walk.total)

    def action_restart(self) -> None:
        """Back to frame #0."""
        self.walk.reveal(1)

    def action_goto_frame(self) -> None:
        """Ask for a frame number and go there."""

        def answer(text: str | None) -> None:
            if text is None:
                return
            try:
                index = int(text.lstrip("#"))
            except ValueError:
                self.notify(f"not a frame number: {text}", severity="warning", markup=False)
                return
            steps = len(self.analysis.walk.steps)
            if not 0 <= index < steps:
                self.notify(f"frames are #0..#{steps - 1}", severity="warning", markup=False)
                return
            self.walk.reveal(max(self.walk.revealed, index + 1), cursor=index)

        self.app.push_screen(Prompt("go to frame #", "e.g. 3"), answer)

    # -- exercise --------------------------------------------------------------------------------
    def action_answer(self) -> None:
        """Exercise: name the failing frame and rule (a livepatch exercise: the task that
        blocks the transition, starting from this one)."""
        ex = self.exercise
        if ex is None or not self.hidden:
            return
        if ex.klp:
            self.explorer.answer_klp(self.shown_task.pid)
            return
        address = self.shown_task.address
        form = AnswerForm(
            len(self.analysis.walk.steps),
            self.walk.revealed,
            ex.last_guess(address),
            ex.hints.get(address, ""),
        )
        self.app.push_screen(form, self._answered)

    def _answered(self, answer: Guess | str | None) -> None:
        ex = self.exercise
        if ex is None or answer is None:
            return
        if answer == REVEAL:
            self.action_reveal()
            return
        assert isinstance(answer, Guess)
        judgement = ex.answer(self.analysis, answer)
        if judgement.right:
            tries = ex.attempts(self.shown_task.address)
            self._reveal(f"Right: {answer.text}" + ("" if tries == 1 else f" (try {tries})"))
        else:
            self.notify(
                judgement.hint, title=f"not quite: {answer.text}", severity="warning", markup=False
            )
            self._verdict()

    def action_reveal(self) -> None:
        """Exercise: show the verdict without answering, once the trainee confirms (it is
        recorded as given up, for good)."""
        if self.exercise is None or not self.hidden:
            return
        if self.exercise.klp:
            self.explorer.reveal_klp()
            return

        def confirmed(yes: bool | None) -> None:
            if yes and self.exercise is not None and self.hidden:
                self.exercise.give_up(self.analysis)
                self._reveal("Revealed")

        question = Confirm(
            "reveal the verdict?",
            "You give up this exercise: the trainer's results record it as revealed, and "
            "it cannot be answered afterwards.",
            "Reveal",
        )
        self.app.push_screen(question, confirmed)

    def _reveal(self, outcome: str) -> None:
        self.explorer.revealed(self.shown_task, solved=outcome != "Revealed")
        self.exercise_changed()
        self._debrief(outcome)

    def exercise_changed(self) -> None:
        """A hint or a reveal: the verdict bar, and once revealed the walk, its map and the
        checks."""
        if not self.is_mounted:
            return
        if not self.hidden:
            self.walk.set_hidden(False)
            self.show_row(self.walk.current)
        self._verdict()
        self.refresh_bindings()

    def action_debrief(self) -> None:
        """Exercise: before the answer, what happened to the machine (never where to look);
        after it, the verdict explained and the scenario's story."""
        ex = self.exercise
        if ex is None:
            return
        if ex.klp:
            self.explorer.klp_story()
        elif not self.hidden:
            self._debrief("The answer")
        elif ex.scenario is not None:
            text = situation_markdown(ex.scenario)
            self.app.push_screen(DebriefScreen(text, ex.title))

    def _debrief(self, outcome: str) -> None:
        ex = self.exercise
        scenario = ex.scenario if ex is not None else None
        text = debrief_markdown(self.analysis, scenario, outcome)
        title = ex.title if ex is not None and ex.scenario is not None else "the answer"
        self.app.push_screen(DebriefScreen(text, title))

    def action_export(self) -> None:
        """The walk as Markdown (a scenario's story first), under a name the tool chooses: a
        download in the browser when served (nothing written on the server), else a new
        file in the working directory."""
        t = self.shown_task
        ex = self.exercise
        if ex is not None and self.hidden:
            self.notify("answer (a) or reveal (R) first: the export has the verdict")
            return
        story = ex.scenario_markdown() if ex is not None else ""
        scenario = ex.scenario.name if ex is not None and ex.scenario is not None else None
        text = story + walk_markdown(self.session.kernel, self.analysis)
        if self.app.is_web:
            name = export_name(t.pid, t.comm, scenario, os.environ.get(ENV_SESSION) or None)
            self.app.deliver_text(
                io.StringIO(text), save_filename=name, mime_type="text/markdown", encoding="utf-8"
            )
            self.sub_title = f"{self.session.label} · exported {name}"
            self.notify(
                f"walk sent to your browser as {name}", title="exported", timeout=4, markup=False
            )
            return
        folder = Path(self.explorer.export_dir or os.getcwd())
        try:
            path = write_new(folder, export_name(t.pid, t.comm, scenario), text)
        except OSError as exc:
            self.notify(f"cannot write in {folder}: {exc.strerror}", severity="error", markup=False)
            return
        self.sub_title = f"{self.session.label} · exported {path.name}"
        self.notify(f"walk written to {path}", title="exported", timeout=4, markup=False)

    def action_cfi(self) -> None:
        """Show (or hide) the DWARF CFI unwinder's frame beside each back-chain frame, the
        pairing ``bt --cfi`` prints; without a -dbg vmlinux, say why there is none."""
        if self.hidden:
            return
        walk = self.walk
        if self.cfi is not None:
            self.cfi = None
            walk.show_cfi(None)
            walk.border_subtitle = STEP_KEYS
        else:
            self.cfi = self.session.cfi(self.analysis)
            if isinstance(self.cfi, str):
                walk.border_subtitle = "f: " + self.cfi.split(";")[0]
                self.notify(self.cfi, title="CFI", severity="warning", markup=False)
            else:
                steps = len(self.analysis.walk.steps)
                walk.border_subtitle = f"CFI: {self.cfi.agree}/{steps} agree · f hides"
                walk.show_cfi(self.cfi)
        self.show_row(walk.current)

    def action_memory(self) -> None:
        """Open the memory view at the current frame."""
        row = self.walk.current
        steps = self.analysis.walk.steps
        sp = steps[row].sp if row < len(steps) else self.analysis.walk.end.sp
        self.explorer.open_memory(sp, self.analysis)

    def action_code(self) -> None:
        """Scroll the frame inspector to its code pane (and show the inspector when narrow)."""
        if self.has_class("-narrow") and self.pane != "inspector":
            self.pane = "inspector"
            self._layout(self.app.size.width)
        code = self.query_one("#frame-code")
        self.call_after_refresh(code.scroll_visible, animate=False, top=True)

    def action_cycle_pane(self) -> None:
        """Narrow terminals: show the next lower pane (checks, inspector, map)."""
        self.pane = PANES[(PANES.index(self.pane) + 1) % len(PANES)]
        self._layout(self.app.size.width)
        if self.pane == "map":  # sized only once shown: scroll to the current frame then
            self.call_after_refresh(self.query_one(RegionsMap).show, self.walk.current)
        if self.has_class("-narrow"):
            self.notify(f"showing {self.pane}", timeout=1, markup=False)
