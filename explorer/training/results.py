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
from collections.abc import Callable, Iterable
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


@dataclass(frozen=True)
class Progress:
    """One trainee on one scenario: how it went."""

    trainee: str
    scenario: str
    answers: int
    solved: bool
    answers_to_solve: int | None
    revealed: bool
    hints: int


@dataclass(frozen=True)
class ScenarioSummary:
    """One scenario over every trainee who tried it."""

    scenario: str
    trainees: int
    solved: int
    first_try: int
    revealed: int
    answers: int
    mean_answers_to_solve: float | None


@dataclass(frozen=True)
class TraineeSummary:
    """One trainee over every scenario they tried."""

    trainee: str
    scenarios: int
    solved: int
    revealed: int
    answers: int
    hints: int


def progress(attempts: Iterable[Attempt]) -> list[Progress]:
    """Per trainee and scenario, in order of first appearance (tasks of one scenario
    count together: a scenario has one task to judge)."""
    groups: dict[tuple[str, str], list[Attempt]] = {}
    for a in attempts:
        groups.setdefault((a.trainee, a.scenario), []).append(a)
    out = []
    for (trainee, scenario), group in groups.items():
        # The first right answer or give-up decides; later lines (another tab) do not.
        decided = next((i for i, a in enumerate(group) if a.revealed or a.correct), None)
        revealed = decided is not None and group[decided].revealed
        solved = decided is not None and not revealed
        before = group[: decided + 1] if decided is not None else group
        out.append(
            Progress(
                trainee=trainee,
                scenario=scenario,
                answers=sum(not a.revealed for a in group),
                solved=solved,
                answers_to_solve=sum(not a.revealed for a in before) if solved else None,
                revealed=revealed,
                hints=max((a.hints for a in before), default=0),
            )
        )
    return out


def summarize(attempts: Iterable[Attempt]) -> tuple[list[ScenarioSummary], list[TraineeSummary]]:
    """Per scenario (in order of first appearance) and per trainee (by name)."""
    rows = progress(attempts)
    scenarios: dict[str, list[Progress]] = {}
    trainees: dict[str, list[Progress]] = {}
    for p in rows:
        scenarios.setdefault(p.scenario, []).append(p)
        trainees.setdefault(p.trainee, []).append(p)
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
            scenarios=len(group),
            solved=sum(p.solved for p in group),
            revealed=sum(p.revealed for p in group),
            answers=sum(p.answers for p in group),
            hints=sum(p.hints for p in group),
        )
        for name, group in sorted(trainees.items())
    ]
    return per_scenario, per_trainee
