"""Debian sid's 7.x kernel (samples/real/sid-7.2-modules) against its own truth.

The guest loaded virtio_blk, jbd2, mbcache, crc16 and ext4 from the initramfs and mounted an
ext4 disk, so ``jbd2/vda-8`` sleeps in ``kjournald2 [jbd2]``; then it printed ps,
/proc/modules and the kernel's sysrq-t Call Traces (facts.json) before it was dumped. Walks,
ps and modules are compared with that truth; known gaps of the tool on 7.x are strict xfails
naming their cause.
"""

from __future__ import annotations

import json

import pytest

from tests.test_real_samples import MOVED, SAMPLES, _open, check_ps, compare_walks

NAME = "sid-7.2-modules"
FACTS = json.loads((SAMPLES / NAME / "facts.json").read_text())
#: Tasks with a module frame in their sysrq-t Call Trace (jbd2/vda-8).
MODULE_TASKS = {t["pid"] for t in FACTS["sysrq_t"] if any("module" in f for f in t["frames"])}


def kernel_text(frame: dict) -> str:
    """A Call Trace frame as the kernel printed it: ``kjournald2+0x2d0/0x330 [jbd2]``."""
    return frame["symbol"] + (f" [{frame['module']}]" if "module" in frame else "")


def test_the_sample_is_a_7x_kernel_with_modules() -> None:
    kernel, _, facts, _ = _open(NAME)
    assert kernel.release == facts["kernel_release"] == "7.2.13+deb14-s390x"
    assert kernel.release.split(".")[0] == "7" and len(kernel.cpus) == facts["cpus"] == 2
    assert [m["name"] for m in facts["modules"]] == ["ext4", "crc16", "mbcache", "jbd2",
                                                     "virtio_blk"]  # fmt: skip
    jbd2 = next(t for t in facts["sysrq_t"] if t["comm"] == "jbd2/vda-8")
    assert [f["function"] for f in jbd2["frames"]] == [
        "__schedule", "schedule", "kjournald2", "kthread", "__ret_from_fork", "ret_from_fork"
    ]  # fmt: skip
    assert jbd2["frames"][2]["module"] == "jbd2" and jbd2["state"] == "S"
    assert {jbd2["pid"]} == MODULE_TASKS


def test_ps_matches_the_guest() -> None:
    check_ps(NAME)
    _, scan, facts, _ = _open(NAME)
    # Beyond the printout: the idle tasks, and init's "sleep 100000" started after it.
    listed = {t["pid"] for t in facts["proc_stat"]}
    extra = [(t.comm, t.ppid) for t in scan.tasks if t.pid and t.pid not in listed]
    assert extra == [("sleep", 1)]
    assert len(scan.tasks) == len(listed) + facts["cpus"] + 1


def test_modules_match_proc_modules() -> None:
    """``Kernel.modules`` against the guest's /proc/modules (name, text base)."""
    kernel, _, facts, _ = _open(NAME)
    got = {m.name: m.text[0][0] for m in kernel.modules.modules}
    assert got == {m["name"]: int(m["address"], 16) for m in facts["modules"]}
    assert kernel.modules.warnings == []


def test_walks_of_blocked_tasks_equal_the_kernels_call_traces() -> None:
    """Every task without a module frame that stayed blocked: function names and reliable
    marks (compare_walks), and the whole ``name+off/size`` text the kernel printed."""
    kernel, _, facts, analyses = _open(NAME)
    assert compare_walks(NAME, skip=MODULE_TASKS) >= 70
    for trace in facts["sysrq_t"]:
        if trace["pid"] in MOVED[NAME] | MODULE_TASKS:
            continue
        steps = analyses[trace["pid"]].walk.steps
        assert [kernel.symbolize(s.ip) for s in steps] == [kernel_text(f) for f in
                                                          trace["frames"]]  # fmt: skip


@pytest.mark.xfail(
    strict=True,
    reason="module frames are named [jbd2]+0x116e8: module symbols are not read from the "
    "module's own kallsyms yet (issue 12 part 1, symbols)",
)
def test_module_frames_are_named_as_the_kernel_named_them() -> None:
    kernel, _, facts, analyses = _open(NAME)
    for trace in facts["sysrq_t"]:
        if trace["pid"] not in MODULE_TASKS:
            continue
        a = analyses[trace["pid"]]
        assert [kernel.symbolize(s.ip) for s in a.walk.steps] == [
            kernel_text(f) for f in trace["frames"]
        ]
        assert a.walk.end.kind == "final_pt_regs" and a.verdict.reliable


def test_module_task_walk_reaches_its_final_pt_regs() -> None:
    """Naming aside, the walk through module code is the kernel's: same return addresses."""
    _, _, facts, analyses = _open(NAME)
    for trace in facts["sysrq_t"]:
        if trace["pid"] in MODULE_TASKS:
            a = analyses[trace["pid"]]
            assert [s.ip for s in a.walk.steps] == [int(f["address"], 16) for f in trace["frames"]]
            assert a.walk.end.kind == "final_pt_regs" and a.verdict.reliable


def test_btf_puts_pt_regs_last_break_at_0xb8() -> None:
    """The dump's own BTF: 7.2's pt_regs is still 200 bytes, but last_break moved to 0xB8."""
    kernel, _, _, _ = _open(NAME)
    assert kernel.types is not None and kernel.types.source == "btf:dump"
    assert kernel.types.size("pt_regs") == 200
    assert kernel.types.offset("pt_regs.last_break") == 0xB8


@pytest.mark.xfail(
    strict=True,
    reason="pt_regs is decoded with the 6.x table chosen by its size (200 bytes): last_break "
    "read from 0xC0, where 7.2 has padding; BTF says 0xB8 (issue 12 part 3, verify)",
)
def test_pt_regs_last_break_is_read_where_btf_says() -> None:
    kernel, scan, _, analyses = _open(NAME)
    offset = kernel.types.offset("pt_regs.last_break")
    sleepers = [t.pid for t in scan.tasks if t.comm == "sleep" and t.state == "S"]
    for pid in sleepers:
        regs = analyses[pid].walk.end.regs
        assert regs is not None and regs.user_mode
        raw = int.from_bytes(kernel.read(regs.address + offset, 8), "big")
        assert raw != 0 and regs.last_break == raw
