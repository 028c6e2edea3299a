"""The DWARF name probe must not take bytes that only look like a wanted DIE.

Found when the suite ran from /work/wt-serve: with ``-gdwarf-2 -gstrict-dwarf`` the
``.debug_str`` offset of "list_head" equalled the bytes after another DIE's abbreviation
code, the probe took them for struct list_head, and reading its "members" failed. The
path strings decide those offsets, so the build maps this checkout to that path."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from parsers import types as T

ROOT = Path(__file__).resolve().parent.parent
CROSS_GCC = shutil.which("s390x-linux-gnu-gcc")


@pytest.mark.skipif(CROSS_GCC is None, reason="needs s390x-linux-gnu-gcc")
def test_probe_takes_only_real_dies(tmp_path: Path) -> None:
    assert CROSS_GCC is not None
    obj = tmp_path / "mock.o"
    subprocess.run(
        [
            CROSS_GCC,
            "-gdwarf-2",
            "-gstrict-dwarf",
            f"-fdebug-prefix-map={ROOT}=/work/wt-serve",
            "-O0",
            "-c",
            "tests/data/types_mock.c",
            "-o",
            str(obj),
        ],
        check=True,
        cwd=ROOT,
    )
    with open(obj, "rb") as stream:
        dwarf = ELFFile(stream).get_dwarf_info()
        real = {die.offset for cu in dwarf.iter_CUs() for die in cu.iter_DIEs()}
        found = T._DwarfFinder(dwarf, little_endian=False).find(T.STRUCTS, T._is_struct_definition)
        assert set(found) == set(T.STRUCTS) - T.OPTIONAL_STRUCTS
        assert {k: d.offset for k, d in found.items() if d.offset not in real} == {}
    profile = T.profile_from_dwarf(obj, use_cache=False)
    assert profile.size("list_head") == 16
