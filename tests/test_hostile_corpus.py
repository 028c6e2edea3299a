"""The corrupt-dump corpus: targeted mutations of the synthetic (and real) dumps, each with
the exact error or verdict it must produce.

Mutations are made here, deterministically, from the seeds of :mod:`tests.fuzz.seeds`; no
binary dump is committed. The real QEMU samples are mutated at test time through small
partial copies of their decompressed cache file.
"""

from __future__ import annotations

import contextlib
import io
import re
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.kernel import Options
from explorer.model.opening import open_kernel
from explorer.model.tasks import find_tasks
from explorer.walk.analysis import analyse_task, unwind_context
from parsers.compressed import decompressed_path
from parsers.dumps.dumpfile import open_dump
from parsers.dumps.elfcore import ElfCore
from parsers.dumps.kdump import DUMP_DH_COMPRESSED_INCOMPLETE, KdumpFile
from parsers.dumps.s390dump import S390Dump
from parsers.errors import DumpError, FormatError, TranslationError, TruncatedError
from tests.fuzz.seeds import companions, kernel_seeds, seeds

REAL = Path(__file__).resolve().parent.parent / "samples" / "real"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with the synthetic kernel's System.map and profile.json."""
    companions(tmp_path)
    return tmp_path


def write(folder: Path, data: bytes | bytearray, name: str = "vmcore") -> str:
    path = folder / name
    path.write_bytes(bytes(data))
    return str(path)


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return rc, out.getvalue(), err.getvalue()


def open_error(path: str) -> DumpError:
    with pytest.raises(DumpError) as info:
        dump = open_dump(path)
        dump.close()
    return info.value


@contextlib.contextmanager
def elf_core() -> Iterator[ElfCore]:
    core = ElfCore(str(kernel_seeds().folder / "vmcore"))
    try:
        yield core
    finally:
        core.close()


def file_offset(va: int) -> int:
    """File offset in the ELF seed of kernel virtual address ``va``."""
    pa = kernel_seeds().kernel.va_to_pa(va)
    with elf_core() as core:
        for s in core.segments:
            if s.paddr <= pa < s.paddr + s.filesz:
                return s.offset + pa - s.paddr
    raise AssertionError(f"0x{va:x} is not in the seed")


def put_u64(data: bytearray, va: int, value: int) -> None:
    off = file_offset(va)
    data[off : off + 8] = struct.pack(">Q", value)


# -- cut at every structural boundary --------------------------------------------------------------
def _elf_cut_message(cut: int) -> str:
    with elf_core() as core:
        data = seeds()["elf"].data
        phoff = struct.unpack_from(">Q", data, 32)[0]
        phend = phoff + struct.unpack_from(">H", data, 56)[0] * 56
        if cut < 64:
            return "ELF header is truncated"
        if cut < phend:
            return "program headers extend past the end of the file"
        notes = [(s.offset, s.offset + s.filesz) for s in core.segments]
        first_load = min(o for o, _ in notes)
        if cut < first_load:
            return "note segment 0 extends past the end of the file"
        return (
            r"memory segment \d+ \(absolute 0x[0-9a-f]+, \d+ bytes at file offset 0x[0-9a-f]+\) "
            r"extends past the end of the file \(\d+ bytes\): the dump is truncated"
        )


def test_elf_cut_at_every_boundary(folder: Path) -> None:
    seed = seeds()["elf"]
    for cut in seed.boundaries:
        if cut in (0, len(seed.data)):
            continue
        error = open_error(write(folder, seed.data[:cut]))
        assert isinstance(error, TruncatedError), (cut, error)
        assert re.search(_elf_cut_message(cut), error.message), (cut, error.message)


def test_kdump_cut_at_every_boundary(folder: Path) -> None:
    seed = seeds()["kdump"]
    words = (
        "compressed kdump header is truncated",
        "kdump sub-header is truncated",
        "kdump bitmaps extend past the end of the file",
        "page descriptors (",
        "lie past the end of the file",
        "lies past the end of the file: the dump is truncated",
    )
    for cut in seed.boundaries:
        if cut in (0, len(seed.data)):
            continue
        path = write(folder, seed.data[:cut])
        try:
            dump = open_dump(path)
        except DumpError as error:
            assert any(w in error.message for w in words), (cut, error.message)
            continue
        try:  # cut inside the page data: the header is fine, a page is not
            with pytest.raises(TruncatedError, match="the dump is truncated"):
                for r in dump.ranges:
                    dump.read(r.start, r.end - r.start)
        finally:
            dump.close()


