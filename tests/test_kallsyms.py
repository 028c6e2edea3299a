"""Symbols from the dump itself (kallsyms through VMCOREINFO, or found in memory), against
independent truth: the System.map of the same build and the kernel's own Call Trace lines in
each sample's console log (facts.json keeps them per task, as printed:
``schedule+0x3e/0x110``)."""

from __future__ import annotations

import json
import os
import shutil
import struct
from functools import cache
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.kernel import Kernel, Options
from explorer.model.opening import kernel_of, open_kernel
from explorer.model.symbols import noreturn_caller
from explorer.model.tasks import find_tasks
from explorer.walk.analysis import analyse_task, unwind_context
from parsers.dumps.dumpfile import open_dump
from parsers.dumps.vmcoreinfo import parse_vmcoreinfo
from parsers.errors import SymbolError
from parsers.symbols.kallsyms import KallsymsTables, kallsyms_tables, read_kallsyms
from parsers.symbols.kallsyms_scan import scan_kallsyms
from parsers.symbols.table import SymbolTable, load_system_map, load_vmlinux_symbols
from tests.helpers import oracles
from tests.helpers.real import MOVED

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAMES = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())


@cache
def _alone(name: str) -> Kernel:
    """The sample's dump opened with nothing else: no System.map, no vmlinux, no profile."""
    return kernel_of(open_dump(str(SAMPLES / name / "vmcore.zst")), Options())


@cache
def _with_map(name: str) -> Kernel:
    return open_kernel(
        str(SAMPLES / name / "vmcore.zst"),
        Options(system_map=str(SAMPLES / name / "System.map.zst")),
    )


def _has_kallsyms(name: str) -> bool:
    return kallsyms_tables(_alone(name).vmcoreinfo) is not None


@pytest.mark.parametrize("name", NAMES)
def test_kallsyms_agree_with_system_map(name: str) -> None:
    alone = _alone(name)
    table = alone.symbols
    assert table is not None
    tables = kallsyms_tables(alone.vmcoreinfo)
    if tables is None:  # 5.10: found in memory by content (tests/test_kallsyms_scan.py)
        assert name.startswith("rebuilt-5.10"), "only the 5.10 sample lacks KALLSYMS"
        tables = scan_kallsyms(alone.image.read, alone.image.image_start()).tables
        assert table.source == f"kallsyms found in memory by content at 0x{tables.token_table:x}"
    else:
        assert table.source == "kallsyms in the dump"
    decoded = read_kallsyms(alone.image.read, tables)  # not from the symbol cache
    assert list(decoded.rows()) == list(table.rows())
    mapped = _with_map(name).symbols
    assert mapped is not None
    ours = set(table.rows())
    theirs = set(mapped.rows())
    # Every kallsyms entry is in System.map at the same (KASLR-relocated) address with the
    # same type; 6.12 has KALLSYMS_ALL (the same 80,620 symbols), 6.1 text symbols only.
    assert ours <= theirs
    missing = {address for address, _, _ in theirs - ours}
    if name.startswith("rebuilt-5.10"):  # KALLSYMS_ALL; System.map also lists the tables'
        assert len(table) == 53_709 and len(mapped) == 53_716  # own 7 labels, which 5.10's
        assert {n for _, _, n in theirs - ours} == {  # scripts/kallsyms.c leaves out of
            "kallsyms_offsets",  # the table (ignored_symbols: they vary between passes)
            "kallsyms_relative_base",
            "kallsyms_num_syms",
            "kallsyms_names",
            "kallsyms_markers",
            "kallsyms_token_table",
            "kallsyms_token_index",
        }
    elif table.has_data_symbols:  # KALLSYMS_ALL (6.12: 80,620; 7.2: 94,433): all of them
        assert len(table) == len(mapped)
    else:  # Debian 6.1: text symbols only (34,724 of 67,075)
        assert {kind for _, kind, _ in ours} <= set("TtWw") and len(table) < len(mapped)
    # Look-ups name the same symbol with the same offset and size at every symbol start and
    # two bytes into it (the first alias and the distance to the next symbol, as kallsyms;
    # in 5.10 the data symbol before kallsyms_offsets runs over the tables, as in the kernel).
    for address, _, _ in ours:
        for probe in (address, address + 2):
            known = mapped.lookup(probe)
            if known is not None and known.address + (known.size or 0) in missing:
                continue
            if table.is_text(probe) or table.has_data_symbols:
                assert str(table.lookup(probe)) == str(mapped.lookup(probe)), hex(probe)
            else:  # 6.1 kallsyms know text only: _etext and _einittext name nothing, as in
                assert table.lookup(probe) is None  # the kernel's is_ksym_addr()


