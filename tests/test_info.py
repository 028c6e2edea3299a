"""The kernel model and `backchain info` on a synthetic 2-CPU dump."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.kernel import Options
from explorer.model.opening import open_kernel


def test_model_of_synthetic_dump(synthetic_2cpu: Path) -> None:
    k = open_kernel(str(synthetic_2cpu))
    assert k.release == "6.1.0-synthetic-s390x"
    assert k.vmcoreinfo is not None and k.vmcoreinfo.source.startswith("memory")
    assert k.layout.kind == "legacy"
    assert k.symbols is not None and k.symbols.address_of("do_work") == 0x101100
    assert len(k.cpus) == 2
    c0, c1 = k.cpus
    assert (c0.number, c1.number) == (0, 1)
    assert c0.registers.psw.wait and not c1.registers.psw.wait
    assert k.symbolize(c1.registers.psw.addr) == "do_work+0x42/0x300"
    assert c1.lowcore is not None and c1.lowcore.current_pid == 42
    irq = c0.stack("irq")
    assert irq is not None and irq.end - irq.begin == 16384 and irq.begin % 16384 == 0
    assert c0.stack("restart") == c1.stack("restart")
    assert k.asce and k.read(0x37F00000000, 8) == bytes.fromhex("feedfacecafebeef")
    k.close()


def test_info_text(synthetic_2cpu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(synthetic_2cpu)]) == 0
    out = capsys.readouterr().out
    assert "release      6.1.0-synthetic-s390x" in out
    assert "do_work+0x42/0x300" in out
    assert "arch_cpu_idle+0x1c/0x100 (wait state)" in out
    assert "R:0 T:1 IO:1 EX:1 Key:0 M:1 W:1 P:0 AS:3 CC:0 PM:0 RI:0 EA:3" in out
    assert "external:do_work+0x10/0x300" in out


def test_info_json(synthetic_2cpu: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--json", str(synthetic_2cpu)]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["release"] == "6.1.0-synthetic-s390x"
    assert [c["cpu"] for c in facts["cpus"]] == [0, 1]
    assert facts["cpus"][1]["current_task"] == "0x201d000"
    assert facts["cpus"][0]["psw"]["symbol"] == "arch_cpu_idle+0x1c/0x100"
    assert facts["va_layout"]["kind"] == "legacy"


def test_vmcoreinfo_note_preferred(tmp_path: Path) -> None:
    from tests.helpers.dumps import two_cpu_dump

    k = open_kernel(str(two_cpu_dump(tmp_path, vmcoreinfo_note=True)), Options())
    assert k.vmcoreinfo is not None and k.vmcoreinfo.source == "ELF note"


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "empty file"),
        (b"garbage" * 100, "not a dump format"),
        (b"KDUMP   " + b"\0" * 100, "compressed kdump"),
    ],
)
def test_info_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, words: str
) -> None:
    path = tmp_path / "bad"
    path.write_bytes(content)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"backchain: {path}: ") and words in err
    assert err.count("\n") == 1


def test_info_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_info_on_s390_stand_alone_dump(
    synthetic_2cpu: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """s390 formats carry no notes: CPUs come from the lowcore save areas."""
    from parsers.dumps.dumpfile import open_dump
    from parsers.write.convert import write_s390

    out = tmp_path / "dump.s390"
    write_s390(open_dump(str(synthetic_2cpu)), str(out), extended=True)
    (tmp_path / "System.map").write_text((synthetic_2cpu.parent / "System.map").read_text())
    k = open_kernel(str(out))
    assert [c.number for c in k.cpus] == [0, 1]
    assert k.cpus[1].registers.source == "lowcore save area"
    assert k.symbolize(k.cpus[1].registers.psw.addr) == "do_work+0x42/0x300"
    assert main(["info", str(out)]) == 0
    assert "s390_ext stand-alone dump" in capsys.readouterr().out
