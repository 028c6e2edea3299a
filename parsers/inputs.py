"""Opening a user's input file safely: regular files only, never a blocking open.

A FIFO opened for reading blocks until a writer appears, a character device may never end and
a socket cannot be opened at all. Every input (dump, System.map, vmlinux, profile) goes
through :func:`require_regular` before it is opened, and :func:`open_regular` opens with
``O_NONBLOCK`` and checks the descriptor again, so a file swapped for a FIFO between the two
steps is refused too, not waited on.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from parsers.errors import DumpError

_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _refuse(mode: int, path: str, what: str) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise DumpError(f"is a directory, not a {what}", path)
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    raise DumpError(
        f"is {kind}, not a regular file: backchain reads a {what} only from a regular file "
        "(copy it into one first)",
        path,
    )


def require_regular(path: str | os.PathLike[str], what: str = "file") -> os.stat_result:
    """Return ``os.stat(path)`` if ``path`` is a regular file (symlinks followed).

    Args:
        path: the file a user named.
        what: what it should be ("dump file", "System.map"), for the message.

    Raises:
        DumpError: missing, inaccessible, a directory, FIFO, device or socket.
    """
    name = os.fspath(path)
    try:
        st = os.stat(name)
    except FileNotFoundError:
        raise DumpError(f"cannot read {what}: no such file", name) from None
    except OSError as exc:
        raise DumpError(f"cannot read {what}: {exc.strerror or exc}", name) from None
    _refuse(st.st_mode, name, what)
    return st


def open_regular_fd(path: str | os.PathLike[str], what: str = "file") -> int:
    """Open a regular file read-only without ever blocking; return the descriptor.

    Raises:
        DumpError: as :func:`require_regular`, or the file cannot be opened.
    """
    name = os.fspath(path)
    require_regular(name, what)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK)
    except PermissionError:
        raise DumpError(f"cannot read {what}: permission denied", name) from None
    except OSError as exc:
        raise DumpError(f"cannot read {what}: {exc.strerror or exc}", name) from None
    try:
        _refuse(os.fstat(fd).st_mode, name, what)  # swapped since the stat?
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_regular(path: str | os.PathLike[str], what: str = "file") -> BinaryIO:
    """:func:`open_regular_fd` as a binary file object (caller closes it).

    Raises:
        DumpError: as :func:`open_regular_fd`.
    """
    return os.fdopen(open_regular_fd(path, what), "rb")


__all__ = ["open_regular", "open_regular_fd", "require_regular"]
