"""The vmlinux symbol table (parsers.symbols.table.load_vmlinux_symbols, read column by column from
the mapped ELF) against two independent readings of the same ``.symtab``: pyelftools' symbol
objects put through the rules the table documents, and ``s390x-linux-gnu-nm``.

On the committed ELF files, on a fresh object with aliases, weak and linker-script names at
one address (when the cross compiler is installed), and on the -dbg vmlinuxes when present.
"""

from __future__ import annotations

import shutil
import subprocess
from array import array
from pathlib import Path

import pytest

from parsers.errors import SymbolError
from parsers.symbols.table import SymbolTable, load_vmlinux_symbols
from tests.helpers import oracles

DATA = Path(__file__).parent / "data"
COMMITTED = sorted([*DATA.glob("*.elf"), *DATA.glob("*.o")])
CROSS_GCC = shutil.which("s390x-linux-gnu-gcc")

# Several names at one address, in an order kallsyms must change: weak last, linker-script
# names after others, fewer leading underscores first, then by name.
ALIASES = r"""
void target(void) {}
void zeta(void) __attribute__((alias("target")));
void __alpha(void) __attribute__((alias("target")));
void _beta(void) __attribute__((alias("target")));
void __start_things(void) __attribute__((alias("target")));
void __stop_x(void) __attribute__((alias("target")));
void weakling(void) __attribute__((weak, alias("target")));
static void local_one(void) __attribute__((alias("target"), used));
int data_a = 1;
int data_b __attribute__((weak)) = 2;
static int data_c __attribute__((used)) = 3;
"""


def reference(path: Path) -> SymbolTable:
    """The table by pyelftools' symbols and the documented rules (nm's letters; kallsyms'
    order among the names of one address, after nm -n's order by name)."""
    from elftools.elf.elffile import ELFFile

    with open(path, "rb") as stream:
        elf = ELFFile(stream)
        text = {i for i, s in enumerate(elf.iter_sections()) if s["sh_flags"] & 0x4}
        symtab = elf.get_section_by_name(".symtab")
        entries = []
        for symbol in symtab.iter_symbols():
            kind, shndx = symbol["st_info"]["type"], symbol["st_shndx"]
            if kind not in ("STT_NOTYPE", "STT_OBJECT", "STT_FUNC") or not symbol.name:
                continue
            if not isinstance(shndx, int) or shndx == 0:
                continue  # SHN_UNDEF, SHN_ABS, SHN_COMMON
            bind = symbol["st_info"]["bind"]
            if bind == "STB_WEAK":
                letter = "W" if shndx in text else "V"
            else:
                letter = "t" if shndx in text else "d"
                letter = letter if bind == "STB_LOCAL" else letter.upper()
            entries.append((symbol["st_value"], letter, symbol.name, 0))
    entries.sort(key=lambda e: (e[0], e[2]))
    return SymbolTable(entries, f"vmlinux {path}")


