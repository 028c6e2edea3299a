"""The call instructions the call-site check finds are spelled without Capstone
(explorer.code.callsite.call_insn_text): the same text as Capstone's, on every call site
of the real samples' walks and on random encodings (edge addresses and offsets too)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from explorer.code.cache import calls_of, code_of
from explorer.code.callsite import call_insn_text
from explorer.code.insn import decode_one
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.walk.analysis import analyse_task, unwind_context

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAMES = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())


def _capstone(raw: bytes, address: int) -> tuple[str, str] | None:
    insn = decode_one(raw, address)
    return None if insn is None else (insn.mnemonic, insn.operands)


@pytest.mark.parametrize("name", NAMES)
def test_every_real_call_site_is_spelled_as_capstone_spells_it(name: str) -> None:
    kernel = open_kernel(str(SAMPLES / name / "vmcore.zst"))
    code, calls, ctx = code_of(kernel), calls_of(kernel), unwind_context(kernel)
    seen = 0
    for task in find_tasks(kernel).tasks:
        for step in analyse_task(kernel, task, ctx).walk.steps:
            site = calls.for_step(step)
            if site is None or site.after != "call":
                continue
            raw = code.read(site.call_at, site.address - site.call_at)
            assert raw is not None
            ours = call_insn_text(raw, site.call_at)
            assert ours is not None, raw.hex()  # every real call: brasl or basr
            assert ours == _capstone(raw, site.call_at), (task.pid, step.index, raw.hex())
            seen += 1
    kernel.close()
    assert seen > 100


def test_random_call_encodings_are_spelled_as_capstone_spells_them() -> None:
    rng = random.Random(16)
    addresses = [0, 2, 0x10, 0x3FFFF4108D0, (1 << 63) - 16, (1 << 64) - 16, 0xA31C36]
    offsets32 = [0, 1, 4, 5, -1, -8, (1 << 31) - 1, -(1 << 31)]
    offsets16 = [0, 1, 4, 5, -1, -8, (1 << 15) - 1, -(1 << 15)]
    cases: list[tuple[bytes, int]] = []
    for _ in range(3000):
        address = rng.choice(addresses) if rng.random() < 0.3 else rng.randrange(0, 1 << 64, 2)
        reg = rng.choice((14, 0, rng.randrange(16)))
        o32 = rng.choice(offsets32) if rng.random() < 0.3 else rng.randrange(-(1 << 31), 1 << 31)
        o16 = rng.choice(offsets16) if rng.random() < 0.3 else rng.randrange(-(1 << 15), 1 << 15)
        cases.append((bytes([0xC0, reg << 4 | 5]) + o32.to_bytes(4, "big", signed=True), address))
        cases.append((bytes([0xA7, reg << 4 | 5]) + o16.to_bytes(2, "big", signed=True), address))
        cases.append((bytes([rng.choice((0x0D, 0x05)), reg << 4 | rng.randrange(1, 16)]), address))
    for raw, address in cases:
        assert call_insn_text(raw, address) == _capstone(raw, address), (raw.hex(), hex(address))


@pytest.mark.parametrize(
    "raw", ["4de12010", "45e00000", "0de0", "c0e4000000a0", "a7e40010", "07fe", ""]
)
def test_other_instructions_are_left_to_capstone(raw: str) -> None:
    """bas/bal (D(X,B) operand), basr %r14,%r0 (not a call), other opcodes: None."""
    assert call_insn_text(bytes.fromhex(raw), 0x1000) is None
