"""``backchain sym`` and ``backchain mod``, and frames in module code named from the module's
own kallsyms (``name+0xoff/0xsize [module]``, as the kernel prints them)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.kernel import Options
from explorer.model.opening import kernel_of
from explorer.training.synthetic import Frame, SyntheticKernel
from parsers.dumps.dumpfile import open_dump
from parsers.symbols.table import load_system_map
from tests.helpers.kernels import NANOSLEEP, analyse, base_kernel, open_synthetic, sleeper

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
#: Debian's taint letters for an out-of-tree (O, bit 12) unsigned (E, bit 13) module.
OOT_UNSIGNED = (1 << 12) | (1 << 13)


def _console(folder: Path) -> str:
    path = folder / "console.log"
    return path.read_text(errors="replace") if path.is_file() else ""


def _module_kernel(folder: Path) -> tuple[Path, int]:
    """A sleeper whose third frame returns into ``dummy_work`` of module dummy_drv."""
    k = base_kernel("current")
    symbols = [("dummy_init", 0x0, "t"), ("dummy_work", 0x30, "T"), ("dummy_exit", 0x100, "t")]
    text = k.add_module("dummy_drv", 0x200, symbols=symbols, taints=OOT_UNSIGNED)
    frames = list(NANOSLEEP)
    frames[2] = Frame("do_nanosleep", r14=text + 0x40)
    sleeper(k, frames=frames)
    return k.save(folder), text


def test_frame_in_module_named_from_its_kallsyms(tmp_path: Path) -> None:
    k = base_kernel("current")
    symbols = [("dummy_init", 0x0, "t"), ("dummy_work", 0x30, "T"), ("dummy_exit", 0x100, "t")]
    text = k.add_module("dummy_drv", 0x200, symbols=symbols, taints=OOT_UNSIGNED)
    frames = list(NANOSLEEP)
    frames[2] = Frame("do_nanosleep", r14=text + 0x40)
    sleeper(k, frames=frames)
    kernel = open_synthetic(k, tmp_path)
    a = analyse(kernel, 100)
    assert kernel.symbolize(a.walk.steps[2].ip) == "dummy_work+0x10/0xd0 [dummy_drv]"
    # The last symbol runs to the end of the module's text (find_kallsyms_symbol's nextval).
    assert kernel.symbolize(text + 0x1FF) == "dummy_exit+0xff/0x100 [dummy_drv]"
    assert kernel.symbolize(text + 0x200) is None
    assert a.verdict.reliable
    (module,) = kernel.modules.modules
    assert (module.name, module.base, module.state, module.taint_letters) == (
        "dummy_drv",
        text,
        "Live",
        "OE",
    )


def test_sym_and_mod_on_a_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump, text = _module_kernel(tmp_path)
    assert main(["sym", str(dump), f"{text + 0x40:x}", "dummy_drv:dummy_exit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{text + 0x40:016x} (T) dummy_work+0x10/0xd0 [dummy_drv]",
        f"{text + 0x100:016x} (t) dummy_exit [dummy_drv]",
    ]
    assert main(["sym", "--json", str(dump), "dummy_work"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {k: doc[k] for k in ("name", "address", "size", "module")} == {
        "name": "dummy_work",
        "address": f"0x{text + 0x30:x}",
        "size": 0xD0,
        "module": "dummy_drv",
    }
    assert main(["mod", "--json", str(dump)]) == 0
    (row,) = json.loads(capsys.readouterr().out)["modules"]
    assert (row["name"], row["base"], row["state"], row["taint"], row["symbols"]) == (
        "dummy_drv",
        f"0x{text:x}",
        "Live",
        "OE",
        3,
    )
    assert row["size"] == 0x200 + 0x1000  # core_layout.size as the builder wrote it
    assert main(["mod", str(dump)]) == 0
    out = capsys.readouterr().out
    assert "dummy_drv" in out and "Live" in out and " OE " in out


def test_sym_failures_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dump, _ = _module_kernel(tmp_path)
    assert main(["sym", str(dump), "no_such_symbol", "schedule"]) == 2
    captured = capsys.readouterr()
    assert "no symbol 'no_such_symbol'" in captured.err
    assert "(T) schedule" in captured.out  # the other query is still answered


@pytest.mark.parametrize("name", ["deb12-6.1-idle", "bpo12-6.12-busy"])
def test_sym_on_a_dump_alone(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """``sym init_task`` on the dump alone (kallsyms; 6.1: found as its own parent) equals
    System.map's value after the KASLR offset; an address resolves back to its symbol."""
    alone = tmp_path / "vmcore.zst"
    try:
        os.link(SAMPLES / name / "vmcore.zst", alone)
    except OSError:
        shutil.copy2(SAMPLES / name / "vmcore.zst", alone)
    system_map = load_system_map(SAMPLES / name / "System.map.zst")
    kaslr = 0x3FFFE854000 if name.startswith("bpo12-6.12") else 0
    init_task = system_map.require("init_task") + kaslr
    schedule = system_map.require("schedule") + kaslr
    assert main(["sym", "--json", str(alone), "init_task", f"0x{schedule + 0x3E:x}"]) == 0
    first, second = json.loads(capsys.readouterr().out)
    assert first["address"] == f"0x{init_task:x}" and first["module"] is None
    assert (second["name"], second["address"], second["offset"]) == (
        "schedule",
        f"0x{schedule:x}",
        0x3E,
    )
    assert main(["mod", str(alone)]) == 0
    assert capsys.readouterr().out == "no modules loaded\n"  # these guests loaded none


def _proc_modules(console: str) -> list[tuple[str, int, str, int]]:
    """/proc/modules as the guest printed it: (name, size, state, address)."""
    block = console.split("BACKCHAIN-MODULES-BEGIN\n", 1)[1].split("BACKCHAIN-MODULES-END")[0]
    rows = []
    for line in block.splitlines():
        name, size, _refs, _deps, state, address = line.split()[:6]
        rows.append((name, int(size), state, int(address, 16)))
    return rows


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in SAMPLES.glob("*") if "BACKCHAIN-MODULES-BEGIN" in _console(p)),
)
def test_mod_equals_the_guests_proc_modules(name: str, capsys: pytest.CaptureFixture[str]):
    """mod on the dump alone (kallsyms; the list head found in code on 6.1) and with its
    System.map lists what the guest's /proc/modules said."""
    want = _proc_modules(_console(SAMPLES / name))
    assert want
    dump = SAMPLES / name / "vmcore.zst"
    for options in ([], ["--map", str(SAMPLES / name / "System.map.zst")]):
        kernel = kernel_of(
            open_dump(str(dump)), Options(system_map=options[1] if options else None)
        )
        got = [(m.name, m.size, m.state, m.base) for m in kernel.modules.modules]
        assert got == want, options
        assert kernel.modules.warnings == []


def test_synthetic_builder_writes_every_module_key() -> None:
    k = SyntheticKernel("6.1.0-50-s390x")
    assert {"module.kallsyms", "mod_kallsyms.strtab", "module.taints"} <= set(k.offsets)
