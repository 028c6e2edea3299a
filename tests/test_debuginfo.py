"""Source lines and inline chains (parsers.dwarf.lines, explorer.debuginfo) against
s390x-linux-gnu-addr2line -f -i.

CI fixtures: tests/data/lines_mock*.elf, built from lines_mock.c/.h by build_lines_mock.sh,
which also recorded addr2line's answers at every instruction start and every instruction
start minus one (lines_mock*.addr2line). Where addr2line is installed the answers are also
taken live. Where a Debian -dbg vmlinux of a bundled sample is in the cache, every frame of
every task of that sample is checked against addr2line on that vmlinux.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.debuginfo.lines import FrameSource, lookup_address
from parsers.dwarf.lines import DwarfLines, open_dwarf_lines
from parsers.errors import DumpError, FormatError, TypeInfoError
from tests.helpers import oracles

DATA = Path(__file__).parent / "data"
FIXTURES = ["lines_mock", "lines_mock_dwarf4"]
ADDR2LINE = shutil.which("s390x-linux-gnu-addr2line")
BUILD_DIR = "/build/lines/"  # DW_AT_comp_dir of the fixtures (build_lines_mock.sh)
REAL = Path(__file__).parent.parent / "samples" / "real"


def parse_addr2line(text: str) -> dict[int, list[tuple[str, str]]]:
    """``addr2line -a -f -i`` output: per address, (function, file:line) innermost first."""
    out: dict[int, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("0x"):
            current = int(line, 16)
            out[current] = []
        elif current is not None:
            out[current].append(line)
    return {
        a: [
            (ls[i], re.sub(r" \(discriminator \d+\)$", "", ls[i + 1]))
            for i in range(0, len(ls) - 1, 2)
        ]
        for a, ls in out.items()
    }


def ours(dwarf: DwarfLines, address: int, prefix: str = "") -> list[tuple[str, str]]:
    """Our answer in addr2line's shape (innermost first, the function last)."""
    loc = dwarf.lookup(address)

    def place(s: object) -> str:
        return "??:0" if s is None else f"{prefix}{s}"

    chain = [(f.function, place(f.source)) for f in loc.inlined]
    return [*chain, (loc.function or "??", place(loc.source))]


