"""The type graph from DWARF (parsers.types.graph.DwarfTypes, on the one bounded reader of
parsers.dwarf.reader) against independent readers: pyelftools (every type reachable from each
struct the type profile uses, record for record: the two graphs share one decoder, so this
holds the bounded reader's DIEs to pyelftools') and drgn (each of those structs' size and
members, and every type reachable from them, walked beside drgn's own), on the committed
objects and the -dbg vmlinuxes; and hostile DWARF gives a graph or a DumpError, never another
exception.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from parsers.dwarf.reader import DwarfReader, Unsupported
from parsers.elf.sections import ElfSections
from parsers.errors import DumpError
from parsers.types.graph import CType, DwarfTypes, ElftoolsTypes
from parsers.types.profile import STRUCTS
from tests.helpers import oracles

DATA = Path(__file__).parent / "data"
OBJECTS = [DATA / "types_mock.o", DATA / "types_mock_dwarf2.o"]
#: Types compared per vmlinux (pyelftools reads a few hundred a second).
MAX_TYPES = 1500
KLP_RELEASE = "6.12.95-klp"
#: The Debian -dbg vmlinuxes, and the rebuilt livepatch kernel's when it is cached (it comes
#: only from a kernel build; no test skips for it).
RELEASES = oracles.DEBIAN_RELEASES + (
    (KLP_RELEASE,) if (oracles.REAL_WORK / "kernels" / KLP_RELEASE / "vmlinux").is_file() else ()
)


def _find_each(graph: DwarfTypes | ElftoolsTypes) -> dict[str, int | None]:
    """Each struct of the profile by its first name the DWARF has (as the profile looks for
    them: an old name, like ``_lowcore``, only when the new one is absent)."""
    found: dict[str, int | None] = {}
    for key, names in STRUCTS.items():
        for name in names:
            found[key] = graph.find(name)
            if found[key] is not None:
                break
    return found


def _closure(graph: DwarfTypes | ElftoolsTypes, roots: list[int]) -> Iterator[CType]:
    """Every type reachable from ``roots`` (members, targets), breadth first, bounded."""
    seen: set[int] = set()
    queue = deque(roots)
    while queue and len(seen) < MAX_TYPES:
        type_id = queue.popleft()
        if type_id in seen:
            continue
        seen.add(type_id)
        t = graph.get(type_id)
        yield t
        queue.extend(m.type for m in t.members)
        if t.target is not None:
            queue.append(t.target)


def _compare_with_elftools(path: Path) -> tuple[DwarfTypes, dict[str, int]]:
    ours, truth = DwarfTypes(str(path)), ElftoolsTypes(str(path))
    try:
        found = _find_each(ours)
        assert found == _find_each(truth)
        roots = [i for i in found.values() if i is not None]
        assert roots, f"{path}: none of the profile's structs"
        compared = list(_closure(ours, roots))
        assert compared == [truth.get(t.id) for t in compared]
        assert ours.notes == [], "the bounded reader fell back to pyelftools"
        return ours, {k: v for k, v in found.items() if v is not None}
    finally:
        truth.close()


@pytest.mark.parametrize("path", OBJECTS, ids=lambda p: p.name)
def test_committed_objects_equal_pyelftools(path: Path) -> None:
    graph, _found = _compare_with_elftools(path)
    graph.close()


def _drgn_types(path: Path) -> Any:
    """drgn's program of the vmlinux's DWARF alone (no dump)."""
    import drgn

    program = drgn.Program(drgn.Platform(drgn.Architecture.S390X, drgn.PlatformFlags.IS_64_BIT))
    module = program.extra_module("vmlinux", create=True)
    module = module[0] if isinstance(module, tuple) else module
    module.try_file(str(path), force=True)
    return program


@pytest.mark.parametrize("release", RELEASES)
def test_vmlinux_types_equal_pyelftools_and_drgn(release: str) -> None:
    path = oracles.debug_vmlinux(release)
    graph, found = _compare_with_elftools(path)
    program = _drgn_types(path)
    try:
        assert {"task_struct", "pt_regs", "list_head", "module"} <= set(found)
        for type_id in found.values():
            ours = graph.get(type_id)
            theirs = program.type(f"{ours.kind} {ours.name}")
            name = ours.name
            assert ours.size == theirs.size, name
            assert [(m.name, m.bit_offset, m.bit_size) for m in ours.members] == [
                (m.name, m.bit_offset, m.bit_field_size or 0) for m in theirs.members
            ], name
    finally:
        graph.close()


def _drgn_size(theirs: Any) -> int | None:
    import drgn

    try:
        return int(drgn.sizeof(theirs))
    except (TypeError, ValueError):  # incomplete, void, a function
        return None


def _beside_drgn(graph: DwarfTypes, roots: list[tuple[int, Any]]) -> int:
    """Walk every type reachable from ``roots`` (our id, drgn's type) in both graphs at once,
    asserting each of ours equals drgn's; the count of our types compared. Our qualifiers
    are records of their own (drgn's are flags of the type), _Atomic ours as volatile; a
    struct declared only in its unit stays a declaration in ours (drgn finds the definition);
    drgn spells base types its own way (``unsigned long``), so their names are not compared."""
    from drgn import Qualifiers, TypeKind

    qualifier_flags = {
        "const": Qualifiers.CONST,
        "volatile": Qualifiers.VOLATILE,
        "restrict": Qualifiers.RESTRICT,
    }
    kinds = {
        TypeKind.INT: "int",
        TypeKind.BOOL: "int",
        TypeKind.FLOAT: "float",
        TypeKind.POINTER: "ptr",
        TypeKind.ARRAY: "array",
        TypeKind.STRUCT: "struct",
        TypeKind.UNION: "union",
        TypeKind.ENUM: "enum",
        TypeKind.TYPEDEF: "typedef",
        TypeKind.FUNCTION: "func",
        TypeKind.VOID: "void",
    }
    seen: set[int] = set()
    queue = deque((type_id, theirs, (graph.get(type_id).name,)) for type_id, theirs in roots)
    while queue and len(seen) < MAX_TYPES:
        type_id, theirs, where = queue.popleft()
        ours = graph.get(type_id)
        qualifiers = Qualifiers.NONE
        while ours.kind in qualifier_flags:
            qualifiers |= qualifier_flags[ours.kind]
            ours = graph.get(ours.target or 0)
        wanted = theirs.qualifiers
        if wanted & Qualifiers.ATOMIC:
            wanted = (wanted & ~Qualifiers.ATOMIC) | Qualifiers.VOLATILE
        assert qualifiers == wanted, where
        if ours.id in seen:
            continue
        seen.add(ours.id)
        assert ours.kind == kinds[theirs.kind], (where, ours, theirs)
        if ours.kind in ("int", "float"):
            assert ours.size == _drgn_size(theirs), (where, ours, theirs)
            if theirs.kind == TypeKind.INT:
                assert ours.signed == theirs.is_signed, (where, ours, theirs)
        elif ours.kind in ("ptr", "typedef"):
            assert ours.size == (_drgn_size(theirs) if ours.kind == "ptr" else None), where
            assert ours.kind == "ptr" or ours.name == theirs.name, (where, ours, theirs)
            queue.append((ours.target or 0, theirs.type, (*where, ours.name or "*")))
        elif ours.kind == "array":
            size = 0 if theirs.length is None else _drgn_size(theirs)  # flexible: ours 0
            assert (ours.count, ours.size) == (theirs.length or 0, size), (where, ours, theirs)
            queue.append((ours.target or 0, theirs.type, (*where, "[]")))
        elif ours.kind in ("struct", "union", "enum") and ours.size is None:  # declared only
            assert ours.name == theirs.tag and not ours.members, (where, ours, theirs)
        elif ours.kind in ("struct", "union"):
            assert (ours.name, ours.size) == (theirs.tag, _drgn_size(theirs)), (where, ours)
            assert [(m.name, m.bit_offset, m.bit_size) for m in ours.members] == [
                (m.name, m.bit_offset, m.bit_field_size or 0) for m in theirs.members
            ], where
            for m, t in zip(ours.members, theirs.members, strict=True):
                queue.append((m.type, t.type, (*where, m.name or "(anonymous)")))
        elif ours.kind == "enum":
            assert (ours.name, ours.size) == (theirs.tag, _drgn_size(theirs)), (where, ours)
            assert list(ours.enumerators) == [(e.name, e.value) for e in theirs.enumerators], where
    return len(seen)


@pytest.mark.parametrize("release", RELEASES)
def test_vmlinux_type_closure_equals_drgn(release: str) -> None:
    """Every type reachable from the profile's structs, walked beside drgn's."""
    path = oracles.debug_vmlinux(release)
    graph = DwarfTypes(str(path))
    program = _drgn_types(path)
    try:
        found = {k: v for k, v in _find_each(graph).items() if v is not None}
        roots = [
            (i, program.type(f"{graph.get(i).kind} {graph.get(i).name}")) for i in found.values()
        ]
        assert _beside_drgn(graph, roots) > 1000
    finally:
        graph.close()


def _sections(path: Path) -> dict[str, tuple[int, int]]:
    with ElfSections(path) as elf:
        return {s.name: (s.offset, s.size) for s in elf.sections}


@pytest.mark.parametrize("section", [".debug_info", ".debug_abbrev", ".debug_str"])
def test_hostile_dwarf_is_a_graph_or_a_dump_error(tmp_path: Path, section: str) -> None:
    """Bytes of one section overwritten at random (seeded): every struct lookup and every
    type reached either works or raises a DumpError; the reader reads nothing outside its
    sections (a DIE, block or string that would is damage)."""
    source = DATA / "types_mock.o"
    original = source.read_bytes()
    offset, size = _sections(source)[section]
    rng = random.Random(f"hostile {section}")
    outcomes = {"graph": 0, "error": 0}
    for trial in range(60):
        data = bytearray(original)
        for _ in range(1 + trial % 8):
            at = offset + rng.randrange(size)
            data[at] = rng.choice([0x00, 0x7F, 0x80, 0xFF, rng.randrange(256)])
        if trial % 5 == 0:  # a huge length or offset where a field starts
            at = offset + rng.randrange(max(1, size - 4))
            data[at : at + 4] = struct.pack(">I", rng.choice([0xFFFFFFFF, 0x7FFFFFFF, size]))
        bad = tmp_path / f"bad{trial}.o"
        bad.write_bytes(bytes(data))
        try:
            graph = DwarfTypes(str(bad))
            try:
                roots = [i for i in _find_each(graph).values() if i is not None]
                for _ in _closure(graph, roots):
                    pass
            finally:
                graph.close()
            outcomes["graph"] += 1
        except DumpError:
            outcomes["error"] += 1
    if section != ".debug_str":  # damaged names are still names
        assert outcomes["error"] > 0, outcomes  # the damage was seen


def test_reader_bounds(tmp_path: Path) -> None:
    """A unit length past .debug_info, and an abbreviation offset past .debug_abbrev: the
    reader names the damage (a DumpError), it does not read the bytes after the section
    (a linked file: an object's relocations would write over the abbreviation offset)."""
    source = DATA / "lines_mock.elf"
    info, _ = _sections(source)[".debug_info"]
    for field, value in ((0, 0x7FFFFFF0), (6, 0x7FFFFFF0)):  # unit_length, abbrev offset (v4)
        data = bytearray(source.read_bytes())
        version = struct.unpack_from(">H", data, info + 4)[0]
        at = info + field if version < 5 or field == 0 else info + 8
        data[at : at + 4] = struct.pack(">I", value)
        bad = tmp_path / "bad.o"
        bad.write_bytes(bytes(data))
        with ElfSections(bad) as elf:
            try:
                reader = DwarfReader.from_elf(elf)
            except Unsupported:
                pytest.fail("lines_mock.elf is supported")
            with pytest.raises(DumpError):
                unit = reader.unit(0)
                reader.die(unit, unit.die_offset)


def test_unsupported_dwarf_goes_to_pyelftools_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the bounded reader reports unsupported (here: every DIE) is read by pyelftools,
    to the same types, and the graph says so in its notes."""
    import parsers.types.graph as G

    path = OBJECTS[0]
    plain = ElftoolsTypes(str(path))

    def unsupported(*args: object, **kwargs: object) -> None:
        raise Unsupported("as if the DWARF used DW_FORM_ref_sig8")

    monkeypatch.setattr(G.DwarfStructs, "die", unsupported)
    graph = DwarfTypes(str(path))
    try:
        found = _find_each(graph)
        assert found == _find_each(plain)
        roots = [i for i in found.values() if i is not None]
        assert list(_closure(graph, roots)) == list(_closure(plain, roots))
        assert graph.notes == [
            f"{path}: as if the DWARF used DW_FORM_ref_sig8: not decoded by backchain's DWARF "
            "reader, read with pyelftools instead (slower)"
        ]
    finally:
        graph.close()
        plain.close()
