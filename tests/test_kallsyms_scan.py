"""kallsyms found in a dump's memory by content (no VMCOREINFO help), against independent
truth: each sample's System.map (the linker's addresses of the kallsyms_* tables, moved by
the KASLR offset) and, where the dump has them, VMCOREINFO's KALLSYMS entries, which the
search never reads. Damaged tables are refused, never decoded into wrong names."""

from __future__ import annotations

import re
import struct
from functools import cache
from pathlib import Path

import pytest

from explorer.image.dumpimage import DumpImage
from explorer.model.kernel import Kernel, Options
from explorer.model.opening import kernel_of
from explorer.model.tasks import find_tasks
from explorer.walk.analysis import analyse_task, unwind_context
from parsers.dumps.dumpfile import open_dump
from parsers.errors import DumpError, SymbolError
from parsers.symbols.kallsyms import Reader, kallsyms_tables
from parsers.symbols.kallsyms_scan import ANCHOR, FoundKallsyms, scan_kallsyms
from parsers.symbols.table import load_system_map
from tests.helpers.real import MOVED

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAMES = sorted(p.name for p in SAMPLES.glob("*") if (p / "vmcore.zst").is_file())
SAMPLE510 = "rebuilt-5.10-busy"


@cache
def _kernel(name: str) -> Kernel:
    return kernel_of(open_dump(str(SAMPLES / name / "vmcore.zst")), Options())


@cache
def _found(name: str) -> FoundKallsyms:
    kernel = _kernel(name)
    return scan_kallsyms(kernel.image.read, kernel.image.image_start())


def _map_address(name: str, symbol: str) -> int | None:
    """``symbol`` in the sample's System.map, moved to this boot's addresses."""
    table = load_system_map(SAMPLES / name / "System.map.zst")
    kernel = _kernel(name)
    linked, stext = table.address_of(symbol), table.address_of("_stext")
    runtime = kernel.vmcoreinfo.symbol("_stext") if kernel.vmcoreinfo else None
    assert stext is not None and runtime is not None
    return None if linked is None else linked + runtime - stext


@pytest.mark.parametrize("name", NAMES)
def test_tables_found_by_content_are_the_system_maps(name: str) -> None:
    found = _found(name)
    t = found.tables
    assert t.token_table == _map_address(name, "kallsyms_token_table")
    assert t.token_index == _map_address(name, "kallsyms_token_index")
    assert t.names == _map_address(name, "kallsyms_names")
    assert t.num_syms == _map_address(name, "kallsyms_num_syms")
    assert t.offsets == _map_address(name, "kallsyms_offsets")
    assert t.relative_base == _map_address(name, "kallsyms_relative_base")  # 7.x: none
    assert found.markers == _map_address(name, "kallsyms_markers")
    seqs = _map_address(name, "kallsyms_seqs_of_names")
    if seqs is not None and seqs < t.token_table:  # Debian 6.1 (backport) puts it there
        assert found.seqs_of_names == seqs
    else:
        assert found.seqs_of_names is None
    num_syms = struct.unpack(">I", _kernel(name).image.read(t.num_syms, 4))[0]
    assert found.count == num_syms
    # The tables VMCOREINFO names (6.1, 6.12, 7.2), never read by the search: the same.
    named = kallsyms_tables(_kernel(name).vmcoreinfo)
    if name == SAMPLE510:
        assert named is None
    else:
        assert named == t


def test_layouts_of_each_era() -> None:
    assert _found(SAMPLE510).layout == "offsets before names (5.x-6.1)"
    assert _found("deb12-6.1-idle").layout == "offsets before names (5.x-6.1)"
    assert _found("bpo12-6.12-busy").layout == "offsets after the token index (6.2-6.x)"
    assert _found("sid-7.2-modules").layout.startswith("self-relative")
    assert _found(SAMPLE510).count == 53_709


