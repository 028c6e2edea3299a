"""The vmlinux symbol table (parsers.symbols.table.load_vmlinux_symbols, read column by column from
the mapped ELF) against two independent readings of the same ``.symtab``: pyelftools' symbol
objects put through the rules the table documents, and ``s390x-linux-gnu-nm``.

On the committed ELF files, on a fresh object with aliases, weak and linker-script names at
one address (when the cross compiler is installed), and on the -dbg vmlinuxes when present.
"""

from __future__ import annotations

import shutil
import subprocess
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