def test_flattened_kdump_cut_at_every_boundary(folder: Path) -> None:
    seed = seeds()["kdump-flat"]
    for cut in seed.boundaries:
        if cut in (0, len(seed.data)):
            continue
        path = write(folder, seed.data[:cut])
        try:
            dump = open_dump(path)
        except DumpError as error:
            assert re.search(
                r"truncated|runs past the end|in no record|extend past|lies? outside", error.message
            ), (cut, error.message)
            continue
        try:  # cut between records: no end marker, and the pages after the cut are missing
            assert dump.format_facts()["flat_complete"] is False
            if cut < len(seed.data) - 16:
                with pytest.raises(TruncatedError, match=r"\(the file has no end marker: trunc"):
                    for r in dump.ranges:
                        dump.read(r.start, r.end - r.start)
        finally:
            dump.close()


@pytest.mark.parametrize("name", ["s390_ext", "s390"])
def test_s390_cut_at_every_boundary(folder: Path, name: str) -> None:
    seed = seeds()[name]
    for cut in seed.boundaries:
        if cut in (0, len(seed.data)):
            continue
        error = open_error(write(folder, seed.data[:cut]))
        assert re.search(
            r"header is truncated|past the end of the file|end marker is missing|"
            r"declares \d+ bytes of memory but the file has only \d+ after the header: truncated",
            error.message,
        ), (cut, error.message)


# -- ELF notes -------------------------------------------------------------------------------------
def test_zeroed_notes_open_without_cpus(folder: Path) -> None:
    data = bytearray(seeds()["elf"].data)
    with elf_core() as core:
        first = core.notes[0].offset
        last = core.notes[-1]
        end = last.offset + 12 + 8 + len(last.desc)
    data[first:end] = bytes(end - first)
    kernel = open_kernel(write(folder, data))
    try:
        assert kernel.cpus == ()
        assert "kernel ASCE unknown: vmalloc addresses cannot be translated" in kernel.warnings
        scan = find_tasks(kernel)
        walks = [analyse_task(kernel, t, unwind_context(kernel)).walk for t in scan.tasks]
        # every stack is in vmalloc space: without the ASCE no walk gets past its start
        assert len(walks) == 5 and all(w.steps == () and w.end.error for w in walks)
        unreadable = [w for w in walks if w.end.detail == "unreadable_memory"]
        assert len(unreadable) == 4
        assert all("no kernel ASCE known" in w.end.checks[-1].reason for w in unreadable)
    finally:
        kernel.close()


def test_huge_note_size(folder: Path) -> None:
    data = bytearray(seeds()["elf"].data)
    with elf_core() as core:
        at = core.notes[0].offset
    data[at + 4 : at + 8] = struct.pack(">I", 0xFFFFFFF0)
    error = open_error(write(folder, data))
    assert isinstance(error, FormatError)
    assert error.message == (
        f"ELF note at file offset 0x{at:x} has an absurd size (name 5, descriptor "
        f"{0xFFFFFFF0} bytes)"
    )


def test_note_size_past_its_segment(folder: Path) -> None:
    data = bytearray(seeds()["elf"].data)
    with elf_core() as core:
        at = core.notes[-1].offset
    data[at + 4 : at + 8] = struct.pack(">I", 1 << 20)
    error = open_error(write(folder, data))
    assert error.message == f"ELF note at file offset 0x{at:x} runs past its segment"


def test_prefix_outside_memory(folder: Path) -> None:
    data = bytearray(seeds()["elf"].data)
    with elf_core() as core:
        prefix = next(n for n in core.notes if n.name == "LINUX" and n.type == 0x305)
    at = prefix.offset + 12 + 8
    data[at : at + 4] = struct.pack(">I", 0x7FFF0000)
    rc, out, err = cli("info", write(folder, data))
    assert rc == 2 and out == ""
    assert err.count("\n") == 1
    assert "CPU 0: its prefix register 0x7fff0000 points outside the" in err


