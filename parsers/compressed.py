"""Transparent access to compressed files (``.zst``): decompress once into a user cache.

Bundled samples are stored zstd-compressed. A dump must be random-accessed with mmap, so a
compressed one is decompressed once into ``$XDG_CACHE_HOME/backchain/dumps`` (or
``~/.cache/backchain/dumps``), keyed by the file's path, size and modification time, and
reused on the next open. Small files (System.map) are decompressed in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from parsers.cache import cache_dir
from parsers.errors import DumpError, FormatError
from parsers.inputs import open_regular

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b"


def compression_of(head: bytes) -> str | None:
    """``"zst"``, ``"xz"`` or ``"gz"`` from a file's first bytes, else None."""
    if head[:4] == ZSTD_MAGIC:
        return "zst"
    if head[:6] == XZ_MAGIC:
        return "xz"
    if head[:2] == GZIP_MAGIC:
        return "gz"
    return None


def _stream_reader(kind: str, fin: BinaryIO) -> BinaryIO:
    if kind == "zst":
        import zstandard

        return zstandard.ZstdDecompressor(max_window_size=1 << 31).stream_reader(fin)
    if kind == "xz":
        import lzma

        return lzma.LZMAFile(fin)  # type: ignore[return-value]
    import gzip

    return gzip.GzipFile(fileobj=fin)  # type: ignore[return-value]


def decompressed_head(path: str | os.PathLike[str], size: int = 4096) -> bytes:
    """The first ``size`` bytes of ``path``, decompressed if it is zstd, xz or gzip.

    Raises:
        DumpError: the file is not a regular readable file.
    """
    with open_regular(path) as fin:
        head = fin.read(8)
        kind = compression_of(head)
        fin.seek(0)
        if kind is None:
            return fin.read(size)
        try:
            return _stream_reader(kind, fin).read(size)
        except Exception:  # damaged data: no head to classify
            return b""


#: Largest decompressed size accepted: a dump bigger than this is not plausible here and a
#: frame claiming more is treated as a decompression bomb.
MAX_DECOMPRESSED = 1 << 40

Progress = Callable[[int, int], None]


def cache_root() -> Path:
    """Return the user cache directory of backchain (created on demand)."""
    return cache_dir()


