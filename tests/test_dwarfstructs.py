"""The type profile's usual DWARF reader (parsers.dwarf.structs: only the DIEs it needs, from
the mapped file) against pyelftools' general reader and the compiler's own offsets.

The profile must be the same whichever reader made it: on the committed objects (relocatable,
DWARF 5 and strict DWARF 2), on freshly compiled and linked ones when the cross tools are
installed, and on the -dbg vmlinuxes when present (whose profiles are also the bundled ones).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from parsers.dwarf import structs as dwarf_structs
from parsers.dwarf.reader import Unsupported
from parsers.elf.sections import ElfSections
from parsers.errors import FormatError
from parsers.types import profile as T
from parsers.types.profile import TypeProfile, profile_from_dwarf
from tests.helpers import oracles
from tests.helpers.types import OBJECTS, SOURCE, check_profile

CROSS_GCC = shutil.which("s390x-linux-gnu-gcc")
CROSS_LD = shutil.which("s390x-linux-gnu-ld")

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
    check_profile(fast)
    assert fast.to_json() == by_elftools(obj).to_json()


@oracles.needs("gcc", "ld")
@pytest.mark.parametrize("flags", [["-g"], ["-gdwarf-4"], ["-gdwarf-2", "-gstrict-dwarf"]])
def test_linked_executable_both_readers(
    tmp_path: Path, flags: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert CROSS_GCC is not None and CROSS_LD is not None
    obj, exe = tmp_path / "mock.o", tmp_path / "mock.elf"
    subprocess.run([CROSS_GCC, *flags, "-O0", "-c", str(SOURCE), "-o", str(obj)], check=True)
    subprocess.run([CROSS_LD, "-e", "0", "-o", str(exe), str(obj)], check=True)
    fast = by_structs(exe, monkeypatch)
    check_profile(fast)
    assert fast.to_json().replace(str(exe), "X") == by_elftools(exe).to_json().replace(
        str(exe), "X"
    )
    relocatable = by_structs(obj, monkeypatch)  # the same DWARF with its relocations applied
    assert (fast.offsets, fast.sizes) == (relocatable.offsets, relocatable.sizes)


@oracles.needs("gcc")
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

    monkeypatch.setattr(dwarf_structs, "DwarfStructs", unsupported)
    profile = profile_from_dwarf(OBJECTS[0], use_cache=False)
    check_profile(profile)
    assert profile.notes == (
        f"{OBJECTS[0]}: as if the DWARF used DW_FORM_strx: not decoded by backchain's DWARF "
        "reader, read with pyelftools instead (slower)",
    )


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


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _elf_with_dwarf(member_extra: list[tuple[int, int, bytes]]) -> bytes:
    """A big-endian ET_EXEC whose DWARF 5 unit defines ``struct task_struct { int pid; }``
    at offset 4, size 8; ``member_extra`` adds (attribute, form, encoded value) to the
    member's abbreviation and DIE."""
    strings = b"\0task_struct\0pid\0"
    abbrev = b"".join(
        [
            _uleb(1) + _uleb(0x11) + b"\x01" + b"\x03\x08" + b"\0\0",  # compile_unit: name string
            _uleb(2) + _uleb(0x13) + b"\x01" + b"\x03\x0e\x0b\x0b" + b"\0\0",  # struct: strp, data1
            _uleb(3)
            + _uleb(0x0D)
            + b"\x00"
            + b"\x03\x0e\x49\x13\x38\x0b"  # member: name strp, type ref4, location data1
            + b"".join(_uleb(a) + _uleb(f) for a, f, _ in member_extra)
            + b"\0\0",
            _uleb(4) + _uleb(0x24) + b"\x00" + b"\x0b\x0b\x03\x08" + b"\0\0",  # base_type
            b"\0",
        ]
    )
    head = 12  # unit header of DWARF 5: length, version, unit type, address size, abbrev
    cu = _uleb(1) + b"mock.c\0"
    struct_at = head + len(cu)
    struct_die = _uleb(2) + (1).to_bytes(4, "big") + b"\x08"
    member_at = struct_at + len(struct_die)
    extra = b"".join(v for _, _, v in member_extra)
    base_at = member_at + 1 + 4 + 4 + 1 + len(extra) + 1  # after the struct's children end
    member = _uleb(3) + (13).to_bytes(4, "big") + base_at.to_bytes(4, "big") + b"\x04" + extra
    base = _uleb(4) + b"\x04" + b"int\0"
    body = cu + struct_die + member + b"\0" + base + b"\0"
    info = struct.pack(">IHBBI", len(body) + 8, 5, 1, 8, 0) + body
    assert head + len(cu) + len(struct_die) + len(member) + 1 == base_at
    names = b"\0.debug_abbrev\0.debug_info\0.debug_str\0.shstrtab\0"
    sections = [(b"", 0, 0, b""), (b".debug_abbrev", 1, 0, abbrev), (b".debug_info", 1, 0, info),
                (b".debug_str", 1, 0x30, strings), (b".shstrtab", 3, 0, names)]  # fmt: skip
    data = bytearray(64)
    headers = []
    for name, kind, flags, content in sections:
        offset = len(data) if content else 0
        data += content
        name_at = names.find(name + b"\0") if name else 0
        header = (name_at, kind, flags, 0, offset, len(content), 0, 0, 1, 0)
        headers.append(struct.pack(">IIQQQQIIQQ", *header))
    shoff = len(data)
    data += b"".join(headers)
    data[:64] = struct.pack(
        ">4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 2, 1, 0, 0, b"\0" * 7,
        2, 22, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(sections), len(sections) - 1,
    )  # fmt: skip
    return bytes(data)


@pytest.mark.parametrize(
    "extra",
    [
        [],
        [(0x55, 0x23, _uleb(300)), (0x11, 0x2B, b"\1\2\3"), (0x02, 0x22, _uleb(5))],
        [(0x11, 0x1B, _uleb(7)), (0x12, 0x29, b"\1"), (0x1C, 0x1E, bytes(16))],
        [(0x3A, 0x0F, _uleb(1 << 20)), (0x3B, 0x0D, b"\x7f"), (0x2002, 0x18, b"\x02\x91\x00")],
    ],
    ids=["plain", "rnglistx-addrx3-loclistx", "addrx-addrx1-data16", "udata-sdata-exprloc"],
)
def test_dwarf5_forms(tmp_path: Path, extra: list[tuple[int, int, bytes]]) -> None:
    path = tmp_path / "forms.elf"
    path.write_bytes(_elf_with_dwarf(extra))
    profile = profile_from_dwarf(path, use_cache=False)
    assert profile.size("task_struct") == 8
    assert (profile.offset("task_struct.pid"), profile.size("task_struct.pid")) == (4, 4)


def test_unknown_form_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "unknown.elf"
    path.write_bytes(_elf_with_dwarf([(0x3A, 0x7F, b"")]))
    with pytest.raises(FormatError, match="DWARF form 0x7f") as error:
        profile_from_dwarf(path, use_cache=False)
    assert error.value.path == str(path)


@pytest.mark.parametrize("release", oracles.DEBIAN_RELEASES)
def test_real_vmlinux_both_readers(release: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = oracles.debug_vmlinux(release)
    assert by_structs(path, monkeypatch).to_json() == by_elftools(path).to_json()
