"""A vmlinux's identity (build-id, banners; parsers.elf.fileid.elf_identity over
parsers.elf.sections, no pyelftools) and its section table against pyelftools and readelf,
on the bundled ELF files and the -dbg vmlinux of each real kernel in the cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from parsers.elf.fileid import all_banners_in, elf_identity
from parsers.elf.sections import ElfSections
from parsers.errors import FormatError
from tests.helpers import oracles

DATA = Path(__file__).parent / "data"
BUNDLED = [
    DATA / "lines_mock.elf",
    DATA / "lines_mock_dwarf4.elf",
    DATA / "types_mock.o",
    DATA / "types_mock_dwarf2.o",
]
RELEASES = ("6.1.0-50-s390x", "6.12.95+deb12-s390x", "7.2.13+deb14-s390x")


_vmlinux = oracles.debug_vmlinux


def _pyelftools(path: Path) -> tuple[list[tuple[str, int, int, int, int, int]], str | None, bytes]:
    """Sections, GNU build-id and .rodata as pyelftools reads them (the truth)."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        rows = []
        for s in elf.iter_sections():
            h = s.header
            rows.append(
                (s.name, h["sh_type"], h["sh_flags"], h["sh_addr"], h["sh_offset"], h["sh_size"])
            )
        gnu = None
        for s in elf.iter_sections(type="SHT_NOTE"):
            for note in s.iter_notes():
                if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU" and not gnu:
                    gnu = str(note["n_desc"])
        rodata = elf.get_section_by_name(".rodata")
        data = rodata.data() if rodata is not None and rodata["sh_type"] != "SHT_NOBITS" else b""
    return rows, gnu, data


def _type_number(name: str | int) -> int:
    from elftools.elf.enums import ENUM_SH_TYPE_BASE

    return name if isinstance(name, int) else ENUM_SH_TYPE_BASE[name]


def _check(path: Path) -> None:
    rows, gnu, rodata = _pyelftools(path)
    with ElfSections(path) as elf:
        ours = [(s.name, s.type, s.flags, s.address, s.offset, s.size) for s in elf.sections]
        assert ours == [(n, _type_number(t), fl, a, o, sz) for n, t, fl, a, o, sz in rows]
        assert elf.build_id() == gnu
        found = elf.get(".rodata")
        assert (elf.bytes_of(found) if found else b"") == rodata


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_elf_files_read_as_pyelftools_reads_them(path: Path) -> None:
    _check(path)


@pytest.mark.parametrize("release", RELEASES)
def test_real_vmlinux_reads_as_pyelftools_reads_it(release: str) -> None:
    path = _vmlinux(release)
    _check(path)
    ident = elf_identity(path)
    _, gnu, rodata = _pyelftools(path)
    assert ident.build_id == gnu and gnu is not None
    assert ident.banners == all_banners_in(rodata)
    assert ident.release == release


def test_build_id_of_a_real_vmlinux_is_the_one_readelf_prints() -> None:
    """Independent truth: binutils' readelf -n."""
    import subprocess

    path = _vmlinux(RELEASES[0])
    readelf = oracles.tool("readelf")
    out = subprocess.run([readelf, "-n", str(path)], capture_output=True, text=True).stdout
    line = next(x for x in out.splitlines() if "Build ID:" in x)
    assert elf_identity(path).build_id == line.split("Build ID:")[1].strip()


@pytest.mark.parametrize(
    "content",
    [b"", b"\x7fELF", b"not an elf at all, just text" * 4, b"\x7fELF\x02\x02\x01" + b"\0" * 9],
    ids=["empty", "magic-only", "text", "header-cut"],
)
def test_not_an_elf_file_is_one_format_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "vmlinux"
    path.write_bytes(content)
    with pytest.raises(FormatError) as err:
        elf_identity(path)
    assert str(path) in str(err.value) and "not a readable ELF file" in str(err.value)


def test_section_table_past_the_end_is_one_format_error(tmp_path: Path) -> None:
    good = BUNDLED[0].read_bytes()
    path = tmp_path / "vmlinux"
    path.write_bytes(good[: len(good) // 2])
    with ElfSections(BUNDLED[0]) as elf:
        if max(s.offset + s.size for s in elf.sections) < len(good) // 2:
            pytest.skip("the sections end in the first half of this file")
    with pytest.raises(FormatError) as err:
        elf_identity(path)
    assert "not a readable ELF file" in str(err.value)
