"""The R-1 note ("called from F: the call does not return") only where a call really ends a
function: never on ftrace/kretprobe/rethook trampoline addresses, PSWs, or ordinary frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.model.opening import open_kernel
from explorer.model.symbols import noreturn_caller
from explorer.model.tasks import find_tasks
from explorer.training.scenarios import SCENARIOS, Scenario
from explorer.walk.analysis import analyse_task, unwind_context


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_no_caller_note_in_the_scenarios(tmp_path: Path, scenario: Scenario) -> None:
    """The synthetic kernels lay functions end to end and call nothing that never returns;
    their trampoline returns (return_to_handler, kretprobe trampolines) sit at a symbol's
    first byte and must not be read as the end of the function before."""
    kernel = open_kernel(str(scenario.build(tmp_path)))
    ctx = unwind_context(kernel)
    for task in find_tasks(kernel).tasks:
        for step in analyse_task(kernel, task, ctx).walk.steps:
            assert noreturn_caller(kernel, step.ip, step.how) is None, (scenario.name, step)
