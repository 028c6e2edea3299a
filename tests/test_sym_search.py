"""``sym GLOB`` and ``sym -q TEXT`` (crash's sym -q) against the kernel's own System.map
and the modules' symbols the guest printed (/proc/kallsyms lines in facts.json when present)."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import pytest
import zstandard

from explorer.cli import main

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"


def _system_map(name: str) -> list[tuple[int, str, str]]:
    raw = zstandard.ZstdDecompressor().stream_reader((SAMPLES / name / "System.map.zst").open("rb"))
    rows = []
    for line in raw.read().decode().splitlines():
        address, kind, sym = line.split()[:3]
        rows.append((int(address, 16), kind, sym))
    return rows


@pytest.mark.parametrize(("query", "search"), [("sysrq_handle_*", False), ("sysrq_handle", True)])
def test_sym_lists_what_system_map_lists(
    query: str, search: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "bpo12-6.12-busy"
    argv = ["sym", str(SAMPLES / name / "vmcore.zst"), query, "--json"]
    assert main([*argv, "-q"] if search else argv) == 0
    found = json.loads(capsys.readouterr().out)
    truth = {
        (sym, kind)
        for _, kind, sym in _system_map(name)
        if (query in sym if search else fnmatch.fnmatchcase(sym, query))
    }
    assert len(truth) > 5
    assert {(f["name"], f["type"]) for f in found} == truth
    # One KASLR shift moves every System.map address to the dump's.
    by_name = {sym: address for address, _, sym in _system_map(name)}
    shifts = {int(f["address"], 16) - by_name[f["name"]] for f in found}
    assert len(shifts) == 1


def test_a_glob_reaches_module_symbols(capsys: pytest.CaptureFixture[str]) -> None:
    """kjournald2 lives in jbd2 (the kernel's own sysrq-t trace says so)."""
    name = "sid-7.2-modules"
    facts = json.loads((SAMPLES / name / "facts.json").read_text())
    jbd2 = next(t for t in facts["sysrq_t"] if t["comm"] == "jbd2/vda-8")
    assert jbd2["frames"][2]["module"] == "jbd2"
    dump = str(SAMPLES / name / "vmcore.zst")
    assert main(["sym", dump, "kjournald*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].endswith(" (t) kjournald2 [jbd2]")
    frame_address = int(jbd2["frames"][2]["address"], 16)
    start = int(out[0].split()[0], 16)
    offset, size = (int(x, 16) for x in jbd2["frames"][2]["symbol"].split("+")[1].split("/"))
    assert frame_address - offset == start
    assert main(["sym", dump, "jbd2:kjournald?", "--json"]) == 0
    (doc,) = json.loads(capsys.readouterr().out)
    assert (doc["name"], doc["module"], doc["size"]) == ("kjournald2", "jbd2", size)
    assert main(["sym", dump, "nosuch_*"]) == 2
    assert "no symbol name matches 'nosuch_*'" in capsys.readouterr().err
