"""``backchain dis`` against GNU objdump on kernel code read from the bundled real dumps.

The truth is ``s390x-linux-gnu-objdump -b binary -m s390:64-bit -D`` of the same bytes
(Debian binutils-s390x-linux-gnu): instruction boundaries and operands must agree. The two
spell some things differently (``brcl 0,X`` is objdump's ``jgnop X``; hex vs decimal
displacements; objdump names base register %r0); those are normalised, nothing else.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.code.insn import Instruction, decode, insn_length
from explorer.code.listing import function_code, make_listing, resolve
from explorer.code.text import CodeText
from explorer.model.kernel import Kernel
from explorer.model.opening import open_kernel
from tests.helpers.objdump import needs_objdump, objdump

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"

#: Kernel functions compared per sample: C with prologues, calls, jump labels and
#: instructions Capstone does not know (lric/stric in 6.1's __schedule), and asm entry code.
FUNCTIONS = {
    "deb12-6.1-idle": (
        "__schedule",
        "do_nanosleep",
        "schedule_timeout",
        "__switch_to",
        "ext_int_handler",
        "system_call",
        "pgm_check_handler",
        "mcck_int_handler",
        "psw_idle",
    ),
    "bpo12-6.12-busy": ("__schedule", "fdget", "ksys_read", "ext_int_handler", "__do_syscall"),
}
_TOKEN = re.compile(r"%[a-z]+\d+|-?0x[0-9a-f]+|-?\d+")
#: Capstone's mask-first branch forms; objdump folds the mask into the mnemonic.
_MASK_FIRST = frozenset({"bc", "bcr", "brc", "brcl"})


@cache
def _kernel(name: str) -> Kernel:
    return open_kernel(str(SAMPLES / name / "vmcore.zst"))


def _tokens(text: str) -> list[object]:
    return [t if t.startswith("%") else int(t, 0) for t in _TOKEN.findall(text)]


def normalised(insn: Instruction, od_mnemonic: str, od_operands: str) -> tuple[list, list]:
    """Both operand lists after removing the known spelling differences only."""
    ours = _tokens(insn.operands)
    theirs = _tokens(re.sub(r"\(([^,()]*),%r0\)", r"(\1)", od_operands.split("<")[0]))
    if insn.mnemonic in _MASK_FIRST and not od_mnemonic.startswith(insn.mnemonic):
        ours = ours[1:]  # brcl 0,X = jgnop X; bcr 15,%r14 = br %r14
        if od_mnemonic == "nopr" and ours == ["%r0"]:
            ours = []
    if insn.mnemonic.startswith("risb") and od_mnemonic.endswith("z") and len(ours) == 5:
        ours[3] = int(ours[3]) & 0x7F  # risbg ...,0xbf = risbgz ...,63 (the zero bit)
    return ours, theirs


def compare(insns: list[Instruction], od: dict[int, tuple[int, str, str]]) -> list[str]:
    """Every disagreement between our instructions and objdump's.

    Where either side does not know an opcode the two may part: we resync by the opcode's
    length and show ``.insn``; objdump 2.40 prints ``.long`` words and stays out of step
    until the two meet on an instruction start again. Nothing is compared in such a stretch
    (both sides' unknown opcodes); everywhere else boundaries and operands must agree.
    """
    problems = []
    by_address = {i.address: i for i in insns}
    in_step = True
    for address in sorted(set(by_address) | set(od)):
        insn, theirs = by_address.get(address), od.get(address)
        unknown = (insn is not None and not insn.decoded) or (
            theirs is not None and theirs[1] in (".long", ".short")
        )
        if unknown:
            in_step = False
            # objdump knows a few of ours (vlm with an alignment hint): same length then.
            known = theirs is not None and theirs[1] not in (".long", ".short")
            if insn is not None and theirs is not None and known and theirs[0] != insn.size:
                problems.append(f"0x{address:x}: .insn but objdump has {theirs}")
            continue
        if insn is not None and theirs is not None:
            in_step = True
        elif in_step:
            problems.append(
                f"0x{address:x}: only "
                + (f"we start {insn.text}" if insn else f"objdump starts {theirs}")
            )
            continue
        if insn is None or theirs is None:
            continue
        size, mnemonic, operands = theirs
        if size != insn.size:
            problems.append(f"0x{address:x} {insn.text}: {size} bytes in objdump")
        a, b = normalised(insn, mnemonic, operands)
        if a != b:
            problems.append(f"0x{address:x} {insn.text} != {mnemonic} {operands}")
    return problems


@needs_objdump
@pytest.mark.parametrize(
    ("sample", "function"), [(s, f) for s, names in FUNCTIONS.items() for f in names]
)
def test_function_matches_objdump(sample: str, function: str, tmp_path: Path) -> None:
    code = CodeText(_kernel(sample))
    func = code.function_named(function)
    assert func is not None and func.size > 0
    insns = function_code(code, func)
    data = code.read(func.start, func.size)
    assert data is not None
    assert sum(i.size for i in insns) == func.size  # the listing covers every byte
    assert compare(insns, objdump(data, func.start, tmp_path)) == []


@needs_objdump
def test_a_stretch_of_text_matches_objdump(tmp_path: Path) -> None:
    """64 KiB of 6.12 text from __schedule on: many functions, one linear sweep."""
    code = CodeText(_kernel("bpo12-6.12-busy"))
    start = resolve(code, "__schedule")
    data = code.read(start, 0x10000)
    assert data is not None
    insns = decode(data, start)
    assert len(insns) > 10000
    assert compare(insns, objdump(data, start, tmp_path)) == []


def test_unknown_opcodes_resync_by_length() -> None:
    """6.1's __schedule holds lric/stric, which Capstone 5 does not know: the listing goes on
    past them (plain ``disasm`` stops at the first) with each shown as .insn of its length."""
    code = CodeText(_kernel("deb12-6.1-idle"))
    func = code.function_named("__schedule")
    assert func is not None
    insns = function_code(code, func)
    unknown = [i for i in insns if not i.decoded]
    assert unknown and all(i.size == insn_length(i.raw[0]) == 6 for i in unknown)
    assert unknown[0].raw[0] == 0xEB and unknown[0].raw[5] in (0x60, 0x61)  # stric, lric
    assert insns[-1].end == func.end
    assert [i.address for i in insns[1:]] == [i.end for i in insns[:-1]]


def test_length_from_opcode_bits() -> None:
    assert [insn_length(b) for b in (0x07, 0x0D, 0x41, 0xA7, 0xB9, 0xC0, 0xE3, 0xEB)] == [
        2,
        2,
        4,
        4,
        4,
        6,
        6,
        6,
    ]


def test_dis_cli_marks_psw_and_names_targets(capsys: pytest.CaptureFixture[str]) -> None:
    """CPU 0 of the busy 6.12 sample took an external interrupt in fdget+0x80 (its lowcore's
    external old PSW): ``dis fdget+0x80`` lists fdget with that instruction marked."""
    dump = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
    assert main(["dis", dump, "fdget+0x80"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("fdget: 0x3fffed09df0-")
    marked = [ln for ln in lines if "<==" in ln]
    assert len(marked) == 1
    assert marked[0].startswith("0x3fffed09e70 <fdget+0x80>:")
    assert "stg" in marked[0] and "ADDR, CPU 0 external old PSW" in marked[0]
    assert any("cijlh" in ln and "<fdget+0xb4>" in ln for ln in lines)

    assert main(["dis", dump, "fdget+0x80", "-r", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    last = doc["instructions"][-1]
    assert last["address"] == "0x3fffed09e70" and last["symbol"] == "fdget+0x80"
    assert doc["instructions"][0]["symbol"] == "fdget+0x0"
    assert doc["function"]["name"] == "fdget"


def test_dis_cli_bad_symbol(capsys: pytest.CaptureFixture[str]) -> None:
    dump = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
    assert main(["dis", dump, "no_such_function_xyz"]) == 2
    assert "no such symbol" in capsys.readouterr().err


def test_dis_marks_an_address_inside_an_instruction() -> None:
    code = CodeText(_kernel("bpo12-6.12-busy"))
    address = resolve(code, "fdget+0x14") + 3  # inside the 6-byte lay
    listing = make_listing(code, address, marks={address: ["ADDR"]})
    (hit,) = [ln for ln in listing.lines if ln.marks]
    assert hit.insn.mnemonic == "lay" and "inside this instruction" in hit.marks[0]


@needs_objdump
def test_compare_catches_a_wrong_listing(tmp_path: Path) -> None:
    """The comparison is not vacuous: a listing started 2 bytes late, or with an operand
    changed, disagrees with objdump."""
    code = CodeText(_kernel("bpo12-6.12-busy"))
    func = code.function_named("fdget")
    assert func is not None
    data = code.read(func.start, func.size)
    assert data is not None
    od = objdump(data, func.start, tmp_path)
    assert compare(decode(data[2:], func.start + 2), od)
    insns = decode(data, func.start)
    lay = next(i for i in insns if i.mnemonic == "lay")
    wrong = Instruction(lay.address, lay.raw, lay.mnemonic, "%r15, -0x48(%r15)")
    assert compare([wrong if i is lay else i for i in insns], od) == [
        f"0x{lay.address:x} lay %r15, -0x48(%r15) != lay %r15,-64(%r15)"
    ]


def test_capstone_stays_out_of_commands_that_need_no_code() -> None:
    """``backchain --help`` and ``info`` do not load Capstone; ``dis`` does."""
    import sys

    dump = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
    probe = (
        "import sys, contextlib, io\n"
        "from explorer.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(sys.argv[1:])\n"
        "print('capstone' in sys.modules)\n"
    )
    loaded = {}
    for argv in (["--help"], ["info", dump], ["dis", dump, "fdget"]):
        out = subprocess.run(
            [sys.executable, "-c", probe, *argv], capture_output=True, text=True, check=True
        ).stdout
        loaded[argv[0]] = out.strip().splitlines()[-1]
    assert loaded == {"--help": "False", "info": "False", "dis": "True"}
