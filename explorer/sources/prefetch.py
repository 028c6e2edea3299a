"""A first run's vmlinux symbol table, built by a second process while this one goes on.

Reading ``.symtab`` into a table (:func:`parsers.symbols.table.load_vmlinux_symbols`) is the
largest single cost of a first run with ``--vmlinux`` (130,000 symbols sorted twice). It
depends on nothing but the file, so the command starts it in a forked worker as soon as its
arguments are parsed (:func:`start`); this process meanwhile imports what the command needs,
opens the dump and reads the type profile. When the table is wanted
(:meth:`explorer.sources.companions.Verifier.symbols`), :func:`take` reads it back from the
worker, in the symbol cache's own layout, through memory the two share (a pipe carries its
length: 4-6 MB through a pipe took 15-20 ms), and the table is then verified and cached
exactly as one built here (never cached before it is verified).

Nothing is started when the table is known to be cached (a hint beside the cache names
the key this file had), when the vmlinux is compressed, or
where forking is unsafe (another thread runs) or impossible; a worker that fails sends
nothing and :func:`take` answers None: the caller builds the table itself and reports what
went wrong as always. A worker whose table is never taken is ended when the command ends.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import mmap
import os
import signal
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from explorer.sources.symfiles import file_symbols_cached
from parsers.cache import cache_dir, read_cache_file, write_atomically

if TYPE_CHECKING:  # the readers are imported after the fork, by whoever needs them
    from parsers.symbols.table import SymbolTable

#: Workers by the vmlinux path they read: (process id, read end of their pipe).
_WORKERS: dict[str, tuple[int, int]] = {}
#: The memory each worker writes its table into, by vmlinux path (a shared anonymous
#: mapping: pages cost nothing until written).
_SHARED: dict[str, mmap.mmap] = {}
#: The largest table a worker hands back (the symbol cache's own limit).
_SHARED_BYTES = 256 << 20
#: The length of the table, as the worker writes it into the pipe.
_LENGTH_BYTES = 8
#: This process's own work to do before waiting for a worker's table, by vmlinux path.
_MEANWHILE: dict[str, Callable[[], object]] = {}
#: What each vmlinux's hint said when read (None: no hint).
_HINTS: dict[str, bytes | None] = {}


def start(vmlinux: str | None, meanwhile: Callable[[], object] | None = None) -> None:
    """Fork a worker that builds ``vmlinux``'s symbol table, unless it is known to be cached
    (:func:`remember`), compressed, unreadable, not a regular file, or forking is unsafe
    here. Nothing is hashed first: the worker starts at once, and the open that follows
    keys the table by content as always. ``meanwhile``: work of this process's own to do,
    if a worker was started, before waiting for its table (:func:`take`)."""
    if not vmlinux or vmlinux in _WORKERS or not hasattr(os, "fork"):
        return
    if threading.active_count() != 1:  # a fork copies one thread: never with others running
        return
    try:
        # O_NONBLOCK: a FIFO named as the vmlinux must not block its open here (the command
        # refuses it later with its own message); only a regular file is read ahead.
        with os.fdopen(os.open(vmlinux, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return
            if f.read(4) != b"\x7fELF":  # compressed (or not a vmlinux): nothing to prefetch
                return
        hint = _hint_file(vmlinux)
    except OSError:
        return
    known = read_cache_file(hint, 256)
    _HINTS[vmlinux] = known
    if known is not None and file_symbols_cached(known.decode("ascii", "replace")):
        return
    try:
        shared = mmap.mmap(-1, _SHARED_BYTES)
    except (OSError, ValueError):
        return
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        shared.close()
        return
    if pid == 0:  # the worker: never returns
        os.close(read_end)
        _work(vmlinux, write_end, shared)
    os.close(write_end)
    if not _WORKERS:
        atexit.register(_end_all)
    _WORKERS[vmlinux] = (pid, read_end)
    _SHARED[vmlinux] = shared
    if meanwhile is not None:
        _MEANWHILE[vmlinux] = meanwhile


def building(vmlinux: str) -> bool:
    """Whether a worker is building ``vmlinux``'s table (its time is free for other work)."""
    return vmlinux in _WORKERS


def remember(vmlinux: str, key: str) -> None:
    """Note that ``vmlinux`` (this file, as it is now) has its table cached under ``key``:
    the next :func:`start` then forks no worker. Only a hint: the table is still found by
    the digest of the bytes (a file changed in place is hashed, missed, and built anew)."""
    if not key.isalnum():
        return
    if vmlinux not in _HINTS:
        with contextlib.suppress(OSError):
            _HINTS[vmlinux] = read_cache_file(_hint_file(vmlinux), 256)
    if _HINTS.get(vmlinux) != key.encode("ascii"):
        with contextlib.suppress(OSError):
            write_atomically(_hint_file(vmlinux), key.encode("ascii"))
            _HINTS[vmlinux] = key.encode("ascii")


def _hint_file(vmlinux: str) -> Path:
    """The hint's file: named by the path and the file's identity and modification."""
    st = os.stat(vmlinux)
    ident = f"{os.path.abspath(vmlinux)}\0{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    name = hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()[:40]
    return cache_dir("symbols", ".index", f"vmlinux-{name}")


def _work(vmlinux: str, out: int, shared: mmap.mmap) -> None:
    """Build the table, write it into ``shared`` and its length to ``out``, and exit; on
    any failure write nothing."""
    status = 0
    try:
        import gc

        gc.disable()  # a process that lives for one table: no collection of what it forked with
        from parsers.symbols.cache import table_bytes
        from parsers.symbols.table import load_vmlinux_symbols

        data = table_bytes(load_vmlinux_symbols(vmlinux))
        if len(data) > len(shared):
            raise ValueError("table larger than the symbol cache allows")
        shared[: len(data)] = data
        length = len(data).to_bytes(_LENGTH_BYTES, "little")
        if os.write(out, length) != len(length):  # a pipe takes 8 bytes at once
            raise OSError("short write")
    except BaseException:  # the parent builds it itself and reports the error
        status = 1
    finally:
        os._exit(status)  # no atexit handlers, no flush of the parent's buffers


def take(vmlinux: str) -> SymbolTable | None:
    """The table a worker built for ``vmlinux`` (waiting for it), or None: no worker was
    started for it, or it failed."""
    worker = _WORKERS.pop(vmlinux, None)
    if worker is None:
        return None
    pid, read_end = worker
    shared = _SHARED.pop(vmlinux)
    meanwhile = _MEANWHILE.pop(vmlinux, None)
    if meanwhile is not None:
        meanwhile()
    from parsers.symbols.cache import table_from_bytes

    with open(read_end, "rb") as pipe, shared:
        length = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status != 0 or len(length) != _LENGTH_BYTES:
            return None
        size = int.from_bytes(length, "little")
        if not 0 < size <= len(shared):
            return None
        data = shared[:size]
    # this program's own bytes, just built: written to the cache as they are once verified
    return table_from_bytes(data, own=True)


def _end_all() -> None:
    """End the workers whose table was never taken (the command needed none after all)."""
    for pid, read_end in _WORKERS.values():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)
        with contextlib.suppress(OSError):
            os.close(read_end)
    _WORKERS.clear()
    for shared in _SHARED.values():
        shared.close()
    _SHARED.clear()


__all__ = ["building", "remember", "start", "take"]
