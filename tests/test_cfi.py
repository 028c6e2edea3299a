"""The DWARF CFI unwinder against independent truths: the rows of ``.debug_frame`` against
``s390x-linux-gnu-readelf --debug-dump=frames-interp``, and the CFI unwind of every
sleeping task against the back-chain walk (which equals the kernel's own sysrq-t traces)
and against drgn 0.3.0's frames (drgn unwinds with the same CFI)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from parsers.dwarf.cfi import DebugFrame
from parsers.elf.sections import ElfSections
from tests.helpers import dbg, oracles, readelf

SLEEPING = ("S", "D", "I")
#: Where a CFI unwind may stop short of the back chain, and why (each checked below).
_ASM = ("ret_from_fork", "system_call", "startup_continue", "restart_int_handler")


def _table(vmlinux: Path) -> DebugFrame:
    with ElfSections(vmlinux) as elf:
        section = elf.get(".debug_frame")
        assert section is not None
        return DebugFrame(elf.bytes_of(section))


def _ours(table: DebugFrame, address: int) -> tuple[str, dict[str, str]]:
    row = table.row_at(address)
    assert row is not None, hex(address)
    cfa = f"r{row.cfa_reg}+{row.cfa_offset}" if row.cfa_reg >= 0 else "exp"
    cols = {}
    for reg, rule in row.rules.items():
        name = "ra" if reg == 14 else f"r{reg}"
        cols[name] = {"offset": f"c{rule.value:+d}", "undefined": "u", "same": "s"}.get(
            rule.kind, rule.kind
        )
    return cfa, cols


@pytest.mark.parametrize("release", ["6.1.0-50-s390x"])
def test_rows_equal_readelf(release: str) -> None:
    vmlinux = oracles.debug_vmlinux(release)
    table = _table(vmlinux)
    rows = readelf.frames(vmlinux).rows()
    assert len(rows) > 50_000 and len(table) > 30_000
    for address, cfa, columns in rows:
        ours_cfa, ours_cols = _ours(table, address)
        assert ours_cfa == cfa, hex(address)
        for name, rule in columns.items():
            # readelf prints "u" for a register without a rule (initial or restored)
            assert ours_cols.get(name, "u") == rule, (hex(address), name)


def _drgn_frames(prog: Any, drgn: Any, task_address: int) -> list[tuple[int, int]]:
    task = drgn.Object(prog, "struct task_struct *", value=task_address)
    return [(f.sp, f.pc) for f in prog.stack_trace(task) if not f.is_inline]


@oracles.needs("drgn")
@pytest.mark.parametrize("sample", dbg.DEBIAN_SAMPLES)
def test_cfi_equals_back_chain_and_drgn(sample: str, tmp_path: Path) -> None:
    import drgn

    from explorer.debuginfo.cfi import cfi_for_walk, compare, debug_frame_of
    from explorer.model.tasks import find_tasks
    from explorer.walk.analysis import analyse_task, unwind_context

    prog = dbg.drgn_program(sample, tmp_path)
    kernel = dbg.open_sample(sample, system_map=True)
    table = debug_frame_of(kernel)
    assert table is not None
    ctx = unwind_context(kernel)
    tasks = frames = 0
    for task in find_tasks(kernel).tasks:
        a = analyse_task(kernel, task, ctx)
        if a.cpu is not None or task.state not in SLEEPING or not a.walk.steps:
            continue
        cfi = cfi_for_walk(kernel, table, a.walk)
        assert cfi is not None
        where = (task.pid, task.comm, cfi.end)
        # Every CFI frame is the back chain's frame at the same place (sp and pc).
        assert compare(a.walk, cfi).agree == len(cfi.frames), where
        # Where it stops short, the last frame's code is assembly without CFI.
        pc = cfi.frames[-1].pc
        assert kernel.symbols is not None
        assert table.row_at(pc - 1 - kernel.symbols.delta) is None, where
        if kernel.modules.module_at(pc) is not None:
            assert cfi.end.endswith("(module code: the vmlinux's CFI is the core kernel's)")
        else:
            last = kernel.symbols.lookup(pc)
            assert last is not None and last.name in _ASM, where
            assert cfi.end.startswith(f"no CFI at {last.name}+"), where
        # drgn, unwinding with the same CFI, has the same frames (then falls back further).
        theirs = _drgn_frames(prog, drgn, task.address)
        assert theirs[: len(cfi.frames)] == [(f.sp, f.pc) for f in cfi.frames], where
        tasks += 1
        frames += len(cfi.frames)
    assert tasks > 40 and frames > 200
