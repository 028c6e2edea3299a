"""pt_regs, struct lowcore and struct stack_frame from the kernel's own types, era tables only
as the fallback; the type sources in their order and ``--types``.

Truth: the types of every kernel at hand: the bundled profiles (made from the -dbg vmlinux
DWARF), the BTF inside the 6.12 (and 7.x) sample dumps, and the DWARF of -dbg vmlinux files
under ``cache_dir("real", "kernels", RELEASE)`` (skipped with a message where absent).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.kernel import Options
from explorer.model.opening import open_kernel
from parsers.errors import FormatError
from parsers.s390.layouts import (
    LOWCORE_FIELDS,
    PT_REGS_LAYOUTS,
    lowcore_era_for_release,
    lowcore_fields_from_types,
    pt_regs_layout_from_types,
)
from parsers.types.profile import TypeProfile, profile_from_dwarf
from tests.helpers import oracles

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "real"
PROFILES = ROOT / "samples" / "profiles"
DUMP61 = SAMPLES / "deb12-6.1-idle" / "vmcore.zst"
DUMP612 = SAMPLES / "bpo12-6.12-busy" / "vmcore.zst"
#: Releases whose -dbg vmlinux the real-sample generator downloads.
RELEASES = ("5.10.223", "6.1.0-50-s390x", "6.12.95+deb12-s390x", "7.2.13+deb14-s390x")
SEVEN = sorted(p for p in SAMPLES.glob("*7.*") if (p / "vmcore.zst").is_file())
ARCHITECTED = {
    f.name
    for f in LOWCORE_FIELDS["v6.1"]
    if f.offset < 0x200 or f.offset >= 0xE00  # the z/Architecture's, not the kernel's
}


@cache
def _dump_btf(path: Path) -> TypeProfile:
    k = open_kernel(str(path), Options(types="btf"))
    assert k.types is not None and k.types.source == "btf:dump"
    k.close()
    return k.types


def _dwarf(release: str) -> TypeProfile:
    return profile_from_dwarf(oracles.debug_vmlinux(release))


def _sources() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [
        (f"bundled {p.name}", p) for p in sorted(PROFILES.glob("*.profile.json"))
    ]
    out += [("btf 6.12 sample", DUMP612)]
    out += [(f"btf {p.name}", p / "vmcore.zst") for p in SEVEN]
    out += [(f"dwarf {r}", r) for r in RELEASES]
    return out


def _types(what: object) -> TypeProfile:
    if isinstance(what, Path) and what.name.endswith(".profile.json"):
        return TypeProfile.load(what)
    if isinstance(what, Path):
        return _dump_btf(what)
    assert isinstance(what, str)
    return _dwarf(what)


@pytest.mark.parametrize(("label", "what"), _sources(), ids=[s[0] for s in _sources()])
def test_layouts_follow_the_kernels_types(label: str, what: object) -> None:
    types = _types(what)
    assert types.release
    layout = PT_REGS_LAYOUTS[pt_regs_layout_from_types(types.offsets, types.size("pt_regs"))]
    assert layout.size == types.size("pt_regs")
    assert layout.cr1_offset == types.offsets.get("pt_regs.cr1")
    assert layout.last_break_offset == types.offsets.get("pt_regs.last_break")
    era = lowcore_era_for_release(types.release)
    fields = lowcore_fields_from_types(types.offsets, types.sizes, era)
    assert fields is not None
    for f in fields:
        key = f"lowcore.{f.name}"
        if key in types.offsets:  # the kernel's own name: the kernel's own offset and size
            assert f.offset == types.offsets[key], f.name
            assert f.size == types.sizes[key], f.name
        else:  # only the architected ones may carry the table's name
            assert f.name in ARCHITECTED, f"{label}: {f.name} is not in the kernel's lowcore"
    names = {f.name for f in fields}
    for key in types.offsets:
        member = key[len("lowcore.") :]
        if key.startswith("lowcore.") and "." not in member and not member.startswith("pad"):
            assert member in names, f"{label}: the kernel's lowcore.{member} is not shown"
    # the stack frame layout the unwinder decodes is the kernel's
    assert types.offset("stack_frame.back_chain") == 0x98
    assert types.offset("stack_frame.gprs") == 0x48
    assert types.size("stack_frame") == 160


def test_7x_pt_regs_from_dwarf_has_last_break_at_0xb8() -> None:
    types = _dwarf("7.2.13+deb14-s390x")
    assert types.size("pt_regs") == 200  # as large as 6.x's ...
    assert pt_regs_layout_from_types(types.offsets, 200) == "v7.2"  # ... laid out differently
    assert types.offsets["pt_regs.last_break"] == 0xB8
    assert "pt_regs.cr1" not in types.offsets


def test_pt_regs_never_chosen_by_size() -> None:
    head = {"pt_regs.psw": 8, "pt_regs.gprs": 0x18, "pt_regs.flags": 0xB0}
    six = {**head, "pt_regs.cr1": 0xB8, "pt_regs.last_break": 0xC0}
    seven = {**head, "pt_regs.last_break": 0xB8, "pt_regs.cpu": 0xC0}
    assert pt_regs_layout_from_types(six, 200) == "v6.1"
    assert pt_regs_layout_from_types(seven, 200) == "v7.2"
    with pytest.raises(FormatError, match="matches no layout"):
        pt_regs_layout_from_types({**head, "pt_regs.last_break": 0xC8}, 208)
    with pytest.raises(FormatError, match="has flags at 0xb8"):
        pt_regs_layout_from_types({**head, "pt_regs.flags": 0xB8}, 200)


def test_lowcore_screen_names_match_the_kernel_on_6_12() -> None:
    from explorer.model.tasks import find_tasks
    from explorer.tui.session import Session

    k = open_kernel(str(DUMP612))
    try:
        session = Session(k, find_tasks(k))
        rows = session.lowcore(k.cpus[0])
        at = {r.offset: r.name for r in rows}
        assert at[0x288] == "pcpu"  # the 6.12 kernel's struct lowcore; v6.1's table said cpu_flags
        assert "cpu_flags" not in {r.name for r in rows}
        assert at[0x340] == "current_task" and at[0x368] == "mcck_stack"
        pcpu = next(r for r in rows if r.name == "pcpu")
        # a pointer to the CPU's struct pcpu in kernel memory, not CIF_* flags
        assert pcpu.kind == "ptr" and pcpu.value % 8 == 0 and k.readable(pcpu.value, 8)
        assert k.lowcore_source == "btf:dump"
    finally:
        k.close()


def test_info_names_the_source_of_each_layout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(DUMP612)]) == 0
    out = capsys.readouterr().out
    assert "types        btf:dump" in out
    assert "pt_regs      200 bytes, layout v6.1: last_break at 0xc0, cr1 at 0xb8 (btf:dump)" in out
    assert "lowcore      layout btf 6.12.95+deb12-s390x" in out and "(btf:dump)" in out
    assert main(["info", str(DUMP612), "--json"]) == 0
    import json

    facts = json.loads(capsys.readouterr().out)
    assert facts["pt_regs"]["source"] == "btf:dump" and facts["lowcore"]["source"] == "btf:dump"
    assert facts["stack_frame"]["source"] == "btf:dump"


# -- the order of type sources and --types ---------------------------------------------------


def test_btf_comes_before_the_bundled_profile() -> None:
    k = open_kernel(str(DUMP612))
    assert k.types is not None and k.types.source == "btf:dump"
    k.close()
    k = open_kernel(str(DUMP612), Options(types="bundled"))
    assert k.types is not None and k.types.source.startswith("profile:")
    assert k.pt_regs_layout == "v6.1" and k.lowcore_source.startswith("profile:")
    k.close()


def test_types_forced_to_a_missing_source_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ps", str(DUMP61), "--types", "btf"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--types btf: the dump has no usable BTF" in err
    assert main(["ps", str(DUMP61), "--types", "dwarf"]) == 2
    assert "no --vmlinux" in capsys.readouterr().err


def test_era_tables_only_without_types() -> None:
    k = open_kernel(str(DUMP61), Options(types="bundled"))
    assert k.pt_regs_source.startswith("profile:")
    k.close()


# -- 7.x sample (lands with the samples engineer's work) -------------------------------------


@pytest.mark.skipif(not SEVEN, reason="no 7.x sample under samples/real yet")
@pytest.mark.parametrize("sample", SEVEN, ids=[p.name for p in SEVEN])
def test_7x_bt_reads_last_break_at_0xb8(sample: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    dump = str(sample / "vmcore.zst")
    assert main(["info", dump, "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert (
        facts["pt_regs"] | {"layout": "v7.2", "last_break": "0xb8", "cr1": None} == facts["pt_regs"]
    )
    assert facts["pt_regs"]["source"] == "btf:dump" and facts["lowcore"]["source"] == "btf:dump"
    assert main(["bt", dump, "--pid", "1", "--json"]) == 0
    walk = json.loads(capsys.readouterr().out)
    walk = walk[0] if isinstance(walk, list) else walk
    regs = walk["end"]["pt_regs"]
    k = open_kernel(dump)
    try:
        raw = k.read(int(regs["address"], 16), 200)
    finally:
        k.close()
    # init sleeps in a system call: its pt_regs at the stack top, last_break the BEAR at 0xB8
    assert int(regs["last_break"], 16) == int.from_bytes(raw[0xB8:0xC0], "big")
    assert int(regs["last_break"], 16) != int.from_bytes(raw[0xC0:0xC8], "big")
