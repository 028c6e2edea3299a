"""Where backchain keeps what it derives once and reuses: ``$BACKCHAIN_CACHE`` if set, else
``$XDG_CACHE_HOME/backchain``, else ``~/.cache/backchain``.

Sub-folders: ``dumps`` (decompressed dumps), ``profiles`` (type profiles by build-id, and
by a digest of a dump's BTF), ``symbols`` (symbol tables by build-id), ``code`` (prologue
states of PSW frames, by the function's bytes), ``scenarios`` (built training scenarios),
``real`` (the real-sample generator's work: kernels, -dbg vmlinux files, raw dumps).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

try:  # hashlib's BLAKE2b is always this one (never OpenSSL's); importing hashlib loads
    from _blake2 import blake2b  # OpenSSL's libcrypto, 10 ms of a start that needs none of it
except ImportError:  # another Python
    from hashlib import blake2b

ENV = "BACKCHAIN_CACHE"


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it); not created here."""
    base = os.environ.get(ENV)
    if not base:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        base = os.path.join(xdg, "backchain")
    return Path(base).joinpath(*parts)


#: Temporaries left by a process that died are removed once this old (seconds) even when
#: their process id is alive again (pid reuse).
STALE_TMP_SECONDS = 24 * 3600


@contextlib.contextmanager
def exclusive_temp(
    target: Path,
    make_folder: bool = True,
    destination: Callable[[], Path | None] | None = None,
    mode: int | None = None,
) -> Iterator[BinaryIO]:
    """A new temporary file beside ``target``, renamed onto it when the block ends cleanly.

    ``mkstemp`` creates it with ``O_CREAT | O_EXCL`` under a random name (a symlink or file
    planted under a guessable name is never followed nor overwritten); the name carries the
    process id so that :func:`prune_stale_temps` can tell a dead writer's leftovers. Any
    exception (``KeyboardInterrupt`` too) removes the temporary and propagates.

    Args:
        destination: when given, names the file to rename onto when the block ends (a
            name known only once the content is written; in ``target``'s folder), or None:
            the temporary is removed.
        mode: the permissions to create ``target`` with, less the umask, as ``open`` would
            (0o666: what a plain ``open(target, "w")`` gives); None keeps mkstemp's 0o600.

    Raises:
        OSError: the folder cannot be created (``make_folder``) or written.
    """
    if make_folder:
        target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.{os.getpid()}.", suffix=TMP, dir=target.parent
    )
    try:
        with os.fdopen(fd, "wb") as out:
            if mode is not None:
                os.fchmod(fd, mode & ~umask())
            yield out
        final = target if destination is None else destination()
        if final is None:
            os.unlink(name)
        else:
            os.replace(name, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


#: The suffix of every temporary file the cache writes.
TMP = ".tmp"


def umask() -> int:
    """The process's umask, read without changing it where Linux shows it
    (``/proc/self/status``): setting it to read it would change it for other threads."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomically(target: Path, data: bytes) -> bool:
    """Write ``data`` to ``target`` through :func:`exclusive_temp`; False (nothing written)
    when the cache cannot be written: a cache is an optimisation."""
    try:
        with exclusive_temp(target) as out:
            out.write(data)
    except OSError:
        return False
    return True


def read_cache_file(path: Path, limit: int) -> bytes | None:
    """The bytes of a cache file, or None when it is absent, not a regular file (a FIFO is
    never waited on, a symlink never followed) or larger than ``limit``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > limit:
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if len(data) <= limit else None


def prune_stale_temps(folder: Path) -> list[Path]:
    """Remove temporaries (``.NAME.PID.XXXX.tmp``) left in ``folder`` by writers that died
    (Ctrl+C during a decompression, a crash): their process is gone, or they are older than
    :data:`STALE_TMP_SECONDS`. Returns what was removed."""
    removed: list[Path] = []
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not (entry.name.startswith(".") and entry.name.endswith(TMP)):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        pid = _pid_of(entry.name)
        if now - st.st_mtime < STALE_TMP_SECONDS and pid is not None and _alive(pid):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def _pid_of(name: str) -> int | None:
    parts = name.split(".")
    # ".NAME.PID.RANDOM.tmp": the process id is third from the end
    return int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process
    return True


def content_digest(*parts: bytes | memoryview) -> str:
    """A key naming what a cache entry was decoded from: BLAKE2b of the bytes themselves
    (never a name the input chose, such as its build-id)."""
    digest = blake2b(digest_size=20)
    for part in parts:
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()


def write_checked(target: Path, data: bytes) -> bool:
    """:func:`write_atomically` with a first line holding the CRC-32 of ``data``, which
    :func:`read_checked` verifies: a cache file damaged since is rebuilt, not believed."""
    return write_atomically(target, b"%08x\n" % zlib.crc32(data) + data)


def read_checked(path: Path, limit: int) -> bytes | None:
    """What :func:`write_checked` wrote, or None (absent, not a regular file, too large,
    or not the bytes written: its CRC-32 line disagrees)."""
    data = read_cache_file(path, limit + 9)
    crc, _, body = (data or b"").partition(b"\n")
    return body if crc and crc == b"%08x" % zlib.crc32(body) else None
