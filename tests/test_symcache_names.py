"""The names of a cached symbol table are decoded only when asked for and found by a
binary search (parsers.symbols.packed.PackedNames): every answer equals the table built from the
symbols, on the real vmlinux's 130,000 symbols and on duplicate names."""

from __future__ import annotations

from array import array
from pathlib import Path

from parsers.symbols.cache import load_table, save_table
from parsers.symbols.packed import PackedNames
from parsers.symbols.table import SymbolTable, load_system_map, load_vmlinux_symbols
from tests.helpers import oracles

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"


def _same(table: SymbolTable, loaded: SymbolTable) -> None:
    assert len(loaded) == len(table) and loaded.source == table.source
    assert list(loaded.names()) == list(table.names())
    assert list(loaded.rows()) == list(table.rows())
    for name in table.names():
        assert loaded.address_of(name) == table.address_of(name), name
        assert loaded.size_of(name) == table.size_of(name), name
    for address, _, _ in list(table.rows())[::41]:
        assert loaded.lookup(address + 2) == table.lookup(address + 2)
    for missing in ("", "no_such_symbol", "\u00e9t\u00e9", "zzzzzzzz", "\x01"):
        assert loaded.address_of(missing) is None and table.address_of(missing) is None


def test_system_map_names_equal_the_built_table(tmp_path: Path) -> None:
    table = load_system_map(SAMPLES / "deb12-6.1-idle" / "System.map.zst")
    save_table(table, tmp_path / "t.syms")
    loaded = load_table(tmp_path / "t.syms")
    assert loaded is not None
    _same(table, loaded)
    assert isinstance(loaded.raw()[2], PackedNames)  # nothing decoded up front


def test_real_vmlinux_names_equal_the_built_table(tmp_path: Path) -> None:
    release = "6.1.0-50-s390x"
    vmlinux = oracles.debug_vmlinux(release)
    packed = load_vmlinux_symbols(vmlinux)  # names left in the .strtab, found by bisection
    assert isinstance(packed.stored()[2], PackedNames)
    addrs, types, names = packed.raw()  # in kallsyms' order, ranked once for this
    table = SymbolTable.from_kallsyms(addrs, types, list(names), packed.source)  # a dict
    _same(table, packed)
    save_table(packed, tmp_path / "v.syms")
    loaded = load_table(tmp_path / "v.syms")
    assert loaded is not None and len(loaded) > 90_000
    _same(table, loaded)


def test_first_of_equal_names_wins_and_relocation_applies(tmp_path: Path) -> None:
    entries = [
        (0x1000, "T", "_stext", 0),
        (0x1000, "t", "dup", 0),
        (0x2000, "t", "b", 0),
        (0x3000, "t", "dup", 0),
        (0x4000, "T", "a", 0),
        (0x6000, "T", "_etext", 0),
    ]
    table = SymbolTable(entries, "test")
    save_table(table, tmp_path / "d.syms")
    loaded = load_table(tmp_path / "d.syms")
    assert loaded is not None
    assert loaded.address_of("dup") == 0x1000 == table.address_of("dup")
    loaded.relocate(0x100000)
    table.relocate(0x100000)
    assert loaded.address_of("dup") == 0x101000 and loaded.require("a") == 0x104000
    assert str(loaded.lookup(0x103004)) == "dup+0x4/0x1000" == str(table.lookup(0x103004))
    assert str(loaded.lookup(0x101004)) == str(table.lookup(0x101004))


def test_an_index_past_the_table_finds_nothing() -> None:
    names = PackedNames(b"a\0b\0", array("I", [0, 2]), array("I", [0, 7]))
    assert names.get("b") is None and names[1] == "b" and list(names) == ["a", "b"]
    assert "a" in names or names.get("a") is None  # no exception either way
