"""Fuzz targets: one per reader, plus the DAT walk, the unwinder and the whole pipeline.

A target is a hypothesis strategy producing ``bytes`` and a ``check(bytes)`` that feeds them
to the code under test. The only outcomes allowed are a result or a :class:`DumpError` with
a one-line message; any other exception, a wall-clock hang (:data:`HANG_SECONDS`) or a walk
longer than its bound fails the check. Inputs are plain bytes so that a failing one can be
saved to ``tests/corpus/<target>-<hash>.bin`` and replayed by name.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import signal
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from explorer.model.kernel import Kernel, Options
from explorer.model.opening import kernel_of
from explorer.model.printk import read_log
from explorer.model.tasks import find_tasks
from explorer.reports.pstree import roots, tree_lines, tree_warnings
from explorer.walk.analysis import analyse_task, cpu_regs, unwind_context
from explorer.walk.reliable import stack_walk_reliable
from explorer.walk.stacks import StackRegions
from explorer.walk.unwind import MAX_STEPS, TaskStacks, UnwindContext, walk
from parsers.cache import ENV
from parsers.dumps.cpustate import cpu_registers_from_notes
from parsers.dumps.dumpfile import open_dump
from parsers.dumps.elfcore import group_cpu_notes, parse_notes
from parsers.dumps.memory import AddressSpace, VaLayout
from parsers.dumps.physmem import MemoryRange
from parsers.dumps.vmcoreinfo import os_info_from_memory, parse_vmcoreinfo, vmcoreinfo_from_memory
from parsers.dwarf.lines import open_dwarf_lines
from parsers.errors import DumpError, TranslationError, UnmappedError
from parsers.s390.records import Psw, PtRegs
from parsers.s390.stacks import StackRange
from parsers.symbols.table import load_system_map
from parsers.types.profile import TypeProfile, profile_from_btf, profile_from_dwarf
from tests.fuzz.seeds import Seed, companions, kernel_seeds, seeds
from tests.fuzz.serve_target import check_serve, serve_inputs

#: A single input taking longer than this is a hang.
HANG_SECONDS = 20.0
#: The same for the explorer target: a session waits on its pilot (about 3 s of CPU, 16 s
#: of wall time on a machine shared by several test runs).
EXPLORER_HANG_SECONDS = 60.0

INTERESTING_U64 = (
    0,
    1,
    7,
    0x1000,
    0x7FFFFFFF,
    0x80000000,
    0xFFFFFFFF,
    1 << 32,
    1 << 40,
    1 << 52,
    (1 << 63) - 1,
    1 << 63,
    (1 << 64) - 1,
)
INTERESTING_U32 = (0, 1, 2, 3, 4, 6, 7, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x1000, 0x10000)


class Hang(BaseException):
    """An input ran longer than :data:`HANG_SECONDS` (a BaseException: nothing swallows it)."""


@contextlib.contextmanager
def time_limit(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Raise :class:`Hang` inside the block after ``seconds`` (main thread only)."""

    def on_alarm(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds} s")

    try:
        old = signal.signal(signal.SIGALRM, on_alarm)
    except ValueError:  # not the main thread: no guard
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_message(error: DumpError) -> None:
    """A DumpError must say something, on one line (the CLI prints it as one line)."""
    text = str(error)
    assert error.message.strip(), f"empty DumpError message: {error!r}"
    assert "\n" not in text, f"multi-line DumpError message: {text!r}"


@contextlib.contextmanager
def shared_cache() -> Iterator[None]:
    """``$BACKCHAIN_CACHE`` set to one folder for every input of this run meanwhile: what an
    input leaves in the caches (symbol tables, profiles, decompressed copies) is there for
    the next one, as on a user's machine, so poisoning across inputs is exercised."""
    global _files
    if _files is None:
        _files = _Files()
    saved = os.environ.get(ENV)
    os.environ[ENV] = str(_files.folder / "cache")
    try:
        yield
    finally:
        if saved is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = saved


