"""Run the hostile-input fuzzers for a time budget: ``python -m tests.fuzz.run``.

Each target of :mod:`tests.fuzz.targets` runs with hypothesis (``deadline=None``) in batches
until its share of the budget is spent. Hypothesis' example database (``.hypothesis/fuzz``)
keeps what it learnt between runs; a failing input is also written to
``tests/corpus/<target>-<sha1>.bin``, which ``tests/test_hostile_fuzz.py`` replays on every
``make test``. Exit status 1 if any target failed.

Usage::

    python -m tests.fuzz.run [--seconds 600] [--targets elf,kdump] [--corpus DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import HypothesisWarning, Unsatisfiable

from tests.fuzz.targets import TARGETS, Target

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
DATABASE = ROOT / ".hypothesis" / "fuzz"


@dataclass
class Outcome:
    """What one target's run did."""

    target: str
    inputs: int = 0
    seconds: float = 0.0
    failure: str | None = None
    saved: list[str] = field(default_factory=list)


def fuzz(
    target: Target,
    seconds: float,
    corpus: Path | None = CORPUS,
    database: Path | None = DATABASE,
) -> Outcome:
    """Fuzz ``target`` for about ``seconds``.

    Args:
        target: the target.
        seconds: time budget (a batch in progress may overrun it by one input).
        corpus: where a failing input is saved (None: not saved).
        database: hypothesis example database folder (None: no database).

    Returns:
        Inputs tried, time spent, and the failure (with the saved input) if any.
    """
    warnings.filterwarnings("ignore", category=HypothesisWarning)  # "overly large repr"
    outcome = Outcome(target.name)
    start = time.monotonic()
    end = start + seconds
    last: list[bytes] = []

    def body(data: bytes) -> None:
        outcome.inputs += 1
        last[:] = [data]
        target.check(data)

    db = DirectoryBasedExampleDatabase(str(database / target.name)) if database else None
    strategy = target.strategy()
    per_input = 3.0 if target.slow else 0.05  # a first guess, then measured
    least = 1 if target.slow else 5
    while time.monotonic() < end:
        left = end - time.monotonic()
        batch = int(max(least, min(2000, left / max(per_input, 1e-4))))
        config = settings(
            max_examples=batch,
            deadline=None,
            database=db,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            phases=(Phase.explicit, Phase.reuse, Phase.generate)
            + (() if target.slow else (Phase.shrink,)),
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        test = config(given(strategy)(body))
        before, t0 = outcome.inputs, time.monotonic()
        try:
            test()
        except Unsatisfiable:
            pass
        except BaseException as exc:  # the target failed: keep the (shrunk) input
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcome.failure = "".join(traceback.format_exception(exc)[-6:])
            if last and corpus is not None:
                outcome.saved.append(str(save(corpus, target.name, last[0])))
            break
        done = outcome.inputs - before
        if done:
            per_input = (time.monotonic() - t0) / done
    outcome.seconds = time.monotonic() - start
    return outcome


def save(corpus: Path, name: str, data: bytes) -> Path:
    """Write a failing input as ``<corpus>/<name>-<sha1[:12]>.bin``."""
    corpus.mkdir(parents=True, exist_ok=True)
    path = corpus / f"{name}-{hashlib.sha1(data).hexdigest()[:12]}.bin"
    path.write_bytes(data)
    return path


def main(argv: list[str] | None = None) -> int:
    """Command line: fuzz the chosen targets, splitting the time budget evenly."""
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__)
    parser.add_argument("--seconds", type=float, default=600.0, help="total time budget")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated names")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="where failures are saved")
    parser.add_argument("--json", type=Path, help="also write the counts here as JSON")
    args = parser.parse_args(argv)
    names = [n for n in args.targets.split(",") if n]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    share = args.seconds / len(names)
    outcomes = []
    for name in names:
        outcome = fuzz(TARGETS[name], share, args.corpus)
        outcomes.append(outcome)
        status = "FAILED" if outcome.failure else "ok"
        print(
            f"{name:<12} {outcome.inputs:>8} inputs {outcome.seconds:7.1f} s  {status}",
            flush=True,
        )
        if outcome.failure:
            print(outcome.failure, *outcome.saved, sep="\n", flush=True)
    total = sum(o.inputs for o in outcomes)
    print(f"{'total':<12} {total:>8} inputs")
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
    return 1 if any(o.failure for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