def nm_symbols(path: Path) -> set[tuple[int, str]]:
    """(address, name) of every defined, non-absolute, non-common symbol nm lists."""
    out = subprocess.run(
        [oracles.tool("nm"), "--defined-only", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] not in "aAC":
            found.add((int(parts[0], 16), parts[2]))
    return found


def check(path: Path) -> SymbolTable:
    table = load_vmlinux_symbols(path)
    expected = reference(path)
    addrs, types, names = table.raw()
    e_addrs, e_types, e_names = expected.raw()
    assert (list(addrs), types, list(names)) == (list(e_addrs), e_types, list(e_names))
    assert table.source == expected.source
    assert {(a, n) for a, _, n in table.rows()} == nm_symbols(path)
    return table


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_committed_elf_files(path: Path) -> None:
    assert len(check(path)) > 3


@oracles.needs("gcc")
def test_aliases_weak_and_linker_names_in_kallsyms_order(tmp_path: Path) -> None:
    assert CROSS_GCC is not None
    source = tmp_path / "aliases.c"
    source.write_text(ALIASES)
    obj = tmp_path / "aliases.o"
    subprocess.run([CROSS_GCC, "-O1", "-c", str(source), "-o", str(obj)], check=True)
    table = check(obj)
    start = table.address_of("target")
    at_target = [n for a, t, n in table.rows() if a == start and t in "tTW"]
    assert at_target == [
        "local_one", "target", "zeta", "_beta", "__alpha", "__start_things", "__stop_x",
        "weakling",
    ]  # fmt: skip
    assert table.type_of("weakling") == "W" and table.type_of("local_one") == "t"
    assert table.type_of("data_b") == "V" and table.type_of("data_c") == "d"
    assert table.type_of("data_a") == "D"


def test_not_a_vmlinux(tmp_path: Path) -> None:
    bad = tmp_path / "notelf"
    bad.write_bytes(b"\x7fELF\x01" + bytes(80))
    with pytest.raises(SymbolError, match="not a 64-bit ELF"):
        load_vmlinux_symbols(bad)
    with pytest.raises(SymbolError, match="not a 64-bit big-endian"):
        load_vmlinux_symbols(Path("/proc/self/exe").resolve())


@pytest.mark.parametrize("release", oracles.DEBIAN_RELEASES)
def test_real_vmlinux(release: str) -> None:
    table = check(oracles.debug_vmlinux(release))
    assert len(table) > 50_000


def _synthetic(
    base: int, count: int = 3000
) -> tuple[bytes, bytes, list[tuple[int, str, str, int]]]:
    """A .symtab of ``count`` random entries at ``base`` and above (local, global and weak
    names, many sharing an address, some sharing a name or the tail of another name; section,
    file, undefined, absolute and nameless entries left out) with its string table, and the
    (address, letter, name, index) of each entry kept, worked out entry by entry."""
    import random
    import struct

    rng = random.Random(base ^ count)
    strings = bytearray(b"\0")
    offsets: dict[str, int] = {}
    raw = bytearray()
    kept = []
    words = ["init", "start", "end", "do_it", "x", "_y", "kthread", "stop"]
    for index in range(count):
        name = rng.choice(["", "_", "__", "___"]) + "_".join(rng.sample(words, rng.randint(1, 3)))
        if rng.random() < 0.1:
            name = rng.choice(["__start_", "__stop_", "__end_"]) + rng.choice(words)
        if name not in offsets:
            if rng.random() < 0.2 and len(name) > 2:  # a tail: the name ends a longer string
                offsets[name] = len(strings) + 3
                strings += b"zz_" + name.encode() + b"\0"
            else:
                offsets[name] = len(strings)
                strings += name.encode() + b"\0"
        st_name = 0 if rng.random() < 0.02 else offsets[name]
        info = rng.choice([0x00, 0x10, 0x20, 0x01, 0x11, 0x21, 0x02, 0x12, 0x22, 0x03, 0x04])
        shndx = rng.choice([1, 2, 3, 0, 0xFFF1])  # 1, 2: text; 3: data
        value = base + rng.randrange(0, 400) * 16
        raw += struct.pack(">IBBHQQ", st_name, info, 0, shndx, value, 0)
        if st_name and info & 0xF <= 2 and 0 < shndx < 4:
            bind, text = info >> 4, shndx in (1, 2)
            letter = ("W" if text else "V") if bind == 2 else ("t" if text else "d")
            letter = letter.upper() if bind == 1 else letter
            kept.append((value, letter, name, index))
    return bytes(raw), bytes(strings), kept


def _expected(kept: list[tuple[int, str, str, int]]) -> list[tuple[int, str, str]]:
    """kallsyms' order: address, weak last, linker-script names after others, fewer leading
    underscores first, then the name, then .symtab order."""

    def key(entry: tuple[int, str, str, int]) -> tuple[int, bool, bool, int, str, int]:
        value, letter, name, index = entry
        linker = len(name) >= 8 and name.startswith("__")
        linker = linker and (
            name.startswith(("__start_", "__stop_", "__end_")) or name.endswith(("_start", "_end"))
        )
        underscores = len(name) - len(name.lstrip("_"))
        return value, letter in "Ww", linker, underscores, name, index

    return [(v, t, n) for v, t, n, _ in sorted(kept, key=key)]


@pytest.mark.parametrize("base", [0x100000, (1 << 28) - 400 * 16, (1 << 28) - 16, 1 << 28, 1 << 44])
def test_kallsyms_order_at_any_address(base: int) -> None:
    """Addresses a float sort key holds (below 2**28) and those it does not (sorted by a
    key function instead) give the same order, the one worked out entry by entry."""
    from parsers.symbols.symtab import table_of_symbols
    from parsers.symbols.table import symtab_table

    raw, strings, kept = _synthetic(base)
    found = table_of_symbols(raw, strings, {1, 2}, 4)
    assert found is not None
    addrs, types, names = found
    # the table itself: by address, then .symtab order
    by_address = sorted(kept, key=lambda e: (e[0], e[3]))
    assert list(zip(addrs, types, names, strict=True)) == [(v, t, n) for v, t, n, _ in by_address]
    by_name = names.by_name  # type: ignore[attr-defined]
    assert list(by_name) == sorted(range(len(names)), key=lambda i: (names[i], i))
    # ranked by kallsyms' rule when read or looked up
    table = symtab_table(found, "synthetic")
    expected = _expected(kept)
    assert list(table.rows()) == expected
    assert list(table.names()) == [n for _, _, n in expected]
    first: dict[int, tuple[str, str]] = {}
    first_of_name: dict[str, tuple[int, str]] = {}
    for value, letter, name in expected:
        first.setdefault(value, (name, letter))
        first_of_name.setdefault(name, (value, letter))
    # a look-up names kallsyms' first symbol at an address, as a table in that order does
    # (None beyond a synthetic "_end", as there)
    ordered = SymbolTable.from_kallsyms(
        array("Q", [v for v, _, _ in expected]),
        "".join(t for _, t, _ in expected),
        [n for _, _, n in expected],
        "ordered",
    )
    looked_up = 0
    for value, (name, letter) in first.items():
        found_symbol = table.lookup(value)
        assert found_symbol == ordered.lookup(value)
        if found_symbol is not None:
            looked_up += 1
            assert (found_symbol.name, found_symbol.type, found_symbol.offset) == (name, letter, 0)
    assert looked_up
    for name, (value, letter) in first_of_name.items():
        assert (table.address_of(name), table.type_of(name)) == (value, letter), name
