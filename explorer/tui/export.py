"""Where ``x`` puts a walk's Markdown: a file name the tool chooses (never a path from the
user, a trainee or the dump), written as a new file in the working directory; in a served
session the browser gets it as a download instead (see the stack screen)."""

from __future__ import annotations

import os
import re
from pathlib import Path

#: What a file name keeps of a process name (any user of the crashed machine chose it).
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: How many numbered names (``NAME-2.md`` ...) are tried before giving up.
TRIES = 100


def export_name(
    pid: int, comm: str, scenario: str | None = None, session: str | None = None
) -> str:
    """``backchain-[SESSION-][SCENARIO-]PID-COMM.md``, COMM cut to 32 safe characters."""
    safe = _UNSAFE.sub("_", comm)[:32].strip(".") or "task"
    parts = ["backchain", *(p for p in (session, scenario) if p), str(pid), safe]
    return "-".join(parts) + ".md"


def write_new(folder: Path, name: str, text: str) -> Path:
    """Write ``text`` to a new file ``folder/name`` (``name-2.md`` ... when taken): never
    over an existing file, never through a symbolic link.

    Raises:
        OSError: the folder cannot take a new file (FileExistsError after :data:`TRIES`).
    """
    stem = name.removesuffix(".md")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for n in range(1, TRIES + 1):
        path = folder / (name if n == 1 else f"{stem}-{n}.md")
        try:
            fd = os.open(path, flags, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        return path
    raise FileExistsError(17, "every export name is taken", str(folder / name))