def _patched(read: Reader, at: int, data: bytes) -> Reader:
    """``read`` with ``data`` written over the memory at ``at``."""

    def patched(address: int, size: int) -> bytes:
        raw = read(address, size)
        lo, hi = max(address, at), min(address + size, at + len(data))
        if lo >= hi:
            return raw
        out = bytearray(raw)
        out[lo - address : hi - address] = data[lo - at : hi - at]
        return bytes(out)

    return patched


def _index_entry(name: str, i: int) -> tuple[int, int]:
    at = _found(name).tables.token_index + 2 * i
    return at, struct.unpack(">H", _kernel(name).image.read(at, 2))[0]


@pytest.mark.parametrize("name", [SAMPLE510, "sid-7.2-modules"])
@pytest.mark.parametrize("change", [+1, -1, "swap"])
def test_a_damaged_token_index_is_refused(name: str, change: int | str) -> None:
    kernel = _kernel(name)
    at, value = _index_entry(name, 0x80)
    if change == "swap":  # two entries exchanged: both still token boundaries
        _, other = _index_entry(name, 0x81)
        data = struct.pack(">HH", other, value)
    else:
        data = struct.pack(">H", value + int(change))
    read = _patched(kernel.image.read, at, data)
    with pytest.raises(SymbolError, match="kallsyms_token_index"):
        scan_kallsyms(read, kernel.image.image_start())


def test_swapped_single_character_tokens_are_refused() -> None:
    """Two one-character tokens swapped in the table: boundaries still match the index, but a
    character that stays a token keeps its own code, so the table is refused."""
    kernel = _kernel(SAMPLE510)
    t = _found(SAMPLE510).tables
    _, a = _index_entry(SAMPLE510, ord("x"))
    _, b = _index_entry(SAMPLE510, ord("y"))
    read = _patched(kernel.image.read, t.token_table + a, b"y")
    read = _patched(read, t.token_table + b, b"x")
    with pytest.raises(SymbolError, match="kallsyms_token_index"):
        scan_kallsyms(read, kernel.image.image_start())


def test_damaged_markers_or_names_are_refused() -> None:
    kernel = _kernel(SAMPLE510)
    found = _found(SAMPLE510)
    marker = found.markers + 4 * 7
    (value,) = struct.unpack(">I", kernel.image.read(marker, 4))
    read = _patched(kernel.image.read, marker, struct.pack(">I", value + 1))
    with pytest.raises(SymbolError, match="markers"):
        scan_kallsyms(read, kernel.image.image_start())


def test_memory_without_tables_is_refused() -> None:
    def read(address: int, size: int) -> bytes:
        if address >= 0x200000:
            raise DumpError("beyond the test memory")
        return bytes(size)

    with pytest.raises(SymbolError, match="no kallsyms_token_table"):
        scan_kallsyms(read, 0x100000)


def test_memory_full_of_digit_runs_is_not_searched() -> None:
    """Hostile memory: many digit-token runs are refused at once (bounded work)."""
    memory = ((b"\0" + ANCHOR) * 100).ljust(8192, b"\0")

    def read(address: int, size: int) -> bytes:
        if address + size > len(memory):
            raise DumpError("beyond the test memory")
        return memory[address : address + size]

    with pytest.raises(SymbolError, match="more than 64 runs of digit tokens"):
        scan_kallsyms(read, 0)


def _alone_with(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, at: int, data: bytes) -> Kernel:
    """The 5.10 sample alone, its memory at ``at`` overwritten (no symbol cache)."""
    monkeypatch.setenv("BACKCHAIN_CACHE", str(tmp_path / "cache"))
    original = DumpImage.read

    def read(self: DumpImage, va: int, size: int) -> bytes:
        return _patched(lambda a, s: original(self, a, s), at, data)(va, size)

    monkeypatch.setattr(DumpImage, "read", read)
    return kernel_of(open_dump(str(SAMPLES / SAMPLE510 / "vmcore.zst")), Options())


