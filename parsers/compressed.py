"""Transparent access to compressed files (``.zst``): decompress once into a user cache.

Bundled samples are stored zstd-compressed. A dump must be random-accessed with mmap, so a
compressed one is decompressed once into ``$XDG_CACHE_HOME/backchain/dumps`` (or
``~/.cache/backchain/dumps``), keyed by the file's path, size and modification time, and
reused on the next open. Small files (System.map) are decompressed in memory.
"""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from parsers.cache import (
    blake2b,
    cache_dir,
    exclusive_temp,
    prune_stale_temps,
    read_cache_file,
    write_atomically,
)
from parsers.errors import DumpError, FormatError
from parsers.inputs import open_regular

if TYPE_CHECKING:
    import hashlib

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


#: Compressed bytes read at a time by a decompressor.
READ_SIZE = 1 << 20


def _stream_reader(kind: str, fin: BinaryIO) -> io.BufferedIOBase:
    if kind == "zst":
        import zstandard

        reader = zstandard.ZstdDecompressor(max_window_size=1 << 31).stream_reader(
            fin,
            read_size=READ_SIZE,
            read_across_frames=True,  # every frame, as `zstd -d` (a seekable file has many)
            closefd=False,
        )
        return reader  # type: ignore[return-value]  # has read/readinto/close as BufferedIOBase
    if kind == "xz":
        import lzma

        return lzma.LZMAFile(fin)
    import gzip

    return gzip.GzipFile(fileobj=fin)


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


#: Decompressed copies kept, in GiB, before the least recently used ones are removed
#: (``BACKCHAIN_CACHE_DUMPS_GIB`` overrides it). No copy larger than this is made.
DUMPS_GIB = 16.0
#: Bytes of decompressed output looked at before anything is written: the format's headers.
HEAD_BYTES = 1 << 16
#: Bytes accepted past the end a format's headers give (a vmcore may end in a few).
EXTENT_SLACK = 1 << 20
#: Left free on the cache's file system whatever the budget says.
FREE_MARGIN = 256 << 20
#: Where the identities of sources and copies are kept, inside the copies' folder.
INDEX = ".index"

#: From the first :data:`HEAD_BYTES` decompressed bytes: the most bytes the content can need
#: (None: no bound known), or FormatError when it is not what the caller opens.
Extent = Callable[[bytes], "int | None"]


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
    so do copies still being written (hidden temporaries). Returns what was removed.

    A removed copy still open elsewhere stays readable there (POSIX); the next open of its
    compressed file decompresses it again.
    """
    limit = dumps_budget() if budget is None else budget
    entries = [entry for entry in _copies(folder) if entry[2] != keep]
    total = sum(size for _, size, _ in entries)
    if keep is not None:
        with contextlib.suppress(OSError):
            total += _disk_usage(keep.stat())
    removed = []
    for _, size, path in sorted(entries):
        if total <= limit:
            break
        _unlink_quietly(path)
        _unlink_quietly(folder / INDEX / f"copy-{path.suffix[1:]}")
        removed.append(path)
        total -= size
    return removed


def _disk_usage(st: os.stat_result) -> int:
    """The bytes a file takes on disk: a copy's holes (its zero pages) take none."""
    return st.st_blocks * 512


def _copies(folder: Path) -> list[tuple[float, int, Path]]:
    """(last use, bytes on disk, path) of each copy in ``folder`` (temporaries and the index
    left out); the last use is when its index record was last touched."""
    out: list[tuple[float, int, Path]] = []
    try:
        names = [n for n in os.listdir(folder) if not n.startswith(".")]
    except OSError:
        return out
    for name in names:
        path = folder / name
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            continue
        try:
            used = os.stat(folder / INDEX / f"copy-{path.suffix[1:]}").st_mtime
        except OSError:
            used = st.st_mtime
        out.append((used, _disk_usage(st), path))
    return out


def _may_hold(folder: Path, size: int | None) -> bool:
    """Whether ``folder`` has a copy that may be of content ``size`` bytes or more (a file
    of several frames is longer than its first frame says): when none, a dump is not there
    whatever its digest, which can then be taken while decompressing."""
    if size is None:
        return True
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return False
    for entry in entries:
        if entry.name.startswith("."):
            continue
        with contextlib.suppress(OSError):
            if entry.stat(follow_symlinks=False).st_size >= size:
                return True
    return False


def _content_digest() -> hashlib._Hash:
    """SHA-256 (OpenSSL's: 1.4 GB/s where the CPU has SHA instructions, against 0.5 GB/s
    for Python's own BLAKE2b here), of which the key keeps 160 bits."""
    import hashlib  # (OpenSSL, loaded only for a compressed dump)

    return hashlib.sha256()


def _key_of(digest: hashlib._Hash) -> str:
    return digest.hexdigest()[:40]


