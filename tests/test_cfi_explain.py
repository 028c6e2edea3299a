"""Every frame where the CFI unwind and the back-chain walk differ is explained, and each
explanation holds against independent truth: the CFI rows and FDE ranges as GNU readelf reads
them (``--debug-dump=frames-interp``), the instruction bytes as GNU objdump disassembles them
from the -dbg vmlinux, the stack words as drgn reads them, and the module ranges the guest's
/proc/modules listed (facts.json). Every task with a walk, sleeping or running, of every
sample with a Debian -dbg vmlinux; "unexplained" never occurs there, and a doctored walk shows
that it can."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from collections import Counter
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.helpers import dbg, oracles
from tests.helpers.readelf import Frames, frames

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel
    from explorer.walk.unwind import Walk
    from parsers.dwarf.cfi import DebugFrame

_STMG = re.compile(r"%r(\d+),%r(\d+),(-?\d+)\(%r15\)")
_CFA = re.compile(r"r15\+(\d+)")


@cache
def _system_map(release: str) -> tuple[list[int], list[str]]:
    """The -dbg package's System.map (beside its vmlinux): text symbols, sorted."""
    path = oracles.debug_vmlinux(release).parent / "System.map"
    rows = []
    for line in path.read_text().splitlines():
        addr, kind, name = line.split()[:3]
        if kind in "tTwW":
            rows.append((int(addr, 16), name))
    rows.sort()
    return [a for a, _ in rows], [n for _, n in rows]


def _symbol_start(release: str, static: int) -> tuple[int, str]:
    import bisect

    addrs, names = _system_map(release)
    i = bisect.bisect_right(addrs, static) - 1
    assert i >= 0, hex(static)
    return addrs[i], names[i]


