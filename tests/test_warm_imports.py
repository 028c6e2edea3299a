"""A warm ``check`` (its caches filled by an earlier run) imports none of the heavy
packages: no disassembler, no ELF/DWARF library, no construct, no TUI. Measured on the
modules a real run loaded (sys.modules in a subprocess), not on a clock."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import oracles

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "real"
#: (zstandard is not among them: the bundled dumps are .zst files, read through it)
HEAVY = {"capstone", "elftools", "construct", "textual", "rich", "pdb"}

_PROBE = """
import contextlib, io, json, sys
from explorer.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = main(sys.argv[1:])
print(json.dumps({"status": status, "modules": sorted(sys.modules), "out": out.getvalue()}))
"""


def _run(*argv: str) -> dict:
    """The command's status, every module it imported (``modules``, full names; ``packages``,
    their top-level names) and its standard output (``out``), from a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    got = json.loads(done.stdout.splitlines()[-1])
    got["packages"] = sorted({m.split(".")[0] for m in got["modules"]})
    return got


def _warm_twice(*argv: str) -> dict:
    _run(*argv)  # fills the caches (symbols, types, prologue states)
    return _run(*argv)


def test_warm_check_with_a_vmlinux_imports_nothing_heavy() -> None:
    release = "6.1.0-50-s390x"
    vmlinux = oracles.debug_vmlinux(release)
    dump = SAMPLES / "deb12-6.1-idle" / "vmcore.zst"
    got = _warm_twice("check", "--json", str(dump), "--vmlinux", str(vmlinux))
    assert got["status"] == 0 and len(json.loads(got["out"])) > 50
    assert not set(got["packages"]) & HEAVY, set(got["packages"]) & HEAVY


@pytest.mark.parametrize("name", ["deb12-6.1-idle", "rebuilt-5.10-busy", "bpo12-6.12-busy"])
def test_warm_check_of_a_bundled_sample_imports_nothing_heavy(name: str) -> None:
    got = _warm_twice("check", "--json", str(SAMPLES / name / "vmcore.zst"))
    assert got["status"] == 0 and len(json.loads(got["out"])) > 20
    assert "explorer" in got["packages"]  # the probe saw the modules
    assert not set(got["packages"]) & HEAVY, set(got["packages"]) & HEAVY


@pytest.mark.parametrize("name", ["bpo12-6.12-busy", "klp-6.12-stalled"])
def test_info_without_a_vmlinux_imports_no_dwarf_reader(name: str) -> None:
    """``info`` of a dump alone (its types from BTF) imports no DWARF reader, and the
    livepatch reader only for a kernel with a livepatch loaded (klp-6.12-stalled has one)."""
    got = _run("info", str(SAMPLES / name / "vmcore.zst"))
    assert got["status"] == 0
    modules = set(got["modules"])
    assert "parsers.types.profile" in modules  # the probe saw the modules
    assert not {"parsers.dwarf.reader", "parsers.dwarf.structs"} & modules
    assert ("explorer.livepatch.state" in modules) == name.startswith("klp-")


def test_check_json_with_a_vmlinux_imports_no_kallsyms_reader_grader_or_text_verdicts() -> None:
    """``check --json`` with a vmlinux reads no kallsyms, grades no recovered chain when no
    walk broke (6.1 idle: none does), and builds no text verdicts: the modules of those (six
    frozen dataclasses, ~10 ms of a start) stay unimported."""
    vmlinux = oracles.debug_vmlinux("6.1.0-50-s390x")
    dump = SAMPLES / "deb12-6.1-idle" / "vmcore.zst"
    got = _run("check", "--json", str(dump), "--vmlinux", str(vmlinux))
    assert got["status"] == 0 and len(json.loads(got["out"])) > 50
    assert "explorer.walk.analysis" in got["modules"]  # the probe saw the walk's modules
    unwanted = {"parsers.symbols.kallsyms", "explorer.code.recover", "explorer.walk.summary"}
    assert not unwanted & set(got["modules"]), unwanted & set(got["modules"])