# -- memory: task list, page tables, back chains ---------------------------------------------------
def test_cyclic_task_list(folder: Path) -> None:
    k = kernel_seeds().kernel
    off = k.offsets["task_struct.tasks"]
    data = bytearray(seeds()["elf"].data)
    last, second = k.tasks[-1], k.tasks[1]
    put_u64(data, last.address + off, second.address + off)  # last -> an earlier task
    rc, out, err = cli("ps", write(folder, data))
    assert rc == 0
    assert (
        f"init_task.tasks: loops back to 0x{second.address + off:x} before reaching its head; "
        "the list is corrupted, stopped there" in err
    )
    assert "kworker/0:1" in out  # every task before the loop is still listed


def test_task_list_pointing_to_itself(folder: Path) -> None:
    k = kernel_seeds().kernel
    off = k.offsets["task_struct.tasks"]
    data = bytearray(seeds()["elf"].data)
    task = k.tasks[2]
    put_u64(data, task.address + off, task.address + off)
    kernel = open_kernel(write(folder, data))
    try:
        scan = find_tasks(kernel)
        assert scan.warnings == [
            f"init_task.tasks: loops back to 0x{task.address + off:x} before reaching its "
            "head; the list is corrupted, stopped there"
        ]
    finally:
        kernel.close()


def test_page_table_loop(folder: Path) -> None:
    """A region-third entry pointing back at its own table: the walk stops at the type."""
    k = kernel_seeds().kernel
    data = bytearray(seeds()["elf"].data)
    task = next(t for t in k.tasks if t.pid == 100)
    rtx = (task.stack >> 31) & 0x7FF
    rtt = k._rtt
    entry = struct.unpack_from(">Q", data, file_offset(rtt + rtx * 8))[0]
    put_u64(data, rtt + rtx * 8, rtt | (entry & 0xFFF))
    kernel = open_kernel(write(folder, data))
    try:
        with pytest.raises(TranslationError) as info:
            kernel.space.dat_walk(task.stack)
        assert info.value.message == (
            f"0x{task.stack:016x}: segment table entry {(task.stack >> 20) & 0x7FF} has the "
            "wrong table type"
        )
        scan = find_tasks(kernel)
        a = analyse_task(kernel, scan.by_pid(100)[0])
        assert a.walk.end.detail == "unreadable_memory"
        assert a.verdict.reliable is False
    finally:
        kernel.close()


def test_back_chain_to_itself(folder: Path) -> None:
    k = kernel_seeds().kernel
    task = next(t for t in k.tasks if t.pid == 100)
    data = bytearray(seeds()["elf"].data)
    put_u64(data, task.ksp + 0x98, task.ksp)
    rc, out, _ = cli("bt", "--pid", "100", write(folder, data))
    assert rc == 0
    assert f"-- end: unwind error (sp_not_increasing) at 0x{task.ksp:016x} --" in out
    assert "verdict: UNRELIABLE: unwind_error/sp_not_increasing at frame #0" in out


def test_back_chain_loop_between_two_frames(folder: Path) -> None:
    k = kernel_seeds().kernel
    task = next(t for t in k.tasks if t.pid == 101)
    data = bytearray(seeds()["elf"].data)
    second = struct.unpack_from(">Q", data, file_offset(task.ksp + 0x98))[0]
    put_u64(data, second + 0x98, task.ksp)  # frame 1 chains back to frame 0
    kernel = open_kernel(write(folder, data))
    try:
        a = analyse_task(kernel, find_tasks(kernel).by_pid(101)[0])
        assert [s.sp for s in a.walk.steps] == [task.ksp, second]
        assert a.walk.end.detail == "sp_not_increasing"
    finally:
        kernel.close()


# -- kdump -----------------------------------------------------------------------------------------
def _kdump_layout() -> tuple[int, int]:
    """(data offset, dumped pages) of the kdump seed."""
    k = KdumpFile(str(kernel_seeds().folder / "kdump"))
    try:
        part = k._parts[0]
        return part.data_offset, part.dumped_pages
    finally:
        k.close()


