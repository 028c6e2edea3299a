"""Hostile caches and compressed files (issue 27, findings 3, 5 and 9): decompression looks at
the head first and is capped at the cache's room, cleans up after Ctrl+C; cache files are
written through exclusive temporaries and read as regular files only; a copy replaced in the
cache is never shown under the user's file name."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import zstandard

import explorer.model.opening
from explorer.model.kernel import Options
from explorer.model.opening import open_kernel
from parsers.compressed import decompressed_path
from parsers.dumps.dumpfile import open_dump
from parsers.elf.extent import dump_extent
from parsers.errors import DumpError, FormatError
from parsers.symbols.cache import load_table, save_table
from parsers.symbols.kallsyms import (
    KallsymsBytes,
    decode_kallsyms,
    kallsyms_tables,
    read_kallsyms_bytes,
)
from parsers.symbols.table import load_system_map
from tests.fuzz.seeds import seeds
from tests.helpers.caches import copies, peak_of


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("BACKCHAIN_CACHE", str(folder))
    return folder


def zst(path: Path, data: bytes, *, sized: bool = True) -> Path:
    """``data`` zstd-compressed into ``path``; ``sized``: with the content size in the frame."""
    if sized:
        path.write_bytes(zstandard.ZstdCompressor().compress(data))
    else:
        with zstandard.ZstdCompressor().stream_writer(path.open("wb")) as out:
            out.write(data)
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


# -- 5: decompression bombs ------------------------------------------------------------------------
def test_frame_claiming_more_than_the_room_is_refused_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKCHAIN_CACHE_DUMPS_GIB", str(1 / 1024))  # 1 MiB
    src = zst(tmp_path / "vmcore.zst", seeds()["elf"].data + bytes(2 << 20))
    folder = tmp_path / "dumps"
    with pytest.raises(FormatError, match=r"decompressed it would take .* more than the"):
        decompressed_path(src, folder, progress=lambda *_: pytest.fail("decompressing"))
    assert copies(folder) == [] and leftovers(folder) == []


def test_zst_that_is_no_dump_is_refused_from_its_head(tmp_path: Path, cache: Path) -> None:
    """Was: a 256 KB .zst of zeros wrote its 8 GiB into the cache and kept it."""
    src = zst(tmp_path / "vmcore.zst", bytes(64 << 20), sized=False)
    with pytest.raises(DumpError, match="not a dump format backchain reads"):
        open_dump(str(src))
    assert copies(cache / "dumps") == []


def test_elf_dump_is_cut_just_past_its_headers_extent(tmp_path: Path, cache: Path) -> None:
    elf = seeds()["elf"].data
    assert dump_extent(elf) == len(elf)
    src = zst(tmp_path / "vmcore.zst", elf + bytes(8 << 20), sized=False)
    with pytest.raises(DumpError, match="past the end its own headers give"):
        open_dump(str(src))
    assert copies(cache / "dumps") == [] and leftovers(cache) == []
    good = zst(tmp_path / "good.zst", elf + bytes(100))  # a few bytes past it are fine
    open_dump(str(good)).close()


def test_interrupted_decompression_leaves_no_temporary(tmp_path: Path) -> None:
    src = zst(tmp_path / "vmcore.zst", os.urandom(12 << 20))
    folder = tmp_path / "dumps"

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        decompressed_path(src, folder, progress=interrupt)
    assert leftovers(folder) == [] and copies(folder) == []


def test_stale_temporaries_of_dead_processes_are_pruned(tmp_path: Path) -> None:
    folder = tmp_path / "dumps"
    folder.mkdir()
    dead = folder / ".vmcore.abc.4194999.x1y2z3.tmp"  # no such pid (pid_max is at most 2^22)
    live = folder / f".vmcore.abc.{os.getpid()}.x1y2z3.tmp"  # a copy being written now
    old = folder / f".vmcore.abc.{os.getppid()}.q1w2e3.tmp"
    for p in (dead, live, old):
        p.write_bytes(b"partial")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    decompressed_path(zst(tmp_path / "x.zst", b"data"), folder)
    assert leftovers(folder) == [live.name]


def test_system_map_bomb_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    """Was: a 21 KB System.map.zst cost 4 GB (256 MiB of text split into lines)."""
    line = b"0000000000100000 t a\n"
    src = zst(tmp_path / "System.map.zst", line * ((64 << 20) // len(line)), sized=False)
    assert src.stat().st_size < 64 << 10
    errors: list[str] = []

    def run() -> None:
        try:
            load_system_map(src)
        except DumpError as exc:
            errors.append(exc.message)
            raise

    assert peak_of(run) < 80 << 20
    assert errors and "larger than 32 MiB" in errors[0]


# -- 9: cache integrity ----------------------------------------------------------------------------
def test_temporaries_never_follow_a_planted_symlink(tmp_path: Path, cache: Path) -> None:
    """Was: ``.NAME.PID.tmp`` was opened with O_TRUNC following a symlink: a file outside
    the cache was overwritten."""
    from parsers.symbols.table import SymbolTable

    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = cache / "symbols" / "t.syms"
    target.parent.mkdir(parents=True)
    for pid in range(os.getpid() - 2, os.getpid() + 3):  # every name the old code would use
        (target.parent / f".{target.name}.{pid}.tmp").symlink_to(victim)
    table = SymbolTable([(0x1000, "T", "a", 0), (0x2000, "T", "b", 0)], "test")
    save_table(table, target)
    assert victim.read_bytes() == b"precious"
    loaded = load_table(target)
    assert loaded is not None and loaded.address_of("b") == 0x2000


def test_fifo_in_the_cache_is_not_waited_on(tmp_path: Path, cache: Path) -> None:
    """Was: every run hung opening a FIFO planted under a cache file's name."""
    fifo = cache / "symbols" / "t.syms"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(load_table(fifo)), daemon=True)
    worker.start()
    worker.join(5)
    assert result == [None]


