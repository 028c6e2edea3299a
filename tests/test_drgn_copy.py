"""samples/drgn_copy.py: a copy of a QEMU dump that drgn opens, checked with our own reader
and with drgn itself (against the guest's own sysrq-t Call Traces where the -dbg vmlinux of the
sample's kernel is in the cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from parsers.dumps.cpustate import cpu_registers_from_notes
from parsers.dumps.dumpfile import open_dump
from parsers.dumps.elfcore import group_cpu_notes
from parsers.dumps.vmcoreinfo import vmcoreinfo_from_memory
from samples.drgn_copy import fix_for_drgn
from tests.helpers import oracles

try:
    import drgn
except ImportError:  # said by the oracle mark: missing fails in CI, skips elsewhere
    drgn = None

pytestmark = oracles.needs("drgn")

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"


def _facts(name: str) -> dict:
    return json.loads((SAMPLES / name / "facts.json").read_text())


@pytest.fixture(scope="module")
def idle_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drgn") / "deb12-6.1-idle.elf"
    fix_for_drgn(SAMPLES / "deb12-6.1-idle" / "vmcore.zst", out)
    return out


def test_copy_has_the_same_memory_and_fixed_notes(idle_copy: Path) -> None:
    src = open_dump(str(SAMPLES / "deb12-6.1-idle" / "vmcore.zst"))
    dst = open_dump(str(idle_copy))
    try:
        assert [(r.start, r.size) for r in dst.ranges] == [(r.start, r.size) for r in src.ranges]
        for addr in (0, 0xE0C & ~0xFFF, src.ranges[-1].end - 0x1000):
            assert dst.read(addr, 0x1000) == src.read(addr, 0x1000)
        before = [cpu_registers_from_notes(i, g, src.path) for i, g in
                  enumerate(group_cpu_notes(src.notes))]  # fmt: skip
        after = [cpu_registers_from_notes(i, g, dst.path) for i, g in
                 enumerate(group_cpu_notes(dst.notes))]  # fmt: skip
        # QEMU 7.2 wrote pr_pid byte-swapped (CPU 0 as 0x01000000); the copy has 1, 2.
        assert [c.pid_swapped for c in before] == [True, True]
        assert [(c.cpu_id, c.pid_swapped) for c in after] == [(1, False), (2, False)]
        assert [(c.psw, c.gprs) for c in after] == [(c.psw, c.gprs) for c in before]
        assert src.vmcoreinfo_text is None
        info = vmcoreinfo_from_memory(src).info
        assert info is not None and dst.vmcoreinfo_text is not None
        assert dst.vmcoreinfo_text.splitlines() == [f"{k}={v}" for k, v in info.entries.items()]
    finally:
        src.close()
        dst.close()


def test_drgn_opens_the_copy_as_a_kernel_and_not_the_original(idle_copy: Path) -> None:
    prog = drgn.Program()
    prog.set_core_dump(str(idle_copy))
    assert prog.flags & drgn.ProgramFlags.IS_LINUX_KERNEL
    assert prog.platform.arch == drgn.Architecture.S390X
    text = prog["VMCOREINFO"].string_().decode()
    assert f"OSRELEASE={_facts('deb12-6.1-idle')['kernel_release']}\n" in text
    original = open_dump(str(SAMPLES / "deb12-6.1-idle" / "vmcore.zst"))
    try:
        raw = drgn.Program()
        raw.set_core_dump(original.path)  # the decompressed QEMU file, as QEMU wrote it
        assert not raw.flags & drgn.ProgramFlags.IS_LINUX_KERNEL
    finally:
        original.close()


_vmlinux = oracles.debug_vmlinux


@pytest.mark.parametrize("name", ["deb12-6.1-idle", "bpo12-6.12-busy", "sid-7.2-modules"])
def test_drgn_stacks_equal_the_kernels_call_traces(name: str, tmp_path: Path) -> None:
    facts = _facts(name)
    vmlinux = _vmlinux(facts["kernel_release"])
    copy = tmp_path / "vmcore.elf"
    fix_for_drgn(SAMPLES / name / "vmcore.zst", copy)
    prog = drgn.Program()
    prog.set_core_dump(str(copy))
    prog.load_debug_info([str(vmlinux)])
    from drgn.helpers.linux.pid import find_task

    assert prog["init_uts_ns"].name.release.string_().decode() == facts["kernel_release"]
    compared = 0
    for trace in facts["sysrq_t"]:
        # Sleepers that stayed asleep: every "sleep", the FIFO and pipe readers, and
        # jbd2/vda-8 in module code (kjournald2 [jbd2]).
        if trace["comm"] not in ("sleep", "cat", "jbd2/vda-8") or trace["state"] != "S":
            continue
        task = find_task(prog, trace["pid"])
        # Return addresses, not names: DWARF names an alias (__se_sys_clock_nanosleep)
        # where kallsyms printed __s390x_sys_clock_nanosleep at the same address.
        frames = [f for f in prog.stack_trace(task) if not f.is_inline]
        truth = [int(f["address"], 16) for f in trace["frames"]]
        assert [f.pc for f in frames[: len(truth)]] == truth, (trace["pid"], trace["comm"])
        # drgn goes on into user space (the PSW of the user-mode pt_regs): no symbol there.
        assert all(f.name.startswith("0x") for f in frames[len(truth) :])
        compared += 1
    assert compared >= 6