def symbol_at(path: Path, address: int) -> str | None:
    """The nearest ELF function symbol at or below ``address`` (addr2line's fallback)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as f:
        funcs = [
            (sym["st_value"], sym.name)
            for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols()
            if sym["st_info"]["type"] == "STT_FUNC" and sym["st_value"] <= address
        ]
    return str(max(funcs)[1]) if funcs else None


@pytest.mark.parametrize("name", FIXTURES)
def test_lines_equal_recorded_addr2line(name: str) -> None:
    obj = DATA / f"{name}.elf"
    truth = parse_addr2line((DATA / f"{name}.addr2line").read_text())
    assert len(truth) > 150
    inlined_seen = 0
    with DwarfLines(str(obj)) as dwarf:
        for address, expected in truth.items():
            got = ours(dwarf, address, BUILD_DIR)
            if got[-1][0] == "??" and expected[-1][0] != "??":
                # Padding after a function: no DWARF subprogram holds it; addr2line names
                # the ELF symbol instead. The line row must still agree.
                assert expected[-1][0] == symbol_at(obj, address), hex(address)
                assert len(expected) == 1 and got[-1][1] in (expected[-1][1], "??:0")
                continue
            if expected == [("??", "??:0")] or expected[-1][1] == "??:?":
                assert got[-1][1] == "??:0", hex(address)
                continue
            assert got == expected, hex(address)
            inlined_seen += len(got) > 1
    assert inlined_seen > 20  # the fixture does exercise inline chains


def test_inline_chain_three_deep() -> None:
    """A call from scale() inside twice_scaled() inside step() inside middle()."""
    truth = parse_addr2line((DATA / "lines_mock.addr2line").read_text())
    deepest = max(truth.values(), key=len)
    assert [f for f, _ in deepest] == ["scale", "twice_scaled", "step", "middle"]
    with DwarfLines(str(DATA / "lines_mock.elf")) as dwarf:
        address = next(a for a, v in truth.items() if v == deepest)
        loc = dwarf.lookup(address)
        assert loc.function == "middle"
        assert [f.function for f in loc.inlined] == ["scale", "twice_scaled", "step"]
        assert loc.inlined[0].source is not None
        assert loc.inlined[0].source.path == "lines_mock.h"  # relative to the build dir


@oracles.needs("addr2line")
@pytest.mark.parametrize("name", FIXTURES)
def test_recorded_answers_are_addr2line_live(name: str) -> None:
    """The recorded file is what addr2line says today (the truth is not stale)."""
    recorded = (DATA / f"{name}.addr2line").read_text()
    addresses = [line for line in recorded.splitlines() if line.startswith("0x")]
    assert ADDR2LINE is not None
    live = subprocess.run(
        [ADDR2LINE, "-a", "-f", "-i", "-e", str(DATA / f"{name}.elf"), *addresses],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert live == recorded


def test_cache_by_build_id(tmp_path: Path) -> None:
    obj = DATA / "lines_mock.elf"
    with open_dwarf_lines(obj, tmp_path) as first:
        assert first.build_id
        a = first.lookup(0x10001EF)
    files = list(tmp_path.glob(f"{first.build_id}.*.lines.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_bytes().partition(b"\n")[2])  # after its CRC-32 line
    assert doc["ranges"] and doc["functions"]
    with open_dwarf_lines(obj, tmp_path) as second:
        assert second._cached_functions  # the touched unit's functions came from the cache
        assert second.lookup(0x10001EF) == a
    files[0].write_text("{not json")  # a damaged cache is rebuilt, not trusted
    with open_dwarf_lines(obj, tmp_path) as third:
        assert third.lookup(0x10001EF) == a


def test_bad_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk"
    junk.write_bytes(b"\x7fELF" + b"\xff" * 100)
    with pytest.raises(FormatError, match="junk"):
        DwarfLines(str(junk))
    with pytest.raises(TypeInfoError, match="relocatable"):
        DwarfLines(str(DATA / "types_mock.o"))
    with pytest.raises(DumpError, match="cannot read"):
        DwarfLines(str(tmp_path / "absent"))


def test_damaged_dwarf_never_crashes(tmp_path: Path) -> None:
    """Any byte of .debug_info/.debug_line/.debug_abbrev overwritten: an answer or a
    FormatError naming the file, never another exception."""
    from elftools.elf.elffile import ELFFile

    good = (DATA / "lines_mock.elf").read_bytes()
    with open(DATA / "lines_mock.elf", "rb") as f:
        elf = ELFFile(f)
        spans = [
            (s["sh_offset"], s["sh_size"])
            for s in elf.iter_sections()
            if s.name in (".debug_info", ".debug_line", ".debug_abbrev", ".debug_aranges")
        ]
    bad = tmp_path / "bad.elf"
    for offset, size in spans:
        for k in range(0, size, max(1, size // 40)):
            for value in (0x00, 0xFF):
                data = bytearray(good)
                data[offset + k] = value
                bad.write_bytes(bytes(data))
                try:
                    with DwarfLines(str(bad)) as dwarf:
                        for address in (0x1000148, 0x10001EF, 0x1000230, 0x10002D0):
                            dwarf.lookup(address)
                except DumpError as error:
                    assert "bad.elf" in str(error)


def test_return_addresses_look_up_r_minus_1() -> None:
    assert lookup_address("backchain", 0x1000) == 0xFFF
    assert lookup_address("start", 0x1000) == 0xFFF
    assert lookup_address("r14_guess", 0x1000) == 0xFFF
    assert lookup_address("pt_regs", 0x1000) == 0x1000  # interrupted: the PSW address
    assert lookup_address("start_regs", 0x1000) == 0x1000


# -- the CLI on a real sample -------------------------------------------------------------------
IDLE = REAL / "deb12-6.1-idle"


def test_bt_lines_without_dwarf(capsys: pytest.CaptureFixture[str]) -> None:
    dump = str(IDLE / "vmcore.zst")
    assert main(["bt", dump, "--pid", "1", "-l", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["frames"]
    assert all(f["function"] is None and f["source"] is None for f in doc["frames"])
    assert all(f["inlined"] is None for f in doc["frames"])
    assert doc["lines"]["available"] is False and "vmlinux" in doc["lines"]["why"]
    assert main(["bt", dump, "--pid", "1", "-l"]) == 0
    out = capsys.readouterr().out
    assert "source lines: none (no --vmlinux with DWARF" in out


real_vmlinux = oracles.debug_vmlinux


SAMPLES = sorted(p.name for p in REAL.iterdir() if (p / "facts.json").is_file())


@oracles.needs("addr2line")
@pytest.mark.parametrize("sample", SAMPLES)
def test_every_frame_of_a_real_dump_equals_addr2line(sample: str) -> None:
    """Every frame of every task of a real sample: function, source and inline chain as
    addr2line -f -i says on the -dbg vmlinux (at R-1 for return addresses)."""
    from explorer.model.kernel import Options
    from explorer.model.opening import open_kernel
    from explorer.model.tasks import find_tasks
    from explorer.walk.analysis import analyse_task, unwind_context

    folder = REAL / sample
    facts = json.loads((folder / "facts.json").read_text())
    vmlinux = real_vmlinux(facts["kernel_release"])
    kernel = open_kernel(
        str(folder / "vmcore.zst"),
        Options(vmlinux=str(vmlinux), system_map=str(folder / "System.map.zst")),
    )
    ctx = unwind_context(kernel)
    with FrameSource.open(kernel) as source:
        assert source.available, source.why
        frames = {}
        for task in find_tasks(kernel).tasks:
            for step in analyse_task(kernel, task, ctx).walk.steps:
                lines = source.for_step(step)
                if kernel.modules.module_at(step.ip) is not None:
                    # module code: its DWARF is not in vmlinux; nothing to ask addr2line
                    assert lines.function is None and lines.why and "module" in lines.why
                    continue
                frames[lookup_address(step.how, step.ip)] = lines
        assert len(frames) > 30
        assert ADDR2LINE is not None
        live = subprocess.run(
            [ADDR2LINE, "-a", "-f", "-i", "-e", str(vmlinux)]
            + [f"0x{a - source.delta:x}" for a in frames],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    truth = parse_addr2line(live)
    checked = 0
    for address, lines in frames.items():
        expected = truth[address - source.delta]
        if lines.function is None:  # outside the vmlinux (module text): addr2line agrees
            assert expected == [("??", "??:0")], hex(address)
            continue
        got = [(f.function, str(f.source or "??:0")) for f in lines.inlined]
        got.append((lines.function, str(lines.source or "??:0")))
        # addr2line prefixes the build directory; ours are relative to it.
        assert len(got) == len(expected), hex(address)
        for (fn, place), (want_fn, want_place) in zip(got, expected, strict=True):
            assert fn == want_fn, hex(address)
            if want_place in ("??:0", "??:?"):  # addr2line: no line (? = none in the CU)
                assert place == "??:0", hex(address)
                continue
            assert want_place == place or want_place.endswith("/" + place), hex(address)
        checked += 1
    assert checked > 20


def test_bt_lines_text_and_source_tree() -> None:
    """crash bt -l's shape: inline functions innermost first, then the function's own
    ``path: line``; with a source tree, each line's text (here the fixture's own source)."""
    from types import SimpleNamespace

    from explorer.debuginfo.lines import frame_text

    truth = parse_addr2line((DATA / "lines_mock.addr2line").read_text())
    deepest = max(truth.values(), key=len)
    address = next(a for a, v in truth.items() if v == deepest)
    step = SimpleNamespace(how="backchain", ip=address + 1)  # a return address: R-1
    with DwarfLines(str(DATA / "lines_mock.elf")) as dwarf:
        source = FrameSource(dwarf, 0, None, str(DATA))
        text = frame_text(source, step)  # type: ignore[arg-type]
    want = [
        f"    {p.removeprefix(BUILD_DIR).replace(':', ': ')}" + (f"  (inlined {f})" if i else "")
        for i, (f, p) in reversed(list(enumerate(reversed(deepest))))
    ]
    heads = [line for line in text if not line.startswith("      ")]
    assert heads == want
    c_lines = (DATA / "lines_mock.c").read_text().splitlines()
    h_lines = (DATA / "lines_mock.h").read_text().splitlines()
    for head, code in zip(text[0::2], text[1::2], strict=True):
        path, line = head.split()[0].rstrip(":"), int(head.split()[1])
        number, _, body = code.strip().partition("  ")
        assert int(number) == line
        lines = c_lines if path == "lines_mock.c" else h_lines
        assert body.strip() == lines[line - 1].strip()


def test_check_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """check --lines: without DWARF the text says why; with the -dbg vmlinux every task's
    frames carry function/source/inlined, and the text lists each stack's lines."""
    dump = str(IDLE / "vmcore.zst")
    assert main(["check", dump, "--lines"]) == 0
    assert "source lines: none (no --vmlinux" in capsys.readouterr().out
    facts = json.loads((IDLE / "facts.json").read_text())
    vmlinux = str(real_vmlinux(facts["kernel_release"]))
    common = [dump, "--lines", "--vmlinux", vmlinux, "--map", str(IDLE / "System.map.zst")]
    assert main(["check", "--json", *common]) == 0
    docs = json.loads(capsys.readouterr().out)
    frames = [f for d in docs for f in d["frames"]]
    assert len(frames) > 100
    assert sum(f["function"] is not None for f in frames) > 0.9 * len(frames)
    schedule = [f for f in frames if f["symbol"] and f["symbol"].startswith("schedule+")]
    assert schedule and all(f["source"].startswith("kernel/sched/core.c:") for f in schedule)
    assert main(["check", *common]) == 0
    out = capsys.readouterr().out
    assert "source lines of each stack" in out and "schedule (kernel/sched/core.c:" in out