def only_dump_errors(fn: Callable[[], object]) -> None:
    """Run ``fn`` under the hang guard, with the run's shared cache; a DumpError is an
    allowed outcome."""
    with time_limit(), shared_cache():
        try:
            fn()
        except DumpError as error:
            check_message(error)


# -- mutations -------------------------------------------------------------------------------------
@st.composite
def mutated(draw: st.DrawFn, seed: Seed, max_mutations: int = 4) -> bytes:
    """``seed`` with 1..max_mutations targeted mutations (aimed at structural boundaries)."""
    data = bytearray(seed.data)
    for _ in range(draw(st.integers(1, max_mutations))):
        size = len(data)
        if size == 0:
            break
        if seed.boundaries and draw(st.booleans()):
            where = draw(st.sampled_from(seed.boundaries)) + draw(st.integers(-8, 8))
        else:
            where = draw(st.integers(0, size - 1))
        where = min(max(where, 0), size - 1)
        kind = draw(st.sampled_from(("u64", "u32", "bytes", "zero", "cut", "flip", "copy")))
        if kind == "u64":
            value = draw(st.sampled_from(INTERESTING_U64) | st.integers(0, (1 << 64) - 1))
            data[where : where + 8] = struct.pack(">Q", value)
        elif kind == "u32":
            value = draw(st.sampled_from(INTERESTING_U32) | st.integers(0, (1 << 32) - 1))
            data[where : where + 4] = struct.pack(">I", value)
        elif kind == "bytes":
            blob = draw(st.binary(min_size=1, max_size=64))
            data[where : where + len(blob)] = blob
        elif kind == "zero":
            length = draw(st.integers(1, 4096))
            data[where : where + length] = bytes(len(data[where : where + length]))
        elif kind == "cut":
            del data[where:]
        elif kind == "flip":
            data[where] ^= 1 << draw(st.integers(0, 7))
        else:
            src = draw(st.integers(0, size - 1))
            length = draw(st.integers(1, 256))
            chunk = bytes(data[src : src + length])
            data[where : where + len(chunk)] = chunk
        del data[len(seed.data) + 4096 :]  # mutations never grow a file much
    return bytes(data)


@st.composite
def memory_mutated(draw: st.DrawFn, seed: Seed) -> bytes:
    """The ELF seed with kernel memory (tasks, stacks, lowcores) overwritten with pointers."""
    ks = kernel_seeds()
    data = bytearray(seed.data)
    words = ks.memory_words
    for _ in range(draw(st.integers(1, 6))):
        off, va = draw(st.sampled_from(words))
        value = draw(
            st.sampled_from(seed.pointers)
            | st.sampled_from((va, va + 4, va - 8, va + 0xA0, 0, (1 << 64) - 8))
            | st.sampled_from(INTERESTING_U64)
            | st.integers(0, (1 << 64) - 1)
        )
        data[off : off + 8] = struct.pack(">Q", value)
    return bytes(data)


# -- the dump pipeline -----------------------------------------------------------------------------
class _Files:
    """A scratch folder holding the synthetic kernel's System.map and profile.json."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="backchain-fuzz-"))
        companions(self.folder)

    def write(self, name: str, data: bytes) -> str:
        path = self.folder / name
        path.write_bytes(data)
        return str(path)


_files: _Files | None = None


def scratch(name: str, data: bytes) -> str:
    """Write ``data`` to a scratch file beside the synthetic System.map/profile.json."""
    global _files
    if _files is None:
        _files = _Files()
    return _files.write(name, data)


def exercise_dump(path: str, kernel: bool = True) -> None:
    """Open ``path`` and use everything a user can reach: ranges, reads, facts, the kernel
    model, the task list and every task's walk."""
    dump = open_dump(path)
    try:
        ranges = list(dump.ranges)
        assert all(r.start < r.end for r in ranges), ranges
        assert all(a.end <= b.start for a, b in itertools.pairwise(ranges)), ranges
        for r in ranges[:6]:
            for address, size in ((r.start, 8), (r.end - 8, 16), (r.start, 0x3000)):
                with contextlib.suppress(DumpError):
                    data = dump.read(address, size)
                    assert len(data) == size, (address, size, len(data))
        json.dumps(dump.format_facts(), default=str)
        _ = dump.vmcoreinfo_text
        if not kernel:
            return
        folder = Path(path).parent
        opts = Options(system_map=str(folder / "System.map"), profile=str(folder / "profile.json"))
        k = kernel_of(dump, opts)
        _ = k.memory_size, k.kaslr_offset, [c.stacks for c in k.cpus]
        exercise_kernel(k)
    finally:
        dump.close()