def content_key(fd: int) -> str:
    """The cache key of a compressed file: a digest of all of its bytes (no two contents
    share a copy; a file with the same size and ends but another middle gets its own)."""
    digest = _content_digest()
    with os.fdopen(os.dup(fd), "rb") as f:
        f.seek(0)
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return _key_of(digest)


def _identity(st: os.stat_result) -> list[int]:
    """What changes when a file is replaced or rewritten (its inode, size, mtime, ctime)."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def _key_memo(fd: int, real: str, index: Path) -> Path:
    """Where :func:`content_key` is remembered per source file identity (path, inode, size,
    times): a dump opened again is not read twice."""
    ident = json.dumps([real, *_identity(os.fstat(fd))]).encode()
    return index / f"src-{blake2b(ident, digest_size=16).hexdigest()}"


def _remembered_key(memo: Path) -> str | None:
    known = read_cache_file(memo, 64)
    if known is not None and len(known) == 40 and all(c in b"0123456789abcdef" for c in known):
        return known.decode()
    return None


class _Hashing:
    """A compressed file as its decompressor reads it, digested on the way (the digest of
    :func:`content_key` without a pass of its own); counts the bytes read.

    The decompressor reads in its own thread; what it read waits in a queue for
    :meth:`digest_read` in the caller's, which has less to do."""

    def __init__(self, fin: BinaryIO, digest: bool) -> None:
        self._fin = fin
        self._digest = _content_digest() if digest else None
        self._read: collections.deque[bytes] = collections.deque()
        self.consumed = 0

    def read(self, size: int = -1) -> bytes:
        data = self._fin.read(size)
        self.consumed += len(data)
        if self._digest is not None:
            self._read.append(data)
        return data

    def digest_read(self) -> None:
        """Digest what was read so far."""
        if self._digest is not None:
            while self._read:
                self._digest.update(self._read.popleft())

    def key(self) -> str:
        """The digest of the whole file (what the decompressor left unread is read now)."""
        assert self._digest is not None
        while self.read(1 << 22):
            self.digest_read()
        self.digest_read()
        return _key_of(self._digest)


def _known_copy(target_dir: Path, index: Path, key: str) -> Path | None:
    """The copy made for ``key``, if it is still the one this cache wrote (then marked as
    used now: the last to be removed)."""
    for known in sorted(target_dir.glob(f"*.{key}")):  # one file per content
        if _reusable(known, index, key):
            with contextlib.suppress(OSError):
                os.utime(index / f"copy-{key}")
            return known
    return None


def _reusable(copy: Path, index: Path, key: str) -> bool:
    """Whether ``copy`` is still the file this cache wrote for ``key`` (a regular file with
    the inode, size and times recorded when it was made): a copy replaced or rewritten
    since is decompressed again, never shown under the user's file name."""
    recorded = read_cache_file(index / f"copy-{key}", 4096)
    try:
        st = os.stat(copy, follow_symlinks=False)
    except OSError:
        return False
    if recorded is None or not stat.S_ISREG(st.st_mode):
        return False
    try:
        return bool(json.loads(recorded) == [copy.name, *_identity(st)])
    except ValueError:
        return False


def _record(copy: Path, index: Path, key: str) -> None:
    st = os.stat(copy, follow_symlinks=False)
    write_atomically(index / f"copy-{key}", json.dumps([copy.name, *_identity(st)]).encode())


def room_for_copies(folder: Path) -> int:
    """Bytes a new copy may take: the budget, and no more than the free space (less
    :data:`FREE_MARGIN`) plus what pruning older copies gives back."""
    budget = dumps_budget()
    try:
        fs = os.statvfs(folder)
    except OSError:
        return budget
    reclaimable = sum(size for _, size, _ in _copies(folder))
    return max(0, min(budget, fs.f_bavail * fs.f_frsize - FREE_MARGIN + reclaimable))