# -- bt -f / -F --------------------------------------------------------------------------------
def test_bt_full_words_are_the_frame_bytes(capsys: pytest.CaptureFixture[str]) -> None:
    """bt -f --json of init in deb12-6.1-idle: each frame's words are the bytes at its sp;
    the save area is named from struct stack_frame (DWARF profile): r14 is the return
    address the unwinder took as this frame's ip, back_chain the next frame's sp."""
    import struct as st

    from explorer.model.kernel import Options
    from explorer.model.opening import open_kernel

    dump = str(IDLE / "vmcore.zst")
    smap = str(IDLE / "System.map.zst")
    assert main(["bt", dump, "--pid", "1", "-F", "--json", "--map", smap]) == 0
    doc = json.loads(capsys.readouterr().out)
    layout = doc["frame_layout"]
    assert (layout["gprs"], layout["back_chain"], layout["size"]) == (0x48, 0x98, 160)
    assert "struct stack_frame" in layout["source"]
    kernel = open_kernel(dump, Options(system_map=smap))
    frames = doc["frames"]
    assert len(frames) >= 5
    for i, frame in enumerate(frames):
        sp = int(frame["sp"], 16)
        words = frame["words"]
        raw = kernel.read(sp, 8 * len(words))
        assert [int(w["value"], 16) for w in words] == [v for (v,) in st.iter_unpack(">Q", raw)]
        assert [int(w["address"], 16) for w in words] == [sp + 8 * k for k in range(len(words))]
        named = {w["label"]: w for w in words if w["label"]}
        assert list(named) == [f"r{n}" for n in range(6, 16)] + ["back_chain"]
        assert named["r6"]["offset"] == 0x48 and named["back_chain"]["offset"] == 0x98
        if frame["how"] in ("start", "backchain"):
            assert named["r14"]["value"] == frame.get("raw_ip", frame["ip"])
        if i + 1 < len(frames) and frames[i + 1]["how"] == "backchain":
            assert named["back_chain"]["value"] == frames[i + 1]["sp"]
            assert len(words) * 8 >= int(frames[i + 1]["sp"], 16) - sp
        assert named["r14"]["symbol"] == kernel.symbolize(int(named["r14"]["value"], 16))
    assert main(["bt", dump, "--pid", "1", "-f", "--map", smap]) == 0
    text = capsys.readouterr().out
    first = frames[0]
    r14 = next(w for w in first["words"] if w["label"] == "r14")
    assert f"{int(r14['address'], 16):016x}: {int(r14['value'], 16):016x}  r14" in text


