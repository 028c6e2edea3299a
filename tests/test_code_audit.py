"""``backchain audit``: frames without a back chain, and stack switches.

Truth: an object built by the s390x cross compiler (Debian gcc-s390x-linux-gnu) once with
and once without -mbackchain (both -mpacked-stack, as the kernel builds), whose frames are
checked independently in objdump's listing; Debian's own kernels (the bundled dumps, the
-dbg vmlinux and modules where fetched), where the C code stores every back chain.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.code.audit import audit_file, audit_kernel
from explorer.model.kernel import Kernel
from explorer.model.opening import open_kernel
from tests.helpers import oracles

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
GCC = shutil.which("s390x-linux-gnu-gcc")
OBJDUMP = shutil.which("s390x-linux-gnu-objdump")
needs_gcc = oracles.needs("gcc", "objdump")

#: leaf() needs no frame; the others call out, so they allocate one: big() 256 bytes of
#: locals, use_fast() only after an early return, tail() although its call is last.
SOURCE = """
extern int ext(int);
extern void sink(char *);
int leaf(int a) { return a * 3 + 1; }
int caller(int a) { return ext(a) + ext(a + 1); }
int big(int a) { char buf[256]; sink(buf); return buf[a]; }
static int fast_path(int a) { if (a < 0) return 0; return ext(a) * 2; }
int use_fast(int a) { return fast_path(a) + 1; }
void tail(int a) { ext(a); }
"""
ALLOCATING = {"caller", "big", "use_fast", "tail"}


def _build(folder: Path, backchain: bool) -> Path:
    src = folder / "m.c"
    src.write_text(SOURCE)
    out = folder / ("with.o" if backchain else "without.o")
    flags = ["-O2", "-mpacked-stack", "-msoft-float", "-fno-optimize-sibling-calls"]
    if backchain:
        flags.append("-mbackchain")
    subprocess.run([GCC or "gcc", *flags, "-c", "-o", str(out), str(src)], check=True)
    return out


def _objdump_frames(obj: Path) -> dict[str, tuple[bool, bool]]:
    """Per function, from objdump's text: (decrements r15, stores at 152(%r15))."""
    text = subprocess.run(
        [OBJDUMP or "objdump", "-d", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    out: dict[str, tuple[bool, bool]] = {}
    name = None
    for line in text.splitlines():
        m = re.match(r"^[0-9a-f]+ <(\w+)>:$", line)
        if m:
            name = m.group(1)
            out[name] = (False, False)
            continue
        if name is None:
            continue
        dec = bool(re.search(r"\t(lay|aghi)\t%r15,-\d+", line))
        store = bool(re.search(r"\tstg\t%r\d+,152\(%r15\)", line))
        a, b = out[name]
        out[name] = (a or dec, b or store)
    return out


@needs_gcc
def test_object_without_backchain(tmp_path: Path) -> None:
    """Without -mbackchain exactly the frame-allocating functions are reported; with it,
    none (the same functions allocate frames and store the chain at 152(%r15))."""
    without, with_bc = _build(tmp_path, False), _build(tmp_path, True)
    frames = _objdump_frames(without)
    assert {n for n, (dec, _) in frames.items() if dec} == ALLOCATING
    assert not any(store for _, store in frames.values())
    frames_bc = _objdump_frames(with_bc)
    assert {n for n, (dec, store) in frames_bc.items() if dec and store} == ALLOCATING

    report = audit_file(str(without))
    assert report.kind == "object" and report.functions == 5 and report.allocating == 4
    assert {f.function for f in report.without_back_chain} == ALLOCATING
    assert report.stack_switches == []
    for f in report.without_back_chain:
        assert f.at.mnemonic in ("lay", "aghi") and f.at.operands.startswith("%r15, -")

    report = audit_file(str(with_bc))
    assert (report.functions, report.allocating, report.findings) == (5, 4, ())


@needs_gcc
def test_audit_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    obj = _build(tmp_path, False)
    assert main(["audit", str(obj), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["kind"] == "object" and doc["functions"] == 5
    big = next(f for f in doc["without_back_chain"] if f["function"] == "big")
    assert big["instruction"] == "lay %r15, -0x128(%r15)" and big["back_chain"] is None
    assert main(["audit", str(obj)]) == 0
    out = capsys.readouterr().out
    assert "frames without a back chain: 4" in out and "code that switches stacks: none" in out


def test_audit_rejects_what_is_not_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.ko"
    junk.write_bytes(b"\x7fELF" + bytes(60))
    assert main(["audit", str(junk)]) == 2
    assert "junk.ko" in capsys.readouterr().err


@cache
def _kernel(name: str) -> Kernel:
    return open_kernel(str(SAMPLES / name / "vmcore.zst"))


def test_dump_entry_code_switches_stacks() -> None:
    """6.12's entry code (from the sample's own text, __switch_to_asm .. the end of
    io_int_handler): the handlers load the kernel or async stack and zero its back chain;
    __switch_to_asm loads the next task's sp and stores none."""
    kernel = _kernel("bpo12-6.12-busy")
    syms = kernel.symbols
    start = syms.require("__switch_to_asm")
    end = syms.require("io_int_handler") + 0x100
    report = audit_kernel(kernel, (start, end))
    assert report.without_back_chain == []
    switches = {f.function: f for f in report.stack_switches}
    for name in ("system_call", "pgm_check_handler", "ext_int_handler", "io_int_handler"):
        f = switches[name]
        assert f.at.text.startswith("lg %r15, 0x348(%r13)")  # lowcore.kernel_stack
        assert f.back_chain is not None and f.back_chain[0] == "zero"
    assert switches["mcck_int_handler"].at.text.startswith("lg %r15, 0x368(%r13)")
    assert switches["__switch_to_asm"].back_chain is None


def test_dump_c_functions_store_their_back_chain() -> None:
    """A stretch of 6.1 C code from the dump (the scheduler core): every function that
    allocates a frame stores its back chain."""
    kernel = _kernel("deb12-6.1-idle")
    start = kernel.symbols.require("__schedule")
    report = audit_kernel(kernel, (start - 0x8000, start + 0x8000))
    assert report.functions > 30 and report.allocating > 20
    assert report.findings == ()


def test_a_real_asm_gap_in_510() -> None:
    """The rebuilt 5.10 kernel's s390_base_ext_handler (arch/s390/kernel/base.S) allocates
    a frame with `aghi %r15,-160` and stores no back chain: a real finding."""
    kernel = _kernel("rebuilt-5.10-busy")
    start = kernel.symbols.require("s390_base_ext_handler")
    report = audit_kernel(kernel, (start, start + 0x100))
    found = {f.function: f for f in report.without_back_chain}
    assert set(found) >= {"s390_base_ext_handler", "s390_base_pgm_handler"}
    assert found["s390_base_ext_handler"].at.text == "aghi %r15, -0xa0"


def test_debian_vmlinux_has_no_c_function_without_back_chain() -> None:
    """machine-code.md's census of 6.1: 25,773 functions allocate a frame, all store a back
    chain; the asm entry code switches stacks."""
    report = audit_file(str(oracles.debug_vmlinux("6.1.0-50-s390x")))
    assert report.kind == "vmlinux" and report.functions > 34000
    assert abs(report.allocating - 25773) < 10
    assert report.without_back_chain == []
    names = {f.function for f in report.stack_switches}
    assert {"system_call", "ext_int_handler", "io_int_handler", "__switch_to"} <= names


def test_debian_module_stores_its_chain_in_the_unpacked_slot() -> None:
    """chacha_s390.ko's chacha20_vx (perlasm) allocates 160 bytes and stores the old r15
    at 0(%r15), the layout without -mpacked-stack: the unwinder reads 152."""
    report = audit_file(str(oracles.debian_module("6.1.0-50-s390x", "chacha_s390.ko")))
    (f,) = report.without_back_chain
    assert f.function == "chacha20_vx" and f.back_chain is not None
    assert f.back_chain[0] == "unpacked" and f.back_chain[1].text == "stg %r0, 0(%r15)"


#: Two asm functions without .type (STT_NOTYPE with a .size, as v6.12's entry code is): one
#: switches to the stack in lowcore.kernel_stack and zeroes its back chain, one allocates a
#: frame and stores none (5.10's s390_base_ext_handler did this).
ASM = """
    .text
    .globl asm_switch
asm_switch:
    lg %r15,0x348(%r13)
    xc 152(8,%r15),152(%r15)
    br %r14
    .size asm_switch, .-asm_switch
    .globl asm_frame
asm_frame:
    stmg %r14,%r15,136(%r15)
    aghi %r15,-160
    brasl %r14,ext
    lmg %r14,%r15,296(%r15)
    br %r14
    .size asm_frame, .-asm_frame
"""


@needs_gcc
def test_asm_without_type(tmp_path: Path) -> None:
    src = tmp_path / "entry.S"
    src.write_text(ASM)
    obj = tmp_path / "entry.o"
    subprocess.run([GCC or "gcc", "-c", "-o", str(obj), str(src)], check=True)
    report = audit_file(str(obj))
    assert report.functions == 2
    (switch,) = report.stack_switches
    assert switch.function == "asm_switch" and switch.at.text == "lg %r15, 0x348(%r13)"
    assert switch.back_chain is not None and switch.back_chain[0] == "zero"
    (frame,) = report.without_back_chain
    assert frame.function == "asm_frame" and frame.at.text == "aghi %r15, -0xa0"
