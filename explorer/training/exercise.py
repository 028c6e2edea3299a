"""Exercise mode: verdicts stay hidden until the trainee names the failing frame and rule.

Plain Python without Textual. A guess is judged against the tool's own verdict (for a
scenario dump that verdict is also compared with the scenario's expected answer); a wrong
guess earns a short hint that narrows the search without giving the answer away.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from explorer.training.klp import Judgement as KlpJudgement
from explorer.training.klp import KlpGuess, is_klp, klp_markdown
from explorer.training.klp import judge as judge_klp
from explorer.walk.analysis import TaskAnalysis
from explorer.walk.reliable import RULES, UNWIND_ERRORS, Verdict

#: What the answer form offers: every rule livepatch applies, in its order, and "reliable".
CHOICES = ("reliable", *RULES)
KINDS = UNWIND_ERRORS
#: Answers that name no frame: the whole stack is fine, or livepatch never looks at it.
NO_FRAME = ("reliable", "task_running")
PLACEHOLDER = "exercise: find the failing frame and rule"
#: A livepatch exercise's (:mod:`explorer.training.klp`): one question about the whole dump.
KLP_PLACEHOLDER = "exercise: which task blocks the transition, and why?"


@dataclass(frozen=True)
class Guess:
    """What a trainee answered.

    Attributes:
        frame: the failing frame's index, None for "none" (a reliable or running task).
        rule: ``reliable`` or a rule id of :data:`explorer.walk.reliable.RULES`.
        detail: the unwind-error kind when ``rule`` is ``unwind_error``.
    """

    frame: int | None
    rule: str
    detail: str | None = None

    @property
    def text(self) -> str:
        """``unwind_error/sp_misaligned at #2``."""
        label = f"{self.rule}/{self.detail}" if self.rule == "unwind_error" else self.rule
        return label + ("" if self.frame is None else f" at #{self.frame}")


def parse_frame(text: str, steps: int, seen: int | None = None) -> int | None:
    """A frame as typed: ``3``, ``#3``, ``end`` (the last frame) or ``none``/empty (None).

    ``seen`` is how many frames the trainee has walked: a frame beyond them is refused
    without telling how many frames the walk has (the walk unfolds step by step).

    Raises:
        ValueError: anything else, or a frame the trainee has not seen or the walk lacks.
    """
    text = text.strip().lower().lstrip("#")
    if text in ("", "none", "-"):
        return None
    if text == "end":
        if not steps:
            raise ValueError("the walk has no frames")
        return steps - 1
    try:
        index = int(text)
    except ValueError:
        raise ValueError("a number, or end") from None
    seen = steps if seen is None else min(seen, steps)
    if index < 0:
        raise ValueError("frames are numbered from #0")
    if index >= seen:
        if seen >= steps:
            raise ValueError(f"frames are #0..#{steps - 1}")
        raise ValueError(f"walk to frame #{index} first (n), or answer end")
    return index


@dataclass(frozen=True)
class Judgement:
    """The outcome of a guess: right or not, and the hint for a wrong one."""

    right: bool
    hint: str


def _matches(v: Verdict, g: Guess) -> bool:
    if v.reliable:
        return g.rule == "reliable"
    if g.rule != v.rule or g.frame != v.frame:
        return False
    return v.rule != "unwind_error" or g.detail == v.detail


def judge(v: Verdict, g: Guess) -> Judgement:
    """Compare a guess with the verdict; the hint says what is wrong, not what is right."""
    if v.rule == "task_running":  # livepatch never looks at a running task's frames
        if g.rule == "task_running":
            return Judgement(True, "right: the task is running")
        if v.as_current is not None and _matches(v.as_current, g):
            return Judgement(
                False,
                "that is what the walk itself shows, but livepatch gives up before it looks "
                "at any frame: why?",
            )
        return Judgement(False, "livepatch gives up before it looks at a single frame: why?")
    if v.reliable:
        if g.rule == "reliable":
            return Judgement(True, "right: the stack is reliable")
        if g.rule == "task_running":
            return Judgement(False, "the task is not running: livepatch checks its stack")
        where = "any frame" if g.frame is None else f"frame #{g.frame}"
        return Judgement(False, f"livepatch finds nothing wrong at {where}: look again")
    if _matches(v, g):
        return Judgement(True, "right")
    if g.rule == "reliable":
        return Judgement(False, "not reliable: some rule fails; which frame?")
    if g.rule == "task_running":
        return Judgement(False, "the task is not running: livepatch checks its stack")
    assert v.frame is not None
    if g.frame is None:
        return Judgement(False, "name the failing frame (#n)")
    if g.frame != v.frame:
        side = "later" if g.frame < v.frame else "earlier"
        right_rule = g.rule == v.rule
        return Judgement(
            False, f"{'right rule, but ' if right_rule else ''}the failing frame is {side}"
        )
    if g.rule != v.rule:
        return Judgement(False, "right frame, wrong rule")
    return Judgement(False, "right frame and rule, but another kind of unwind error")


def expected_differs(v: Verdict, answer: Any) -> str | None:
    """Why the tool's verdict is not the scenario's ``answer``, or None when it is."""
    mine = v.label + ("" if v.frame is None else f" at #{v.frame}")
    theirs = answer.label + ("" if answer.frame is None else f" at #{answer.frame}")
    return None if mine == theirs else f"the tool says {mine}, the scenario expects {theirs}"


def neutral_label(scenario: Any, number: int, total: int) -> str:
    """How a scenario is shown until answered: ``exercise 7 of 12 · kernel 6.1.0-… · rules
    current`` (its name and title would tell the answer)."""
    return f"exercise {number} of {total} · kernel {scenario.release} · rules {scenario.era}"