def exercise_kernel(k: Kernel) -> None:
    """Find the tasks and walk every one (and each CPU's registers); the process tree, the
    kernel log and the modules too."""
    scan = find_tasks(k)
    ctx = unwind_context(k)
    for task in scan.tasks:
        analysis = analyse_task(k, task, ctx)
        assert len(analysis.walk.steps) <= MAX_STEPS
    nodes = roots(scan.tasks, scan.tasks)
    tree_lines(nodes)
    tree_warnings(nodes)
    with contextlib.suppress(DumpError):
        for record in read_log(k):
            record.line()
    _ = k.modules.modules
    for cpu in k.cpus:
        stacks = TaskStacks(StackRegions(None, cpu.stacks, cpu.number), 0)
        w = walk(ctx, stacks, regs=cpu_regs(k, cpu), start="cpu")
        assert len(w.steps) <= MAX_STEPS


def dump_target(name: str, kernel: bool = True) -> Callable[[bytes], None]:
    """The check of a dump-format target."""

    def check(data: bytes) -> None:
        path = scratch(f"fuzz-{name}", data)
        only_dump_errors(lambda: exercise_dump(path, kernel))

    return check


# -- notes, VMCOREINFO, os_info --------------------------------------------------------------------
@st.composite
def notes_blob(draw: st.DrawFn) -> bytes:
    """A run of ELF notes, mostly well-formed, with damaged sizes and types."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 12))):
        name = draw(
            st.sampled_from((b"CORE", b"LINUX", b"VMCOREINFO", b""))
            | st.binary(min_size=0, max_size=9)
        )
        ntype = draw(st.sampled_from((1, 2, 0x300, 0x301, 0x302, 0x303, 0x304, 0x305, 0)))
        desc = draw(st.binary(max_size=400))
        namesz = draw(st.sampled_from((len(name) + 1, len(name), 0)) | st.integers(0, 1 << 32))
        descsz = draw(st.sampled_from((len(desc),)) | st.integers(0, (1 << 32) - 1))
        out += struct.pack(">III", namesz & 0xFFFFFFFF, descsz & 0xFFFFFFFF, ntype)
        out += (name + b"\0").ljust((len(name) + 4) & ~3, b"\0") + desc.ljust(
            (len(desc) + 3) & ~3, b"\0"
        )
    if draw(st.booleans()):
        out += draw(st.binary(max_size=16))
    return bytes(out)


def check_notes(data: bytes) -> None:
    def run() -> None:
        notes = list(parse_notes(data, 0, len(data), "notes"))
        for i, group in enumerate(group_cpu_notes(notes)):
            cpu_registers_from_notes(i, group, "notes")

    only_dump_errors(run)


class BytesMemory:
    """Absolute memory from ``{address: bytes}`` runs (the PhysicalMemory protocol)."""

    path = "memory"

    def __init__(self, runs: dict[int, bytes]) -> None:
        self.runs = runs
        self.ranges = sorted(
            (MemoryRange(a, a + len(b)) for a, b in runs.items() if b), key=lambda r: r.start
        )

    def read(self, address: int, size: int) -> bytes:
        for start, blob in self.runs.items():
            if start <= address and address + size <= start + len(blob):
                return blob[address - start : address - start + size]
        raise UnmappedError(address)

    def close(self) -> None:
        pass


@st.composite
def lowcore_memory(draw: st.DrawFn) -> bytes:
    """Two 4 KiB pages (absolute 0 and a second page) encoded as one blob.

    The first page holds the 0xE0C and 0xE18 pointers; the second a VMCOREINFO note or an
    os_info page, damaged.
    """
    page0 = bytearray(4096)
    page1 = bytearray(4096)
    second = draw(st.sampled_from((0x10000, 0x10004, 0x10FFC)))
    struct.pack_into(
        ">Q",
        page0,
        0xE0C,
        draw(st.sampled_from((0, 1, 0x10001, second)) | st.integers(0, (1 << 64) - 1)),
    )
    struct.pack_into(
        ">Q", page0, 0xE18, draw(st.sampled_from((0, 0x10000)) | st.integers(0, (1 << 64) - 1))
    )
    text = draw(st.text(max_size=300)).encode("utf-8", "replace")
    namesz = draw(st.sampled_from((11, 10, 64, 65, 0xFFFFFFFF)))
    descsz = draw(st.sampled_from((len(text), 0, 1 << 20, 0xFFFFFFFF)))
    if draw(st.booleans()):
        struct.pack_into(">III", page1, 0, namesz, descsz, 0)
        page1[12:24] = b"VMCOREINFO\0\0"
        page1[24 : 24 + len(text[:4000])] = text[:4000]
    else:
        struct.pack_into(">QIHH", page1, 0, 0x4F53494E464F535A, 0, 1, 1)
        for i in range(draw(st.integers(0, 13))):
            struct.pack_into(
                ">QQI",
                page1,
                0x20 + i * 20,
                draw(st.integers(0, (1 << 64) - 1)),
                draw(st.integers(0, (1 << 64) - 1)),
                0,
            )
    return bytes(page0) + bytes(page1) + text


def check_vmcoreinfo(data: bytes) -> None:
    def run() -> None:
        mem = BytesMemory({0: data[:4096], 0x10000: data[4096:8192]})
        found = vmcoreinfo_from_memory(mem)
        assert found.info is not None or found.problem
        os_info_from_memory(mem)
        info = parse_vmcoreinfo(data[8192:].decode("utf-8", "replace"), "fuzz")
        for key in list(info.entries)[:20]:
            info.hex(key), info.decimal(key)
        _ = info.release, info.page_size, info.kernel_offset, info.crash_time

    only_dump_errors(run)


# -- BTF, profile JSON, System.map -----------------------------------------------------------------
def _btf_seed() -> Seed:
    from tests.helpers.types import mock_btf

    blob = mock_btf(">")
    hdr_len = struct.unpack_from(">I", blob, 4)[0]
    bounds = list(range(0, 24, 4))
    pos = hdr_len
    # type records start every 12 bytes plus trailers; aim at the first few hundred bytes
    bounds += list(range(pos, min(len(blob), pos + 600), 4))
    return Seed("btf", blob, tuple(bounds))


def check_btf(data: bytes) -> None:
    def run() -> None:
        profile = profile_from_btf(data, "6.12.0-fuzz", source="btf:fuzz", thread_size=16384)
        TypeProfile.from_json(profile.to_json())

    only_dump_errors(run)


def json_values() -> st.SearchStrategy[Any]:
    """Any JSON value, shallow."""
    leaf = (
        st.none()
        | st.booleans()
        | st.integers(-(1 << 70), 1 << 70)
        | st.floats()
        | st.text(max_size=20)
    )
    return (
        leaf | st.lists(leaf, max_size=4) | st.dictionaries(st.text(max_size=12), leaf, max_size=4)
    )


@st.composite
def profile_text(draw: st.DrawFn) -> bytes:
    """A valid profile with some keys replaced by random JSON, or a damaged text."""
    ks = kernel_seeds()
    doc = json.loads((ks.folder / "profile.json").read_text())
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from([*doc, "offsets", "sizes"]))
        if draw(st.booleans()) and isinstance(doc.get(key), dict) and doc[key]:
            member = draw(st.sampled_from(sorted(doc[key])))
            doc[key][member] = draw(json_values())
        else:
            doc[key] = draw(json_values())
    text = json.dumps(doc).encode()
    if draw(st.booleans()):
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.binary(max_size=8))
    return text


def check_profile(data: bytes) -> None:
    def run() -> None:
        path = scratch("fuzz.profile.json", data)
        profile = TypeProfile.load(path)
        for name in ("task_struct.tasks", "thread_union", "pt_regs"):
            if profile.has(name):
                _ = profile.offsets.get(name), profile.sizes.get(name)
        TypeProfile.from_json(profile.to_json())

    only_dump_errors(run)


@st.composite
def system_map_text(draw: st.DrawFn) -> bytes:
    lines = kernel_seeds().kernel.system_map().splitlines()
    out = []
    for line in lines:
        r = draw(st.integers(0, 30))
        if r == 0:
            out.append(draw(st.text(max_size=40)))
        elif r == 1:
            _, kind, name = line.split()
            out.append(f"{draw(st.integers(0, (1 << 70)))} {kind} {name}")
        elif r == 2:
            continue
        else:
            out.append(line)
    text = "\n".join(out).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        text += draw(st.binary(max_size=32))
    return text


def check_system_map(data: bytes) -> None:
    def run() -> None:
        table = load_system_map(scratch("System.map.fuzz", data))
        for address in (0, 0x100000, 0x100040, 0x2000000, (1 << 64) - 1):
            table.format(address)
            table.is_text(address)
        table.relocate(0x1000)
        table.lookup(0x101000)

    only_dump_errors(run)


# -- the DAT walk ----------------------------------------------------------------------------------
_TABLE_PAGES = (0x10000, 0x14000, 0x18000, 0x1C000)  # region/segment tables are 16 KiB


@st.composite
def dat_tables(draw: st.DrawFn) -> bytes:
    """An ASCE, page tables of random entries pointing among themselves, and addresses.

    Layout: asce u64, prefix u64, then (table u8, index u16, entry u64) triples, then vas.
    """
    asce_origin = draw(st.sampled_from(_TABLE_PAGES))
    asce = asce_origin | draw(st.integers(0, 0xFFF))
    out = bytearray(struct.pack(">QQ", asce, draw(st.sampled_from((0, 0x2000, 0x10000)))))
    n = draw(st.integers(0, 40))
    out += struct.pack(">H", n)
    for _ in range(n):
        table = draw(st.integers(0, len(_TABLE_PAGES) - 1))
        index = draw(st.integers(0, 2047))
        target = draw(st.sampled_from(_TABLE_PAGES)) | draw(st.integers(0, 0xFFF))
        entry = draw(st.sampled_from((target, target & ~0x7FF)) | st.integers(0, (1 << 64) - 1))
        out += struct.pack(">BHQ", table, index, entry)
    for _ in range(draw(st.integers(1, 8))):
        out += struct.pack(">Q", draw(st.integers(0, (1 << 64) - 1)))
    return bytes(out)


def check_dat(data: bytes) -> None:
    def run() -> None:
        if len(data) < 18:
            return
        asce, prefix, n = struct.unpack_from(">QQH", data)
        pages = {p: bytearray(0x4000) for p in _TABLE_PAGES}
        pos = 18
        for _ in range(n):
            if pos + 11 > len(data):
                return
            table, index, entry = struct.unpack_from(">BHQ", data, pos)
            pos += 11
            page = pages[_TABLE_PAGES[table % len(_TABLE_PAGES)]]
            struct.pack_into(">Q", page, (index % 2048) * 8, entry)
        mem = BytesMemory({p: bytes(b) for p, b in pages.items()})
        space = AddressSpace(mem, VaLayout("legacy", 0, 0x10000), asce, prefix or None)
        for off in range(pos, len(data) - 7, 8):
            (va,) = struct.unpack_from(">Q", data, off)
            try:
                steps: list[Any] = []
                space.dat_walk(va, steps)
                assert len(steps) <= 5, steps
                space.translate(va)
                space.read(va, 16)
            except (TranslationError, UnmappedError) as error:
                check_message(error)

    only_dump_errors(run)


# -- the unwinder ----------------------------------------------------------------------------------
STACK_BASE = 0x37F_0000_4000
IRQ_BASE = 0x37F_0010_0000
THREAD = 16384
TEXT = (0x100000, 0x200000)
PT_REGS_SIZE = 200


@st.composite
def stack_contents(draw: st.DrawFn) -> bytes:
    """A task stack (and an irq stack) of frames whose back chains and r14s are drawn from
    what corruption produces: zero, self, an earlier frame, the other stack, misaligned.

    Layout: sp u64, flags u8 (bit 0: era v5.5, bit 1: start from registers, bit 2: running
    on a CPU with an irq stack), psw addr u64, psw mask u64, then (stack u8, offset u16,
    value u64) words.
    """
    top = STACK_BASE + THREAD - 160 - PT_REGS_SIZE
    count = draw(st.integers(1, 30))
    sps = sorted({draw(st.integers(STACK_BASE, top).map(lambda v: v & ~7)) for _ in range(count)})
    sps.append(top)
    irq_top = IRQ_BASE + THREAD - 160 - PT_REGS_SIZE
    words: list[tuple[int, int, int]] = []

    def put(va: int, value: int) -> None:
        stack, base = (1, IRQ_BASE) if va >= IRQ_BASE else (0, STACK_BASE)
        off = va - base
        if 0 <= off <= THREAD - 8:
            words.append((stack, off, value))

    text_ip = st.integers(*TEXT)
    for i, sp in enumerate(sps):
        chain = draw(
            st.sampled_from(
                (
                    sps[i + 1] if i + 1 < len(sps) else 0,
                    0,
                    sp,
                    sps[max(0, i - 1)],
                    sp + 4,
                    irq_top,
                    STACK_BASE + THREAD,
                )
            )
            | st.integers(0, (1 << 64) - 1)
        )
        put(sp + 0x98, chain)  # packed stack: back chain at 0x98
        put(sp + 0x88, draw(text_ip | st.sampled_from((0, 1, TEXT[1] + 8))))  # r14
        put(sp + 0x90, draw(st.sampled_from((sp, chain, 0))))  # r15
    # pt_regs above the top frame: psw mask (user or kernel), psw addr, gprs[15]
    regs = top + 160
    mask = draw(st.sampled_from((0x0705C00180000000, 0x0704C00180000000, 0)))
    put(regs + 0x08, mask)
    put(regs + 0x10, draw(text_ip))
    put(regs + 0x18 + 15 * 8, draw(st.sampled_from((sps[0], 0, top))))
    for _ in range(draw(st.integers(0, 10))):
        put(
            draw(st.sampled_from((STACK_BASE, IRQ_BASE))) + draw(st.integers(0, THREAD - 8)),
            draw(st.sampled_from(sps) | st.integers(0, (1 << 64) - 1)),
        )
    flags = draw(st.integers(0, 7))
    start = draw(st.sampled_from(sps) | st.integers(STACK_BASE - 64, IRQ_BASE + THREAD))
    out = bytearray(struct.pack(">QBQQ", start, flags, draw(text_ip), mask))
    for w in words:
        out += struct.pack(">BHQ", *w)
    return bytes(out)


def check_walk(data: bytes) -> None:
    def run() -> None:
        if len(data) < 25:
            return
        sp, flags, ip, mask = struct.unpack_from(">QBQQ", data)
        images = [bytearray(THREAD), bytearray(THREAD)]
        for off in range(25, len(data) - 10, 11):
            stack, where, value = struct.unpack_from(">BHQ", data, off)
            where = min(where, THREAD - 8) & ~7
            struct.pack_into(">Q", images[stack & 1], where, value)
        mem = {STACK_BASE: bytes(images[0]), IRQ_BASE: bytes(images[1])}

        def read(va: int, size: int) -> bytes:
            for base, blob in mem.items():
                if base <= va and va + size <= base + THREAD:
                    return blob[va - base : va - base + size]
            raise UnmappedError(va)

        ctx = UnwindContext(
            read=read,
            is_text=lambda a: TEXT[0] <= a < TEXT[1],
            pt_regs_layout="v6.1",
            pt_regs_size=PT_REGS_SIZE,
            era="v5.5" if flags & 1 else "current",
            return_to_handler=TEXT[0] + 0x100,
            kretprobe_trampolines={TEXT[0] + 0x200: "__kretprobe_trampoline"},
        )
        task = StackRange("task", STACK_BASE, STACK_BASE + THREAD)
        cpu_stacks = (StackRange("irq", IRQ_BASE, IRQ_BASE + THREAD),) if flags & 4 else ()
        regions = StackRegions(task, cpu_stacks, 0 if flags & 4 else None)
        stacks = TaskStacks(
            regions, STACK_BASE + THREAD - PT_REGS_SIZE, (STACK_BASE, 3), STACK_BASE + 0x100
        )
        regs = None
        if flags & 2:
            gprs = tuple([0] * 15 + [sp])
            regs = PtRegs(0, "v6.1", 0, Psw(mask, ip), gprs, 0, 0, 0, 0, 0, None, None)
        for detailed in (True, False):
            w = walk(ctx, stacks, sp=sp, regs=regs, start="fuzz", detailed=detailed)
            assert len(w.steps) <= MAX_STEPS, len(w.steps)
            assert w.end.kind in ("final_pt_regs", "error", "user_regs", "no_stack", "step_limit")
            stack_walk_reliable(
                w,
                ctx.is_text,
                running=bool(flags & 4),
                trampolines=tuple(ctx.kretprobe_trampolines),
            )

    only_dump_errors(run)


# -- the CLI ---------------------------------------------------------------------------------------
def check_cli(data: bytes) -> None:
    """``backchain info``/``check`` on a mutated ELF: exit 0, 1 or 2, one line on stderr."""
    from explorer.cli import main

    path = scratch("fuzz-cli", data)
    for argv in (["info", "--json", path], ["check", path], ["ps", "--tree", path]):
        out, err = io.StringIO(), io.StringIO()
        with (
            time_limit(),
            shared_cache(),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            rc = main(argv)
        assert rc in (0, 1, 2), (argv, rc)
        if rc == 2:
            lines = err.getvalue().splitlines()
            assert len(lines) == 1 and lines[0].startswith("backchain: "), lines


# -- DWARF: type profiles and source lines --------------------------------------------------------
def check_dwarf_types(data: bytes) -> None:
    """A type profile from a mutated object file's DWARF: a profile or a FormatError."""

    def run() -> None:
        profile = profile_from_dwarf(scratch("fuzz-types.o", data), use_cache=False)
        TypeProfile.from_json(profile.to_json())

    only_dump_errors(run)


