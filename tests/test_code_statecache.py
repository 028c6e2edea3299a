"""Prologue states remembered across runs (explorer.code.statecache) are the states the
analyser computes: for every instruction of a few real functions, from the file a previous
analyser wrote; other bytes at the same address are a miss, a damaged file is ignored."""

from __future__ import annotations

from pathlib import Path

from explorer.code.cache import code_of
from explorer.code.prologue import PrologueAnalyzer
from explorer.code.statecache import StateCache, state_key
from explorer.model.opening import open_kernel

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
FUNCTIONS = ("__schedule", "psw_idle", "__fdget", "arch_cpu_idle", "do_syscall", "schedule_timeout")


def test_remembered_states_equal_computed_ones(tmp_path: Path) -> None:
    kernel = open_kernel(str(SAMPLES / "deb12-6.1-idle" / "vmcore.zst"))
    code = code_of(kernel)
    plain = PrologueAnalyzer(code)
    path = tmp_path / "states.json"
    first = PrologueAnalyzer(code, StateCache(path))
    addresses = []
    found = [f for f in map(code.function_named, FUNCTIONS) if f is not None]
    assert len(found) >= 4, found
    for func in found:
        addresses += [i.address for i in plain.instructions(func)]
    computed = [plain.state_at(a) for a in addresses]
    assert [first.state_at(a) for a in addresses] == computed
    assert first.remembered is not None
    first.remembered.flush()
    again = StateCache(path)
    second = PrologueAnalyzer(code, again)
    second._flow = None  # type: ignore[assignment,method-assign]  # must not decode anything
    assert [second.state_at(a) for a in addresses] == computed
    assert {s.phase for s in computed} >= {"body", "no_back_chain", "before_frame"}
    kernel.close()


def test_other_code_is_a_miss_and_a_damaged_file_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "states.json"
    cache = StateCache(path)
    cache.put(state_key(0x1000, 8, b"\x07\xfe" * 4, 0x1002), ("body", 160, "saved", "flow", 136))
    cache.flush()
    again = StateCache(path)
    assert again.get(state_key(0x1000, 8, b"\x07\xfe" * 4, 0x1002)) == (
        "body",
        160,
        "saved",
        "flow",
        136,
    )
    assert again.get(state_key(0x1000, 8, b"\x07\xfe" * 3 + b"\x00\x00", 0x1002)) is None
    assert again.get(state_key(0x2000, 8, b"\x07\xfe" * 4, 0x2002)) is None
    path.write_text('{"truncated')
    assert StateCache(path).get(state_key(0x1000, 8, b"\x07\xfe" * 4, 0x1002)) is None
