"""Fuzz targets for the caches and decompression (issue 27, findings 3, 5 and 9).

Every input of these targets shares one cache folder (and a small budget for decompressed
copies), so an input that poisons the cache fails a later one:

* ``compressed``: a seed dump compressed (zstd with and without the content size, xz, gzip),
  then mutated; opened through the shared cache, its copy must hold exactly what a fresh,
  empty cache decompresses from the same bytes; no temporary is left and the copies stay
  within the budget.
* ``cache_files``: one file of the shared cache (a symbol table, a decompressed copy, its
  index record) replaced by mutated bytes, a FIFO, a symlink or a folder; the seed kernel
  opened again must give the same symbols and memory as with no cache at all, in time.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import lzma
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import zstandard
from hypothesis import strategies as st

from explorer.model.kernel import Options
from explorer.model.opening import open_kernel
from parsers.compressed import decompressed_path
from parsers.dumps.dumpfile import open_dump
from parsers.elf.extent import dump_extent
from parsers.errors import DumpError
from tests.fuzz.seeds import Seed, seeds
from tests.fuzz.targets import Target, mutated, only_dump_errors, scratch, time_limit

#: The decompressed copies the shared cache may hold (a seed is ~0.5 MiB).
BUDGET = 8 << 20

_shared: Path | None = None


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` set for the block, restored after."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def shared_cache() -> Iterator[Path]:
    """The one cache folder of this process's fuzz inputs, as ``BACKCHAIN_CACHE``."""
    global _shared
    if _shared is None:
        _shared = Path(tempfile.mkdtemp(prefix="backchain-fuzz-cache-"))
    with environment(
        BACKCHAIN_CACHE=str(_shared), BACKCHAIN_CACHE_DUMPS_GIB=str(BUDGET / (1 << 30))
    ):
        yield _shared


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cache_is_tidy(cache: Path) -> None:
    assert not [p.name for p in cache.rglob("*.tmp")], "a temporary was left in the cache"
    dumps = cache / "dumps"
    if dumps.is_dir():
        held = sum(p.stat().st_size for p in dumps.iterdir() if not p.name.startswith("."))
        assert held <= BUDGET, f"{held} bytes of copies, budget {BUDGET}"


# -- compressed ------------------------------------------------------------------------------------
@functools.cache
def compressed_seeds() -> tuple[Seed, ...]:
    """The ELF and kdump seeds, each compressed four ways (boundaries: the format heads)."""
    out = []
    for name in ("elf", "kdump"):
        data = seeds()[name].data
        stream = zstandard.ZstdCompressor().compressobj()
        unsized = stream.compress(data) + stream.flush()
        for kind, blob in (
            ("zst", zstandard.ZstdCompressor(write_checksum=True).compress(data)),
            ("zst-unsized", unsized),
            ("xz", lzma.compress(data)),
            ("gz", gzip.compress(data)),
        ):
            heads = (0, 4, 5, 6, 8, 10, 12, 14, 16, len(blob) - 8, len(blob) - 4)
            out.append(Seed(f"{name}.{kind}", blob, tuple(sorted({max(0, b) for b in heads}))))
    return tuple(out)


@st.composite
def compressed_input(draw: st.DrawFn) -> bytes:
    """A compressed seed, mutated (or intact)."""
    seed = draw(st.sampled_from(compressed_seeds()))
    if draw(st.integers(0, 7)) == 0:
        return seed.data
    return draw(mutated(seed, 3))


def check_compressed(data: bytes) -> None:
    path = Path(scratch("fuzz-compressed", data))
    with shared_cache() as cache:

        def run() -> None:
            dump = open_dump(str(path))
            try:
                shared = Path(dump.path)
                with tempfile.TemporaryDirectory() as fresh:
                    alone = decompressed_path(path, Path(fresh), extent=dump_extent)
                    assert _digest(shared) == _digest(alone), "the cache shows another content"
                for r in list(dump.ranges)[:4]:
                    with contextlib.suppress(DumpError):
                        dump.read(r.start, 64)
            finally:
                dump.close()

        only_dump_errors(run)
        _cache_is_tidy(cache)


# -- cache files -----------------------------------------------------------------------------------
def _seed_kernel() -> tuple[Path, Options]:
    """The ELF seed compressed, beside the synthetic kernel's System.map and profile."""
    path = Path(scratch("fuzz-cache-vmcore.zst", compressed_seeds()[0].data))
    folder = path.parent
    return path, Options(
        system_map=str(folder / "System.map"), profile=str(folder / "profile.json")
    )


def _answers() -> tuple[list[tuple[int, str, str]], str]:
    """What the seed kernel says: its symbols and a digest of its memory."""
    path, opts = _seed_kernel()
    kernel = open_kernel(str(path), opts)
    try:
        assert kernel.symbols is not None
        memory = hashlib.sha256()
        for r in kernel.dump.ranges:
            memory.update(kernel.dump.read(r.start, min(r.size, 1 << 20)))
        return list(kernel.symbols.rows()), memory.hexdigest()
    finally:
        kernel.close()


@functools.cache
def _truth() -> tuple[list[tuple[int, str, str]], str]:
    """The seed kernel's answers with an empty cache of its own."""
    with tempfile.TemporaryDirectory() as fresh, environment(BACKCHAIN_CACHE=fresh):
        return _answers()


def _plant(victim: Path, how: int, payload: bytes, others: list[Path]) -> None:
    """Replace ``victim`` by what ``how`` says."""
    original = victim.read_bytes() if victim.is_file() and not victim.is_symlink() else b""
    victim.unlink()
    kind = how % 5
    if kind == 0:  # mutated: bytes written over the original at a chosen place
        at = int.from_bytes(payload[:4].ljust(4, b"\0"), "big") % max(1, len(original))
        victim.write_bytes(original[:at] + payload[4:] + original[at + len(payload) - 4 :])
    elif kind == 1:  # cut short
        victim.write_bytes(original[: len(payload) * 97 % max(1, len(original))])
    elif kind == 2:
        os.mkfifo(victim)
    elif kind == 3:  # a symlink to another cache file (another content under this name)
        victim.symlink_to(others[len(payload) % len(others)] if others else "/dev/zero")
    else:
        victim.mkdir()


def check_cache_files(data: bytes) -> None:
    truth = _truth()
    with shared_cache() as cache, time_limit():
        assert _answers() == truth  # also fills the cache
        files = sorted(
            p for p in cache.rglob("*") if (p.is_file() or p.is_fifo()) and "code" not in p.parts
        )
        if not files:
            return
        victim = files[data[0] % len(files)] if data else files[0]
        _plant(victim, data[1] if len(data) > 1 else 0, data[2:], [p for p in files if p != victim])
        try:
            answers = None
            with contextlib.suppress(DumpError):
                answers = _answers()
            assert answers == truth, f"a hostile {victim.relative_to(cache)} changed the answers"
        finally:
            if victim.is_dir() and not victim.is_symlink():
                victim.rmdir()
            else:
                victim.unlink(missing_ok=True)
        _cache_is_tidy(cache)


CACHE_TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("compressed", compressed_input, check_compressed),
        Target("cache_files", lambda: st.binary(min_size=2, max_size=64), check_cache_files),
    )
}
