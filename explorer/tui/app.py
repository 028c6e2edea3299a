"""The explorer app: screens, global keys and the open dump. Kept thin on purpose: loading
and checking live in the overview screen's workers, drawing in the widgets."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from explorer.model.kernel import Options
from explorer.model.tasks import Task
from explorer.training.exercise import Exercise
from explorer.training.klp import KlpGuess, answer_markdown
from explorer.tui.commands import ExplorerCommands
from explorer.tui.screens.form import REVEAL
from explorer.tui.screens.help import HelpScreen
from explorer.tui.screens.klp_answer import KlpAnswerForm
from explorer.tui.screens.livepatch import LivepatchScreen
from explorer.tui.screens.lowcore import LowcoreScreen
from explorer.tui.screens.memory import MemoryScreen
from explorer.tui.screens.overview import OverviewScreen
from explorer.tui.screens.picker import ScenarioPicker
from explorer.tui.screens.prompt import Confirm, Prompt
from explorer.tui.screens.scenario import DebriefScreen, klp_situation_markdown
from explorer.tui.screens.stack import StackScreen
from explorer.tui.session import Session
from explorer.tui.stylesheet import shared
from explorer.walk.analysis import TaskAnalysis


class BackchainApp(App[None]):
    """``backchain DUMP``: overview, stack, lowcore, memory, help.

    Args:
        path: the dump to open.
        options: symbol/type files and the era, as on the command line.
        export_dir: where ``x`` writes Markdown in a terminal (default: the working directory;
            a served session downloads it to the browser instead).
        exercise: hide every verdict until the trainee answers (or reveals it).
        scenario: the training scenario whose dump this is (implies ``exercise``): its task
            opens at once, its story is shown after the answer and exported.
        picker: training scenarios to pick from (``explorer.training.scenarios.Scenario``; implies
            ``exercise``; ``path`` is not used): the picker opens first, ``o`` goes back to it.
        results: append every exercise answer to this file (the trainee's name is asked
            first); see :mod:`explorer.training.results`.
    """

    CSS_PATH = "app.tcss"
    TITLE = "backchain"
    COMMANDS = App.COMMANDS | {ExplorerCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("l", "lowcore", "Lowcore"),
        Binding("k", "livepatch", "Livepatch", show=False),  # help lists it
        Binding("m", "memory", "Memory"),
        Binding("o", "scenarios", "Scenarios"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        path: str | None,
        options: Options | None = None,
        export_dir: str | None = None,
        exercise: bool = False,
        scenario: str | None = None,
        picker: Sequence[Any] | None = None,
        results: str | None = None,
    ) -> None:
        super().__init__()
        self.stylesheet = shared(self.stylesheet)  # parsed once a process (a served session)
        self.path = path or ""
        self.options = options or Options()
        self.export_dir = export_dir
        self.session: Session | None = None
        self.exercise: Exercise | None = None
        self.picker = None if picker is None else list(picker)
        #: How this session ended each scenario: ``solved`` or ``revealed`` (the picker marks).
        self.done: dict[str, str] = {}
        if scenario is not None:
            from explorer.training import scenarios

            chosen = scenarios.get(scenario)
            self.exercise = Exercise(
                chosen, number=scenarios.number(chosen.name), total=len(scenarios.CATALOG)
            )
            self.title = self.exercise.title
        elif exercise or self.picker is not None:
            self.exercise = Exercise()
        if self.exercise is not None and results is not None:
            from explorer.training.results import Recorder

            name = self.exercise.scenario.name if scenario else os.path.basename(self.path)
            self.exercise.recorder = Recorder(results, name, warn=self._warn)
        self.overview = OverviewScreen(self.path, self.options)

    def on_mount(self) -> None:
        """Ask the trainee's name when answers are recorded, then open the overview (it
        loads the dump) or the scenario picker."""
        if self.exercise is not None and self.exercise.recorder is not None:
            question = Prompt("your name", "e.g. Ada", hint="for the trainer's results; enter")
            self.push_screen(question, self._named)
        else:
            self._start()

    def _named(self, name: str | None) -> None:
        assert self.exercise is not None
        self.exercise.recorder.trainee = (name or "anonymous")[:60]
        self._start()

    def _start(self) -> None:
        self.push_screen(
            self.overview if self.picker is None else ScenarioPicker(self.picker, self.done)
        )

    def _warn(self, message: str) -> None:
        self.notify(message, severity="error", timeout=10, markup=False)

    def open_scenario(self, scenario: Any, path: str) -> None:
        """The picker built ``scenario`` at ``path``: open it in exercise mode."""
        recorder = self.exercise.recorder if self.exercise is not None else None
        if recorder is not None:
            recorder.scenario = scenario.name
        from explorer.training import scenarios

        number, total = scenarios.number(scenario.name), len(scenarios.CATALOG)
        self.exercise = Exercise(scenario, recorder=recorder, number=number, total=total)
        self.title = self.exercise.title
        self.path, self.session = path, None
        self.overview = OverviewScreen(path, self.options)
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.push_screen(self.overview)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``o`` only with a scenario picker, and not on it; lowcore and memory only with a
        dump open (not on the picker, not while it loads) and not on themselves."""
        if action == "scenarios":
            return self.picker is not None and not isinstance(self.screen, ScenarioPicker)
        if action in ("lowcore", "memory"):  # not on the picker, nor on the screen itself
            here = LowcoreScreen if action == "lowcore" else MemoryScreen
            return self.session is not None and not isinstance(self.screen, ScenarioPicker | here)
        return True

    def action_scenarios(self) -> None:
        """``o``: back to the scenario picker (the open scenario is closed)."""
        if self.picker is None:
            return
        while len(self.screen_stack) > 1:
            self.pop_screen()
        self.title = "backchain"
        self.session = None
        self.push_screen(ScenarioPicker(self.picker, self.done))

    def _need_session(self) -> Session | None:
        if self.session is None:
            self.notify("no dump is open", severity="warning")
        return self.session

    def opened(self, session: Session) -> None:
        """The dump is open: a scenario opens its task's stack at once (a livepatch
        exercise asks about the whole dump: the task list stays)."""
        scenario = self.exercise.scenario if self.exercise is not None else None
        if scenario is None:
            return
        if scenario.pid is None:
            self.notify(
                "i: what happened and the question · a: your answer", timeout=8, markup=False
            )
            return
        tasks = session.scan.by_pid(scenario.pid)
        if len(tasks) == 1:
            self.open_task(tasks[0])
        else:
            self.notify(f"no single task with pid {scenario.pid}", markup=False)

    def revealed(self, task: Task, solved: bool) -> None:
        """Exercise mode: ``task``'s verdict is shown from now on (the overview too); it was
        ``solved`` (answered right) or given up. The scenario's task: its name is told now."""
        ex = self.exercise
        if ex is not None:
            ex.reveal(task.address, task.pid)
            if ex.scenario is not None and ex.done:
                self.title = ex.title
                self.done.setdefault(ex.scenario.name, "solved" if solved else "revealed")
            self.overview.verdicts_changed()

    # -- livepatch exercises (explorer.training.klp) --------------------------------------------
    def _klp_exercise(self) -> Exercise | None:
        ex = self.exercise
        return ex if ex is not None and ex.klp else None

    def answer_klp(self, pid: int | None = None) -> None:
        """A livepatch exercise: the answer form (starting from ``pid``, the stack shown)."""
        ex = self._klp_exercise()
        if ex is None or ex.done:
            return
        answer = ex.scenario.answer
        top = None if answer.top is None else (answer.top[0], answer.patches)
        last = ex.klp_guesses[-1] if ex.klp_guesses else None
        self.push_screen(KlpAnswerForm(pid, top, last, ex.klp_hint), self._klp_answered)

    def _klp_answered(self, answer: KlpGuess | str | None) -> None:
        ex = self._klp_exercise()
        if ex is None or answer is None:
            return
        if answer == REVEAL:
            self.reveal_klp()
            return
        assert isinstance(answer, KlpGuess)
        judgement = ex.answer_klp(answer)
        if ex.done:
            tries = len(ex.klp_guesses)
            self._klp_over(f"Right: {answer.text}" + ("" if tries == 1 else f" (try {tries})"))
            return
        if judgement.right:
            self.notify(ex.klp_hint, title=f"right: {answer.text}", markup=False)
        else:
            self.notify(
                judgement.hint, title=f"not quite: {answer.text}", severity="warning", markup=False
            )
        self._klp_refresh()

    def reveal_klp(self) -> None:
        """A livepatch exercise: show the kernel's answer once the trainee confirms (recorded
        as given up, for good)."""
        ex = self._klp_exercise()
        if ex is None or ex.done:
            return

        def confirmed(yes: bool | None) -> None:
            if yes and not ex.done:
                ex.give_up_klp()
                self._klp_over("Revealed")

        self.push_screen(
            Confirm(
                "reveal the kernel's answer?",
                "You give up this exercise: the trainer's results record it as revealed, and "
                "it cannot be answered afterwards.",
                "Reveal",
            ),
            confirmed,
        )

    def _klp_refresh(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, StackScreen):
                screen.exercise_changed()
        self.overview.verdicts_changed()

    def _klp_over(self, outcome: str) -> None:
        ex = self._klp_exercise()
        if ex is None:
            return
        self.title = ex.title
        self.done.setdefault(ex.scenario.name, "revealed" if outcome == "Revealed" else "solved")
        self._klp_refresh()
        self.refresh_bindings()
        self.push_screen(DebriefScreen(self._klp_debrief(outcome), ex.title))

    def _klp_debrief(self, outcome: str) -> str:
        ex = self._klp_exercise()
        assert ex is not None
        text = f"**{outcome}**\n\n{answer_markdown(ex.scenario)}\n"
        transition = self.session.transition if self.session is not None else None
        if transition is not None:
            from explorer.livepatch.report import transition_lines

            try:
                lines = transition_lines(transition.replay(), "vmcore")
            except Exception as exc:  # a damaged state: said, never a traceback
                lines = [f"(backchain's replay failed: {exc})"]
            shown = "\n".join(f"- `{line.strip()}`" for line in lines)
            text += f"backchain's replay of that retry (`backchain klp`):\n\n{shown}\n\n"
        s = ex.scenario
        return text + (
            f"## {s.name}: {s.title}\n\n{s.story}\n\n**What to look for:** {s.look_for}\n\n"
            "`k` now shows the livepatch screen.\n"
        )

    def klp_story(self) -> None:
        """``i`` in a livepatch exercise: the situation and question before the answer, the
        debriefing after."""
        ex = self._klp_exercise()
        if ex is None:
            return
        if ex.done:
            self.push_screen(DebriefScreen(self._klp_debrief("The answer"), ex.title))
        else:
            self.push_screen(DebriefScreen(klp_situation_markdown(ex.scenario), ex.title))

    # -- navigation (also used by the command palette) -------------------------------------------
    def open_task(self, task: Task) -> None:
        """Show the stack of ``task``."""
        session = self._need_session()
        if session is not None:
            self._back_to_overview()
            self.push_screen(StackScreen(session, task))

    def open_lowcore(self, cpu: int = 0) -> None:
        """Show the lowcore of CPU ``cpu``."""
        session = self._need_session()
        if session is not None:
            self.push_screen(LowcoreScreen(session, cpu))

    def open_memory(self, address: int | None, analysis: TaskAnalysis | None = None) -> None:
        """Show memory at ``address`` (annotated with ``analysis``'s walk)."""
        session = self._need_session()
        if session is None:
            return
        if isinstance(self.screen, MemoryScreen) and address is not None:
            self.screen.goto(address)
            return
        self.push_screen(MemoryScreen(session, address, analysis))

    def set_era(self, era: str) -> None:
        """Apply other unwinder rules: re-run the analysis of every task."""
        session = self._need_session()
        if session is None or era == session.era:
            return
        session.era = era
        self._back_to_overview()
        self.overview.recheck()
        self.notify(f"unwinder rules: {era}; checking every task again", markup=False)

    def toggle_unreliable(self) -> None:
        """Overview: show only unreliable stacks, or all."""
        self._back_to_overview()
        self.overview.action_toggle_unreliable()

    def _back_to_overview(self) -> None:
        while len(self.screen_stack) > 2 and self.screen is not self.overview:
            self.pop_screen()

    # -- global keys -----------------------------------------------------------------------------
    def action_help(self) -> None:
        """``?``."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_lowcore(self) -> None:
        """``l``."""
        if not isinstance(self.screen, LowcoreScreen):
            self.open_lowcore(0)

    def action_livepatch(self) -> None:
        """``k``: the livepatches and who blocks a transition."""
        ex = self.exercise
        if ex is not None and not (ex.klp and ex.done):  # it names the blocking tasks, causes
            self.notify("the livepatch screen is closed in exercise mode", severity="warning")
            return
        session = self._need_session()
        if session is not None and not isinstance(self.screen, LivepatchScreen):
            self.push_screen(LivepatchScreen(session))

    def action_memory(self) -> None:
        """``m``."""
        if not isinstance(self.screen, MemoryScreen):
            self.open_memory(None)


def run(path: str | None, options: Options, **kwargs: Any) -> int:
    """Run the explorer until the user quits; returns the exit status."""
    BackchainApp(path, options, **kwargs).run()
    return 0