def test_replaced_copy_is_decompressed_again(tmp_path: Path) -> None:
    """Was: a decompressed copy replaced in the cache was shown under the user's file name."""
    folder = tmp_path / "dumps"
    mine, other = b"my dump " * 4096, b"another dump " * 4096
    src = zst(tmp_path / "vmcore.zst", mine)
    copy = decompressed_path(src, folder)
    swap = tmp_path / "swap"
    swap.write_bytes(other)
    os.replace(swap, copy)  # another dump under the same name
    again = decompressed_path(src, folder)
    assert again.read_bytes() == mine


def test_same_ends_other_middle_get_their_own_copies(tmp_path: Path) -> None:
    """Was: the key was the size and the first and last MiB: two dumps differing only in
    their middle shared one copy."""
    folder = tmp_path / "dumps"
    ends = os.urandom(1 << 20)
    one = tmp_path / "one.zst"
    two = tmp_path / "two.zst"
    frame_one = zstandard.ZstdCompressor(level=1).compress(b"A" * 4096)
    frame_two = zstandard.ZstdCompressor(level=1).compress(b"B" * 4096)
    assert len(frame_one) == len(frame_two)
    skippable = b"\x50\x2a\x4d\x18" + (1 << 20).to_bytes(4, "little") + ends
    one.write_bytes(skippable + frame_one + skippable)
    two.write_bytes(skippable + frame_two + skippable)
    assert decompressed_path(one, folder).read_bytes() == b"A" * 4096
    assert decompressed_path(two, folder).read_bytes() == b"B" * 4096


# -- 3: cache poisoning ----------------------------------------------------------------------------
SAMPLE_61 = Path(__file__).resolve().parent.parent / "samples/real/deb12-6.1-idle/vmcore.zst"


def _kallsyms_bytes(path: Path) -> KallsymsBytes:
    kernel = open_kernel(str(path), Options())
    try:
        tables = kallsyms_tables(kernel.vmcoreinfo)
        assert tables is not None
        return read_kallsyms_bytes(kernel.image.read, tables)
    finally:
        kernel.close()


def test_tampered_copy_does_not_poison_the_genuine_dumps_symbols(
    tmp_path: Path, cache: Path
) -> None:
    """Was: the kallsyms cache was named by the dump's own BUILD-ID: after a tampered copy
    (same BUILD-ID, one token changed) was opened, the genuine dump printed its names."""
    genuine = decompressed_path(SAMPLE_61)  # the shared copy; a changed copy made here
    with pytest.MonkeyPatch.context() as mp:  # the truth, decoded without the test's cache
        mp.setenv("BACKCHAIN_CACHE", str(tmp_path / "elsewhere"))
        raw = _kallsyms_bytes(genuine)
    truth = decode_kallsyms(raw)
    data = bytearray(genuine.read_bytes())
    at = data.find(raw.token_table[:256])
    token = raw.token_table.find(b"\0le\0") + 1
    assert at > 0 and token > 0
    data[at + token : at + token + 2] = b"LE"
    tampered = tmp_path / "vmcore"
    tampered.write_bytes(data)
    del data
    poisoned = open_kernel(str(tampered), Options())
    try:
        assert poisoned.symbols is not None
        assert "__scheduLE" in set(poisoned.symbols.names())
    finally:
        poisoned.close()
    assert not (cache / "symbols").exists() or any((cache / "symbols").iterdir())
    for _ in range(2):  # the first run (cache written by the tampered copy) and a later one
        kernel = open_kernel(str(genuine), Options())
        try:
            assert kernel.symbols is not None
            assert list(kernel.symbols.rows()) == list(truth.rows())
            assert kernel.symbols.address_of("__schedule") is not None
        finally:
            kernel.close()


