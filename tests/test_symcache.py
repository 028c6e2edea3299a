"""The symbol cache: one compact file per table, equal to the table it was written from."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.kernel import Kernel, Options
from explorer.symbols import GENERATION
from parsers.dumps import open_dump
from parsers.symbols import load_system_map
from parsers.symcache import load_table, save_table
from tests.helpers import oracles

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"


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


def test_kallsyms_cached_by_build_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first open decodes and writes kallsyms-BUILDID.syms; the next one loads it and
    moves it to the dump's KASLR offset (VMCOREINFO _stext)."""
    monkeypatch.setattr("explorer.symbols.cache_dir", lambda *parts: tmp_path.joinpath(*parts))
    dump = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")
    first = Kernel(open_dump(dump), Options())
    assert first.vmcoreinfo is not None and first.symbols is not None
    build_id = first.vmcoreinfo.get("BUILD-ID")
    cached = tmp_path / "symbols" / f"kallsyms-{build_id}-g{GENERATION}.syms"
    assert cached.is_file() and cached.stat().st_size < 4 << 20
    second = Kernel(open_dump(dump), Options())
    assert second.symbols is not None and second.symbols is not first.symbols
    assert list(second.symbols.rows()) == list(first.symbols.rows())
    assert second.symbols.address_of("_stext") == first.vmcoreinfo.symbol("_stext")
    schedule = first.symbols.require("schedule")
    assert str(second.symbols.lookup(schedule + 0x3E)) == "schedule+0x3e/0x110"


def test_system_map_cached_by_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("explorer.symbols.cache_dir", lambda *parts: tmp_path.joinpath(*parts))
    sample = SAMPLES / "deb12-6.1-idle"
    opts = {"system_map": str(sample / "System.map.zst")}
    a = Kernel.open(str(sample / "vmcore.zst"), Options(**opts))
    files = list((tmp_path / "symbols").glob("file-*.syms"))
    assert len(files) == 1
    b = Kernel.open(str(sample / "vmcore.zst"), Options(**opts))
    assert a.symbols is not None and b.symbols is not None
    assert list(a.symbols.rows()) == list(b.symbols.rows())
    assert b.symbols.source == a.symbols.source


def test_vmlinux_cached_by_build_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A vmlinux's table is cached under its build-id: another copy of the same build (a
    hard link elsewhere, as a support team copies one vmlinux per incident) is not read
    again."""
    from parsers.fileid import elf_identity

    vmlinux = oracles.debug_vmlinux("6.1.0-50-s390x")
    monkeypatch.setattr("explorer.symbols.cache_dir", lambda *parts: tmp_path.joinpath(*parts))
    build_id = elf_identity(vmlinux).build_id
    other = tmp_path / "incident-4711" / "vmlinux"
    other.parent.mkdir()
    try:
        other.hardlink_to(vmlinux)
    except OSError:
        pytest.skip("cannot hard-link the vmlinux into the test's folder")
    sample = str(SAMPLES / "deb12-6.1-idle" / "vmcore.zst")
    a = Kernel.open(sample, Options(vmlinux=str(vmlinux)))
    assert build_id and (tmp_path / "symbols" / f"vmlinux-{build_id}-g{GENERATION}.syms").is_file()

    def read_again(path: str) -> None:
        raise AssertionError(f"{path} was read although its build is in the cache")

    monkeypatch.setattr("explorer.sources.companions.load_vmlinux_symbols", read_again)
    b = Kernel.open(sample, Options(vmlinux=str(other)))
    assert a.symbols is not None and b.symbols is not None
    assert list(b.symbols.rows()) == list(a.symbols.rows())
    assert not list((tmp_path / "symbols").glob("file-*.syms"))


def test_a_build_id_that_is_not_hex_names_no_cache_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VMCOREINFO is the dump's own text: a BUILD-ID such as ``../../x`` must not choose
    where the cache writes (the table is still read, just not cached)."""
    from dataclasses import replace

    from explorer.symbols import dump_kallsyms

    monkeypatch.setattr("explorer.symbols.cache_dir", lambda *parts: tmp_path.joinpath(*parts))
    kernel = Kernel(open_dump(str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")), Options())
    assert kernel.vmcoreinfo is not None
    for hostile in ("../../escaped", "ABCDEF0123"):
        entries = {**kernel.vmcoreinfo.entries, "BUILD-ID": hostile}
        kernel.vmcoreinfo = replace(kernel.vmcoreinfo, entries=entries)
        for old in tmp_path.rglob("*.syms"):
            old.unlink()
        table = dump_kallsyms(kernel)
        assert table is not None and table.address_of("schedule") is not None
        assert not list(tmp_path.rglob("*.syms")) and not (tmp_path / "escaped").exists()
