"""Bundled samples with loaded modules (samples/real/*-modules) against their own truth.

Each guest loaded virtio_blk and ext4 with its dependencies (jbd2, mbcache, crc16, ...) by
``insmod`` from the initramfs and mounted an ext4 disk, so ``jbd2/vda-8`` sleeps in
``kjournald2 [jbd2]``; it printed /proc/modules and the kernel's sysrq-t Call Traces
(facts.json) before it was dumped.
"""

from __future__ import annotations

import json

import pytest

from tests.helpers.real import MOVED, SAMPLES, kernel_text, module_tasks, open_sample

MODULE_SAMPLES = sorted(
    p.parent.name
    for p in SAMPLES.glob("*/facts.json")
    if (p.parent / "vmcore.zst").is_file()
    and "modules" in (facts := json.loads(p.read_text()))
    and "livepatch" not in facts  # the livepatch samples: tests/test_real_klp.py
)


def test_both_module_samples_are_here() -> None:
    assert MODULE_SAMPLES == ["deb12-6.1-modules", "sid-7.2-modules"]


@pytest.mark.parametrize("name", MODULE_SAMPLES)
def test_jbd2_sleeps_in_module_code(name: str) -> None:
    _, _, facts, _ = open_sample(name)
    jbd2 = next(t for t in facts["sysrq_t"] if t["comm"] == "jbd2/vda-8")
    assert [f["function"] for f in jbd2["frames"]] == [
        "__schedule", "schedule", "kjournald2", "kthread", "__ret_from_fork", "ret_from_fork"
    ]  # fmt: skip
    assert jbd2["frames"][2]["module"] == "jbd2" and jbd2["state"] == "S"
    assert module_tasks(name) == {jbd2["pid"]}
    assert {"ext4", "jbd2", "mbcache", "crc16", "virtio_blk"} <= {
        m["name"] for m in facts["modules"]
    }


@pytest.mark.parametrize("name", MODULE_SAMPLES)
def test_modules_match_proc_modules(name: str) -> None:
    """``Kernel.modules`` against the guest's /proc/modules (name, text base)."""
    kernel, _, facts, _ = open_sample(name)
    got = {m.name: m.text[0][0] for m in kernel.modules.modules}
    assert got == {m["name"]: int(m["address"], 16) for m in facts["modules"]}
    assert kernel.modules.warnings == []


@pytest.mark.parametrize("name", MODULE_SAMPLES)
def test_walks_are_the_kernels_text(name: str) -> None:
    """Every task without a module frame that stayed put: the whole ``name+off/size`` text
    of every frame equals what the kernel printed."""
    kernel, _, facts, analyses = open_sample(name)
    compared = 0
    for trace in facts["sysrq_t"]:
        if trace["pid"] in MOVED[name] | module_tasks(name):
            continue
        steps = analyses[trace["pid"]].walk.steps
        got = [kernel.symbolize(s.ip) for s in steps]
        assert got == [kernel_text(f) for f in trace["frames"]], trace["pid"]
        compared += 1
    assert compared >= 55


@pytest.mark.parametrize("name", MODULE_SAMPLES)
def test_module_task_walk_is_the_kernels(name: str) -> None:
    """Naming aside, the walk through module code is the kernel's: the same return
    addresses, reliable, ending at the kernel thread's final pt_regs."""
    _, _, facts, analyses = open_sample(name)
    for trace in facts["sysrq_t"]:
        if trace["pid"] in module_tasks(name):
            a = analyses[trace["pid"]]
            assert [s.ip for s in a.walk.steps] == [int(f["address"], 16) for f in trace["frames"]]
            assert a.walk.end.kind == "final_pt_regs" and a.verdict.reliable


@pytest.mark.parametrize("name", MODULE_SAMPLES)
def test_module_frames_are_named_as_the_kernel_named_them(name: str) -> None:
    """``kjournald2+0x2d0/0x330 [jbd2]``: names from the module's own kallsyms, exactly as the
    kernel printed them (bt shows the same text)."""
    kernel, _, facts, analyses = open_sample(name)
    for trace in facts["sysrq_t"]:
        if trace["pid"] in module_tasks(name):
            got = [kernel.symbolize(s.ip) for s in analyses[trace["pid"]].walk.steps]
            assert got == [kernel_text(f) for f in trace["frames"]]


@pytest.mark.parametrize("name", MODULE_SAMPLES)
def test_bt_prints_the_module_frames_as_the_kernel_did(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``backchain bt --json`` (and the text form) of jbd2/vda-8, the dump alone in its folder
    or with its System.map: every frame's text equals the kernel's Call Trace line."""
    from explorer.cli import main

    _, _, facts, _ = open_sample(name)
    (pid,) = module_tasks(name)
    trace = next(t for t in facts["sysrq_t"] if t["pid"] == pid)
    want = [kernel_text(f) for f in trace["frames"]]
    dump = str(SAMPLES / name / "vmcore.zst")
    assert main(["bt", dump, "--pid", str(pid), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [f["symbol"] for f in doc["frames"]] == want
    assert main(["bt", dump, "--pid", str(pid)]) == 0
    text = capsys.readouterr().out
    assert all(f"] {w} at 0x" in text for w in want), text