#: Addresses of lines_mock.elf's code (tests/data/lines_mock.addr2line) and around it.
LINE_ADDRESSES = (0, 0x1000000, 0x1000147, 0x1000148, 0x1000200, 0x10003FF, (1 << 64) - 1)


def check_dwarf_lines(data: bytes) -> None:
    """Source lines of a mutated linked ELF: locations or a DumpError, through the cache."""

    def run() -> None:
        lines = open_dwarf_lines(scratch("fuzz-lines.elf", data))
        try:
            for address in LINE_ADDRESSES:
                location = lines.lookup(address)
                _ = location.source, location.inlined
            lines.save()
        finally:
            lines.close()

    only_dump_errors(run)


# -- the explorer ----------------------------------------------------------------------------------
#: Keys a user presses on the overview: a task's stack, back, the lowcore, back, help, back.
PILOT_KEYS = ("down", "enter", "tab", "escape", "l", "escape", "question_mark", "escape")


def check_explorer(data: bytes) -> None:
    """The explorer, headless, on a mutated dump: it opens (or shows its error panel), judges
    every task, opens a stack, and no exception escapes it."""
    import asyncio

    from explorer.tui.app import BackchainApp
    from explorer.tui.widgets.error import ErrorPanel

    path = scratch("fuzz-explorer", data)
    folder = Path(path).parent
    opts = Options(system_map=str(folder / "System.map"), profile=str(folder / "profile.json"))

    async def session() -> None:
        app = BackchainApp(path, opts, export_dir=str(folder))
        app.animation_level = "none"
        async with app.run_test(size=(100, 30)) as pilot:
            for _ in range(400):  # the overview loads in a worker
                await pilot.pause(0.02)
                if app.overview.checked or app.overview.query_one(ErrorPanel).display:
                    break
            await app.workers.wait_for_complete()
            for key in PILOT_KEYS:
                await pilot.press(key)
                await pilot.pause()
            await app.workers.wait_for_complete()

    with time_limit(EXPLORER_HANG_SECONDS), shared_cache():
        asyncio.run(session())


