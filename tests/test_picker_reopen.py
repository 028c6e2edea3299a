"""The scenario picker opens every scenario with the app's one ``Options``: opening one must
not change how any other opens (before, the first scenario's companion files were written
into the shared options and 24 of the other 40 were refused or walked otherwise).

Every scenario is opened after every other one, through the function the picker's overview
worker calls (``Session.open`` with the app's options), and must give the verdict and frames
it gives alone, which are the scenario's own answer (tests/test_scenarios.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.model.kernel import Options
from explorer.training.scenarios import SCENARIOS, Scenario
from explorer.tui.app import BackchainApp
from explorer.tui.session import Session


def _seen(path: Path, scenario: Scenario, options: Options) -> tuple[str, tuple[int, ...], str]:
    """The scenario task's verdict, frame addresses and walk end, as the explorer opens it."""
    session = Session.open(str(path), options)
    try:
        (task,) = session.scan.by_pid(scenario.pid)
        a = session.detail(task)
        return a.verdict.label, tuple(s.ip for s in a.walk.steps), a.walk.end.kind
    finally:
        session.kernel.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every scenario written as the picker writes it: one folder each, side by side."""
    root = tmp_path_factory.mktemp("scenarios")
    return {s.name: s.build(root / s.name) for s in SCENARIOS}


def test_every_scenario_opens_alike_after_every_other(built: dict[str, Path]) -> None:
    alone = {s.name: _seen(built[s.name], s, Options()) for s in SCENARIOS}
    for s in SCENARIOS:
        assert alone[s.name][0] == s.answer.label, s.name  # alone is the scenario's truth
    app = BackchainApp(None, picker=SCENARIOS)
    shared = app.options  # the one Options every scenario the picker opens gets
    differ = []
    for first in SCENARIOS:
        _seen(built[first.name], first, shared)
        for then in SCENARIOS:
            if then is not first and _seen(built[then.name], then, shared) != alone[then.name]:
                differ.append(f"{then.name} after {first.name}")
    assert not differ, f"{len(differ)} opened otherwise, e.g. {differ[:3]}"
    assert shared == Options()  # nobody wrote into it