def test_stack_frame_layout_matches_dwarf() -> None:
    """The bundled profile's struct stack_frame equals the -dbg vmlinux's DWARF."""
    from parsers.types.profile import profile_from_dwarf

    facts = json.loads((IDLE / "facts.json").read_text())
    profile = profile_from_dwarf(real_vmlinux(facts["kernel_release"]))
    assert profile.offset("stack_frame.gprs") == 0x48
    assert profile.offset("stack_frame.back_chain") == 0x98
    assert profile.size("stack_frame") == 160


def test_vmlinux_of_another_build_is_refused(tmp_path: Path) -> None:
    """A vmlinux whose build-id is not the dump's gives no lines, and says why."""
    from types import SimpleNamespace

    elf = DATA / "lines_mock.elf"
    with DwarfLines(str(elf)) as dwarf:
        own = dwarf.build_id
    assert own

    def kernel(build_id: str) -> object:
        info = SimpleNamespace(get=lambda key: build_id, symbol=lambda name: None)
        return SimpleNamespace(files=SimpleNamespace(vmlinux=str(elf)), vmcoreinfo=info,
                               symbols=None, forced=[])  # fmt: skip

    other = FrameSource.open(kernel("0" * 40), cache_dir=str(tmp_path))  # type: ignore[arg-type]
    assert not other.available and other.requested
    assert other.why is not None and "build-id" in other.why and own[:12] in other.why
    same = FrameSource.open(kernel(own), cache_dir=str(tmp_path))  # type: ignore[arg-type]
    assert same.available and same.at(0x10001EF).function == "middle"
    same.close()


