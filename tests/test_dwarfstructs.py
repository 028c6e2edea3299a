"""The type profile's usual DWARF reader (parsers.dwarfstructs: only the DIEs it needs, from
the mapped file) against pyelftools' general reader and the compiler's own offsets.

The profile must be the same whichever reader made it: on the committed objects (relocatable,
DWARF 5 and strict DWARF 2), on freshly compiled and linked ones when the cross tools are
installed, and on the -dbg vmlinuxes when present (whose profiles are also the bundled ones).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from parsers import types as T
from parsers.cache import cache_dir
from parsers.dwarfstructs import Unsupported
from parsers.elfsections import ElfSections
from parsers.errors import FormatError
from parsers.types import TypeProfile, profile_from_dwarf
from tests.test_types import OBJECTS, SOURCE, _check_profile

CROSS_GCC = shutil.which("s390x-linux-gnu-gcc")
CROSS_LD = shutil.which("s390x-linux-gnu-ld")
REAL_KERNELS = cache_dir("real", "kernels")
REAL = sorted(REAL_KERNELS.glob("*/vmlinux"))

MODULES = r"""
struct list_head { struct list_head *next, *prev; };
struct module_layout { void *base; unsigned int size, text_size, ro_size; };
struct module_memory { void *base; unsigned int size; };  /* defined, not used by module */
struct mod_kallsyms { void *symtab; unsigned int num_symtab; char *strtab, *typetab; };
struct module {
    int state;
    struct list_head list;
    char name[56];
    struct module_layout core_layout;
    struct module_layout init_layout;
    struct mod_kallsyms *kallsyms;
};
struct module this_module;
struct module_memory unrelated;
"""


def by_elftools(path: Path) -> TypeProfile:
    """The profile by pyelftools' general reader."""
    from elftools.elf.elffile import ELFFile

    with ElfSections(path) as elf:
        build_id, release = elf.build_id(), T._banner_release(elf)
    with open(path, "rb") as stream:
        return T._profile_from_elftools(ELFFile(stream), f"dwarf:{path}", build_id, release)


def by_structs(path: Path, monkeypatch: pytest.MonkeyPatch) -> TypeProfile:
    """The profile by the usual path, failing if it fell back to the general reader."""

    def fail(*args: object) -> None:
        raise AssertionError("fell back to the general reader")

    with monkeypatch.context() as patch:
        patch.setattr(T, "_profile_from_elftools", fail)
        return profile_from_dwarf(path, use_cache=False)


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda p: p.name)
def test_committed_objects_both_readers(obj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = by_structs(obj, monkeypatch)
    _check_profile(fast)
    assert fast.to_json() == by_elftools(obj).to_json()


@pytest.mark.skipif(CROSS_GCC is None or CROSS_LD is None, reason="needs s390x-linux-gnu-gcc/ld")
@pytest.mark.parametrize("flags", [["-g"], ["-gdwarf-4"], ["-gdwarf-2", "-gstrict-dwarf"]])
def test_linked_executable_both_readers(
    tmp_path: Path, flags: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CROSS_GCC is not None and CROSS_LD is not None
    obj, exe = tmp_path / "mock.o", tmp_path / "mock.elf"
    subprocess.run([CROSS_GCC, *flags, "-O0", "-c", str(SOURCE), "-o", str(obj)], check=True)
    subprocess.run([CROSS_LD, "-e", "0", "-o", str(exe), str(obj)], check=True)
    fast = by_structs(exe, monkeypatch)
    _check_profile(fast)
    assert fast.to_json().replace(str(exe), "X") == by_elftools(exe).to_json().replace(
        str(exe), "X"
    )
    relocatable = by_structs(obj, monkeypatch)  # the same DWARF with its relocations applied
    assert (fast.offsets, fast.sizes) == (relocatable.offsets, relocatable.sizes)


@pytest.mark.skipif(CROSS_GCC is None, reason="needs s390x-linux-gnu-gcc")
def test_module_structs_come_from_struct_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """module_layout and mod_kallsyms are the types of struct module's members; a
    module_memory that struct module does not use is not recorded (v6.1's case reversed)."""
    assert CROSS_GCC is not None
    source, obj = tmp_path / "modules.c", tmp_path / "modules.o"
    source.write_text(MODULES)
    subprocess.run([CROSS_GCC, "-g", "-O0", "-c", str(source), "-o", str(obj)], check=True)
    profile = by_structs(obj, monkeypatch)
    assert profile.size("module_layout") == 24
    assert profile.offset("module_layout.text_size") == 12
    assert profile.offset("module.init_layout.size") == profile.offset("module.init_layout") + 8
    assert profile.offset("mod_kallsyms.typetab") == 24
    assert not profile.has("module_memory")
    general = by_elftools(obj)  # which looks for every name: it finds the unused one too
    assert general.size("module_memory") == 16
    assert {k: v for k, v in general.offsets.items() if not k.startswith("module_memory")} == dict(
        profile.offsets
    )


def test_unsupported_dwarf_goes_to_the_general_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(*args: object) -> None:
        raise Unsupported("as if the DWARF used DW_FORM_strx")

    monkeypatch.setattr(T, "DwarfStructs", unsupported)
    _check_profile(profile_from_dwarf(OBJECTS[0], use_cache=False))


@pytest.mark.parametrize("name", [".debug_info", ".debug_abbrev", ".rela.debug_info"])
def test_damaged_dwarf_is_a_profile_or_a_format_error(tmp_path: Path, name: str) -> None:
    data = OBJECTS[0].read_bytes()
    with ElfSections(OBJECTS[0]) as elf:
        section = elf.get(name)
        assert section is not None
        start, size = section.offset, section.size
    bad = tmp_path / "bad.o"
    for position in range(start, start + size, max(1, size // 97)):
        for value in (0x00, 0xFF, 0x80):
            damaged = bytearray(data)
            damaged[position] = value
            bad.write_bytes(bytes(damaged))
            try:
                profile_from_dwarf(bad, use_cache=False)
            except FormatError as error:
                assert error.path == str(bad)


@pytest.mark.skipif(
    not REAL, reason=f"no -dbg vmlinux under {REAL_KERNELS}; run samples/generate_real.py"
)
@pytest.mark.parametrize("path", REAL, ids=lambda p: p.parent.name)
def test_real_vmlinux_both_readers(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert by_structs(path, monkeypatch).to_json() == by_elftools(path).to_json()
