"""``rd`` as crash has it: -8/-16/-32/-64 word sizes, -p physical addresses, -s symbols.
Truth: the guest's own linux_banner (facts.json), the kernel's System.map for what
sys_call_table holds, and the dump's layout facts (kernel image's physical base)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from tests.helpers.real import elf_physical

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAME = "bpo12-6.12-busy"
DUMP = str(SAMPLES / NAME / "vmcore.zst")


def _rd(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["rd", DUMP, *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _bytes(doc: dict) -> bytes:
    size = doc["bits"] // 8
    return b"".join(int(w["value"], 16).to_bytes(size, "big") for w in doc["words"])


def test_word_sizes_read_the_same_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    banner = json.loads((SAMPLES / NAME / "facts.json").read_text())["linux_banner"]
    wanted = banner.encode()[:32]
    for bits in (8, 16, 32, 64):
        doc = _rd(capsys, "linux_banner", str(32 * 8 // bits), f"-{bits}")
        assert doc["bits"] == bits and len(doc["words"]) == 32 * 8 // bits
        assert _bytes(doc) == wanted, bits
    assert main(["rd", DUMP, "linux_banner", "16", "-8"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith("   Linux version 6.") and " 4c 69 6e 75 " in line


def test_physical_reads_absolute_memory(capsys: pytest.CaptureFixture[str]) -> None:
    """rd -p of the kernel image's banner: the bytes the ELF file holds at that physical
    address, which are the guest's own banner."""
    banner = json.loads((SAMPLES / NAME / "facts.json").read_text())["linux_banner"]
    assert main(["info", DUMP, "--json"]) == 0
    layout = json.loads(capsys.readouterr().out)["va_layout"]
    virtual = _rd(capsys, "linux_banner", "4")
    phys = (
        int(virtual["address"], 16)
        - int(layout["kernel_base"], 16)
        + int(layout["kernel_base_phys"], 16)
    )
    physical = _rd(capsys, "-p", f"{phys:x}", "4")
    assert physical["physical"] is True
    assert _bytes(physical) == elf_physical(NAME, phys, 32) == banner.encode()[:32]
    assert main(["rd", DUMP, "-p", "linux_banner"]) == 2
    assert "not a hex physical address" in capsys.readouterr().err


def test_symbols_in_words_name_what_system_map_names(capsys: pytest.CaptureFixture[str]) -> None:
    """sys_call_table's first entries, as -s names them, are System.map's functions moved
    by the dump's KASLR offset."""
    import zstandard

    text = zstandard.ZstdDecompressor().stream_reader(
        (SAMPLES / NAME / "System.map.zst").open("rb")
    )
    by_address = {}
    for line in text.read().decode().splitlines():
        address, kind, name = line.split()[:3]
        if kind in "tT":
            by_address.setdefault(int(address, 16), name)
    doc = _rd(capsys, "sys_call_table", "4", "-s")
    shift = int(doc["words"][0]["value"], 16) - next(
        a for a, n in by_address.items() if n == doc["words"][0]["symbol"].split("+")[0]
    )
    for w in doc["words"]:
        assert w["symbol"] == by_address[int(w["value"], 16) - shift] + "+0x0"
    assert main(["rd", DUMP, "sys_call_table", "2", "-s"]) == 0
    assert "__s390x_sys_ni_syscall+0x0 __s390x_sys_exit+0x0" in capsys.readouterr().out