# -- 10: a dump that shrinks while mapped ----------------------------------------------------------
_SHRINK = """
import os, sys
from parsers.dumps.dumpfile import open_dump
from parsers.errors import DumpError
path = sys.argv[1]
dump = open_dump(path)
r = dump.ranges[-1]
dump.read(r.start, 8)
os.truncate(path, os.path.getsize(path) // 2)
try:
    for r in dump.ranges:
        for a in range(r.start, r.end, 4096):
            dump.read(a, 8)
except DumpError as exc:
    print(exc)
    sys.exit(2)
"""


@pytest.mark.parametrize("name", ["elf", "kdump", "kdump-flat", "s390_ext", "s390"])
def test_dump_shrinking_while_mapped_is_one_line_not_sigbus(tmp_path: Path, name: str) -> None:
    """Was: the process died of SIGBUS (exit 135, no message) reading a page past the new end."""
    path = tmp_path / f"dump-{name}"
    path.write_bytes(seeds()[name].data)
    run = subprocess.run(
        [sys.executable, "-c", _SHRINK, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    assert run.stdout.count("\n") == 1 and str(path) in run.stdout
    assert "shrank from" in run.stdout and "while open" in run.stdout


def test_shell_survives_its_dump_shrinking(tmp_path: Path) -> None:
    """The shell reports the shrunk dump in one line per command and keeps running (was:
    killed by SIGBUS, exit 135, mid-session)."""
    from tests.fuzz.seeds import companions
    from tests.helpers.terminal import read_until

    companions(tmp_path)
    path = tmp_path / "vmcore"
    path.write_bytes(seeds()["elf"].data)
    env = {**os.environ, "BACKCHAIN_CACHE": str(tmp_path / "cache"), "TERM": "dumb"}
    parent, child = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "explorer", "shell", str(path)],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
        close_fds=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    os.close(child)
    seen = bytearray()
    try:
        read_until(parent, b"backchain> ", seen)
        os.truncate(path, path.stat().st_size // 2)
        os.write(parent, b"check --all\r")
        read_until(parent, b"backchain> ", seen)
        os.write(parent, b"quit\r")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(parent)
    text = seen.decode("utf-8", "replace")
    assert "shrank from" in text and str(path) in text, text[-2000:]


CROSS_GCC = shutil.which("s390x-linux-gnu-gcc")
_FORGED = "int jiffies = 1; void _start(void) {} void schedule(void) {} void _stext(void) {}\n"


@pytest.mark.skipif(CROSS_GCC is None, reason="no s390x-linux-gnu-gcc to link a test vmlinux")
def test_forged_build_id_is_not_enough_and_poisons_nothing(tmp_path: Path, cache: Path) -> None:
    """Was: an ELF claiming the 6.1 dump's build-id, with none of its symbols, was accepted
    as its vmlinux (nothing contradicted it) and its table cached under that build-id."""
    from explorer.sources.symcache import file_symbols_key
    from parsers.elf.fileid import elf_identity
    from parsers.errors import MismatchError

    kernel = open_kernel(str(SAMPLE_61), Options())
    build_id = kernel.identity.build_id
    kernel.close()
    assert build_id
    source = tmp_path / "forged.c"
    source.write_text(_FORGED)
    forged = tmp_path / "vmlinux"
    subprocess.run(
        [str(CROSS_GCC), "-nostdlib", "-static", f"-Wl,--build-id=0x{build_id}", "-o",
         str(forged), str(source)],
        check=True,
    )  # fmt: skip
    assert elf_identity(forged).build_id == build_id
    # refused as unconfirmed, or (its symbols hold no _etext) as not a whole kernel's table
    refused = "nothing in the dump confirms it|a symbol table cut short"
    with pytest.raises(MismatchError, match=refused):
        open_kernel(str(SAMPLE_61), Options(vmlinux=str(forged)))
    forged_key = file_symbols_key(str(forged), "vmlinux")
    assert forged_key and not list(cache.rglob(f"*{forged_key}*"))  # refused: not cached
    with pytest.raises(MismatchError, match=refused):
        open_kernel(str(SAMPLE_61), Options(system_map=str(_map_of(forged, tmp_path))))


def _map_of(elf: Path, folder: Path) -> Path:
    """A System.map of ``elf``'s symbols (three lines of made-up names)."""
    from parsers.symbols.table import load_vmlinux_symbols

    out = folder / "System.map"
    out.write_text("".join(f"{a:016x} {t} {n}\n" for a, t, n in load_vmlinux_symbols(elf).rows()))
    return out


@pytest.mark.skipif(CROSS_GCC is None, reason="no s390x-linux-gnu-gcc to link a test vmlinux")
def test_compressed_vmlinux_beside_the_dump_is_not_decompressed_by_info(
    tmp_path: Path, cache: Path
) -> None:
    """Was: a plain ``info`` decompressed a ``vmlinux.zst`` lying beside the dump."""
    from explorer.cli import main

    source = tmp_path / "k.c"
    source.write_text(_FORGED)
    exe = tmp_path / "k"
    subprocess.run(
        [str(CROSS_GCC), "-nostdlib", "-static", "-o", str(exe), str(source)], check=True
    )
    folder = tmp_path / "incident"
    folder.mkdir()
    (folder / "vmcore.zst").symlink_to(SAMPLE_61)
    zst(folder / "vmlinux.zst", exe.read_bytes() + bytes(4 << 20))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["info", str(folder / "vmcore.zst")]) == 0
    assert not (cache / "vmlinux").exists() or copies(cache / "vmlinux") == []
    assert "not decompressed unasked" in out.getvalue() + err.getvalue()


def test_stext_disagreement_names_frames_alike_on_first_and_later_runs(
    tmp_path: Path, cache: Path
) -> None:
    """Was: with VMCOREINFO's SYMBOL(_stext) disagreeing with kallsyms, the first run named
    frames by the decoded table and later runs by one moved to VMCOREINFO's _stext."""
    genuine = decompressed_path(SAMPLE_61)
    data = bytearray(genuine.read_bytes())
    at = data.find(b"SYMBOL(_stext)=") + len("SYMBOL(_stext)=")
    end = data.index(b"\n", at)
    value = int(data[at:end], 16) + 0x100000
    data[at:end] = f"{value:0{end - at}x}".encode()
    edited = tmp_path / "vmcore"
    edited.write_bytes(data)
    del data
    runs = []
    for _ in range(2):
        kernel = open_kernel(str(edited), Options())
        try:
            assert kernel.symbols is not None
            runs.append(list(kernel.symbols.rows()))
        finally:
            kernel.close()
    assert runs[0] == runs[1]


@pytest.mark.skipif(CROSS_GCC is None, reason="no s390x-linux-gnu-gcc to link a test vmlinux")
def test_forced_vmlinux_fills_no_type_cache(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vmlinux used only because of --force (its build-id forged) must not leave its DWARF
    types in the cache under the build-id it claims, for the genuine one to find."""
    kernel = open_kernel(str(SAMPLE_61), Options())
    build_id = kernel.identity.build_id
    kernel.close()
    source = tmp_path / "forged.c"
    source.write_text(_FORGED)
    forged = tmp_path / "vmlinux"
    link = [str(CROSS_GCC), "-g", "-nostdlib", "-static", f"-Wl,--build-id=0x{build_id}"]
    subprocess.run([*link, "-o", str(forged), str(source)], check=True)
    asked: list[bool] = []
    real = explorer.model.opening.profile_from_dwarf

    def spy(path: str, *args: object, use_cache: bool = True) -> object:
        asked.append(use_cache)
        return real(path, use_cache=use_cache)

    monkeypatch.setattr(explorer.model.opening, "profile_from_dwarf", spy)
    with contextlib.suppress(DumpError):
        open_kernel(str(SAMPLE_61), Options(vmlinux=str(forged), force=True, types="dwarf")).close()
    assert asked == [False]


def test_damaged_symbol_cache_is_rebuilt_not_believed(tmp_path: Path) -> None:
    """Found by the cache_files fuzzer: a byte changed in a cached table was loaded (an
    address moved, or a name that failed to decode only when it was asked for)."""
    from parsers.symbols.table import SymbolTable

    table = SymbolTable([(0x1000, "T", "alpha", 0), (0x2000, "T", "beta", 0)], "test")
    path = tmp_path / "t.syms"
    save_table(table, path)
    good = path.read_bytes()
    for at in (len(good) - 2, len(good) - 30):  # a name's byte, an address's byte
        bad = bytearray(good)
        bad[at] ^= 0x80
        path.write_bytes(bytes(bad))
        assert load_table(path) is None
    path.write_bytes(good)
    loaded = load_table(path)
    assert loaded is not None and list(loaded.rows()) == list(table.rows())


def test_damaged_json_caches_are_rebuilt_not_believed(tmp_path: Path) -> None:
    """Type profiles, line answers and prologue states are JSON whose values are believed:
    one changed digit (an offset, a line, a saved-register slot) must not be."""
    from explorer.code.statecache import StateCache

    path = tmp_path / "code" / "states.json"
    cache = StateCache(path)
    cache.put("k", ("body", 160, "r15", "sp", [14]))
    cache.flush()
    assert StateCache(path).get("k") == ("body", 160, "r15", "sp", [14])
    path.write_bytes(path.read_bytes().replace(b"160", b"168"))
    assert StateCache(path).get("k") is None