def named_label(scenario: Any, number: int, total: int) -> str:
    """How it is shown once answered or revealed: ``exercise 7 of 12: misaligned-sp``."""
    return f"exercise {number} of {total}: {scenario.name}"


@dataclass
class Exercise:
    """The exercise of one explorer run: which tasks are revealed, the last guesses.

    Args:
        scenario: the training scenario whose dump is open
            (``explorer.training.scenarios.Scenario``), or None for any dump opened with
            ``--exercise``.
        recorder: appends each answer and give-up to the results file
            (:class:`explorer.training.results.Recorder`), or None.
    """

    scenario: Any = None
    recorder: Any = None
    number: int = 1
    total: int = 1
    revealed: set[int] = field(default_factory=set)
    revealed_pids: set[int] = field(default_factory=set)
    guesses: dict[int, list[Guess]] = field(default_factory=dict)
    hints: dict[int, str] = field(default_factory=dict)
    #: A livepatch exercise: its guesses, the blockers named right, the last hint, and how it
    #: ended (``solved`` or ``revealed``; None while it runs).
    klp_guesses: list[KlpGuess] = field(default_factory=list)
    klp_named: set[int] = field(default_factory=set)
    klp_hint: str = ""
    klp_over: str | None = None

    @property
    def klp(self) -> bool:
        """A livepatch exercise (:mod:`explorer.training.klp`): one question about the whole
        dump, every verdict hidden until it is answered or revealed."""
        return is_klp(self.scenario)

    @property
    def placeholder(self) -> str:
        """What stands where a verdict would be while it is hidden."""
        return KLP_PLACEHOLDER if self.klp else PLACEHOLDER

    @property
    def done(self) -> bool:
        """The scenario's own task was answered right or revealed (a livepatch exercise:
        its question)."""
        if self.klp:
            return self.klp_over is not None
        return self.scenario is not None and self.scenario.pid in self.revealed_pids

    @property
    def title(self) -> str:
        """The window title: neutral until done, then the scenario's name ("" without one)."""
        if self.scenario is None:
            return ""
        label = named_label if self.done else neutral_label
        return label(self.scenario, self.number, self.total)

    def hidden(self, task_address: int) -> bool:
        """The verdict of the task at ``task_address`` is still hidden (a livepatch
        exercise: every task's, until its question is answered or revealed)."""
        if self.klp:
            return self.klp_over is None
        return task_address not in self.revealed

    def answer_klp(self, g: KlpGuess) -> KlpJudgement:
        """Judge a livepatch exercise's guess against the kernel's answer; it is solved once
        every blocking task is named right (each right one is recorded as right only then)."""
        answer = self.scenario.answer
        hints = len(self.klp_guesses)
        self.klp_guesses.append(g)
        j = judge_klp(answer, g, frozenset(self.klp_named))
        if j.right and j.blocker is not None:
            self.klp_named.add(j.blocker.pid)
        solved = j.right and self.klp_named >= {b.pid for b in answer.blockers}
        if solved:
            self.klp_over = "solved"
            self.klp_hint = ""
        elif j.right:
            self.klp_hint = "right; another task blocks too"
        else:
            self.klp_hint = j.hint
        if self.recorder is not None:
            self.recorder.record(g.pid or 0, g.text, solved, hints)
        return j

    def give_up_klp(self) -> None:
        """The trainee reveals a livepatch exercise's answer without solving it."""
        if self.klp_over is None:
            if self.recorder is not None:
                self.recorder.record(0, None, False, len(self.klp_guesses), revealed=True)
            self.klp_over = "revealed"

    def reveal(self, task_address: int, pid: int | None = None) -> None:
        """Show that task's verdict from now on."""
        self.revealed.add(task_address)
        if pid is not None:
            self.revealed_pids.add(pid)

    def answer(self, a: TaskAnalysis, g: Guess) -> Judgement:
        """Judge ``g`` for ``a``'s task; a right guess reveals it."""
        key = a.task.address
        hints = self.attempts(key)  # every earlier guess was wrong and earned a hint
        self.guesses.setdefault(key, []).append(g)
        j = judge(a.verdict, g)
        if j.right:
            self.reveal(key, a.task.pid)
            self.hints.pop(key, None)
        else:
            self.hints[key] = j.hint
        if self.recorder is not None:
            self.recorder.record(a.task.pid, g.text, j.right, hints)
        return j

    def give_up(self, a: TaskAnalysis) -> None:
        """The trainee reveals ``a``'s verdict without a right answer."""
        key = a.task.address
        if self.recorder is not None and self.hidden(key):
            self.recorder.record(a.task.pid, None, False, self.attempts(key), revealed=True)
        self.reveal(key, a.task.pid)

    def last_guess(self, task_address: int) -> Guess | None:
        """The last guess for that task (the form starts from it)."""
        guesses = self.guesses.get(task_address)
        return guesses[-1] if guesses else None

    def attempts(self, task_address: int) -> int:
        """How many guesses were made for that task."""
        return len(self.guesses.get(task_address, ()))

    def scenario_markdown(self) -> str:
        """The scenario's title, story and what to look for as Markdown ("" without one)."""
        s = self.scenario
        if s is None:
            return ""
        if self.klp:
            return klp_markdown(s)
        return (
            f"## Scenario {s.name}: {s.title}\n\n"
            f"Rules `{s.era}`, kernel {s.release}, pid {s.pid}.\n\n"
            f"{s.story}\n\n**What to look for:** {s.look_for}\n\n"
            f"**Expected answer:** `{s.answer.summary}`\n\n"
        )
