"""A built dump's files (``SyntheticDump.save``, through ``parsers.cache.exclusive_temp``):
made as a plain ``open`` makes a file (0666 less the umask), whole or not at all, and never
through a symlink planted under a name a writer could be expected to use."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

import explorer.training.synthetic as synthetic
from parsers.cache import exclusive_temp, umask
from tests.helpers.dumps import two_cpu_dump

FILES = ("vmcore", "System.map")


@pytest.fixture
def mask(request: pytest.FixtureRequest) -> Iterator[int]:
    """The process umask set to the parameter for the test, restored after."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077, 0o002], indirect=True)
def test_files_have_the_mode_a_plain_open_gives(tmp_path: Path, mask: int) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"")  # the truth: what open(2) with O_CREAT gives under this umask
    expected = stat.S_IMODE(plain.stat().st_mode)
    assert expected == 0o666 & ~mask
    assert umask() == mask
    folder = tmp_path / "built"
    two_cpu_dump(folder)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    for name in FILES:
        assert stat.S_IMODE((folder / name).stat().st_mode) == expected, name


def test_exclusive_temp_without_a_mode_stays_private(tmp_path: Path) -> None:
    with exclusive_temp(tmp_path / "cached") as out:
        out.write(b"x")
    assert stat.S_IMODE((tmp_path / "cached").stat().st_mode) == 0o600


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failed_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    def half_then_fail(out: BinaryIO | Path, *args: object) -> None:
        if isinstance(out, Path):
            out.write_bytes(b"\x7fELF half a dump")
        else:
            out.write(b"\x7fELF half a dump")
        raise error("disk gone")

    monkeypatch.setattr(synthetic, "write_elf_core", half_then_fail)
    folder = tmp_path / "built"
    with pytest.raises(error):
        two_cpu_dump(folder)
    assert list(folder.iterdir()) == []


def test_planted_symlinks_are_not_followed(tmp_path: Path) -> None:
    """Was: ``.NAME.PID.tmp`` was opened for writing through a symlink planted there (a file
    outside the folder overwritten), then renamed onto NAME (the dump itself a symlink)."""
    reference = two_cpu_dump(tmp_path / "reference").parent
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    folder = tmp_path / "built"
    folder.mkdir()
    planted = []
    for name in FILES:
        for pid in range(os.getpid() - 2, os.getpid() + 3):
            link = folder / f".{name}.{pid}.tmp"
            link.symlink_to(victim)
            planted.append(link)
    two_cpu_dump(folder)
    assert victim.read_bytes() == b"precious"
    for name in FILES:
        built = folder / name
        assert not built.is_symlink() and built.is_file()
        assert built.read_bytes() == (reference / name).read_bytes()
    assert all(link.is_symlink() for link in planted)  # left alone, not written through
    assert len(list(folder.iterdir())) == len(FILES) + len(planted)  # no temporary left
