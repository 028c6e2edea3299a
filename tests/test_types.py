"""Tests for parsers/types/profile.py: type profiles from DWARF, BTF and JSON.

The DWARF fixtures are tiny s390x objects built from tests/data/types_mock.c (committed, so
no cross compiler is needed; with one, the tests also rebuild them and check the offsets the
compiler itself computes). BTF blobs are written by a small builder here.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from parsers.btf.reader import BtfStructs
from parsers.errors import DumpError, FormatError, TypeInfoError
from parsers.types import profile as T
from parsers.types.profile import TypeProfile, profile_from_btf, profile_from_dwarf
from tests.helpers import oracles
from tests.helpers.types import (
    OBJECTS,
    SOURCE,
    BtfBuilder,
    check_profile,
    corrupt,
    header_field,
    mock_btf,
)

CROSS_GCC = shutil.which("s390x-linux-gnu-gcc")
SAMPLES = Path(__file__).parent.parent / "samples" / "profiles"


# --------------------------------------------------------------------------------------------
# DWARF


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda p: p.name)
def test_dwarf_committed_objects(obj: Path) -> None:
    profile = profile_from_dwarf(obj, use_cache=False)
    check_profile(profile)
    assert profile.release == "6.1.0-mock-s390x"
    assert profile.build_id == "bac4c1a100000001"
    assert profile.source == f"dwarf:{obj}"


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda p: p.name)
def test_dwarf_scan_finds_what_the_probe_finds(obj: Path) -> None:
    from elftools.elf.elffile import ELFFile

    with open(obj, "rb") as stream:
        elf = ELFFile(stream)
        finder = T.DwarfFinder(elf.get_dwarf_info(), little_endian=False)
        probed = finder.find(T.STRUCTS, T._is_struct_definition)
        scanned = finder.find(T.STRUCTS, T._is_struct_definition, probe=False)
        assert set(probed) == set(T.STRUCTS) - T.OPTIONAL_STRUCTS
        assert {k: d.offset for k, d in probed.items()} == {k: d.offset for k, d in scanned.items()}


@oracles.needs("gcc")
@pytest.mark.parametrize("flags", [["-g"], ["-gdwarf-4"], ["-gdwarf-2", "-gstrict-dwarf"]])
def test_dwarf_fresh_build_matches_compiler(tmp_path: Path, flags: list[str]) -> None:
    assert CROSS_GCC is not None
    obj = tmp_path / "mock.o"
    subprocess.run([CROSS_GCC, *flags, "-O0", "-c", str(SOURCE), "-o", str(obj)], check=True)
    asm = subprocess.run(
        [CROSS_GCC, "-DPRINT_OFFSETS", "-S", "-o", "-", str(SOURCE)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    profile = profile_from_dwarf(obj, use_cache=False)
    check_profile(profile)
    lines = [line[2:].split() for line in asm.splitlines() if line.startswith("->")]
    assert len(lines) > 30
    for name, value in lines:
        if name.startswith("size:"):
            assert profile.size(name[5:]) == int(value), name
        else:
            assert profile.offset(name) == int(value), name


def test_dwarf_cache_by_build_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = profile_from_dwarf(OBJECTS[0], cache_dir=tmp_path)
    cached = list(tmp_path.glob("bac4c1a100000001.*.json"))
    assert len(cached) == 1

    def fail(*args: object) -> None:
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(T, "_profile_from_elf", fail)
    second = profile_from_dwarf(OBJECTS[0], cache_dir=tmp_path)
    assert second == first
    assert second.source == f"dwarf:{OBJECTS[0]}"

    cached[0].write_text("garbage")  # a damaged cache is rebuilt, never an error
    monkeypatch.undo()
    assert profile_from_dwarf(OBJECTS[0], cache_dir=tmp_path) == first
    rebuilt = T._read_cache(cached[0])
    assert rebuilt is not None and rebuilt.offsets == first.offsets
    text = cached[0].read_bytes()  # one changed offset is damage, not a profile to believe
    cached[0].write_bytes(text.replace(b'"task_struct.stack": ', b'"task_struct.stack": 1'))
    assert text != cached[0].read_bytes() and T._read_cache(cached[0]) is None


def test_dwarf_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("BACKCHAIN_CACHE", raising=False)  # it would win over XDG_CACHE_HOME
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert T.default_cache_dir() == tmp_path / "backchain" / "profiles"
    profile_from_dwarf(OBJECTS[0])
    assert list((tmp_path / "backchain" / "profiles").glob("*.json"))


def _elf_without_dwarf() -> bytes:
    """A big-endian ELF64 relocatable with only a section-name table."""
    names = b"\0.shstrtab\0"
    header = struct.pack(
        ">4sBBBBB7sHHIQQQIHHHHHH",
        b"\x7fELF", 2, 2, 1, 0, 0, b"\0" * 7,  # ELFCLASS64, big-endian, SYSV
        1, 22, 1, 0, 0, 64 + len(names),  # ET_REL, EM_S390; section headers after names
        0, 64, 0, 0, 64, 2, 1,
    )  # fmt: skip
    null = b"\0" * 64
    shstrtab = struct.pack(">IIQQQQIIQQ", 1, 3, 0, 0, 64, len(names), 0, 0, 1, 0)
    return header + names + null + shstrtab


def test_dwarf_errors(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="cannot read vmlinux") as missing:
        profile_from_dwarf(tmp_path / "nope", use_cache=False)
    assert missing.value.path == str(tmp_path / "nope")

    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not an ELF file at all" * 10)
    with pytest.raises(FormatError) as not_elf:
        profile_from_dwarf(garbage, use_cache=False)
    assert not_elf.value.path == str(garbage)

    stripped = tmp_path / "stripped"
    stripped.write_bytes(_elf_without_dwarf())
    with pytest.raises(TypeInfoError, match="no DWARF debug info") as no_dwarf:
        profile_from_dwarf(stripped, use_cache=False)
    assert no_dwarf.value.path == str(stripped)


def test_member_location_expressions() -> None:
    assert T._plus_uconst(bytes([0x23, 0x98, 0x01])) == 0x98  # DW_OP_plus_uconst 152
    assert T._plus_uconst(bytes([0x10, 0x08, 0x22])) == 8  # DW_OP_constu 8; DW_OP_plus
    assert T._plus_uconst(bytes([0x91, 0x00])) is None  # DW_OP_fbreg: not a member offset


# --------------------------------------------------------------------------------------------
# BTF


@pytest.mark.parametrize("order", [">", "<"], ids=["big-endian", "little-endian"])
def test_btf_profile(order: str) -> None:
    profile = profile_from_btf(mock_btf(order), release="6.12.0-mock", source="btf:test")
    expected = {
        "task_struct.thread_info.flags": 0,
        "task_struct.__state": 16,
        "task_struct.stack": 24,
        "task_struct.flags": 36,
        "task_struct.on_cpu": 40,
        "task_struct.cpu": 44,
        "task_struct.cpu_word": 40,
        "task_struct.tasks": 56,
        "task_struct.pid": 76,
        "task_struct.comm": 120,
        "task_struct.thread": 160,
        "task_struct.thread.ksp": 224,
        "signal_struct.thread_head": 8,
        "list_head.next": 0,
        "list_head.prev": 8,
        "pt_regs.psw": 8,
        "pt_regs.psw.mask": 8,
        "pt_regs.psw.addr": 16,
        "pt_regs.gprs": 24,
        "pt_regs.orig_gpr2": 0x98,
        "pt_regs.last_break": 0xC0,
    }
    assert {k: profile.offsets.get(k) for k in expected} == expected
    sizes = {
        "task_struct": 248,
        "pt_regs": 200,
        "thread_union": 16384,
        "task_struct.comm": 16,
        "task_struct.__state": 4,
        "task_struct.stack": 8,
        "task_struct.thread": 88,
        "task_struct.thread.ksp": 8,
        "pt_regs.gprs": 128,
    }
    assert {k: profile.sizes.get(k) for k in sizes} == sizes
    assert not profile.has("task_struct.sched_reset_on_fork")
    assert not profile.has("signal_struct.group_stop")
    assert not profile.has("lowcore")  # only a FWD
    assert "lowcore.current_task" in profile.missing
    assert "task_struct.__state|task_struct.state" not in profile.missing
    assert profile.release == "6.12.0-mock"
    assert profile.source == "btf:test"


def test_btf_thread_size_from_caller() -> None:
    b = BtfBuilder()
    b.aggregate("list_head", 16, [])
    profile = profile_from_btf(b.blob(), thread_size=16384)
    assert profile.thread_size == 16384
    assert "thread_union" not in profile.missing


def _self_typedef() -> bytes:
    b = BtfBuilder()
    loop = b.add(8, "loop", 1)  # typedef loop loop
    b.aggregate("task_struct", 8, [("pid", loop, 0)])
    return b.blob()


def _dangling_member() -> bytes:
    b = BtfBuilder()
    b.aggregate("task_struct", 8, [("pid", 999, 0)])
    return b.blob()


def _huge_vlen() -> bytes:
    b = BtfBuilder()
    b.add(4, "task_struct", 8, vlen=0xFFFF)
    return b.blob()


def _bad_name() -> bytes:
    b = BtfBuilder()
    b.aggregate("task_struct", 8, [])
    blob = bytearray(b.blob())
    struct.pack_into(">I", blob, 24, 0xFFFFFF)  # name_off of type 1
    return bytes(blob)


@pytest.mark.parametrize(
    "blob, message",
    [
        (b"", "shorter than its 24-byte header"),
        (b"\x12\x34" + bytes(30), "not BTF"),
        (mock_btf(">")[:-40], "end beyond"),
        (mock_btf(">")[:500], "end beyond"),
        (header_field(mock_btf(">"), "type_len", 0xFFFFFFF0), "end beyond"),
        (header_field(mock_btf(">"), "str_off", 0x7FFFFFFF), "end beyond"),
        (header_field(mock_btf(">"), "hdr_len", 0xFFFFFFFF), "header length"),
        (header_field(mock_btf(">"), "type_len", 30), "truncated|runs past"),
        (corrupt(mock_btf(">"), 2, ">B", 2), "version 2"),
        (_huge_vlen(), "runs past"),
        (corrupt(_huge_vlen(), 28, ">I", 31 << 24), "unknown kind 31"),
        (_self_typedef(), "loop"),
        (_dangling_member(), "type 999"),
        (_bad_name(), "name outside"),
    ],
)
def test_btf_damage_is_a_format_error(blob: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        profile_from_btf(blob)


def test_btf_fast_structs_equal_construct_schemas() -> None:
    for little in (False, True):
        s = BtfStructs(little)
        header = dict(
            magic=0xEB9F, version=1, flags=0, hdr_len=24, type_off=0, type_len=12, str_off=12,
            str_len=5,
        )  # fmt: skip
        assert s.fast_header.unpack(s.header.build(header)) == tuple(header.values())
        record = dict(name_off=7, info=(1 << 31) | (4 << 24) | 3, size_or_type=248)
        assert s.fast_type.unpack(s.type.build(record)) == tuple(record.values())
        member = dict(name_off=1, type=2, offset=(1 << 24) | 385)
        assert s.fast_member.unpack(s.member.build(member)) == tuple(member.values())
        array = dict(type=1, index_type=2, nelems=2048)
        assert s.fast_array.unpack(s.array.build(array)) == tuple(array.values())


# --------------------------------------------------------------------------------------------
# TypeProfile


def _small_profile(**changes: object) -> TypeProfile:
    fields: dict = dict(
        release="6.1.0-50-s390x",
        build_id="abcd",
        source="dwarf:/boot/vmlinux",
        offsets={"task_struct.state": 16, "task_struct.pid": 1928},
        sizes={"thread_union": 16384, "task_struct.comm": 16},
    )
    fields.update(changes)
    return TypeProfile(**fields)  # type: ignore[arg-type]


def test_profile_lookups() -> None:
    profile = _small_profile()
    assert profile.offset("task_struct.pid") == 1928
    assert profile.size("task_struct.comm") == 16
    assert profile.thread_size == 16384
    assert profile.has("task_struct.state") and profile.has("thread_union")
    assert not profile.has("task_struct.__state")
    assert profile.first_of("task_struct.__state", "task_struct.state") == "task_struct.state"
    with pytest.raises(TypeError):
        profile.offsets["x"] = 1  # type: ignore[index]


def test_profile_unknown_member_names_member_and_remedy() -> None:
    profile = _small_profile()
    with pytest.raises(TypeInfoError) as error:
        profile.offset("task_struct.thread.ksp")
    text = str(error.value)
    assert "task_struct.thread.ksp" in text
    assert "dwarf:/boot/vmlinux" in text
    assert "--vmlinux" in text and "backchain profile VMLINUX -o FILE" in text
    with pytest.raises(TypeInfoError, match="size of pt_regs"):
        profile.size("pt_regs")
    with pytest.raises(TypeInfoError, match=r"task_struct\.a or task_struct\.b"):
        profile.first_of("task_struct.a", "task_struct.b")
    with pytest.raises(TypeInfoError, match="thread_union"):
        _ = _small_profile(sizes={}).thread_size


def test_profile_merged_prefers_self() -> None:
    btf = _small_profile(
        release=None,
        source="btf:dump",
        offsets={"task_struct.pid": 0, "task_struct.tgid": 1932},
        sizes={"pt_regs": 200},
    )
    merged = btf.merged(_small_profile())
    assert merged.offset("task_struct.pid") == 0
    assert merged.offset("task_struct.tgid") == 1932
    assert merged.offset("task_struct.state") == 16
    assert merged.size("pt_regs") == 200 and merged.thread_size == 16384
    assert merged.release == "6.1.0-50-s390x"
    assert merged.source_of("task_struct.pid") == "btf:dump"
    assert merged.source_of("task_struct.state") == "dwarf:/boot/vmlinux"
    assert "task_struct.__state|task_struct.state" not in merged.missing
    assert "task_struct.tasks" in merged.missing


def test_profile_json_round_trip(tmp_path: Path) -> None:
    profile = _small_profile(member_sources={"task_struct.pid": "btf:dump"}, missing=("x",))
    assert TypeProfile.from_json(profile.to_json()) == profile
    document = json.loads(profile.to_json())
    assert document["format"] == "backchain-profile" and document["version"] == 1
    path = tmp_path / "p.profile.json"
    profile.save(path)
    loaded = TypeProfile.load(path)
    assert loaded.source == f"profile:{path}"
    assert loaded.offsets == profile.offsets and loaded.sizes == profile.sizes
    assert loaded.member_sources == profile.member_sources
    assert [p.name for p in tmp_path.iterdir()] == ["p.profile.json"]  # no temporary left


@pytest.mark.parametrize(
    "text, message",
    [
        (b"\x00\xff garbage", "not JSON"),
        ("[1, 2]", "format"),
        ('{"format": "something-else", "version": 1}', "format"),
        ('{"format": "backchain-profile", "version": 2}', "version 2 is not supported"),
        ('{"format": "backchain-profile"}', "version None"),
        ('{"format": "backchain-profile", "version": 1, "offsets": {"a": "x"}}', "offsets"),
        ('{"format": "backchain-profile", "version": 1, "offsets": {"a": -1}}', "offsets"),
        ('{"format": "backchain-profile", "version": 1, "sizes": []}', "sizes"),
        ('{"format": "backchain-profile", "version": 1, "missing": [3]}', "missing"),
        ('{"format": "backchain-profile", "version": 1, "release": 6}', "release"),
    ],
)
def test_profile_load_rejects_garbage(tmp_path: Path, text: str | bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(FormatError, match=message) as error:
        TypeProfile.load(path)
    assert error.value.path == str(path)


def test_profile_load_and_save_errors(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="cannot read type profile"):
        TypeProfile.load(tmp_path / "absent.json")
    with pytest.raises(DumpError, match="cannot write type profile"):
        _small_profile().save(tmp_path / "no" / "such" / "dir.json")


# --------------------------------------------------------------------------------------------
# The shipped profiles of real Debian kernels (made by profile_from_dwarf from the -dbg vmlinux)


@pytest.mark.parametrize("path", sorted(SAMPLES.glob("*.profile.json")), ids=lambda p: p.name)
def test_shipped_profiles_hold_the_reference_facts(path: Path) -> None:
    profile = TypeProfile.load(path)
    assert path.name == f"{profile.release}.profile.json"
    v510 = (profile.release or "").startswith("5.10.")
    # The rebuilt 5.10 (samples/build_kernel_510.py) predates kretprobe_instances (v5.11),
    # the mcck stack and pt_regs.cr1 (v5.12) and pt_regs.last_break: it lacks exactly those.
    assert profile.missing == (
        (
            "task_struct.rethooks|task_struct.kretprobe_instances",
            "lowcore.mcck_stack",
            "pt_regs.cr1",
            "pt_regs.last_break",
        )
        if v510
        else ()
    )
    assert (profile.size("stack_frame"), profile.size("pt_regs")) == (160, 184 if v510 else 200)
    assert (profile.offset("stack_frame.gprs"), profile.offset("stack_frame.back_chain")) == (
        0x48,
        0x98,
    )
    lowcore = {
        "current_task": 0x340,
        "kernel_stack": 0x348,
        "async_stack": 0x350,
        "nodat_stack": 0x358,
        "restart_stack": 0x360,
        "mcck_stack": 0x368,
        "kernel_asce": 0x388,
        "preempt_count": 0x3A8,
        "percpu_offset": 0x3B8,
        "vmcore_info": 0xE0C,
        "os_info": 0xE18,
    }
    if v510:  # the v5.4 lowcore: no mcck_stack, restart_* and the ASCEs 8 bytes lower
        del lowcore["mcck_stack"]
        lowcore["kernel_asce"] = 0x380
    assert {k: profile.offset(f"lowcore.{k}") for k in lowcore} == lowcore
    assert profile.size("lowcore") == 0x2000
    ksp = profile.offset("task_struct.thread.ksp") - profile.offset("task_struct.thread")
    assert ksp == 0x40
    assert profile.thread_size == 16384


def test_real_vmlinux_dwarf_matches_shipped_profile_and_btf(tmp_path: Path) -> None:
    from elftools.elf.elffile import ELFFile

    for vmlinux in map(oracles.debug_vmlinux, oracles.DEBIAN_RELEASES):
        profile = profile_from_dwarf(vmlinux, cache_dir=tmp_path)
        shipped = SAMPLES / f"{profile.release}.profile.json"
        if shipped.exists():
            saved = TypeProfile.load(shipped)
            assert (saved.offsets, saved.sizes) == (profile.offsets, profile.sizes)
        with open(vmlinux, "rb") as stream:
            section = ELFFile(stream).get_section_by_name(".BTF")
            if section is None:
                continue
            btf = profile_from_btf(section.data())
        for key in set(btf.offsets) & set(profile.offsets):
            assert btf.offsets[key] == profile.offsets[key], key
        for key in set(btf.sizes) & set(profile.sizes):
            assert btf.sizes[key] == profile.sizes[key], key