def _gib(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB"


def decompressed_path(
    path: str | os.PathLike[str],
    cache_dir: Path | None = None,
    progress: Progress | None = None,
    extent: Extent | None = None,
) -> Path:
    """Return the path of a decompressed copy of ``path``, making it once if needed.

    The head comes first: the zstd frame's content size and ``extent`` (what the format's
    headers say the content can need) are checked against the room the cache has
    (:func:`room_for_copies`) before anything is written; the output is then streamed to
    an exclusive temporary and cut at that room (or just past what the headers give). Its
    zero pages are left as holes (:func:`parsers.sparse.copy_sparse`): they read as zeros
    and take no disk. Ctrl+C removes the temporary; ones left by a process that died are
    removed on the next call.

    A copy is found by a digest of the compressed file (:func:`content_key`), remembered
    per file identity; when the cache holds no copy as large as the frame's content, the
    digest is taken as the decompressor reads the file, not in a pass of its own.

    Args:
        path: a zstd-, xz- or gzip-compressed file.
        cache_dir: where copies live (default: ``cache_root() / "dumps"``).
        progress: called with (bytes read, compressed size) while decompressing.
        extent: bounds the content from its first bytes (or refuses them).

    Returns:
        The cached uncompressed file. The input is never modified.

    Raises:
        DumpError: the file cannot be read, is not valid compressed data, is not what
            ``extent`` expects, or needs more room than the cache has.
    """
    import lzma
    import zlib

    import zstandard

    from parsers.sparse import copy_sparse

    src = Path(path)
    target_dir = cache_dir or cache_root() / "dumps"
    index = target_dir / INDEX
    kind = "zst"
    try:
        with open_regular(src, "compressed file") as fin:
            head = fin.read(HEAD_BYTES)
            kind = compression_of(head) or "zst"
            index.mkdir(parents=True, exist_ok=True)
            prune_stale_temps(target_dir)
            prune_stale_temps(index)
            memo = _key_memo(fin.fileno(), os.path.realpath(src), index)
            key = _remembered_key(memo)
            if key is None and _may_hold(target_dir, _frame_size(kind, head)):
                key = content_key(fin.fileno())
                write_atomically(memo, key.encode())
            if key is not None and (known := _known_copy(target_dir, index, key)):
                return known
            room = room_for_copies(target_dir)
            limit = _check_head(src, kind, head, fin, room, extent)
            stem = src.name.removesuffix(f".{kind}")
            total = os.fstat(fin.fileno()).st_size
            fin.seek(0)
            source = _Hashing(fin, digest=key is None)
            found: Path | None = None

            def checkpoint(written: int, read: int) -> None:
                if written > limit:
                    raise FormatError(
                        f"decompressed data exceeds {limit:,} bytes, "
                        + (
                            "the room the cache has (BACKCHAIN_CACHE_DUMPS_GIB, free space)"
                            if limit == room
                            else "past the end its own headers give"
                        )
                        + "; refusing",
                        str(src),
                    )
                source.digest_read()
                if progress:
                    progress(read, total)

            def destination() -> Path | None:
                """The copy's name, once the digest is known; None when another process
                made that copy meanwhile (it is used, this one dropped)."""
                nonlocal key, found
                if key is None:
                    key = source.key()
                    write_atomically(memo, key.encode())
                    found = _known_copy(target_dir, index, key)
                    if found is not None:
                        return None
                target = target_dir / f"{stem}.{key}"
                _clear(target)
                return target

            with exclusive_temp(
                target_dir / f"{stem}.{key or 'new'}", destination=destination
            ) as fout:
                copy_sparse(
                    lambda: _stream_reader(kind, cast(BinaryIO, source)),
                    fout.fileno(),
                    lambda: source.consumed,
                    checkpoint,
                )
        if found is not None:
            return found
        assert key is not None
        target = target_dir / f"{stem}.{key}"
        _record(target, index, key)
        prune_dumps(target_dir, keep=target)
        return target
    except (zstandard.ZstdError, lzma.LZMAError, zlib.error, EOFError) as exc:
        name = {"zst": "zstd", "xz": "xz", "gz": "gzip"}[kind]
        raise FormatError(f"not valid {name} data ({exc})", str(src)) from None
    except OSError as exc:
        raise DumpError(f"cannot decompress: {exc.strerror or exc}", str(src)) from None


def _frame_size(kind: str, head: bytes) -> int | None:
    """The content size the first zstd frame declares, if it declares one."""
    if kind != "zst":
        return None
    import zstandard

    try:
        size = zstandard.get_frame_parameters(head).content_size
    except zstandard.ZstdError:
        return None
    return None if size == zstandard.CONTENTSIZE_UNKNOWN else int(size)


def _check_head(
    src: Path, kind: str, head: bytes, fin: BinaryIO, room: int, extent: Extent | None
) -> int:
    """Refuse before writing anything: a frame or format head that claims more than
    ``room``, or that is not what ``extent`` expects. Returns how many bytes may be written:
    ``room``, or less when the format's headers bound the content (plus
    :data:`EXTENT_SLACK`)."""
    import zstandard

    claimed = limit = None
    if kind == "zst":
        size = zstandard.get_frame_parameters(head).content_size
        claimed = None if size == zstandard.CONTENTSIZE_UNKNOWN else size
    if extent is not None:
        fin.seek(0)
        first = _stream_reader(kind, fin).read(HEAD_BYTES)
        bound = extent(first)
        if bound is not None:
            claimed = bound if claimed is None else min(claimed, bound)
            limit = bound + EXTENT_SLACK
    if claimed is not None and claimed > room:
        raise FormatError(
            f"decompressed it would take {_gib(claimed)}, more than the {_gib(room)} the "
            "cache has room for (BACKCHAIN_CACHE_DUMPS_GIB, free space): decompress it "
            "yourself and open the result",
            str(src),
        )
    return room if limit is None else min(room, limit)


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


def _clear(path: Path) -> None:
    """Remove whatever is planted under a copy's name that a rename cannot replace (an
    empty folder); anything else is replaced by the rename itself."""
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.rmdir(path)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
