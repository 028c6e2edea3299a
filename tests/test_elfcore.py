"""ELF vmcore reader and writer: segments, holes, notes, and every kind of bad input."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from parsers.dumps.elfcore import ElfCore, group_cpu_notes
from parsers.errors import DumpError, FormatError, TruncatedError, UnmappedError
from parsers.write.elfwriter import NoteSpec, write_elf_core


def _write(tmp_path: Path, segments, notes=(), name="core.elf") -> Path:
    path = tmp_path / name
    write_elf_core(path, segments, list(notes))
    return path


def test_reads_across_segment_boundaries(tmp_path: Path) -> None:
    a = bytes(range(256)) * 16  # 4 KiB at 0x0
    b = bytes(reversed(range(256))) * 16  # 4 KiB at 0x1000 (adjacent)
    c = b"\xaa" * 4096  # 4 KiB at 0x10000 (after a hole)
    path = _write(tmp_path, [(0x1000, b), (0, a), (0x10000, c)])
    core = ElfCore(str(path))
    assert [(s.paddr, s.filesz) for s in core.segments] == [
        (0, 4096),
        (0x1000, 4096),
        (0x10000, 4096),
    ]
    assert [(r.start, r.end) for r in core.ranges] == [(0, 0x2000), (0x10000, 0x11000)]
    assert core.read(0xFFE, 4) == bytes([0xFE, 0xFF, 0xFF, 0xFE])
    assert core.read(0x10000, 2) == b"\xaa\xaa"
    with pytest.raises(UnmappedError) as exc:
        core.read(0x1FFF, 2)  # last byte of run, then the hole
    assert exc.value.address == 0x2000
    assert "0x2000" in str(exc.value)
    with pytest.raises(UnmappedError):
        core.read(0x20000, 8)


def test_notes_grouped_per_cpu(tmp_path: Path) -> None:
    notes = [
        NoteSpec("CORE", 1, b"\1" * 336),
        NoteSpec("CORE", 2, b"\2" * 136),
        NoteSpec("LINUX", 0x305, struct.pack(">I", 0x7E000)),
        NoteSpec("CORE", 1, b"\3" * 336),
        NoteSpec("LINUX", 0x305, struct.pack(">I", 0x7C000)),
        NoteSpec("VMCOREINFO", 0, b"OSRELEASE=6.1.0-test\nPAGESIZE=4096\n"),
    ]
    core = ElfCore(str(_write(tmp_path, [(0, b"\0" * 4096)], notes)))
    assert [(n.name, n.type, len(n.desc)) for n in core.notes] == [
        ("CORE", 1, 336),
        ("CORE", 2, 136),
        ("LINUX", 0x305, 4),
        ("CORE", 1, 336),
        ("LINUX", 0x305, 4),
        ("VMCOREINFO", 0, 35),
    ]
    groups = group_cpu_notes(core.notes)
    assert [[n.type for n in g] for g in groups] == [[1, 2, 0x305], [1, 0x305]]
    assert core.vmcoreinfo_text == "OSRELEASE=6.1.0-test\nPAGESIZE=4096\n"


def test_writer_is_deterministic(tmp_path: Path) -> None:
    segs = [(0, b"\x11" * 8192)]
    notes = [NoteSpec("CORE", 1, b"\0" * 336)]
    a = _write(tmp_path, segs, notes, "a.elf").read_bytes()
    b = _write(tmp_path, segs, notes, "b.elf").read_bytes()
    assert a == b
    assert a[:6] == b"\x7fELF\x02\x02"
    assert struct.unpack_from(">HH", a, 16) == (4, 22)  # ET_CORE, EM_S390


def _good(tmp_path: Path) -> bytes:
    return _write(
        tmp_path, [(0, b"\x55" * 8192)], [NoteSpec("CORE", 1, b"\0" * 336)], "good.elf"
    ).read_bytes()


@pytest.mark.parametrize(
    ("mutate", "error", "words"),
    [
        (lambda b: b"", FormatError, "empty file"),
        (lambda b: b"hello world, not a dump" * 10, FormatError, "not an ELF file"),
        (lambda b: b[:4] + b"\x01" + b[5:], FormatError, "32-bit"),
        (
            lambda b: b[:5] + b"\x01" + b[6:18] + struct.pack("<H", 62) + b[20:],
            FormatError,
            "little-endian ELF for x86_64",
        ),
        (lambda b: b[:18] + struct.pack(">H", 62) + b[20:], FormatError, "x86_64, not s390x"),
        (lambda b: b[:16] + struct.pack(">H", 2) + b[18:], FormatError, "not a core dump"),
        (lambda b: b[: len(b) - 100], TruncatedError, "the dump is truncated"),
        (lambda b: b[:40], TruncatedError, "truncated"),
    ],
)
def test_bad_input(tmp_path: Path, mutate, error, words) -> None:
    path = tmp_path / "bad.elf"
    path.write_bytes(mutate(_good(tmp_path)))
    with pytest.raises(error) as exc:
        ElfCore(str(path))
    assert words in str(exc.value)
    assert str(path) in str(exc.value)


def test_absurd_note_size(tmp_path: Path) -> None:
    raw = bytearray(_good(tmp_path))
    note_off = struct.unpack_from(">Q", raw, 64 + 8)[0]  # PT_NOTE p_offset
    struct.pack_into(">I", raw, note_off + 4, 0x7FFFFFFF)
    path = tmp_path / "absurd.elf"
    path.write_bytes(bytes(raw))
    with pytest.raises(FormatError, match="absurd size"):
        ElfCore(str(path))


def test_directory_missing_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="is a directory"):
        ElfCore(str(tmp_path))
    with pytest.raises(DumpError, match="no such file"):
        ElfCore(str(tmp_path / "nope"))
    path = tmp_path / "secret.elf"
    path.write_bytes(_good(tmp_path))
    path.chmod(0)
    if os.geteuid() != 0:  # root reads anything
        with pytest.raises(DumpError, match="permission denied"):
            ElfCore(str(path))


def test_input_is_never_written(tmp_path: Path) -> None:
    path = tmp_path / "ro.elf"
    path.write_bytes(_good(tmp_path))
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    core = ElfCore(str(path))
    core.read(0, 16)
    core.close()
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