def is_zstd(path: str | os.PathLike[str]) -> bool:
    """Tell whether ``path`` starts with the zstd frame magic."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == ZSTD_MAGIC
    except OSError:
        return False


#: Bytes hashed at each end of a compressed file for its cache key.
_KEY_SPAN = 1 << 20


def _cache_key(path: Path) -> str:
    """The cache key of a compressed file: its size and the hash of its first and last MiB.

    By content, not by path: every copy of a dump (tests copy samples into temporary folders)
    shares one decompressed file instead of filling the disk with copies. The last MiB holds
    each format's checksum of the whole content (zstd's content checksum, gzip's CRC32 and
    size, xz's check), so a changed file gets a new key.
    """
    size = path.stat().st_size
    digest = hashlib.sha256(f"{size}\0".encode())
    with open(path, "rb") as f:
        digest.update(f.read(_KEY_SPAN))
        if size > 2 * _KEY_SPAN:
            f.seek(size - _KEY_SPAN)
        digest.update(f.read(_KEY_SPAN))
    return digest.hexdigest()[:24]


#: Decompressed copies kept, in GiB, before the least recently used ones are removed
#: (``BACKCHAIN_CACHE_DUMPS_GIB`` overrides it).
DUMPS_GIB = 16.0


def dumps_budget() -> int:
    """Bytes of decompressed dumps the cache keeps (``BACKCHAIN_CACHE_DUMPS_GIB``, else
    :data:`DUMPS_GIB`)."""
    text = os.environ.get("BACKCHAIN_CACHE_DUMPS_GIB", "")
    try:
        gib = float(text) if text else DUMPS_GIB
    except ValueError:
        gib = DUMPS_GIB
    return max(0, int(gib * (1 << 30)))


def prune_dumps(folder: Path, keep: Path | None = None, budget: int | None = None) -> list[Path]:
    """Remove the least recently used decompressed dumps of ``folder`` until the rest fit
    ``budget`` (default :func:`dumps_budget`); ``keep`` (the one just made) always stays, and
    so do copies still being written. Returns what was removed.

    A removed copy still open elsewhere stays readable there (POSIX); the next open of its
    compressed file decompresses it again.
    """
    limit = dumps_budget() if budget is None else budget
    entries = []
    for path in folder.iterdir():
        if path.suffix.startswith(".tmp") or path == keep:
            continue
        try:
            st = path.stat()
        except OSError:
            continue
        entries.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    if keep is not None:
        with contextlib.suppress(OSError):
            total += keep.stat().st_size
    removed = []
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        _unlink_quietly(path)
        removed.append(path)
        total -= size
    return removed


def decompressed_path(
    path: str | os.PathLike[str],
    cache_dir: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Return the path of a decompressed copy of ``path``, making it once if needed.

    Args:
        path: a zstd-, xz- or gzip-compressed file.
        cache_dir: where copies live (default: ``cache_root() / "dumps"``).
        progress: called with (bytes read, compressed size) while decompressing.

    Returns:
        The cached uncompressed file. The input is never modified.

    Raises:
        DumpError: the file cannot be read or is not valid zstd data.
    """
    import lzma
    import zlib

    import zstandard

    src = Path(path)
    target_dir = cache_dir or cache_root() / "dumps"
    with open_regular(src, "compressed file") as probe:
        kind = compression_of(probe.read(8)) or "zst"
    try:
        target_dir.mkdir(parents=True, exist_ok=True)
        stem = src.name.removesuffix(f".{kind}")
        key = _cache_key(src)
        known = sorted(target_dir.glob(f"*.{key}"))  # any copy's name: one file per content
        if known:
            with contextlib.suppress(OSError):
                os.utime(known[0])  # used now: the last to be removed
            return known[0]
        target = target_dir / f"{stem}.{key}"
        total = src.stat().st_size
        tmp = target.with_suffix(target.suffix + f".tmp{os.getpid()}")
        written = 0
        with open_regular(src, "compressed file") as fin, open(tmp, "wb") as fout:
            reader = _stream_reader(kind, fin)
            while chunk := reader.read(1 << 22):
                written += len(chunk)
                if written > MAX_DECOMPRESSED:
                    raise FormatError("decompressed data exceeds 1 TiB; refusing", str(src))
                fout.write(chunk)
                if progress:
                    progress(fin.tell(), total)
        os.replace(tmp, target)
        prune_dumps(target_dir, keep=target)
        return target
    except DumpError:  # over the size cap: no partial copy left in the cache
        _unlink_quietly(locals().get("tmp"))
        raise
    except (zstandard.ZstdError, lzma.LZMAError, zlib.error, EOFError) as exc:
        _unlink_quietly(locals().get("tmp"))
        name = {"zst": "zstd", "xz": "xz", "gz": "gzip"}[kind]
        raise FormatError(f"not valid {name} data ({exc})", str(src)) from None
    except OSError as exc:
        _unlink_quietly(locals().get("tmp"))
        raise DumpError(f"cannot decompress: {exc.strerror or exc}", str(src)) from None


def read_text_maybe_compressed(path: str | os.PathLike[str], limit: int = 256 << 20) -> str:
    """Read a small text file (System.map, profile), decompressing zstd transparently.

    Raises:
        DumpError: unreadable, not text, or larger than ``limit`` once decompressed.
    """
    src = Path(path)
    try:
        with open_regular(src, "text file") as f:  # never more than the cap: it may be a dump
            size = os.fstat(f.fileno()).st_size
            data = f.read(min(size, limit) + 1 if size else limit + 1)
    except OSError as exc:
        raise DumpError(f"cannot read: {exc.strerror or exc}", str(src)) from None
    if len(data) > limit:
        raise FormatError(f"file is larger than {limit >> 20} MiB", str(src))
    if data[:4] == ZSTD_MAGIC:
        import zstandard

        try:  # streamed: decompress() would allocate whatever size the frame header claims
            with zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)) as reader:
                data = reader.read(limit + 1)
        except zstandard.ZstdError as exc:
            raise FormatError(f"not valid zstd data ({exc})", str(src)) from None
    if len(data) > limit:
        raise FormatError(f"file is larger than {limit >> 20} MiB", str(src))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("not a text file", str(src)) from None


def _unlink_quietly(path: object) -> None:
    if isinstance(path, Path):
        try:
            path.unlink()
        except OSError:
            pass
