"""The call-site check on the bundled real dumps: every real return address follows a call;
return addresses planted where no call ends are flagged, and the verdict stays the kernel's.

Truth: the real samples' stacks (their Call Traces match the kernel's own, see
test_real_samples.py) and the code bytes in the dump, decoded independently by objdump in
test_code_dis.py.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.code.cache import code_of
from explorer.code.callsite import CallChecker, is_call
from explorer.code.insn import decode
from explorer.code.listing import function_code
from explorer.code.present import call_fields
from explorer.model.kernel import Kernel
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.walk.analysis import analyse_task, unwind_context

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAMES = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())
_SF_R14 = 0x88  # struct stack_frame.gprs[8] (packed stack): the saved r14


@cache
def _kernel(name: str) -> Kernel:
    return open_kernel(str(SAMPLES / name / "vmcore.zst"))


@pytest.mark.parametrize("name", NAMES)
def test_every_real_return_address_follows_a_call(name: str) -> None:
    """Each frame whose ip is a saved r14 is after a call (brasl/basr %r14); null only in
    init text the kernel has freed (swapper/0's start_kernel frame: zeros in the dump)."""
    kernel = _kernel(name)
    code = code_of(kernel)
    ctx = unwind_context(kernel)
    seen = 0
    for task in find_tasks(kernel).tasks:
        for step in analyse_task(kernel, task, ctx).walk.steps:
            fields = call_fields(kernel, step)
            if step.how in ("start_regs", "pt_regs"):
                assert fields == {"after_call": None, "call": None}  # a PSW, not a return
                continue
            seen += 1
            if fields["after_call"] is None:
                assert code.freed(step.ip), (task.pid, kernel.symbolize(step.ip))
                assert task.pid == 0
                continue
            if step.how == "r14_guess" and fields["after_call"] is False:
                # The nmi sample's dd: the r14 slot after the restart pt_regs is stale. It
                # holds smp_send_stop+0x3c, after the lpswe of __load_psw_mask: no call.
                assert name == "bpo12-6.12-nmi" and task.pid == 158
                assert kernel.symbolize(step.ip) == "smp_send_stop+0x3c/0x180"
                (before,) = [i for i in decode(code.read(step.ip - 4, 4) or b"", step.ip - 4)]
                assert before.mnemonic == "lpswe"
                continue
            assert fields["after_call"] is True, (task.pid, step.index, kernel.symbolize(step.ip))
            call = fields["call"]
            assert call.startswith(("brasl %r14, ", "basr %r14, ")), call
    assert seen > 250


def test_call_names_the_callee() -> None:
    """A sleeping task's first frame returns into __schedule after the call of
    __switch_to; the next into schedule after the call of __schedule."""
    kernel = _kernel("bpo12-6.12-busy")
    (task,) = find_tasks(kernel).by_pid(1)
    steps = analyse_task(kernel, task).walk.steps
    assert [call_fields(kernel, s)["call"] for s in steps[:2]] == [
        "brasl %r14, __switch_to",
        "brasl %r14, __schedule",
    ]


def _plant_sites(kernel: Kernel, ip: int) -> dict[str, int]:
    """Three kernel-text addresses near ``ip`` where no call ends."""
    code = code_of(kernel)
    func = code.function_at(ip)
    assert func is not None
    insns = function_code(code, func)
    by_address = {i.address: i for i in insns}
    at_r = by_address[ip]
    assert not is_call(at_r)  # else the next boundary would be after a call again
    six = next(i for i in insns if i.size == 6 and i.address > func.start + 6 and not is_call(i))
    return {
        "entry+6": func.start + 6,  # after the ftrace nop (brcl 0), not a call
        "after the next instruction": at_r.end,
        "inside a 6-byte instruction": six.address + 2,
    }


def test_planted_return_addresses_are_flagged_and_the_verdict_stays() -> None:
    """Patch the saved r14 slots of three frames of a sleeping task (through a test-only
    reader): those frames become ``after_call: false``; the walk and the verdict do not
    change, since the planted addresses are kernel text as before."""
    kernel = _kernel("bpo12-6.12-busy")
    (task,) = find_tasks(kernel).by_pid(1)
    ctx = unwind_context(kernel)
    before = analyse_task(kernel, task, ctx)
    steps = before.walk.steps
    assert len(steps) >= 4 and before.verdict.reliable
    kinds = ("entry+6", "after the next instruction", "inside a 6-byte instruction")
    plants = {
        step.sp + _SF_R14: _plant_sites(kernel, step.ip)[kind]
        for step, kind in zip(steps[1:4], kinds, strict=True)
    }

    real_read = ctx.read

    def planted_read(address: int, size: int) -> bytes:
        data = bytearray(real_read(address, size))
        for slot, value in plants.items():
            for k, byte in enumerate(value.to_bytes(8, "big")):
                if address <= slot + k < address + size:
                    data[slot + k - address] = byte
        return bytes(data)

    after = analyse_task(kernel, task, replace(ctx, read=planted_read))
    checker = CallChecker(code_of(kernel))
    verdicts = [checker.for_step(s) for s in after.walk.steps]
    flagged = [s.index for s, v in zip(after.walk.steps, verdicts, strict=True) if not v.after_call]
    assert flagged == [1, 2, 3]
    assert [s.ip for s in after.walk.steps[1:4]] == list(plants.values())
    assert all(kernel.is_text(s.ip) for s in after.walk.steps)
    # The kernel's verdict and the walk's shape are untouched.
    assert replace(after.verdict, entries=()) == replace(before.verdict, entries=())
    assert after.verdict.entries[1:4] == tuple(plants.values())
    assert [s.sp for s in after.walk.steps] == [s.sp for s in steps]
    assert after.walk.end.kind == before.walk.end.kind


def test_check_lists_suspicious_return_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    dump = str(SAMPLES / "bpo12-6.12-nmi" / "vmcore.zst")
    assert main(["check", dump]) == 0
    out = capsys.readouterr().out
    _, _, listed = out.partition("suspicious return addresses (1)")
    assert listed, out
    assert "pid 158" in listed and "smp_send_stop+0x3c/0x180" in listed
    assert "r14 guess" in listed
    dump = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
    assert main(["check", dump]) == 0
    assert "suspicious return addresses" not in capsys.readouterr().out


def test_bt_marks_a_frame_not_after_a_call(capsys: pytest.CaptureFixture[str]) -> None:
    dump = str(SAMPLES / "bpo12-6.12-nmi" / "vmcore.zst")
    assert main(["bt", dump, "--pid", "158"]) == 0
    lines = capsys.readouterr().out.splitlines()
    marked = [ln for ln in lines if "not after a call" in ln]
    assert len(marked) == 1 and "smp_send_stop+0x3c" in marked[0]
    assert main(["bt", dump, "--pid", "158", "--json"]) == 0
    frames = json.loads(capsys.readouterr().out)["frames"]
    assert [f["after_call"] for f in frames] == [None, False, True, True, True]
