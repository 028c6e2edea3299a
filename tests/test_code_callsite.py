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
from typing import Any

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
from tests.helpers.objdump import needs_objdump, objdump

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
                assert set(fields.values()) == {None}  # a PSW, not a return address
                continue
            seen += 1
            if fields["after"] is None:
                assert code.freed(step.ip), (task.pid, kernel.symbolize(step.ip))
                assert task.pid == 0
                continue
            assert fields["after_call"] is not False, (task.pid, kernel.symbolize(step.ip))
            if fields["after"] == "psw_swap":
                # The nmi sample's dd: the r14 slot after the restart pt_regs is stale. It
                # holds smp_send_stop+0x3c, after the lpswe of __load_psw_mask: a PSW swap.
                assert step.how == "r14_guess"
                assert name == "bpo12-6.12-nmi" and task.pid == 158
                assert kernel.symbolize(step.ip) == "smp_send_stop+0x3c/0x180"
                (before,) = [i for i in decode(code.read(step.ip - 4, 4) or b"", step.ip - 4)]
                assert before.mnemonic == "lpswe"
                assert fields["instruction"] == before.text and fields["call"] is None
                continue
            assert fields["after_call"] is True, (task.pid, step.index, kernel.symbolize(step.ip))
            call = fields["call"]
            assert call.startswith(("brasl %r14, ", "basr %r14, ")), call
    assert seen > 250


@needs_objdump
@pytest.mark.parametrize(("name", "offset"), [("bpo12-6.12-busy", 0xA0), ("sid-7.2-modules", 0xEE)])
def test_an_enabled_wait_resumes_after_a_psw_swap(name: str, offset: int, tmp_path: Path) -> None:
    """An idle CPU of 6.12 and 7.2 waits in arch_cpu_idle's inlined __load_psw_mask(): the
    wait PSW points right after its lpswe, which reaches stack slots as a "return address".
    It is classified as a PSW swap (objdump agrees on the instruction), not an alarm."""
    kernel = _kernel(name)
    start = kernel.symbols.require("arch_cpu_idle")
    ip = start + offset
    code = code_of(kernel).read(start, offset) or b""
    truth = objdump(code, start, tmp_path)
    before = [(a, size, mnem) for a, (size, mnem, _) in truth.items() if a + size == ip]
    assert [m for _, _, m in before] == ["lpswe"]
    site = CallChecker(code_of(kernel)).check(ip)
    assert (site.after, site.after_call, site.call_at) == ("psw_swap", None, before[0][0])
    checker = CallChecker(code_of(kernel))
    assert checker.insn_text(site) == "lpswe 0xa0(%r15)" and checker.call_text(site) is None
    # Every other instruction boundary of arch_cpu_idle that no call ends at is "other".
    ends = {a + size: mnem for a, (size, mnem, _) in truth.items()}
    for end, mnem in ends.items():
        if end != ip and not mnem.startswith(("bras", "basr")):
            assert checker.check(end).after == "other", (hex(end - start), mnem)


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


def _planted() -> tuple[Kernel, Any, Any, Any, dict[int, int]]:
    """pid 1 of the 6.12 busy dump walked as it is and with the saved r14 slots of frames
    #1-#4 patched (through a test-only reader): three where no call ends, and the
    resume address of an idle CPU's enabled wait (after an lpswe) in #4."""
    kernel = _kernel("bpo12-6.12-busy")
    (task,) = find_tasks(kernel).by_pid(1)
    ctx = unwind_context(kernel)
    before = analyse_task(kernel, task, ctx)
    steps = before.walk.steps
    assert len(steps) >= 5 and before.verdict.reliable
    kinds = ("entry+6", "after the next instruction", "inside a 6-byte instruction")
    plants = {
        step.sp + _SF_R14: _plant_sites(kernel, step.ip)[kind]
        for step, kind in zip(steps[1:4], kinds, strict=True)
    }
    plants[steps[4].sp + _SF_R14] = kernel.symbols.require("arch_cpu_idle") + 0xA0

    real_read = ctx.read

    def planted_read(address: int, size: int) -> bytes:
        data = bytearray(real_read(address, size))
        for slot, value in plants.items():
            for k, byte in enumerate(value.to_bytes(8, "big")):
                if address <= slot + k < address + size:
                    data[slot + k - address] = byte
        return bytes(data)

    after = analyse_task(kernel, task, replace(ctx, read=planted_read))
    return kernel, task, before, after, plants