@pytest.mark.parametrize("name", NAMES)
def test_init_task_without_system_map(name: str) -> None:
    alone, mapped = _alone(name), _with_map(name)
    assert alone.symbols is not None and mapped.symbols is not None
    linked = load_system_map(SAMPLES / name / "System.map.zst").address_of("init_task")
    assert linked is not None
    assert alone.symbols.address_of("init_task") == linked + (alone.kaslr_offset or 0)
    if not alone.symbols.has_data_symbols:  # text-only kallsyms (6.1): found as its own
        assert "real_parent" in alone.symbols.known_by("init_task")  # parent, and the
        modules = load_system_map(SAMPLES / name / "System.map.zst").address_of("modules")
        assert alone.symbols.address_of("modules") == modules  # module list head in code
        assert "find_module_all" in alone.symbols.known_by("modules")
        idle = load_system_map(SAMPLES / name / "System.map.zst").address_of("idle_threads")
        assert alone.symbols.address_of("idle_threads") == idle  # swapper/N of busy CPUs


_vmlinux = oracles.debug_vmlinux_of


@pytest.mark.parametrize("name", NAMES)
def test_frame_names_equal_the_kernels_call_traces(name: str) -> None:
    """Every frame of every task that did not move, named from the dump's own kallsyms and
    from System.map, equals the kernel's Call Trace text exactly (name+offset/size); for 5.10
    the dump's kallsyms are the ones found in its memory by content."""
    sources = {"System.map": _with_map(name), "kallsyms": _alone(name)}
    if not _has_kallsyms(name):  # 5.10: the dump's kallsyms found in memory by content
        assert _alone(name).symbols.source.startswith("kallsyms found in memory by content")
    _compare_call_traces(name, sources)


@pytest.mark.parametrize("name", NAMES)
def test_frame_names_from_vmlinux_equal_the_call_traces(name: str) -> None:
    """The same with the -dbg vmlinux's .symtab (ELF sizes ignored, aliases in nm order); and
    at every text symbol of System.map, vmlinux and System.map name the same."""
    path = _vmlinux(name)
    kernel = kernel_of(open_dump(str(SAMPLES / name / "vmcore.zst")), Options(vmlinux=str(path)))
    assert kernel.symbols is not None and kernel.symbols.source.startswith("vmlinux")
    _compare_call_traces(name, {"vmlinux": kernel})
    mapped = load_system_map(SAMPLES / name / "System.map.zst")
    vmlinux = load_vmlinux_symbols(path)
    for address, kind, _ in mapped.rows():
        if kind in "Tt":
            assert str(vmlinux.lookup(address + 2)) == str(mapped.lookup(address + 2))


def _module_suffix(frame: dict) -> str:
    """facts.json keeps the module apart; the Call Trace line ends with `` [jbd2]``."""
    return f" [{frame['module']}]" if frame.get("module") else ""


def _compare_call_traces(name: str, sources: dict[str, Kernel]) -> None:
    facts = json.loads((SAMPLES / name / "facts.json").read_text())
    for source, kernel in sources.items():
        scan = find_tasks(kernel)
        ctx = unwind_context(kernel)
        tasks = {t.pid: t for t in scan.tasks if t.pid}
        compared = 0
        for trace in facts["sysrq_t"]:
            pid = trace["pid"]
            if pid in MOVED[name] or pid not in tasks:
                continue
            walk = analyse_task(kernel, tasks[pid], ctx).walk
            got = [(hex(s.ip), kernel.symbolize(s.ip)) for s in walk.steps]
            want = [
                (hex(int(f["address"], 16)), f["symbol"] + _module_suffix(f))
                for f in trace["frames"]
            ]
            assert got == want, (source, pid, trace["comm"])
            compared += 1
        assert compared >= 54, source


