"""Decompressed copies with their zero pages as holes (issue 26): the same bytes as `zstd -d`
whatever reads them (read, mmap, the dump readers), no blocks for the zero pages, the
decompressing thread ended however the copy ends, and the digest that names a copy taken as
the file is read."""

from __future__ import annotations

import hashlib
import mmap
import os
import random
import subprocess
import threading
from pathlib import Path

import pytest
import zstandard

from parsers import compressed
from parsers.compressed import content_key, decompressed_path, prune_dumps, room_for_copies
from parsers.dumps.dumpfile import open_dump
from parsers.errors import FormatError
from parsers.sparse import PAGE, nonzero_runs
from tests.helpers.caches import copies
from tests.helpers.oracles import zstd_command

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
ZERO_PAGE = bytes(PAGE)


def zstd_d(path: Path) -> bytes:
    """What the zstd command decompresses from ``path``: the reference."""
    return subprocess.run(
        [zstd_command(), "-dc", str(path)], capture_output=True, check=True
    ).stdout


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


def decompressing_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "decompress"]


@pytest.mark.parametrize("sample", ["deb12-6.1-idle", "sid-7.2-modules"])
def test_sample_copy_is_zstd_d_output_with_zero_pages_as_holes(sample: str, tmp_path: Path) -> None:
    src = SAMPLES / sample / "vmcore.zst"
    reference = zstd_d(src)
    copy = decompressed_path(src, tmp_path / "dumps")
    st = copy.stat()
    assert st.st_size == len(reference)
    with copy.open("rb") as f:
        assert f.read() == reference
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:  # the readers' way
            assert mapped[:] == reference
    pages = range(0, len(reference), PAGE)
    data_pages = sum(1 for p in pages if reference[p : p + PAGE] != ZERO_PAGE[: len(reference) - p])
    assert data_pages < len(pages) // 2  # mostly zero: the holes matter
    # the file's blocks hold its data pages, not its zero pages (an extent tree may add a few)
    assert data_pages * PAGE <= st.st_blocks * 512 <= data_pages * PAGE + (64 << 10)
    with open(copy, "rb") as f:  # the file system sees a hole where the first zero page is
        first_zero = next(p for p in pages if reference[p : p + PAGE] == ZERO_PAGE)
        assert os.lseek(f.fileno(), 0, os.SEEK_HOLE) <= first_zero
    dump = open_dump(str(copy))
    try:  # a reader over the holes: memory the ELF headers place there reads as zeros
        assert dump.format == "elf"
        assert all(len(dump.read(r.start, 16)) == 16 for r in dump.ranges[:4])
    finally:
        dump.close()


def _page_by_page(buffer: bytes) -> list[tuple[int, int]]:
    """The runs :func:`nonzero_runs` should give, found one page at a time."""
    runs: list[tuple[int, int]] = []
    for start in range(0, len(buffer), PAGE):
        page = buffer[start : start + PAGE]
        if page.count(0) == len(page):
            continue
        end = start + len(page)
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end)
        else:
            runs.append((start, end))
    return runs


