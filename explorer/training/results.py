"""Exercise results: one JSON line per answer a trainee submits, and the trainer's summary.

A served classroom (``backchain serve --results FILE``) or a terminal explorer
(``backchain DUMP --exercise --results FILE``) appends an :class:`Attempt` for every
answer checked and every verdict given up on (revealed); ``backchain scenarios results
FILE`` reads them back and sums them up per scenario and per trainee. Plain Python.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from parsers.errors import DumpError

#: A results line longer than this is not one of ours.
MAX_LINE = 4096
#: More answers than a year of classrooms: the file is not a results file (memory stays bounded).
MAX_ATTEMPTS = 1_000_000
#: Where a served session's id comes from (set by ``backchain serve`` per session).
ENV_SESSION = "BACKCHAIN_SESSION_ID"


class ResultsError(DumpError):
    """A results file that cannot be read or is not one."""


@dataclass(frozen=True)
class Attempt:
    """One answer (or one give-up) of one trainee.

    Attributes:
        session: the explorer session (one browser tab, or one terminal run).
        trainee: the name the trainee gave at the start.
        scenario: the training scenario, or the dump's file name without one.
        pid: the task the answer is about.
        answer: what was answered (``unwind_error/sp_misaligned at #2``); None when revealed.
        correct: the answer was right.
        hints: hints the trainee had been given for this task before this answer.
        time: when, ISO 8601 UTC.
        elapsed: seconds since the session's exercise began.
        revealed: the trainee gave up and revealed the verdict.
    """

    session: str
    trainee: str
    scenario: str
    pid: int
    answer: str | None
    correct: bool
    hints: int
    time: str
    elapsed: float
    revealed: bool = False

    def to_json(self) -> dict[str, Any]:
        """The JSON line's object."""
        return asdict(self)

    @classmethod
    def from_json(cls, doc: Any) -> Attempt:
        """Parse one line's object.

        Raises:
            ValueError: a field is missing or of the wrong type.
        """
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        kinds: dict[str, tuple[type, ...]] = {
            "session": (str,),
            "trainee": (str,),
            "scenario": (str,),
            "pid": (int,),
            "answer": (str, type(None)),
            "correct": (bool,),
            "hints": (int,),
            "time": (str,),
            "elapsed": (int, float),
            "revealed": (bool,),
        }
        values: dict[str, Any] = {}
        for name, types in kinds.items():
            if name not in doc:
                if name == "revealed":
                    continue
                raise ValueError(f"no {name!r}")
            value = doc[name]
            if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
                raise ValueError(f"{name!r} is not a {types[0].__name__}")
            values[name] = value
        return cls(**values)


@dataclass
class Recorder:
    """Appends a session's attempts to the results file.

    Args:
        path: the results file (created when missing).
        scenario: the scenario's name (or the dump's file name).
        trainee: the trainee's name; set once asked.
        session: the session id (default: ``$BACKCHAIN_SESSION_ID``, else a new one).
        warn: called with a message when the file cannot be written (the answer still
            counts in the explorer).
    """

    path: str
    scenario: str
    trainee: str = "anonymous"
    warn: Callable[[str], None] | None = None
    session: str = field(default_factory=lambda: os.environ.get(ENV_SESSION) or new_session())
    started: float = field(default_factory=time.monotonic)

    def record(
        self, pid: int, answer: str | None, correct: bool, hints: int, revealed: bool = False
    ) -> Attempt:
        """Append one attempt (a write error goes to ``warn``); returns it."""
        attempt = Attempt(
            session=self.session,
            trainee=self.trainee,
            scenario=self.scenario,
            pid=pid,
            answer=answer,
            correct=correct,
            hints=hints,
            time=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            elapsed=round(time.monotonic() - self.started, 1),
            revealed=revealed,
        )
        try:
            append(self.path, attempt)
        except OSError as exc:
            if self.warn is None:
                raise
            self.warn(f"{self.path}: cannot write the exercise results: {exc.strerror}")
        return attempt


def new_session() -> str:
    """A fresh session id."""
    return uuid.uuid4().hex[:12]


def append(path: str, attempt: Attempt) -> None:
    """Append ``attempt`` as one line; sessions in other processes append to the same file,
    so the line is written whole under an exclusive lock."""
    line = json.dumps(attempt.to_json(), separators=(",", ":")) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.write(line)
            f.flush()
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def read(path: str) -> list[Attempt]:
    """Every attempt in the file, in order; blank lines are skipped.

    Raises:
        ResultsError: the file cannot be read, or a line is not an attempt (its number named).
    """
    attempts: list[Attempt] = []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                if len(line) > MAX_LINE:
                    raise ResultsError(f"line {number}: too long for a results line", path)
                if not line.strip():
                    continue
                if len(attempts) >= MAX_ATTEMPTS:
                    raise ResultsError(
                        f"more than {MAX_ATTEMPTS} answers: not a results file", path
                    )
                try:
                    attempts.append(Attempt.from_json(json.loads(line)))
                except ValueError as exc:  # json.JSONDecodeError is one
                    raise ResultsError(f"line {number}: not a results line ({exc})", path) from None
                except RecursionError:
                    raise ResultsError(f"line {number}: JSON nested too deep", path) from None
    except OSError as exc:
        raise ResultsError(f"cannot read: {exc.strerror}", path) from None
    return attempts


def trainee_label(trainee: str, session: str) -> str:
    """A trainee as the trainer sees them: the name they typed and their session, so that two
    trainees who both typed "Ada" stay two (``Ada · 11da32``)."""
    return f"{trainee} · {session[:6]}"


@dataclass(frozen=True)
class Progress:
    """One trainee (name and session) on one scenario: how it went.

    Attributes:
        tries: every answer in order, marked ``✓`` right or ``✗`` wrong, and ``revealed``.
    """

    trainee: str
    session: str
    scenario: str
    answers: int
    solved: bool
    answers_to_solve: int | None
    revealed: bool
    hints: int
    tries: tuple[str, ...] = ()

    @property
    def who(self) -> str:
        """The trainee's label (:func:`trainee_label`)."""
        return trainee_label(self.trainee, self.session)


@dataclass(frozen=True)
class ScenarioSummary:
    """One scenario over every trainee who tried it (none: it was offered, nobody tried)."""

    scenario: str
    trainees: int
    solved: int
    first_try: int
    revealed: int
    answers: int
    mean_answers_to_solve: float | None


@dataclass(frozen=True)
class TraineeSummary:
    """One trainee (name and session) over every scenario they tried."""

    trainee: str
    session: str
    scenarios: int
    solved: int
    revealed: int
    answers: int
    hints: int
    not_tried: int = 0

    @property
    def who(self) -> str:
        """The trainee's label (:func:`trainee_label`)."""
        return trainee_label(self.trainee, self.session)


def _mark(a: Attempt) -> str:
    if a.revealed:
        return "revealed"
    return f"{a.answer} {'✓' if a.correct else '✗'}"


def progress(attempts: Iterable[Attempt]) -> list[Progress]:
    """Per trainee (name and session) and scenario, in order of first appearance (tasks of
    one scenario count together: a scenario has one task to judge)."""
    groups: dict[tuple[str, str, str], list[Attempt]] = {}
    for a in attempts:
        groups.setdefault((a.trainee, a.session, a.scenario), []).append(a)
    out = []
    for (trainee, session, scenario), group in groups.items():
        # The first right answer or give-up decides; later lines do not.
        decided = next((i for i, a in enumerate(group) if a.revealed or a.correct), None)
        revealed = decided is not None and group[decided].revealed
        solved = decided is not None and not revealed
        before = group[: decided + 1] if decided is not None else group
        out.append(
            Progress(
                trainee=trainee,
                session=session,
                scenario=scenario,
                answers=sum(not a.revealed for a in group),
                solved=solved,
                answers_to_solve=sum(not a.revealed for a in before) if solved else None,
                revealed=revealed,
                hints=max((a.hints for a in before), default=0),
                tries=tuple(_mark(a) for a in group),
            )
        )
    return out


def summarize(
    attempts: Iterable[Attempt], offered: Sequence[str] = ()
) -> tuple[list[ScenarioSummary], list[TraineeSummary]]:
    """Per scenario (``offered`` ones first, in their order, tried or not; then any other,
    in order of first appearance) and per trainee (by name, then session)."""
    rows = progress(attempts)
    scenarios: dict[str, list[Progress]] = {name: [] for name in offered}
    trainees: dict[tuple[str, str], list[Progress]] = {}
    for p in rows:
        scenarios.setdefault(p.scenario, []).append(p)
        trainees.setdefault((p.trainee, p.session), []).append(p)
    per_scenario = []
    for name, group in scenarios.items():
        solves = [p.answers_to_solve for p in group if p.solved and p.answers_to_solve]
        per_scenario.append(
            ScenarioSummary(
                scenario=name,
                trainees=len(group),
                solved=sum(p.solved for p in group),
                first_try=sum(p.answers_to_solve == 1 for p in group if p.solved),
                revealed=sum(p.revealed for p in group),
                answers=sum(p.answers for p in group),
                mean_answers_to_solve=round(sum(solves) / len(solves), 2) if solves else None,
            )
        )
    per_trainee = [
        TraineeSummary(
            trainee=name,
            session=session,
            scenarios=len(group),
            solved=sum(p.solved for p in group),
            revealed=sum(p.revealed for p in group),
            answers=sum(p.answers for p in group),
            hints=sum(p.hints for p in group),
            not_tried=len(set(offered) - {p.scenario for p in group}),
        )
        for (name, session), group in sorted(trainees.items())
    ]
    return per_scenario, per_trainee


@dataclass(frozen=True)
class Table:
    """One table of the trainer's report: a title, column names, rows of text."""

    title: str
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Report:
    """The trainer's report on a results file (for text, Markdown, JSON and the served
    page): counts, and tables per scenario, per trainee and per trainee and scenario."""

    answers: int
    reveals: int
    trainees: int
    sessions: int
    scenarios: list[ScenarioSummary]
    per_trainee: list[TraineeSummary]
    progress: list[Progress]
    numbers: dict[str, int] = field(default_factory=dict)

    def named(self, scenario: str) -> str:
        """``7 preempted``: the exercise number trainees saw, and the name."""
        number = self.numbers.get(scenario)
        return scenario if number is None else f"{number} {scenario}"

    @property
    def intro(self) -> str:
        """One line of counts."""
        untried = sum(s.trainees == 0 for s in self.scenarios)
        return (
            f"{self.answers} answers, {self.reveals} reveals, {self.trainees} trainees, "
            f"{self.sessions} sessions; {untried} of {len(self.scenarios)} scenarios "
            "not tried by anyone"
        )

    def tables(self) -> list[Table]:
        """Per scenario (untried ones say so), per trainee, and every trainee's answers."""
        scenario_rows = tuple(
            (
                self.named(s.scenario),
                str(s.trainees),
                str(s.solved),
                str(s.first_try),
                str(s.revealed),
                str(s.answers),
                "-" if s.mean_answers_to_solve is None else f"{s.mean_answers_to_solve:g}",
            )
            if s.trainees
            else (self.named(s.scenario), "0", "-", "-", "-", "-", "not tried")
            for s in self.scenarios
        )
        trainee_rows = tuple(
            (
                t.who,
                str(t.scenarios),
                str(t.solved),
                str(t.revealed),
                str(t.answers),
                str(t.hints),
                str(t.not_tried),
            )
            for t in self.per_trainee
        )
        answer_rows = tuple(
            (
                p.who,
                self.named(p.scenario),
                "solved" if p.solved else "revealed" if p.revealed else "open",
                "; ".join(p.tries),
            )
            for p in sorted(self.progress, key=lambda p: (p.trainee, p.session))
        )
        return [
            Table(
                "Per scenario",
                (
                    "SCENARIO",
                    "TRAINEES",
                    "SOLVED",
                    "FIRST TRY",
                    "REVEALED",
                    "ANSWERS",
                    "ANSWERS TO SOLVE",
                ),
                scenario_rows,
            ),
            Table(
                "Per trainee",
                ("TRAINEE", "SCENARIOS", "SOLVED", "REVEALED", "ANSWERS", "HINTS", "NOT TRIED"),
                trainee_rows,
            ),
            Table("Answers", ("TRAINEE", "SCENARIO", "OUTCOME", "ANSWERS IN ORDER"), answer_rows),
        ]

    def to_json(self) -> dict[str, Any]:
        """The report as data."""
        return {
            "answers": self.answers,
            "reveals": self.reveals,
            "sessions": self.sessions,
            "scenarios": [asdict(s) for s in self.scenarios],
            "trainees": [{**asdict(t), "label": t.who} for t in self.per_trainee],
            "progress": [{**asdict(p), "label": p.who} for p in self.progress],
        }


def offered_scenarios(names: str | None, attempts: Sequence[Attempt]) -> list[str]:
    """The scenarios a classroom offered: ``names`` (comma-separated names or numbers) when
    given, else the whole catalog when any answer is about a catalog scenario (none: answers
    on dumps)."""
    from explorer.training import scenarios

    if names:
        return [scenarios.get(n).name for n in names.split(",") if n]
    catalog = scenarios.names()
    return catalog if any(a.scenario in catalog for a in attempts) else []


def report(
    attempts: Sequence[Attempt],
    offered: Sequence[str] = (),
    numbers: dict[str, int] | None = None,
) -> Report:
    """The trainer's report of ``attempts``; ``offered``: the scenarios the classroom offered
    (listed even when nobody tried them); ``numbers``: their exercise numbers."""
    per_scenario, per_trainee = summarize(attempts, offered)
    return Report(
        answers=sum(not a.revealed for a in attempts),
        reveals=sum(a.revealed for a in attempts),
        trainees=len(per_trainee),
        sessions=len({a.session for a in attempts}),
        scenarios=per_scenario,
        per_trainee=per_trainee,
        progress=progress(attempts),
        numbers=dict(numbers or {}),
    )
