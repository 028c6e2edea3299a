"""Stack sanity (``bt -v``): STACK_END_MAGIC on every task of every real sample, the running
tasks against their CPUs' lowcores, and a planted overwrite of the magic in a copy of a real
dump named with its bytes by ``bt``, ``check`` and ``check --json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.walk.analysis import analyse_task
from explorer.walk.sanity import STACK_END_MAGIC, stack_sanity
from tests.helpers.planted import SAMPLES, copies_of, planted

NAMES = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())


@pytest.mark.parametrize("name", NAMES)
def test_every_stack_end_is_intact(name: str) -> None:
    """The magic is read as a raw word here too, independently of the module."""
    kernel = open_kernel(str(SAMPLES / name / "vmcore.zst"))
    tasks = [t for t in find_tasks(kernel).tasks if t.stack]
    assert len(tasks) > 40
    running = 0
    for task in tasks:
        assert kernel.space.read_u64(task.stack) == STACK_END_MAGIC, task.pid
        walk = analyse_task(kernel, task).walk
        s = stack_sanity(kernel, task, walk)
        assert s.magic_intact is True and not s.corrupt, (task.pid, s.corrupt)
        assert s.high_water is not None
        if task.cpu is None or any(step.stack_type == "task" for step in walk.steps):
            assert s.headroom is not None and 0 < s.headroom < task.thread_size
            assert s.high_water <= (s.deepest or 0)
        running += any(c.id == "cpu_matches" for c in s.checks)
    assert running == len(kernel.cpus)


def test_planted_overwrite_is_named(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "bpo12-6.12-busy"
    base = copies_of(tmp_path_factory, [name])[name]
    kernel = open_kernel(str(base))
    (task,) = find_tasks(kernel).by_pid(1)
    end = task.stack
    copy = planted(base, tmp_path, end, 0xDEADBEEF00C0FFEE, kernel.space.translate(end))
    found = "de ad be ef 00 c0 ff ee"

    assert main(["bt", str(copy), "--pid", "1"]) == 0
    out = capsys.readouterr().out
    assert f"STACK CORRUPT: STACK_END_MAGIC overwritten at 0x{end:x}: found {found}" in out
    assert main(["bt", str(copy), "--pid", "2"]) == 0  # another task's stack is fine
    assert "STACK CORRUPT" not in capsys.readouterr().out

    assert main(["check", str(copy)]) == 0
    out = capsys.readouterr().out
    assert "stack sanity: 1 problem (STACK_END_MAGIC intact on " in out
    assert "pid 1 init: STACK CORRUPT: STACK_END_MAGIC" in out

    assert main(["check", str(copy), "--json"]) == 0
    docs = {d["pid"]: d for d in json.loads(capsys.readouterr().out)}
    (check,) = [c for c in docs[1]["sanity"]["checks"] if c["id"] == "stack_end_magic"]
    assert check["ok"] is False and check["found"] == "deadbeef00c0ffee"
    assert [p for p, d in docs.items() if "sanity" in d] == [1]

    assert main(["bt", str(copy), "--pid", "1", "-v", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sanity"]["magic_intact"] is False