@oracles.needs("addr2line")
def test_interrupted_context_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """bpo12-6.12-busy CPU 0 stopped on ext_int_handler's first instruction: the context it
    interrupted (the external old PSW, an exact address) gets its own lines, as addr2line."""
    folder = REAL / "bpo12-6.12-busy"
    facts = json.loads((folder / "facts.json").read_text())
    vmlinux = real_vmlinux(facts["kernel_release"])
    smap = str(folder / "System.map.zst")
    args = [str(folder / "vmcore.zst"), "--cpu", "0", "-l", "--vmlinux", str(vmlinux)]
    assert main(["bt", *args, "--map", smap, "--json"]) == 0
    frame = json.loads(capsys.readouterr().out)["frames"][0]
    if frame.get("interrupted") is None:
        pytest.skip("CPU 0 is not stopped on a handler's first instruction here")
    psw = int(frame["interrupted"]["psw"], 16)
    linked = psw - (int(frame["ip"], 16) - linked_ip(smap, frame))
    assert ADDR2LINE is not None
    live = subprocess.run(
        [ADDR2LINE, "-a", "-f", "-i", "-e", str(vmlinux), f"0x{linked:x}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    expected = next(iter(parse_addr2line(live).values()))
    got = frame["interrupted_lines"]
    chain = [(f["function"], f["source"]) for f in got["inlined"]]
    chain.append((got["function"], got["source"]))
    assert [fn for fn, _ in chain] == [fn for fn, _ in expected]
    assert all(
        want.endswith("/" + src) for (_, src), (_, want) in zip(chain, expected, strict=True)
    )


def linked_ip(system_map: str, frame: dict[str, object]) -> int:
    """The link-time address of a frame's ip: its symbol in System.map plus the offset."""
    from parsers.symbols.table import load_system_map

    name, _, rest = str(frame["symbol"]).partition("+")
    address = load_system_map(system_map).address_of(name)
    assert address is not None
    return address + int(rest.split("/")[0], 16)


@pytest.mark.parametrize("sample", ["deb12-6.1-idle", "bpo12-6.12-busy"])
def test_bt_lines_with_only_the_vmlinux(sample: str, capsys: pytest.CaptureFixture[str]) -> None:
    """bt -l --vmlinux alone (no System.map): Debian's -dbg vmlinux is accepted as the dump's
    own (its .rodata has a "Linux version ... # SMP" line before linux_banner's "#1 SMP",
    which must not be taken for the banner) and names every sleeping frame."""
    from parsers.elf.fileid import elf_identity

    folder = REAL / sample
    facts = json.loads((folder / "facts.json").read_text())
    vmlinux = real_vmlinux(facts["kernel_release"])
    assert facts["linux_banner"] in elf_identity(vmlinux).banners
    args = ["bt", str(folder / "vmcore.zst"), "--pid", "1", "-l", "--vmlinux", str(vmlinux)]
    assert main([*args, "--json"]) == 0
    frames = json.loads(capsys.readouterr().out)["frames"]
    assert frames and all(f["function"] for f in frames)


def test_a_compressed_symbol_table_claiming_a_huge_size(tmp_path: Path) -> None:
    """A .strtab flagged SHF_COMPRESSED whose header claims 1 TiB (found by the fuzzer: a
    MemoryError from pyelftools): _stext is unknown, the lines are still there."""
    import struct

    from parsers.elf.sections import ElfSections

    source = DATA / "lines_mock.elf"
    with ElfSections(source) as elf:
        strtab = elf.get(".strtab")
        assert strtab is not None
        shoff = struct.unpack_from(">Q", elf.data, 0x28)[0]
    data = bytearray(source.read_bytes())
    header = shoff + strtab.index * 64
    flags = struct.unpack_from(">Q", data, header + 8)[0]
    struct.pack_into(">Q", data, header + 8, flags | 0x800)
    struct.pack_into(">IIQQ", data, strtab.offset, 1, 0, 1 << 40, 1)  # Elf64_Chdr: zlib, 1 TiB
    bad = tmp_path / "huge.elf"
    bad.write_bytes(bytes(data))
    with DwarfLines(str(bad)) as dwarf:
        assert dwarf.stext is None
        with DwarfLines(str(source)) as good:
            address = good.stext or 0x1000000
            assert dwarf.lookup(address + 0x148) == good.lookup(address + 0x148)