def _objdump(vmlinux: Path, start: int, stop: int) -> list[tuple[int, str, str]]:
    """objdump's (address, mnemonic, operands) of the vmlinux's code in [start, stop)."""
    if stop <= start:
        return []
    out = subprocess.run(
        [
            oracles.tool("objdump"),
            "-d",
            f"--start-address=0x{start:x}",
            f"--stop-address=0x{stop:x}",
            str(vmlinux),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = []
    for line in out.splitlines():
        m = re.match(r"^\s*([0-9a-f]+):\t(?:[0-9a-f]{2} )+\s*\t(\S+)\s*(\S*)", line)
        if m:
            found.append((int(m.group(1), 16), m.group(2), m.group(3)))
    return found


def _saves_r14(insns: list[tuple[int, str, str]]) -> str | None:
    """The first ``stmg %rA,%rB,D(%r15)`` with A <= 14 <= B, as objdump prints it."""
    for _, mnemonic, operands in insns:
        m = _STMG.fullmatch(operands)
        if mnemonic == "stmg" and m and int(m.group(1)) <= 14 <= int(m.group(2)):
            return f"{mnemonic} {operands}"
    return None


def _slot(row: tuple[str, dict[str, str]], sp: int) -> int:
    """The address where readelf's row says r14 is saved, with r15 = ``sp``."""
    cfa, cols = row
    m = _CFA.fullmatch(cfa)
    assert m is not None, cfa
    rule = cols.get("ra", "u")
    assert rule.startswith("c"), rule
    return sp + int(m.group(1)) + int(rule[1:])


class _Truth:
    """The independent readings of one sample."""

    def __init__(self, sample: str, prog: Any, delta: int) -> None:
        self.release = oracles.sample_release(sample)
        self.vmlinux = oracles.debug_vmlinux(self.release)
        self.frames: Frames = frames(self.vmlinux)
        self.prog = prog
        self.delta = delta
        facts = json.loads((dbg.REAL / sample / "facts.json").read_text())
        self.modules = [
            (int(m["address"], 16), int(m["address"], 16) + int(m["size"]), m["name"])
            for m in facts.get("modules") or []
        ]

    def u64(self, address: int) -> int:
        return int(self.prog.read_u64(address))

    def module(self, address: int) -> str | None:
        return next((n for lo, hi, n in self.modules if lo <= address < hi), None)


def _check(truth: _Truth, why: Any, pairs: Any, i: int, where: Any) -> None:
    """One explanation against readelf, objdump, drgn and /proc/modules."""
    static = why.row_at - truth.delta
    fr = truth.frames
    s, f = pairs[i]
    if why.kind in ("assembly", "cfi_ends_early"):
        assert fr.covering(static) is None, where
        assert truth.module(why.at) is None, where
        start, name = _symbol_start(truth.release, static)
        nearest = fr.nearest(static)
        if why.kind == "assembly":  # no FDE covers any byte of the function up to there
            assert nearest is None or nearest.end <= start, (where, name)
        else:
            assert nearest is not None and nearest.start <= start < nearest.end, (where, name)
    elif why.kind == "module":
        assert truth.module(why.at) is not None, where
        assert fr.covering(static) is None, where
    elif why.kind == "stack_switch":
        row = fr.row(static)
        assert row is not None, where
        assert truth.u64(_slot(row, why.sp)) == 0, where
    elif why.kind in ("r14_guess", "no_frame_yet"):
        row = fr.row(static)  # at the PSW itself
        assert row is not None, where
        start, name = _symbol_start(truth.release, static)
        prologue = _objdump(truth.vmlinux, start, static)
        saved = _saves_r14(prologue)
        if why.kind == "r14_guess":
            assert saved is not None and row[1].get("ra", "u").startswith("c"), (where, name)
            assert s is not None and s.sp == why.sp, where
            # the slot the back chain read is not where the function saved its r14
            guess = truth.u64(why.sp + 136)
            assert guess == s.raw_ip, where
            assert truth.u64(_slot(row, why.sp)) != guess, where
        else:
            assert saved is None and row[1].get("ra", "u") == "u", (where, name)
            assert f is not None and s is None, where
    elif why.kind == "pt_regs":
        prev = next(p for p, _ in reversed(pairs[:i]) if p is not None)
        assert truth.u64(prev.sp + 152) == 0, where  # the zero back chain
        assert truth.u64(prev.sp + 160 + 16) == s.ip, where  # pt_regs.psw.addr
    elif why.kind == "back_chain_ended":
        assert f is not None and s is None, where
    else:
        pytest.fail(f"{why.kind}: {why.words} at {where}")


@oracles.needs("drgn", "readelf", "objdump")
@pytest.mark.parametrize("sample", dbg.DEBIAN_SAMPLES)
def test_every_difference_is_explained_and_true(sample: str, tmp_path: Path) -> None:
    from explorer.debuginfo.cfi import cfi_for_walk, debug_frame_of, same_frame
    from explorer.model.tasks import find_tasks
    from explorer.reports.cfiexplain import explain
    from explorer.walk.analysis import analyse_task, unwind_context

    prog = dbg.drgn_program(sample, tmp_path)
    addrs, names = _system_map(oracles.sample_release(sample))
    delta = prog.symbol("_stext").address - addrs[names.index("_stext")]
    truth = _Truth(sample, prog, delta)
    kernel = dbg.open_sample(sample, system_map=True)
    table = debug_frame_of(kernel)
    assert table is not None
    ctx = unwind_context(kernel)
    kinds: Counter[str] = Counter()
    sleeping = 0
    for task in find_tasks(kernel).tasks:
        a = analyse_task(kernel, task, ctx)
        cfi = cfi_for_walk(kernel, table, a.walk)
        if cfi is None:
            continue
        ag = explain(kernel, table, a.walk, cfi)
        assert len(ag.explanations) == len(ag.pairs)
        sleeping += a.cpu is None
        for i, ((s, f), why) in enumerate(zip(ag.pairs, ag.explanations, strict=True)):
            where = (task.pid, task.comm, i, why and why.kind, why and why.words)
            assert (why is None) == same_frame(s, f), where
            if why is None:
                continue
            assert why.kind != "unexplained", where
            _check(truth, why, ag.pairs, i, where)
            kinds[why.kind] += 1
    print(f"{sample}: {sleeping} tasks off a CPU; differing frames by kind: {dict(kinds)}")
    assert sleeping > 40
    # every sample has frames that differ: a CPU's stack, a module's code
    assert sum(kinds.values()) > 0, kinds


def _init_walk(sample: str) -> tuple[Kernel, DebugFrame, Walk]:
    """``sample`` opened with its -dbg vmlinux, the vmlinux's .debug_frame, and the back-chain
    walk of init (pid 1)."""
    from explorer.debuginfo.cfi import debug_frame_of
    from explorer.model.tasks import find_tasks
    from explorer.walk.analysis import analyse_task

    kernel = dbg.open_sample(sample)
    table = debug_frame_of(kernel)
    assert table is not None and kernel.symbols is not None
    task = next(t for t in find_tasks(kernel).tasks if t.pid == 1)
    return kernel, table, analyse_task(kernel, task).walk


@oracles.needs("readelf")
def test_a_difference_without_a_cause_is_unexplained() -> None:
    """A walk doctored so that one frame differs for no reason: the explanation says so."""
    from explorer.debuginfo.cfi import cfi_for_walk
    from explorer.reports.cfiexplain import explain

    kernel, table, walk = _init_walk("deb12-6.1-idle")
    cfi = cfi_for_walk(kernel, table, walk)
    assert cfi is not None and explain(kernel, table, walk, cfi).explanations == (None,) * len(
        walk.steps
    )
    steps = list(walk.steps)
    steps[2] = replace(steps[2], ip=steps[2].ip + 2)  # a return address no unwinder gives
    steps.insert(4, replace(steps[4], sp=steps[4].sp - 8))  # a frame of no PSW
    doctored = replace(walk, steps=tuple(steps))
    whys = [w for w in explain(kernel, table, doctored, cfi).explanations if w is not None]
    assert [w.kind for w in whys] == ["unexplained", "unexplained"], whys


@oracles.needs("readelf", "objdump")
@pytest.mark.parametrize("guess", ["stale", "skipped"])
def test_a_psw_before_the_prologue_is_no_frame_yet(guess: str) -> None:
    """No real sample stopped a CPU before a prologue: a CPU put at schedule's first
    instruction, called from do_wait (r15 = do_wait's frame, r14 = the return address into
    it), as pid 1 of the 6.1 sample shows them. CFI finds do_wait through r14; the back
    chain's r14 guess reads a stale slot (or, a guess the kernel skips, goes straight to
    do_wait's caller). The explanation holds against objdump and readelf."""
    from explorer.debuginfo.cfi import cfi_walk, same_frame
    from explorer.reports.cfiexplain import explain

    sample = "deb12-6.1-idle"
    release = oracles.sample_release(sample)
    kernel, table, init = _init_walk(sample)
    assert kernel.symbols is not None
    steps = init.steps
    names = [kernel.symbols.lookup(s.ip).name for s in steps[:3]]  # type: ignore[union-attr]
    assert names == ["__schedule", "schedule", "do_wait"], names
    entry = kernel.symbols.address_of("schedule")
    assert entry is not None
    sp, ra = steps[2].sp, steps[2].ip
    psw = replace(steps[1], index=0, sp=sp, ip=entry, raw_ip=entry, how="start_regs")
    stale = steps[0].ip  # any text address: what the slot held before
    rest = [replace(s, index=s.index - 1) for s in steps[3:]]
    if guess == "stale":
        middle = [replace(steps[1], index=1, sp=sp, ip=stale, raw_ip=stale, how="r14_guess")]
        rest = [replace(s, index=s.index) for s in steps[3:]]
    else:
        middle = []
    walk = replace(init, steps=(psw, *middle, *rest))
    cfi = cfi_walk(
        table,
        kernel.symbols.delta,
        kernel.space.read_u64,
        entry,
        {15: sp, 14: ra},
        kernel.symbolize,
        return_address=False,
    )
    assert [(f.sp, f.pc) for f in cfi.frames[:3]] == [
        (sp, entry),
        (sp, ra),
        (steps[3].sp, steps[3].ip),
    ]
    ag = explain(kernel, table, walk, cfi)
    whys = [(i, w) for i, w in enumerate(ag.explanations) if w is not None]
    assert [w.kind for _, w in whys] == ["no_frame_yet"], whys
    i, why = whys[0]
    assert not same_frame(*ag.pairs[i]) and ag.pairs[i][1] is not None
    assert ag.pairs[i][1].pc == ra  # type: ignore[union-attr]
    # objdump: nothing of schedule ran (no stmg saved r14); readelf: r14 has no rule there
    addrs, sym_names = _system_map(release)
    delta = entry - addrs[sym_names.index("schedule")]
    static = why.at - delta
    assert _saves_r14(_objdump(oracles.debug_vmlinux(release), static, static + 64)) is not None
    assert _saves_r14(_objdump(oracles.debug_vmlinux(release), static, static)) is None
    row = frames(oracles.debug_vmlinux(release)).row(static)
    assert row is not None and row[1].get("ra", "u") == "u", row


@oracles.needs("readelf")
def test_a_return_address_past_the_fde_is_cfi_ends_early() -> None:
    """No real stack holds one: a function whose FDE (readelf) ends well before the next
    symbol (System.map), and a CFI unwind whose last frame returns into that tail; the back
    chain goes on. The explanation is cfi_ends_early, and readelf agrees."""
    from explorer.debuginfo.cfi import CfiFrame, CfiWalk
    from explorer.reports.cfiexplain import explain

    sample = "deb12-6.1-idle"
    release = oracles.sample_release(sample)
    vmlinux = oracles.debug_vmlinux(release)
    fr = frames(vmlinux)
    addrs, _ = _system_map(release)
    tail = next(
        (a, fde.end, b)
        for a, b in itertools.pairwise(addrs)
        if (fde := fr.covering(a)) is not None
        and fde.start == a
        and fde.end + 16 < b
        and fr.nearest(b - 1) is fde  # no other FDE in the tail
    )
    kernel, table, walk = _init_walk(sample)
    assert kernel.symbols is not None
    delta = kernel.symbols.delta
    pc = tail[1] + 2 + delta  # a return address in the tail
    steps = (walk.steps[0], replace(walk.steps[1], ip=pc, raw_ip=pc), *walk.steps[2:])
    walk = replace(walk, steps=steps)
    cfi = CfiWalk(tuple(CfiFrame(i, s.sp, s.ip) for i, s in enumerate(steps[:2])), "no CFI")
    whys = [w for w in explain(kernel, table, walk, cfi).explanations if w is not None]
    assert whys and {w.kind for w in whys} == {"cfi_ends_early"}, whys
    static = whys[0].row_at - delta
    nearest = fr.nearest(static)
    assert fr.covering(static) is None and nearest is not None
    assert nearest.start == tail[0] and nearest.end <= static, (nearest, hex(static))


@oracles.needs("readelf")
def test_beside_pairs_each_back_chain_step() -> None:
    """``Agreement.beside(i)``: the CFI frame and explanation of back-chain step ``i``, as
    the walk pane shows them (bpo12-6.12-panic's init: frame #1 is an r14 guess)."""
    from explorer.debuginfo.cfi import cfi_for_walk
    from explorer.reports.cfiexplain import explain

    kernel, table, walk = _init_walk("bpo12-6.12-panic")
    cfi = cfi_for_walk(kernel, table, walk)
    assert cfi is not None
    ag = explain(kernel, table, walk, cfi)
    assert ag.agree == len(walk.steps) - 1 == len(cfi.frames)
    frame, why = ag.beside(1)
    assert frame is None and why is not None and why.kind == "r14_guess"
    assert why.text.startswith("a frame without a back chain that CFI steps over: stop_run+")
    for i in (0, *range(2, len(walk.steps))):
        frame, why = ag.beside(i)
        assert why is None and frame is not None
        assert (frame.sp, frame.pc) == (walk.steps[i].sp, walk.steps[i].ip)
