"""``search`` (crash search): a value in memory or on task stacks. Truth: the kernel's own
sysrq-t Call Traces (a sleeping task's stack holds its __schedule return address) and the
ELF file's bytes at each physical hit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from tests.helpers.real import MOVED, elf_physical

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAME = "bpo12-6.12-busy"
DUMP = str(SAMPLES / NAME / "vmcore.zst")


def _search(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["search", DUMP, *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_stacks_holding_a_return_address(capsys: pytest.CaptureFixture[str]) -> None:
    facts = json.loads((SAMPLES / NAME / "facts.json").read_text())
    frames = {
        t["pid"]: {f["symbol"]: int(f["address"], 16) for f in t["frames"]}
        for t in facts["sysrq_t"]
        if t["pid"] not in MOVED[NAME]
    }
    sleeping = {pid for pid, f in frames.items() if "__schedule+0x43c/0xb80" in f}
    (address,) = {f["__schedule+0x43c/0xb80"] for pid, f in frames.items() if pid in sleeping}
    doc = _search(capsys, "__schedule+0x43c", "-t")
    assert int(doc["value"], 16) == address and not doc["truncated"]
    found = {h["task"]["pid"] for h in doc["hits"]}
    assert len(sleeping) > 40 and sleeping <= found
    for h in doc["hits"]:  # on the task's own stack
        assert (
            int(h["task"]["stack"], 16)
            <= int(h["address"], 16)
            < int(h["task"]["stack"], 16) + 0x4000
        )
    one = _search(capsys, "__schedule+0x43c", "-t", "--pid", "2")
    assert {h["task"]["pid"] for h in one["hits"]} == {2}
    capped = _search(capsys, "__schedule+0x43c", "-t", "--limit", "3")
    assert len(capped["hits"]) == 3 and capped["truncated"]


def test_memory_holding_a_value(capsys: pytest.CaptureFixture[str]) -> None:
    """The first 8 bytes of the guest's banner: every hit holds them in the ELF file, and
    linux_banner itself is among the hits."""
    banner = json.loads((SAMPLES / NAME / "facts.json").read_text())["linux_banner"]
    value = banner.encode()[:8]
    doc = _search(capsys, value.hex())
    assert doc["hits"] and not doc["truncated"]
    for h in doc["hits"]:
        assert elf_physical(NAME, int(h["physical"], 16), 8) == value
    assert main(["sym", DUMP, "linux_banner", "--json"]) == 0
    virtual = int(json.loads(capsys.readouterr().out)["address"], 16)
    assert main(["info", DUMP, "--json"]) == 0
    lay = json.loads(capsys.readouterr().out)["va_layout"]
    phys = virtual - int(lay["kernel_base"], 16) + int(lay["kernel_base_phys"], 16)
    assert f"0x{phys:x}" in {h["physical"] for h in doc["hits"]}
    assert main(["search", DUMP, "1" * 17]) == 2
    assert "does not fit in 64 bits" in capsys.readouterr().err