def test_nonzero_runs_are_the_pages_with_data() -> None:
    rng = random.Random(26)
    for trial in range(60):
        pages = rng.randrange(1, 80)
        tail = rng.choice([0, 1, 100, PAGE - 1]) if trial % 3 else 0
        buffer = bytearray(pages * PAGE + tail)
        for p in range(pages + 1):
            if rng.random() < 0.3:
                where = p * PAGE + rng.choice([0, 1, PAGE // 2, PAGE - 1])
                if where < len(buffer):
                    buffer[where] = rng.randrange(1, 256)
        expected = _page_by_page(bytes(buffer))
        assert nonzero_runs(buffer, len(buffer)) == expected
        rebuilt = bytearray(len(buffer))  # what a sparse file of those runs reads as
        for start, end in expected:
            rebuilt[start:end] = buffer[start:end]
        assert rebuilt == buffer
    assert nonzero_runs(bytearray(1 << 20), 1 << 20) == []
    assert nonzero_runs(bytearray(b"\1" * 10), 10) == [(0, 10)]


def test_every_frame_is_decompressed(tmp_path: Path) -> None:
    """A file of several frames (as pzstd or a seekable writer makes), a skippable frame
    between them: all of it, as the zstd command gives it."""
    cctx = zstandard.ZstdCompressor(write_checksum=True)
    parts = [os.urandom(PAGE * 3), bytes(5 << 20), b"tail" * 1000]
    skippable = b"\x50\x2a\x4d\x18" + (8).to_bytes(4, "little") + b"seektab!"
    src = tmp_path / "frames.zst"
    src.write_bytes(cctx.compress(parts[0]) + skippable + b"".join(map(cctx.compress, parts[1:])))
    copy = decompressed_path(src, tmp_path / "dumps")
    assert copy.read_bytes() == b"".join(parts) == zstd_d(src)
    assert copy.stat().st_blocks * 512 < (1 << 20)  # the 5 MiB of zeros are a hole


def test_digest_is_taken_while_reading_into_an_empty_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(3 << 20) + bytes(2 << 20)
    src = tmp_path / "incident.zst"
    src.write_bytes(zstandard.ZstdCompressor().compress(data))
    folder = tmp_path / "dumps"

    def no_pass_of_its_own(fd: int) -> str:
        raise AssertionError("the compressed file was read for its digest alone")

    monkeypatch.setattr(compressed, "content_key", no_pass_of_its_own)
    copy = decompressed_path(src, folder)
    monkeypatch.undo()
    key = hashlib.sha256(src.read_bytes()).hexdigest()[:40]  # of every byte of the file
    with open(src, "rb") as f:
        assert content_key(f.fileno()) == key
    assert copy.name == f"incident.{key}" and copy.read_bytes() == data
    memos = [p.read_text() for p in (folder / ".index").glob("src-*")]
    assert memos == [key]  # the next open of the same file reads nothing
    renamed = tmp_path / "renamed.zst"  # another name, same content: the digest finds it
    renamed.write_bytes(src.read_bytes())
    assert decompressed_path(renamed, folder) == copy and len(copies(folder)) == 1


def test_copy_made_meanwhile_by_another_process_is_the_one_used(tmp_path: Path) -> None:
    """Two opens of one content racing into an empty cache: the one that ends last finds
    the other's copy under the digest and drops its own."""
    data = os.urandom(9 << 20)
    first, second = tmp_path / "a.zst", tmp_path / "b.zst"
    first.write_bytes(zstandard.ZstdCompressor().compress(data))
    second.write_bytes(first.read_bytes())
    folder = tmp_path / "dumps"
    made: list[Path] = []

    def meanwhile(done: int, total: int) -> None:
        if not made:  # while the first is being written, the second is made whole
            made.append(decompressed_path(second, folder))

    assert decompressed_path(first, folder, progress=meanwhile) == made[0]
    assert copies(folder) == made and leftovers(folder) == []
    assert made[0].read_bytes() == data


def test_interrupt_or_damage_ends_the_decompressing_thread(tmp_path: Path) -> None:
    data = os.urandom(12 << 20)
    good = zstandard.ZstdCompressor().compress(data)
    src = tmp_path / "vmcore.zst"
    src.write_bytes(good)
    folder = tmp_path / "dumps"

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        decompressed_path(src, folder, progress=interrupt)
    assert leftovers(folder) == [] and copies(folder) == [] and not decompressing_threads()
    damaged = bytearray(good)
    damaged[len(damaged) // 2 :] = os.urandom(len(damaged) - len(damaged) // 2)
    src.write_bytes(damaged)
    with pytest.raises(FormatError, match="not valid zstd data"):
        decompressed_path(src, folder)
    assert leftovers(folder) == [] and copies(folder) == [] and not decompressing_threads()


def test_budget_counts_the_blocks_a_copy_takes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy's holes take no disk: the budget and the free-space check count blocks."""
    folder = tmp_path / "dumps"
    cctx = zstandard.ZstdCompressor()
    (tmp_path / "zeros.zst").write_bytes(cctx.compress(bytes(8 << 20)))
    (tmp_path / "data.zst").write_bytes(cctx.compress(os.urandom(1 << 20)))
    zeros = decompressed_path(tmp_path / "zeros.zst", folder)
    data = decompressed_path(tmp_path / "data.zst", folder)
    assert zeros.stat().st_size == 8 << 20 and zeros.stat().st_blocks == 0
    assert prune_dumps(folder, budget=(1 << 20) + (64 << 10)) == []  # 1 MiB on disk in all
    real_statvfs = os.statvfs

    def disk_full(path: object) -> os.statvfs_result:  # nothing free beyond the margin
        st = real_statvfs(path)  # type: ignore[arg-type]
        fields = list(st)
        fields[4] = compressed.FREE_MARGIN // st.f_frsize  # f_bavail
        return os.statvfs_result(fields)

    monkeypatch.setattr(os, "statvfs", disk_full)
    assert room_for_copies(folder) == 1 << 20  # what pruning gives back: 0 + 1 MiB
    monkeypatch.undo()
    assert sorted(prune_dumps(folder, budget=512 << 10)) == sorted([zeros, data])
