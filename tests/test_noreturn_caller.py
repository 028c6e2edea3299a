"""The R-1 note ("called from F: the call does not return") only where a call really ends a
function: never on ftrace/kretprobe/rethook trampoline addresses, PSWs, or ordinary frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.analysis import analyse_task, unwind_context
from explorer.kernel import Kernel
from explorer.symbols import noreturn_caller
from explorer.tasks import find_tasks
from samples.scenarios import SCENARIOS, Scenario


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_no_caller_note_in_the_scenarios(tmp_path: Path, scenario: Scenario) -> None:
    """The synthetic kernels lay functions end to end and call nothing that never returns;
    their trampoline returns (return_to_handler, kretprobe trampolines) sit at a symbol's
    first byte and must not be read as the end of the function before."""
    kernel = Kernel.open(str(scenario.build(tmp_path)))
    ctx = unwind_context(kernel)
    for task in find_tasks(kernel).tasks:
        for step in analyse_task(kernel, task, ctx).walk.steps:
            assert noreturn_caller(kernel, step.ip, step.how) is None, (scenario.name, step)
