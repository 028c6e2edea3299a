"""Symbol and type files that belong to the dump: verification, companions, safe opening.

Truth: the bundled real dumps' own VMCOREINFO (SYMBOL() values, BUILD-ID, OSRELEASE) and
linux_banner; a System.map of the 6.12 sample is another kernel's for the 6.1 dump.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.cli import main
from explorer.model.kernel import Options
from explorer.model.opening import open_kernel
from explorer.sources.companions import find_candidates
from parsers.elf.fileid import PROFILE, SYSTEM_MAP, VMLINUX, content_kind
from parsers.errors import DumpError, MismatchError
from parsers.types.profile import TypeProfile
from tests.helpers import oracles
from tests.helpers.dumps import two_cpu_dump

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
PROFILES = Path(__file__).resolve().parent.parent / "samples" / "profiles"
DUMP61 = SAMPLES / "deb12-6.1-idle" / "vmcore.zst"
MAP61 = SAMPLES / "deb12-6.1-idle" / "System.map.zst"
MAP612 = SAMPLES / "bpo12-6.12-busy" / "System.map.zst"
RELEASE61 = "6.1.0-50-s390x"


def _link_dump(folder: Path, name: str = "vmcore.zst") -> Path:
    """The 6.1 sample reached through a symlink (shares its decompressed cache copy)."""
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / name
    link.symlink_to(DUMP61)
    return link


# -- the garbage case: a 6.1 dump with a 6.12 System.map ---------------------------


def test_wrong_map_given_explicitly_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["check", str(DUMP61), "--map", str(MAP612)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1
    assert str(MAP612) in err and str(DUMP61) in err  # names both files
    # the dump's own VMCOREINFO value of init_uts_ns (6.1 sample) is the evidence
    assert "SYMBOL(init_uts_ns)=0xef4898" in err
    assert "--force" in err


def test_wrong_map_with_force_warns_on_every_output(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["ps", str(DUMP61), "--map", str(MAP612), "--force", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0
    assert "warning: FORCED: using System.map" in err
    document = json.loads(out)
    assert document["forced"] and "does not belong to the dump" in document["forced"][0]
    rc = main(["ps", str(DUMP61), "--map", str(MAP612), "--force"])
    assert rc == 0 and "FORCED" in capsys.readouterr().err


def test_right_map_agrees_on_every_sample() -> None:
    from explorer.sources.verify import symbol_evidence

    for name in ("deb12-6.1-idle", "bpo12-6.12-busy", "rebuilt-5.10-busy"):
        k = open_kernel(
            str(SAMPLES / name / "vmcore.zst"),
            Options(system_map=str(SAMPLES / name / "System.map.zst")),
        )
        try:
            assert k.symbols is not None
            ev = symbol_evidence(k.identity, k.symbols, k.symbols.delta)
            assert not ev.differ
            assert ev.memory_banner and ev.memory_banner.startswith(
                f"Linux version {k.identity.release} "
            )
            assert any("SYMBOL() values agree" in a for a in ev.agree)
            assert not k.forced
        finally:
            k.close()


def test_profile_of_another_build_is_refused(tmp_path: Path) -> None:
    other = TypeProfile.load(PROFILES / f"{RELEASE61}.profile.json")
    from dataclasses import replace

    wrong = tmp_path / "other.profile.json"
    replace(other, build_id="00" * 20).save(wrong)
    with pytest.raises(MismatchError, match="BUILD-ID 64191809e7272da7"):
        open_kernel(str(DUMP61), Options(system_map=str(MAP61), profile=str(wrong)))
    k = open_kernel(str(DUMP61), Options(system_map=str(MAP61), profile=str(wrong), force=True))
    assert k.forced and "type profile" in k.forced[0]
    k.close()


# -- companions ------------------------------------------------------------------------------


def test_two_maps_beside_the_dump_the_right_one_is_used(tmp_path: Path) -> None:
    dump = _link_dump(tmp_path / "case")
    # the wrong kernel's map even carries the dump's release in its name: verified, skipped
    shutil.copy(MAP612, tmp_path / "case" / f"System.map-{RELEASE61}")
    shutil.copy(MAP61, tmp_path / "case" / "System.map")
    k = open_kernel(str(dump))
    try:
        assert k.symbols is not None
        assert k.symbols.source == f"System.map {tmp_path / 'case' / 'System.map'}"
        assert len(k.symbols) == 67075
        notes = "\n".join(k.warnings)
        assert f"skipped System.map {tmp_path / 'case' / f'System.map-{RELEASE61}'}" in notes
        assert "SYMBOL(init_uts_ns)" in notes
    finally:
        k.close()


def test_symlinked_dump_finds_companions_beside_link_and_target(tmp_path: Path) -> None:
    real = two_cpu_dump(tmp_path / "store")  # writes System.map beside it
    (tmp_path / "store" / "System.map").rename(tmp_path / "System.map.keep")
    link_folder = tmp_path / "incident"
    link_folder.mkdir()
    (link_folder / "dump").symlink_to(real)
    shutil.copy(tmp_path / "System.map.keep", link_folder / "symbols.txt")  # any name
    k = open_kernel(str(link_folder / "dump"))
    assert k.symbols is not None and k.symbols.source.endswith("incident/symbols.txt")
    k.close()
    # and beside the target when the link's folder has none
    (link_folder / "symbols.txt").unlink()
    shutil.copy(tmp_path / "System.map.keep", tmp_path / "store" / "System.map")
    k = open_kernel(str(link_folder / "dump"))
    assert k.symbols is not None and k.symbols.source.endswith("store/System.map")
    k.close()


def test_real_sample_through_a_symlink_finds_its_map(tmp_path: Path) -> None:
    dump = _link_dump(tmp_path / "elsewhere")
    k = open_kernel(str(dump))
    try:
        assert k.symbols is not None and k.symbols.source == f"System.map {MAP61}"
    finally:
        k.close()


def test_explicit_option_wins_over_companion(tmp_path: Path) -> None:
    dump = _link_dump(tmp_path / "case")
    shutil.copy(MAP612, tmp_path / "case" / "System.map")
    k = open_kernel(str(dump), Options(system_map=str(MAP61)))
    try:
        assert k.symbols is not None and k.symbols.source == f"System.map {MAP61}"
        assert not any("System.map" in w and "beside" in w for w in k.warnings)
    finally:
        k.close()


def test_companions_by_content_not_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "case"
    dump = _link_dump(folder)
    (folder / "vmlinux-zst.log").write_text("zstd -d vmlinux-6.1.0-50-s390x.zst: done\n")
    (folder / f"vmlinux-{RELEASE61}.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 64)
    (folder / "notes.json").write_text('{"format": "something else"}')
    shutil.copy(MAP61, folder / "kallsyms-copy")
    shutil.copy(PROFILES / f"{RELEASE61}.profile.json", folder / "types")
    found = {Path(c.path).name: c.kind for c in find_candidates(str(dump), RELEASE61)}
    assert found["kallsyms-copy"] == SYSTEM_MAP
    assert found["types"] == PROFILE
    assert "vmlinux-zst.log" not in found
    assert f"vmlinux-{RELEASE61}.zst" not in found  # damaged zstd: not a vmlinux by content
    assert "notes.json" not in found
    # the command given --map is not stopped by any of them
    k = open_kernel(str(dump), Options(system_map=str(MAP61)))
    assert k.types is not None and k.types.source == f"profile:{folder / 'types'}"
    k.close()


def test_content_kinds(tmp_path: Path) -> None:
    obj = Path(__file__).parent / "data" / "types_mock.o"
    assert content_kind(obj) is None  # ET_REL, not an executable vmlinux
    assert content_kind(MAP61) == SYSTEM_MAP
    assert content_kind(PROFILES / f"{RELEASE61}.profile.json") == PROFILE
    assert content_kind(DUMP61) is None  # an ELF core, after decompression
    gcc = oracles.tool("gcc")
    exe = tmp_path / "vmlinux"
    src = tmp_path / "k.c"
    src.write_text("void _start(void) { for (;;); }\n")
    subprocess.run([gcc, "-nostdlib", "-static", "-o", str(exe), str(src)], check=True)
    assert content_kind(exe) == VMLINUX
    import gzip
    import lzma

    (tmp_path / "vmlinux.gz").write_bytes(gzip.compress(exe.read_bytes()))
    (tmp_path / "vmlinux.xz").write_bytes(lzma.compress(exe.read_bytes()))
    assert content_kind(tmp_path / "vmlinux.gz") == VMLINUX
    assert content_kind(tmp_path / "vmlinux.xz") == VMLINUX


def test_foreign_vmlinux_beside_the_dump_is_skipped_not_fatal(tmp_path: Path) -> None:
    gcc = oracles.tool("gcc")
    folder = tmp_path / "case"
    dump = _link_dump(folder)
    src = tmp_path / "k.c"
    src.write_text(
        'const char linux_banner[] = "Linux version 6.12.0-other (x) #1\\n";\n'
        "void _start(void) { for (;;); }\n"
    )
    exe = tmp_path / "vmlinux"
    subprocess.run(
        [gcc, "-g", "-nostdlib", "-static", "-Wl,--build-id", "-o", str(exe), str(src)],
        check=True,
    )
    # plain: a compressed one beside the dump is not even decompressed unasked
    # (tests/test_hostile_caches.py)
    shutil.copy(exe, folder / f"vmlinux-{RELEASE61}")
    k = open_kernel(str(dump), Options(system_map=str(MAP61)))
    try:
        notes = "\n".join(k.warnings)
        assert f"skipped vmlinux {folder / f'vmlinux-{RELEASE61}'}" in notes
        assert "BUILD-ID 64191809e7272da7" in notes
        assert k.symbols is not None and k.symbols.source == f"System.map {MAP61}"
    finally:
        k.close()
    # given explicitly it is refused, one line naming both
    with pytest.raises(MismatchError, match="this vmlinux does not belong to the dump"):
        open_kernel(str(DUMP61), Options(vmlinux=str(exe)))


# -- non-regular inputs -------------------------------------------------------------------


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "explorer", *argv],
        capture_output=True,
        text=True,
        timeout=60,  # a blocking open would hang: fail instead
        cwd=Path(__file__).resolve().parent.parent,
    )


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def test_fifo_dump_is_refused_without_blocking(fifo: Path) -> None:
    r = _run("info", str(fifo))
    assert r.returncode == 2
    assert r.stderr.strip() == f"backchain: {fifo}: is a FIFO (named pipe), not a regular " + (
        "file: backchain reads a dump file only from a regular file (copy it into one first)"
    )


@pytest.mark.parametrize("option", ["--map", "--vmlinux", "--profile"])
def test_fifo_symbol_and_type_files_are_refused(fifo: Path, option: str) -> None:
    r = _run("info", str(DUMP61), option, str(fifo))
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert f"{fifo}: is a FIFO (named pipe)" in r.stderr


def test_character_device_and_socket_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DumpError, match="is a character device"):
        open_kernel("/dev/null")
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(DumpError, match="is a socket"):
            open_kernel(str(path))
        with pytest.raises(DumpError, match="is a socket"):
            open_kernel(str(DUMP61), Options(system_map=str(path)))
    finally:
        server.close()


def test_fifo_beside_the_dump_is_ignored(tmp_path: Path, fifo: Path) -> None:
    dump = _link_dump(tmp_path / "case")
    os.mkfifo(tmp_path / "case" / "System.map")
    names = [Path(c.path).name for c in find_candidates(str(dump), RELEASE61)]
    assert "System.map" not in names