def _file_seed(name: str, path: Path, sections: tuple[str, ...]) -> Seed:
    """A file of tests/data with the starts of its named sections (and every 4th byte of
    their first 512) as boundaries."""
    from parsers.elf.sections import ElfSections

    bounds: list[int] = list(range(0, 64, 4))
    with ElfSections(path) as elf:
        for section_name in sections:
            section = elf.get(section_name)
            if section is not None:
                bounds += range(section.offset, section.offset + min(section.size, 512), 4)
    return Seed(name, path.read_bytes(), tuple(sorted(set(bounds))))


DATA = Path(__file__).resolve().parents[1] / "data"
DWARF_SECTIONS = (".debug_info", ".debug_abbrev", ".debug_line", ".debug_str", ".debug_aranges")


# -- the registry ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A fuzz target: inputs and the check that judges them."""

    name: str
    strategy: Callable[[], st.SearchStrategy[bytes]]
    check: Callable[[bytes], None]
    #: seconds per input, not milliseconds: a failure is kept as found, not shrunk
    slow: bool = False


def _seed(name: str) -> Seed:
    return seeds()[name]


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("elf", lambda: mutated(_seed("elf")), dump_target("elf")),
        Target("kdump", lambda: mutated(_seed("kdump")), dump_target("kdump")),
        Target("kdump-flat", lambda: mutated(_seed("kdump-flat")), dump_target("kdump-flat")),
        Target("s390_ext", lambda: mutated(_seed("s390_ext")), dump_target("s390_ext")),
        Target("s390", lambda: mutated(_seed("s390")), dump_target("s390", kernel=False)),
        Target("notes", notes_blob, check_notes),
        Target("vmcoreinfo", lowcore_memory, check_vmcoreinfo),
        Target("btf", lambda: mutated(_btf_seed(), 3), check_btf),
        Target("profile", profile_text, check_profile),
        Target("system_map", system_map_text, check_system_map),
        Target("dat", dat_tables, check_dat),
        Target("walk", stack_contents, check_walk),
        Target("kernel", lambda: memory_mutated(_seed("elf")), dump_target("kernel")),
        Target("cli", lambda: mutated(_seed("elf"), 2) | memory_mutated(_seed("elf")), check_cli),
        Target(
            "dwarf_types",
            lambda: mutated(_file_seed("dwarf_types", DATA / "types_mock.o", DWARF_SECTIONS), 3),
            check_dwarf_types,
        ),
        Target(
            "dwarf_lines",
            lambda: mutated(_file_seed("dwarf_lines", DATA / "lines_mock.elf", DWARF_SECTIONS), 3),
            check_dwarf_lines,
        ),
        Target(
            "explorer",
            lambda: mutated(_seed("elf"), 2) | memory_mutated(_seed("elf")),
            check_explorer,
            slow=True,
        ),
        Target("serve", serve_inputs, check_serve),
    )
}

# the cache and decompression targets share a cache folder between inputs (their own module)
from tests.fuzz.cache_targets import CACHE_TARGETS  # noqa: E402

TARGETS.update(CACHE_TARGETS)