@pytest.mark.parametrize("name", NAMES)
def test_dump_alone_in_an_empty_folder(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ps, bt and check on a dump copied alone into a folder print what they print with the
    System.map beside it."""
    alone = tmp_path / "vmcore.zst"
    try:
        os.link(SAMPLES / name / "vmcore.zst", alone)
    except OSError:
        shutil.copy2(SAMPLES / name / "vmcore.zst", alone)
    with_map = str(SAMPLES / name / "vmcore.zst")
    for args in (["ps"], ["check"], ["bt", "--pid", "2"], ["bt", "--pid", "2", "--json"]):
        outputs = []
        for dump in (str(alone), with_map):
            assert main([*args, dump]) == 0
            outputs.append(capsys.readouterr().out)
        assert outputs[0] == outputs[1], args
        assert "schedule" in outputs[0] or args == ["ps"]  # frames are named


def test_5_10_alone_says_where_its_symbols_come_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """5.10's VMCOREINFO has no KALLSYMS: ``info`` names the kallsyms found by content, at
    the System.map's kallsyms_token_table."""
    alone = tmp_path / "vmcore.zst"
    try:
        os.link(SAMPLES / "rebuilt-5.10-busy" / "vmcore.zst", alone)
    except OSError:
        shutil.copy2(SAMPLES / "rebuilt-5.10-busy" / "vmcore.zst", alone)
    mapped = load_system_map(SAMPLES / "rebuilt-5.10-busy" / "System.map.zst")
    token_table = mapped.address_of("kallsyms_token_table")
    assert token_table is not None
    assert main(["info", str(alone)]) == 0
    out, err = capsys.readouterr()
    assert f"53709 from kallsyms found in memory by content at 0x{token_table:x}\n" in out
    assert "warning" not in err


# -- the decoder on hand-made tables: long names and the 7.x self-relative offsets -------------
def _tables(names: list[tuple[str, str]], addrs: list[int], self_relative: bool) -> tuple:
    """Build kallsyms tables in a fake memory; every token is one character (plus one
    two-character token to show expansion)."""
    chars = sorted({c for t, n in names for c in t + n} | {"x"})
    tokens = ["xy", *chars]  # token 0 expands to two characters
    table = b"".join(t.encode() + b"\0" for t in tokens)
    index = []
    off = 0
    for t in tokens:
        index.append(off)
        off += len(t) + 1
    index += [0] * (256 - len(index))
    code = {t: i for i, t in enumerate(tokens)}
    blob = b""
    for kind, name in names:
        text = kind + name
        body = bytearray()
        i = 0
        while i < len(text):
            if text.startswith("xy", i):
                body.append(0)
                i += 2
            else:
                body.append(code[text[i]])
                i += 1
        n = len(body)
        blob += (bytes([n]) if n < 128 else bytes([0x80 | (n & 0x7F), n >> 7])) + body
    mem: dict[int, bytes] = {}
    base = 0x3FFFE000000  # near the symbols: 7.x offsets are s32 distances from their slot
    layout = {"num_syms": 0x100, "names": 0x200, "token_table": 0x10000, "token_index": 0x11000}
    layout["offsets"] = 0x12000
    mem[base + layout["num_syms"]] = struct.pack(">I", len(names))
    mem[base + layout["names"]] = blob
    mem[base + layout["token_table"]] = table
    mem[base + layout["token_index"]] = struct.pack(">256H", *index)
    off_addr = base + layout["offsets"]
    if self_relative:
        rel = [a - (off_addr + 4 * i) for i, a in enumerate(addrs)]
        mem[off_addr] = struct.pack(f">{len(rel)}i", *rel)
        relative_base = None
    else:
        mem[off_addr] = struct.pack(f">{len(addrs)}I", *(a - min(addrs) for a in addrs))
        relative_base = base + 0x13000
        mem[relative_base] = struct.pack(">Q", min(addrs))

    memory = bytearray(0x20000)
    for start, data in mem.items():
        memory[start - base : start - base + len(data)] = data

    def read(address: int, size: int) -> bytes:
        if not base <= address <= address + size <= base + len(memory):
            raise SymbolError(f"0x{address:x} not mapped")
        return bytes(memory[address - base : address - base + size])

    tables = KallsymsTables(
        names=base + layout["names"],
        num_syms=base + layout["num_syms"],
        token_table=base + layout["token_table"],
        token_index=base + layout["token_index"],
        offsets=off_addr,
        relative_base=relative_base,
    )
    return read, tables


@pytest.mark.parametrize("self_relative", [False, True])
def test_decoder_long_names_and_offsets(self_relative: bool) -> None:
    long_name = "a_very_long_symbol_" + "z" * 150  # > 127 tokens: a two-byte length
    names = [("T", "_stext"), ("T", "startup"), ("t", "xylophone"), ("T", long_name)]
    names += [("D", "init_task"), ("B", "_end")]
    addrs = [0x3FFFE954000, 0x3FFFE954000, 0x3FFFE954100, 0x3FFFE954200, 0x3FFFF000000]
    addrs.append(0x3FFFF100000)
    read, tables = _tables(names, addrs, self_relative)
    table = read_kallsyms(read, tables)
    assert list(table.rows()) == [(a, t, n) for a, (t, n) in zip(addrs, names, strict=True)]
    sym = table.lookup(0x3FFFE954104)
    assert str(sym) == "xylophone+0x4/0x100" and sym is not None and sym.type == "t"
    # The first alias at an address is the one the kernel names.
    assert str(table.lookup(0x3FFFE954000)) == "_stext+0x0/0x100"
    assert table.lookup(0x3FFFE954210).name == long_name  # type: ignore[union-attr]
    assert table.size_of(long_name) == 0x3FFFF000000 - 0x3FFFE954200
    assert table.lookup(0x3FFFF100000) is None  # _end: outside the kernel


def test_decoder_refuses_garbage() -> None:
    names = [("T", "a"), ("T", "b")]
    read, tables = _tables(names, [0x2000, 0x1000], False)  # not sorted
    with pytest.raises(SymbolError, match="not sorted"):
        read_kallsyms(read, tables)
    read, tables = _tables(names, [0x1000, 0x2000], False)

    def huge_count(address: int, size: int) -> bytes:
        if address == tables.num_syms:
            return struct.pack(">I", 1 << 30)
        return read(address, size)

    with pytest.raises(SymbolError, match="not a symbol count"):
        read_kallsyms(huge_count, tables)


def test_tables_need_every_key() -> None:
    info = parse_vmcoreinfo("SYMBOL(kallsyms_names)=100\nSYMBOL(kallsyms_num_syms)=80\n", "t")
    assert kallsyms_tables(info) is None
    assert kallsyms_tables(None) is None
    assert isinstance(SymbolTable([(0x10, "T", "f", 0), (0x20, "T", "_end", 0)], "t"), SymbolTable)


def test_return_address_past_a_noreturn_call(capsys: pytest.CaptureFixture[str]) -> None:
    """init panicked through sysrq_handle_crash, whose last instruction is the call to panic
    (objdump of the 6.12 -dbg vmlinux: brasl %r14,panic at +0x22). The kernel's Call Trace
    (%pSR, at R) printed ``sysrq_reset_seq_param_set+0x0/0x88``: so does the frame name, from
    kallsyms and System.map alike; R-1 names the real caller, shown beside it."""
    name = "bpo12-6.12-panic"
    console = (SAMPLES / name / "console.log").read_text()
    assert "] sysrq_reset_seq_param_set+0x0/0x88 \n" in console
    mapped = load_system_map(SAMPLES / name / "System.map.zst")
    crash, after = mapped.require("sysrq_handle_crash"), mapped.require("sysrq_reset_seq_param_set")
    assert after - crash == 0x28
    for kernel in (_alone(name), _with_map(name)):
        task = next(t for t in find_tasks(kernel).tasks if t.pid == 1)
        steps = analyse_task(kernel, task, unwind_context(kernel)).walk.steps
        step = next(s for s in steps if s.ip == after + kernel.kaslr_offset)
        assert kernel.symbolize(step.ip) == "sysrq_reset_seq_param_set+0x0/0x88"
        assert str(noreturn_caller(kernel, step.ip, step.how)) == "sysrq_handle_crash+0x28/0x28"
        # Frames inside their caller, and PSW addresses, get no such note.
        assert all(noreturn_caller(kernel, s.ip, s.how) is None for s in steps if s is not step)
        assert noreturn_caller(kernel, step.ip, "pt_regs") is None
    assert main(["bt", str(SAMPLES / name / "vmcore.zst"), "--pid", "1"]) == 0
    out = capsys.readouterr().out
    assert (
        "sysrq_reset_seq_param_set+0x0/0x88 at 0x000003ffff064c10  "
        "[called from sysrq_handle_crash+0x28/0x28: the call does not return]"
    ) in out