def test_kdump_descriptors_past_eof(folder: Path) -> None:
    data_offset, pages = _kdump_layout()
    cut = data_offset + 24 * 3
    error = open_error(write(folder, seeds()["kdump"].data[:cut]))
    assert error.message == (
        f"page descriptors ({pages} x 24 bytes at offset 0x{data_offset:x}) extend past the "
        "end of the file: the dump is truncated"
    )


def test_kdump_descriptor_past_eof_in_an_incomplete_dump(folder: Path) -> None:
    """makedumpfile marks a dump it could not finish: each page is judged when read."""
    data_offset, _ = _kdump_layout()
    data = bytearray(seeds()["kdump"].data[: data_offset + 24 * 3])
    status = struct.unpack_from(">I", data, 0x1A8)[0] | DUMP_DH_COMPRESSED_INCOMPLETE
    struct.pack_into(">I", data, 0x1A8, status)
    dump = open_dump(write(folder, data))
    try:
        last = dump.ranges[-1].end - 4096
        with pytest.raises(TruncatedError) as info:
            dump.read(last, 8)
        assert info.value.message == (
            f"the page descriptor of physical address 0x{last:x} lies past the end of the "
            "file: the dump is truncated"
        )
    finally:
        dump.close()


def test_kdump_page_data_past_eof(folder: Path) -> None:
    data_offset, _ = _kdump_layout()
    data = bytearray(seeds()["kdump"].data)
    struct.pack_into(">q", data, data_offset, 1 << 40)  # first descriptor's offset
    dump = open_dump(write(folder, data))
    try:
        with pytest.raises(TruncatedError, match=r"lies past the end of the file: the dump"):
            dump.read(0, 8)
    finally:
        dump.close()


def test_kdump_zlib_bomb_page(folder: Path) -> None:
    data_offset, _ = _kdump_layout()
    data = bytearray(seeds()["kdump"].data)
    offset = struct.unpack_from(">q", data, data_offset)[0]
    bomb = zlib.compress(bytes(4 << 20), 9)  # 4 MiB of zeros in ~4 KiB
    assert len(bomb) <= 4096
    data[offset : offset + len(bomb)] = bomb
    struct.pack_into(">qII", data, data_offset, offset, len(bomb), 1)
    dump = open_dump(write(folder, data))
    try:
        with pytest.raises(FormatError) as info:
            dump.read(0, 8)
        assert info.value.message == (
            "page at physical address 0x0 does not decompress (zlib: decompresses to more "
            "than 4096 bytes)"
        )
    finally:
        dump.close()


def test_kdump_huge_max_mapnr(folder: Path) -> None:
    data = bytearray(seeds()["kdump"].data)
    bs = struct.unpack_from(">i", data, 0x1AC)[0]
    struct.pack_into(">Q", data, bs + 0x60, 1 << 50)  # max_mapnr_64
    error = open_error(write(folder, data))
    assert re.fullmatch(
        r"bitmaps \(\d+ bytes each\) too small for 1125899906842624 pages", error.message
    )


