"""The symbol cache: one compact file per table, equal to the table it was written from."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.model.kernel import Options
from explorer.model.opening import kernel_of, open_kernel
from explorer.sources.symcache import GENERATION
from parsers.dumps.dumpfile import open_dump
from parsers.symbols.cache import load_table, save_table
from parsers.symbols.table import load_system_map
from tests.helpers import oracles

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"


def _symbols_cache_in(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Symbol tables cached under ``folder``: where symcache reads and writes them, and where
    symfiles (what a start asks before forking its worker) looks for them."""
    for module in ("explorer.sources.symcache", "explorer.sources.symfiles"):
        monkeypatch.setattr(f"{module}.cache_dir", lambda *parts: folder.joinpath(*parts))


def test_round_trip_of_a_system_map(tmp_path: Path) -> None:
    table = load_system_map(SAMPLES / "deb12-6.1-idle" / "System.map.zst")
    path = tmp_path / "t.syms"
    save_table(table, path)
    loaded = load_table(path)
    assert loaded is not None and loaded.source == table.source
    assert list(loaded.rows()) == list(table.rows())
    for address, _, _ in list(table.rows())[::97]:
        assert str(loaded.lookup(address + 1)) == str(table.lookup(address + 1))
    # Damaged or foreign files are ignored, never half-read.
    data = path.read_bytes()
    path.write_bytes(data[:-1])
    assert load_table(path) is None
    path.write_bytes(b"BCSYMS\x01" + data[7:])  # the older layout
    assert load_table(path) is None
    assert load_table(tmp_path / "absent.syms") is None
    # the flags word (after count, names, source and CRC): a flag no writer sets is foreign
    flags = 8 + 16
    for bits in (2, 0x80000000):
        path.write_bytes(data[:flags] + bits.to_bytes(4, "little") + data[flags + 4 :])
        assert load_table(path) is None
    path.write_bytes(data)
    assert load_table(path) is not None


def test_kallsyms_cached_by_their_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first open decodes and writes kallsyms-DIGEST.syms (a digest of the bytes decoded,
    not the dump's own BUILD-ID); the next one loads it and moves it by the dump's
    kallsyms_relative_base, as decoding does."""
    _symbols_cache_in(tmp_path, monkeypatch)
    dump = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
    first = kernel_of(open_dump(dump), Options())
    assert first.vmcoreinfo is not None and first.symbols is not None
    build_id = first.vmcoreinfo.get("BUILD-ID")
    (cached,) = (tmp_path / "symbols").glob(f"kallsyms-*-g{GENERATION}.syms")
    assert str(build_id) not in cached.name and cached.stat().st_size < 4 << 20
    second = kernel_of(open_dump(dump), Options())
    assert second.symbols is not None and second.symbols is not first.symbols
    assert list(second.symbols.rows()) == list(first.symbols.rows())
    assert second.symbols.address_of("_stext") == first.vmcoreinfo.symbol("_stext")
    schedule = first.symbols.require("schedule")
    assert str(second.symbols.lookup(schedule + 0x3E)) == "schedule+0x3e/0x110"


def test_system_map_cached_by_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _symbols_cache_in(tmp_path, monkeypatch)
    sample = SAMPLES / "deb12-6.1-idle"
    opts = {"system_map": str(sample / "System.map.zst")}
    a = open_kernel(str(sample / "vmcore.zst"), Options(**opts))
    files = list((tmp_path / "symbols").glob("file-*.syms"))
    assert len(files) == 1
    b = open_kernel(str(sample / "vmcore.zst"), Options(**opts))
    assert a.symbols is not None and b.symbols is not None
    assert list(a.symbols.rows()) == list(b.symbols.rows())
    assert b.symbols.source == a.symbols.source


def test_vmlinux_cached_by_its_symtab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A vmlinux's table is cached under a digest of its .symtab and string table (never
    the build-id it claims): another copy of the same build (a hard link elsewhere, as a
    support team copies one vmlinux per incident) is not read again."""
    from parsers.elf.fileid import elf_identity

    vmlinux = oracles.debug_vmlinux("6.1.0-50-s390x")
    _symbols_cache_in(tmp_path, monkeypatch)
    build_id = elf_identity(vmlinux).build_id
    other = tmp_path / "incident-4711" / "vmlinux"
    other.parent.mkdir()
    try:
        other.hardlink_to(vmlinux)
    except OSError:
        pytest.skip("cannot hard-link the vmlinux into the test's folder")
    sample = str(SAMPLES / "deb12-6.1-idle" / "vmcore.zst")
    a = open_kernel(sample, Options(vmlinux=str(vmlinux)))
    (cached,) = (tmp_path / "symbols").glob(f"file-*-g{GENERATION}.syms")
    assert build_id and build_id not in cached.name

    def read_again(path: str) -> None:
        raise AssertionError(f"{path} was read although its build is in the cache")

    monkeypatch.setattr("explorer.sources.companions.load_vmlinux_symbols", read_again)
    b = open_kernel(sample, Options(vmlinux=str(other)))
    assert a.symbols is not None and b.symbols is not None
    assert list(b.symbols.rows()) == list(a.symbols.rows())
    assert list((tmp_path / "symbols").glob("file-*.syms")) == [cached]


def test_a_build_id_that_is_not_hex_names_no_cache_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VMCOREINFO is the dump's own text: a BUILD-ID such as ``../../x`` must not choose
    where the cache writes (the table is cached under a digest of its bytes)."""
    from dataclasses import replace

    from explorer.image.dumpimage import Diagnostics
    from explorer.sources.kallsyms import dump_kallsyms

    _symbols_cache_in(tmp_path, monkeypatch)
    kernel = kernel_of(open_dump(str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")), Options())
    assert kernel.vmcoreinfo is not None
    for hostile in ("../../escaped", "ABCDEF0123"):
        entries = {**kernel.vmcoreinfo.entries, "BUILD-ID": hostile}
        image = replace(kernel.image, vmcoreinfo=replace(kernel.vmcoreinfo, entries=entries))
        for old in tmp_path.rglob("*.syms"):
            old.unlink()
        table = dump_kallsyms(image, Diagnostics())
        assert table is not None and table.address_of("schedule") is not None
        (cached,) = tmp_path.rglob("*.syms")  # named by the digest of the bytes decoded
        assert cached.parent == tmp_path / "symbols" and hostile not in cached.name
        assert not (tmp_path / "escaped").exists()
