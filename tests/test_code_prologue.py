"""Where an interrupted function stood (prologue state), and the interrupted context of a CPU
stopped on an interrupt handler's first instruction.

Truth: the instructions themselves (checked against objdump in test_code_dis.py), the
figures of machine-code.md for Debian 6.1's __schedule, and for the interrupted context the
walk's own next frame (the caller found through the back chain the function stored).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.code.cache import analyzer_of, code_of
from explorer.code.interrupted import interrupted_context
from explorer.model.kernel import Kernel
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.reports.walk import verdict_json
from explorer.training.synthetic import Frame
from explorer.walk.analysis import analyse_task, unwind_context
from tests.helpers.kernels import NANOSLEEP, base_kernel, open_synthetic

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"


@cache
def _kernel(name: str) -> Kernel:
    return open_kernel(str(SAMPLES / name / "vmcore.zst"))


def _phases(kernel: Kernel, function: str, offsets: list[int]) -> list[tuple[str, int | None]]:
    base = kernel.symbols.require(function)
    analyzer = analyzer_of(kernel)
    out = []
    for off in offsets:
        st = analyzer.state_at(base + off)
        out.append((st.phase, st.frame_size))
    return out


def test_schedule_window_of_debian_61() -> None:
    """machine-code.md: in 6.1's __schedule 0xa296e8..0xa296fa have a frame but no back
    chain yet (caller sp = r15+128); from 0xa29700 the chain is stored."""
    kernel = _kernel("deb12-6.1-idle")
    assert kernel.symbols.require("__schedule") == 0xA296D8
    offsets = [0x0, 0x6, 0xA, 0x10, 0x16, 0x1C, 0x22, 0x28, 0x2E]
    assert _phases(kernel, "__schedule", offsets) == [
        ("before_frame", 0),
        ("before_frame", 0),
        ("before_frame", 0),  # the lay itself has not run yet
        ("no_back_chain", 128),
        ("no_back_chain", 128),
        ("no_back_chain", 128),
        ("no_back_chain", 128),  # the stg of the back chain has not run yet
        ("body", 128),
        ("body", 128),
    ]
    state = analyzer_of(kernel).state_at(0xA296F4)
    assert state.return_address_in == "both" and state.saved_at == 136  # stmg r6-r15 at 0x48


def test_fdget_of_612_and_its_epilogues() -> None:
    """fdget (6.12): r14 is clobbered by `lgr %r14,%r15` before the frame exists, so the
    return address is only in the caller's frame; both `br %r4` returns run after the
    frame is released."""
    kernel = _kernel("bpo12-6.12-busy")
    assert _phases(kernel, "fdget", [0x6, 0x10, 0x14, 0x1A, 0x22, 0x28, 0x80, 0x96, 0xB2]) == [
        ("before_frame", 0),
        ("before_frame", 0),
        ("before_frame", 0),
        ("no_back_chain", 64),
        ("no_back_chain", 64),
        ("body", 64),
        ("body", 64),
        ("epilogue", 0),
        ("epilogue", 0),
    ]
    analyzer = analyzer_of(kernel)
    assert analyzer.state_at(kernel.symbols.require("fdget") + 0x1A).return_address_in == "saved"


def test_frame_allocated_after_a_fast_path() -> None:
    """diag_stat_inc (6.12) returns early twice (`br %r14`, `ber %r14`) before it allocates
    its 24-byte frame at instruction 28: the whole function is scanned, not a prefix."""
    kernel = _kernel("bpo12-6.12-busy")
    offsets = [0x40, 0x6C, 0x84, 0x8A, 0x90, 0xA2, 0xAE]
    assert _phases(kernel, "diag_stat_inc", offsets) == [
        ("before_frame", 0),  # the first early return
        ("before_frame", 0),  # ber %r14
        ("before_frame", 0),  # lay -0x18
        ("no_back_chain", 24),
        ("body", 24),
        ("body", 24),  # lmg: not run yet
        ("epilogue", 0),  # br %r4
    ]


def test_dynamic_frame_of_do_syscall() -> None:
    """__do_syscall moves its frame by the random kstack offset (slgfr %r15,%r2), then
    stores the back chain again: no back chain in between, frame size unknown."""
    kernel = _kernel("bpo12-6.12-busy")
    assert _phases(kernel, "__do_syscall", [0x3E, 0x42, 0x48, 0xC6]) == [
        ("body", 88),
        ("no_back_chain", None),
        ("body", None),
        ("body", None),
    ]


def test_interrupted_context_of_the_busy_612_cpu0(capsys: pytest.CaptureFixture[str]) -> None:
    """CPU 0 stopped on ext_int_handler+0 with the external old PSW in fdget+0x80 (frame
    allocated, back chain stored): the interrupted frame is shown; its caller, computed from
    r15 + the frame size and the saved r14, is the walk's next frame."""
    kernel = _kernel("bpo12-6.12-busy")
    cpu = kernel.cpus[0]
    ctx = interrupted_context(kernel, cpu)
    assert ctx is not None and ctx.source == "external old PSW"
    assert kernel.symbolize(ctx.address) == "fdget+0x80/0x168"
    assert ctx.state.phase == "body" and ctx.state.frame_size == 64
    dump = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
    assert main(["bt", dump, "--cpu", "0", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    first, second = doc["frames"][:2]
    assert first["symbol"] == "ext_int_handler+0x0/0xf8"
    inter = first["interrupted"]
    assert inter["symbol"] == "fdget+0x80/0x168" and inter["state"] == "body"
    assert inter["caller_sp"] == second["sp"] and inter["return_address"] == second["ip"]
    # The verdict is the kernel's: the same with or without the code pane's findings.
    (task,) = [t for t in find_tasks(kernel).tasks if t.address == cpu.current_task]
    assert doc["verdict"] == verdict_json(
        analyse_task(kernel, task, unwind_context(kernel)).verdict
    )
    assert main(["bt", dump, "--cpu", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    i = next(n for n, ln in enumerate(lines) if ln.startswith(" #0 "))
    assert "fdget+0x80/0x168 at 0x000003fffed09e70" in lines[i + 1]
    assert (
        "interrupted here (external old PSW): frame allocated and back chain stored"
        in (lines[i + 1])
    )
    assert lines[i + 2].startswith(" #1 ") and "fdget_pos+0x2a" in lines[i + 2]


def test_no_interrupted_context_when_not_on_a_handler() -> None:
    """CPU 1 of the same dump runs do_ext_interrupt+0xac, not a handler's first
    instruction; the 5.10 CPU on system_call+0 came from user space."""
    assert (
        interrupted_context(_kernel("bpo12-6.12-busy"), _kernel("bpo12-6.12-busy").cpus[1]) is None
    )
    k510 = _kernel("rebuilt-5.10-busy")
    assert [interrupted_context(k510, c) for c in k510.cpus] == [None, None]


#: A function whose frame is allocated but whose back chain is not stored yet at +0x10.
_VICTIM = bytes.fromhex(
    "eb6ff0480024"  # +0x00 stmg %r6,%r15,0x48(%r15)
    "b904001f"  # +0x06 lgr %r1,%r15
    "e3f0ff60ff71"  # +0x0a lay %r15,-0xa0(%r15)
    "b90400a2"  # +0x10 lgr %r10,%r2        <- interrupted here
    "e310f0980024"  # +0x14 stg %r1,0x98(%r15)
    "eb6ff0e80004"  # +0x1a lmg %r6,%r15,0xe8(%r15)
    "07fe"  # +0x20 br %r14
)


def test_interrupted_in_the_no_back_chain_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A CPU stopped on ext_int_handler+0 after `victim` (called from __schedule+0x43c)
    allocated its frame but before it stored the back chain: r15 does not lead to the
    caller; its sp is r15 + 0xa0 and the return address is still in r14."""
    k = base_kernel("current", cpus=2)
    victim = k.add_function("victim", 0x100)
    k.write(victim, _VICTIM)
    t = k.add_task(100, "dd", "R", cpu=1)
    sps = k.task_stack(t, [Frame("__schedule", 0x43C), *NANOSLEEP[1:]])
    r15 = sps[0] - 0xA0
    k.put_u64_va(r15 + 152, 0xDEAD0000)  # stale slot where the back chain will go
    entry = (0x0404C00180000000, k.ip("ext_int_handler"))
    ra = k.ip("__schedule", 0x43C)
    k.run_on_cpu(1, t, entry, {15: r15, 14: ra, 1: sps[0]})
    k.cpus[-1].lowcore["external_new_psw"] = entry
    k.cpus[-1].lowcore["external_old_psw"] = (0x0704C00180000000, victim + 0x10)
    kernel = open_synthetic(k, tmp_path)
    cpu = kernel.cpus[-1]  # the CPU added last (base_kernel's idle CPU 1 comes first)
    ctx = interrupted_context(kernel, cpu)
    assert ctx is not None and ctx.state.phase == "no_back_chain"
    assert (ctx.state.frame_size, ctx.caller_sp, ctx.return_address) == (0xA0, sps[0], ra)
    dump = str(tmp_path / "vmcore")
    assert main(["bt", dump, "--pid", "100"]) == 0
    out = capsys.readouterr().out
    assert "victim+0x10" in out and "frame allocated, back chain not yet stored" in out
    assert (
        f"the caller is not on the back chain from r15: its sp is 0x{sps[0]:x}, "
        f"return address 0x{ra:x} (__schedule+0x43c" in out
    )
    # The same code read forward from each address, as the flow sees it.
    analyzer = analyzer_of(kernel)
    got = [analyzer.state_at(victim + off).phase for off in (0, 0x6, 0xA, 0x10, 0x14, 0x1A, 0x20)]
    assert got == [
        "before_frame",
        "before_frame",
        "before_frame",
        "no_back_chain",
        "no_back_chain",
        "body",
        "epilogue",
    ]
    assert code_of(kernel).function_at(victim + 0x10).name == "victim"