# -- s390 ------------------------------------------------------------------------------------------
def s390_ext_bomb(folder: Path) -> str:
    """An "s390_ext" dump of one 1 MiB segment whose zlib entry inflates to 64 MiB."""
    head = bytearray(seeds()["s390_ext"].data[:0x1000])
    struct.pack_into(">Q", head, 0x18, 1 << 20)  # mem_size
    struct.pack_into(">H", head, 0x5D, 0)  # no CPUs
    bomb = zlib.compress(bytes(64 << 20), 9)
    disk = -(-len(bomb) // 4096)
    seg = bytearray(0x1000)
    struct.pack_into(">QQQI", seg, 0, 0, 1 << 20, 1, disk)
    struct.pack_into(">II", seg, 0x30, 1, 0)  # one entry, at block 0
    tod = struct.unpack_from(">Q", head, 0x38)[0]
    body = bytes(head) + bytes(seg) + bomb.ljust(disk * 4096, b"\0")
    return write(folder, body + b"DUMP_END" + struct.pack(">Q", tod), "bomb.s390")


def test_s390_ext_zlib_bomb_is_capped(folder: Path) -> None:
    import tracemalloc

    path = s390_ext_bomb(folder)
    tracemalloc.start()
    try:
        dump = S390Dump(path, cache_entries=1)
        try:
            assert dump.read(0, 8) == bytes(8)
            assert dump.read((1 << 20) - 8, 8) == bytes(8)
        finally:
            dump.close()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20  # one 1 MiB entry, never the 64 MiB the stream holds


def test_s390_segment_outside_memory(folder: Path) -> None:
    data = bytearray(seeds()["s390_ext"].data)
    struct.pack_into(">Q", data, 0x1000, 1 << 40)  # first segment's start
    error = open_error(write(folder, data))
    assert (
        error.message
        == (
            "segment at file offset 0x1000 covers 0x10000000000+0x100000, outside memory or out "
            "of order"
        )
        or "outside memory or out of order" in error.message
    )


def test_s390_too_many_cpus(folder: Path) -> None:
    data = bytearray(seeds()["s390"].data)
    struct.pack_into(">H", data, 0x5D, 513)
    error = open_error(write(folder, data))
    assert error.message == "s390 dump header lists 513 CPUs (at most 512)"


# -- empty memory, overlapping segments (bugs the fuzzers found) -----------------------------------
def test_elf_without_memory_bytes(folder: Path) -> None:
    """Every PT_LOAD empty (filesz 0): the card is shown, no crash (was a ValueError)."""
    from parsers.write.elfwriter import write_elf_core

    path = folder / "empty"
    write_elf_core(path, [(0, b"")], [])
    rc, out, err = cli("info", str(path))
    assert rc == 0, err
    assert "memory" in out
    rc, _, err = cli("bt", "--pid", "1", str(path))
    assert rc == 2 and err.startswith("backchain: ") and err.count("\n") == 1


def test_overlapping_segments_give_disjoint_readable_ranges(folder: Path) -> None:
    from parsers.write.elfwriter import write_elf_core

    path = folder / "overlap"
    write_elf_core(path, [(0, b"\1" * 0x3000), (0x1000, b"\2" * 0x4000)], [])
    core = ElfCore(str(path))
    try:
        assert [(r.start, r.end) for r in core.ranges] == [(0, 0x5000)]
        assert core.read(0x2FFC, 8) == b"\1" * 4 + b"\2" * 4  # first segment wins
        for r in core.ranges:
            assert len(core.read(r.start, r.size)) == r.size
    finally:
        core.close()


# -- the real samples, mutated at test time --------------------------------------------------------
REAL_DUMPS = sorted(REAL.glob("*/vmcore.zst"))


@pytest.mark.parametrize("sample", REAL_DUMPS[:1], ids=lambda p: p.parent.name)
def test_real_sample_truncated_and_damaged(tmp_path: Path, sample: Path) -> None:
    full = decompressed_path(sample)
    core = ElfCore(str(full))
    try:
        load = core.segments[0]
        notes = core.notes
    finally:
        core.close()
    with open(full, "rb") as f:
        head = f.read(load.offset + (1 << 20))  # headers, notes and 1 MiB of memory
    cut = tmp_path / "cut.vmcore"
    cut.write_bytes(head)
    error = open_error(str(cut))
    assert "extends past the end of the file" in error.message
    assert "the dump is truncated" in error.message
    bad = bytearray(head)
    struct.pack_into(">I", bad, notes[0].offset + 4, 0xFFFFFFFF)
    cut.write_bytes(bytes(bad))
    error = open_error(str(cut))
    assert "has an absurd size" in error.message


def test_kernel_open_names_the_problem_in_one_line(folder: Path) -> None:
    """Options pointing at files from someone else: one DumpError line each."""
    path = write(folder, seeds()["elf"].data)
    junk = folder / "junk"
    junk.write_bytes(b"\x00garbage\xff" * 10)
    for opts in (Options(system_map=str(junk)), Options(profile=str(junk))):
        with pytest.raises(DumpError) as info:
            open_kernel(path, opts)
        assert "\n" not in str(info.value) and str(junk) in str(info.value)