def test_planted_return_addresses_are_flagged_and_the_verdict_stays() -> None:
    """The planted frames #1-#3 become ``after_call: false``, #4 ``after: psw_swap`` (not
    flagged); the walk and the verdict do not change, since the planted addresses are
    kernel text as before."""
    kernel, _, before, after, plants = _planted()
    steps = before.walk.steps
    checker = CallChecker(code_of(kernel))
    verdicts = [checker.for_step(s) for s in after.walk.steps]
    flagged = [s.index for s, v in zip(after.walk.steps, verdicts, strict=True) if not v.after_call]
    assert flagged == [1, 2, 3, 4]
    assert [v.after for v in verdicts[1:5]] == ["other", "other", "other", "psw_swap"]
    assert [s.index for s, _ in checker.suspicious(after.walk.steps)] == [1, 2, 3]
    assert [s.ip for s in after.walk.steps[1:5]] == list(plants.values())
    assert all(kernel.is_text(s.ip) for s in after.walk.steps)
    # The kernel's verdict and the walk's shape are untouched.
    assert replace(after.verdict, entries=()) == replace(before.verdict, entries=())
    assert after.verdict.entries[1:5] == tuple(plants.values())
    assert [s.sp for s in after.walk.steps] == [s.sp for s in steps]
    assert after.walk.end.kind == before.walk.end.kind


def test_check_lists_suspicious_return_addresses(capsys: pytest.CaptureFixture[str]) -> None:
    """The planted frames are listed by check; no untouched real dump has one."""
    from explorer.code.present import calls_of, suspicious_lines

    kernel, task, _, after, _ = _planted()
    found = [(task, step) for step, _ in calls_of(kernel).suspicious(after.walk.steps)]
    lines = suspicious_lines(kernel, found)
    assert lines[1] == "suspicious return addresses (3): kernel text, but no call ends there"
    assert [ln.split()[3] for ln in lines[2:]] == ["#1", "#2", "#3"]
    assert all(ln.startswith("  pid 1      init") for ln in lines[2:])
    for name in NAMES:
        assert main(["check", str(SAMPLES / name / "vmcore.zst")]) == 0
        assert "suspicious return addresses" not in capsys.readouterr().out, name


def test_bt_names_a_frame_after_a_psw_swap(capsys: pytest.CaptureFixture[str]) -> None:
    """The nmi sample's dd: the stale r14 slot after the restart pt_regs holds
    smp_send_stop+0x3c, after an lpswe: named, not flagged."""
    dump = str(SAMPLES / "bpo12-6.12-nmi" / "vmcore.zst")
    assert main(["bt", dump, "--pid", "158"]) == 0
    out = capsys.readouterr().out
    assert "not after a call" not in out
    (marked,) = [ln for ln in out.splitlines() if "PSW swap" in ln]
    assert "smp_send_stop+0x3c" in marked and "[after lpswe 0xb8(%r15): a PSW swap" in marked
    assert main(["bt", dump, "--pid", "158", "--json"]) == 0
    frames = json.loads(capsys.readouterr().out)["frames"]
    assert [f["after_call"] for f in frames] == [None, None, True, True, True]
    assert [f["after"] for f in frames] == [None, "psw_swap", "call", "call", "call"]
    assert frames[1]["instruction"] == "lpswe 0xb8(%r15)"