def test_kernel_refuses_a_damaged_token_index(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    at, value = _index_entry(SAMPLE510, 0x41)
    kernel = _alone_with(monkeypatch, tmp_path, at, struct.pack(">H", value + 1))
    assert kernel.symbols is None
    assert any("kallsyms_token_index" in w for w in kernel.warnings), kernel.warnings


def test_kernel_refuses_tables_the_dump_contradicts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A ``kallsyms_relative_base`` 1 MiB off: the tables are self-consistent, but the
    decoded ``_stext`` is not VMCOREINFO's SYMBOL(_stext): not used."""
    base = _found(SAMPLE510).tables.relative_base
    assert base is not None
    (value,) = struct.unpack(">Q", _kernel(SAMPLE510).image.read(base, 8))
    kernel = _alone_with(monkeypatch, tmp_path, base, struct.pack(">Q", value + (1 << 20)))
    assert kernel.symbols is None
    assert any("SYMBOL(_stext)=0x100000" in w and "not used" in w for w in kernel.warnings)


@pytest.mark.parametrize("name", ["deb12-6.1-idle", "bpo12-6.12-busy", "sid-7.2-modules"])
def test_fallback_without_kallsyms_in_vmcoreinfo_gives_the_same_table(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A 6.x/7.x dump whose VMCOREINFO had no KALLSYMS (older builds): the table found in
    memory is the one VMCOREINFO's entries give, symbol for symbol."""
    named = _kernel(name).symbols
    assert named is not None and named.source == "kallsyms in the dump"
    monkeypatch.setenv("BACKCHAIN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("parsers.symbols.kallsyms.kallsyms_tables", lambda info: None)
    kernel = kernel_of(open_dump(str(SAMPLES / name / "vmcore.zst")), Options())
    assert kernel.symbols is not None and not kernel.warnings
    token_table = _map_address(name, "kallsyms_token_table")
    assert kernel.symbols.source == f"kallsyms found in memory by content at 0x{token_table:x}"
    assert list(kernel.symbols.rows()) == list(named.rows())


def _console_call_traces(name: str) -> dict[int, list[tuple[int, str]]]:
    """The sysrq-t Call Traces printed on the guest's console: pid -> [(address, text)]."""
    traces: dict[int, list[tuple[int, str]]] = {}
    pid: int | None = None
    frames: list[tuple[int, str]] | None = None
    for line in (SAMPLES / name / "console.log").read_text(errors="replace").splitlines():
        text = line.split("] ", 1)[1] if line.startswith("[") and "] " in line else line
        task = re.match(r"task:.*\bpid:\s*(\d+)\b", text)
        frame = re.match(r"\s*\[<([0-9a-f]+)>\] (\S+)", text)
        if task:
            pid, frames = int(task.group(1)), None
        elif text.startswith("Call Trace:") and pid is not None:
            frames = traces.setdefault(pid, [])
        elif frame and frames is not None:
            frames.append((int(frame.group(1), 16), frame.group(2)))
        elif text.strip() and frames is not None:  # the trace ended
            pid = frames = None
    return {pid: f for pid, f in traces.items() if f}


def test_5_10_alone_names_frames_as_its_console_call_traces() -> None:
    """Every task of the 5.10 sample that did not move, walked on the dump alone (kallsyms
    found by content), named exactly as the kernel's sysrq-t Call Trace in console.log."""
    kernel = _kernel(SAMPLE510)
    assert kernel.symbols is not None
    assert kernel.symbols.source.startswith("kallsyms found in memory by content")
    traces = _console_call_traces(SAMPLE510)
    scan = find_tasks(kernel)
    ctx = unwind_context(kernel)
    compared = 0
    for task in scan.tasks:
        if not task.pid or task.pid in MOVED[SAMPLE510] or task.pid not in traces:
            continue
        walk = analyse_task(kernel, task, ctx).walk
        assert [(s.ip, kernel.symbolize(s.ip)) for s in walk.steps] == traces[task.pid], task.pid
        compared += 1
    assert compared >= 54
