"""Debian sid's 7.x kernel (samples/real/sid-7.2-modules) against its own truth.

Its era facts differ from 6.x (kallsyms without a relative base, pt_regs of the same size
with another layout), so it has its own file; walks and ps use the helpers of
tests/test_real_samples.py, module frames are in tests/test_real_modules.py. Known gaps of
the tool on 7.x are strict xfails naming their cause.
"""

from __future__ import annotations

from tests.helpers.real import check_ps, compare_walks, open_sample

NAME = "sid-7.2-modules"


def test_the_sample_is_a_7x_kernel() -> None:
    kernel, _, facts, _ = open_sample(NAME)
    assert kernel.release == facts["kernel_release"] == "7.2.13+deb14-s390x"
    assert len(kernel.cpus) == facts["cpus"] == 2
    assert kernel.layout.kind == "split"


def test_ps_matches_the_guest() -> None:
    check_ps(NAME)
    _, scan, facts, _ = open_sample(NAME)
    # Beyond the printout: the idle tasks, and init's "sleep 100000" started after it.
    listed = {t["pid"] for t in facts["proc_stat"]}
    extra = [(t.comm, t.ppid) for t in scan.tasks if t.pid and t.pid not in listed]
    assert extra == [("sleep", 1)]
    assert len(scan.tasks) == len(listed) + facts["cpus"] + 1


def test_walks_of_blocked_tasks_equal_the_kernels_call_traces() -> None:
    """Function names, reliable marks, final pt_regs and verdict of every task that stayed
    put (the whole name+off/size text: tests/test_real_modules.py)."""
    assert compare_walks(NAME) >= 70


def test_btf_puts_pt_regs_last_break_at_0xb8() -> None:
    """The dump's own BTF: 7.2's pt_regs is still 200 bytes, but last_break moved to 0xB8."""
    kernel, _, _, _ = open_sample(NAME)
    assert kernel.types is not None and kernel.types.source == "btf:dump"
    assert kernel.types.size("pt_regs") == 200
    assert kernel.types.offset("pt_regs.last_break") == 0xB8


def test_pt_regs_last_break_is_read_where_btf_says() -> None:
    kernel, scan, _, analyses = open_sample(NAME)
    offset = kernel.types.offset("pt_regs.last_break")
    sleepers = [t.pid for t in scan.tasks if t.comm == "sleep" and t.state == "S"]
    assert len(sleepers) >= 5
    for pid in sleepers:
        regs = analyses[pid].walk.end.regs
        assert regs is not None and regs.user_mode
        raw = int.from_bytes(kernel.read(regs.address + offset, 8), "big")
        assert raw != 0 and regs.last_break == raw
