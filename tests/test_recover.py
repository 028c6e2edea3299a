"""Recovered frames (``bt -t``/``-T``) on real dumps and on copies of them with a planted
break.

The independent truth is the untouched dump's own walk, which equals the kernel's sysrq-t
Call Traces on these samples (tests/test_real_samples.py): after a back chain is broken in a
copy of the dump, every frame that walk had below the break must come back as *proven*, at
the same sp with the same return address, and no real frame may be graded stale.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.code.recovered import recovery_of
from explorer.model.kernel import Kernel
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.walk.analysis import analyse_task
from tests.helpers.planted import copies_of, planted

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAMES = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())
_BACK_CHAIN = 0x98
#: (sample, pid, frame whose back chain is broken): deep sleeping stacks of three kernels.
BREAKS = [
    ("bpo12-6.12-busy", 1, 2),
    ("bpo12-6.12-busy", 1, 4),
    ("deb12-6.1-idle", 1, 1),
    ("rebuilt-5.10-busy", 1, 2),
]
PLANTS = ("zeroed", "misaligned", "below")


def _kernel(path: Path) -> Kernel:
    return open_kernel(str(path))


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each sample of BREAKS as an uncompressed ELF copy."""
    return copies_of(tmp_path_factory, sorted({b[0] for b in BREAKS}))


@pytest.mark.parametrize("plant", PLANTS)
@pytest.mark.parametrize(("name", "pid", "j"), BREAKS)
def test_planted_break_recovers_every_frame_as_proven(
    copies: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    pid: int,
    j: int,
    plant: str,
) -> None:
    base = copies[name]
    kernel = _kernel(base)
    (task,) = find_tasks(kernel).by_pid(pid)[:1]
    truth = analyse_task(kernel, task)
    steps = truth.walk.steps
    assert truth.verdict.reliable and len(steps) > j + 2
    below = [s for s in steps[j + 1 :] if s.how == "backchain"]
    assert below
    slot = steps[j].sp + _BACK_CHAIN
    value = {"zeroed": 0, "misaligned": steps[j + 1].sp + 4, "below": steps[j].sp - 160}[plant]
    copy = planted(base, tmp_path, slot, value, kernel.space.translate(slot))

    assert main(["bt", str(copy), "--pid", str(pid), "-T", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert not doc["verdict"]["reliable"]  # the verdict is the kernel's, not ours
    rec = doc["recovered"]
    assert rec["after_frame"] == j
    got = {(int(f["sp"], 16), int(f["ip"], 16)): f for f in rec["frames"]}
    for s in below:
        f = got.get((s.sp, s.ip))
        assert f is not None, (name, plant, s.index, kernel.symbolize(s.ip))
        assert f["grade"] == "proven" and f["recovered"] is True, f
        assert f["index"] == s.index
    # Every real frame's word is graded, none stale.
    real = {s.sp + 0x88 for s in steps}
    graded = [w for w in rec["words"] if int(w["slot"], 16) in real]
    assert len(graded) == len(below) and all(w["grade"] != "stale" for w in graded)
    # check --json carries the same recovered chain for this task (and only broken walks).
    assert main(["check", str(copy), "--json"]) == 0
    docs = {d["pid"]: d for d in json.loads(capsys.readouterr().out)}
    assert docs[pid]["recovered"]["frames"] == rec["frames"]
    assert "words" not in docs[pid]["recovered"]
    assert [p for p, d in docs.items() if "recovered" in d and p != pid] == [
        p for p, d in docs.items() if d["end"]["kind"] == "error" and p != pid
    ]
    # The text says so, marked as recovered.
    assert main(["bt", str(copy), "--pid", str(pid), "-T"]) == 0
    text = capsys.readouterr().out
    assert "RECOVERED from the stack's contents, not the kernel's walk" in text
    assert f" R#{below[0].index:<2} [0x{below[0].sp:016x}]" in text


@pytest.mark.parametrize("name", NAMES)
def test_no_real_frame_is_stale(name: str) -> None:
    """``bt -t`` on every task of every sample: each frame of the kernel's walk whose ip is
    a saved r14 is graded proven or plausible, never stale (almost all proven); nothing is
    recovered where the walk did not break."""
    kernel = _kernel(SAMPLES / name / "vmcore.zst")
    proven = total = 0
    for task in find_tasks(kernel).tasks:
        a = analyse_task(kernel, task)
        rec = recovery_of(kernel, a.walk, "stack")
        if a.walk.end.kind != "error":
            assert rec.anchor is None and not rec.chain
        for w in rec.words:
            if w.frame is not None:
                total += 1
                proven += w.grade == "proven"
                assert w.grade != "stale", (task.pid, w.frame, kernel.symbolize(w.value), w.reason)
    assert total > 20 and proven > 0.97 * total, (proven, total)
