"""Prologue states remembered across runs, so that a warm ``check`` decodes no code.

Judging where a PSW stood (:mod:`explorer.code.prologue`) decodes the whole function with
Capstone; the answer depends only on the function's bytes, where it starts and the PSW
address. Each answer is kept under a key made of exactly those (a SHA-256 of the bytes) and
of the analyser's own source and the Capstone build it ran with, so a changed analyser, a
new Capstone, or other code at the same address is a miss, never a stale answer. One small
JSON file in the cache, written atomically; a damaged file is ignored (a cache only saves
time).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from parsers.cache import cache_dir, read_checked, write_checked

#: Entries kept; beyond, the file starts afresh. Only PSW frames (running CPUs, pt_regs)
#: are judged, a few per dump: this bounds the file (and its load on every start) to
#: about 400 KB over many dumps.
MAX_ENTRIES = 4096
#: A states file larger than this is not one this code wrote (4096 short entries).
MAX_FILE_BYTES = 16 << 20
_HERE = Path(__file__).resolve().parent
#: The modules whose code decides a state.
_ANALYSER = ("prologue.py", "effects.py", "insn.py", "text.py", "statecache.py")

State = tuple[str, int | None, str | None, str, int | None]


@cache
def analyser_version() -> str:
    """A digest of the analyser's source and the installed Capstone (file and mtime)."""
    h = hashlib.sha256()
    for name in _ANALYSER:
        h.update((_HERE / name).read_bytes())
    spec = find_spec("capstone")  # finds the package without importing it
    origin = spec.origin if spec is not None and spec.origin else ""
    if origin:
        package = Path(origin).parent
        with contextlib.suppress(OSError):  # the installed version, and its library's mtime
            origin += "".join(sorted(p.name for p in package.parent.glob("capstone-*-info")))
            origin += "".join(f"\0{p.name}:{p.stat().st_mtime_ns}" for p in package.glob("lib/*"))
    h.update(origin.encode())
    return h.hexdigest()[:16]


def state_key(start: int, size: int, code: bytes, address: int) -> str:
    """The key of the state at ``address`` in the function ``[start, start + size)``."""
    digest = hashlib.sha256(code).hexdigest()[:32]
    return f"{start:x}:{size:x}:{digest}:{address - start:x}"


class StateCache:
    """The remembered states (loaded on first use, written when the process exits)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir("code", f"prologue-states-{analyser_version()}.json")
        self._states: dict[str, list[Any]] | None = None
        self._dirty = False

    def _load(self) -> dict[str, list[Any]]:
        if self._states is None:
            try:
                data = json.loads(read_checked(self.path, MAX_FILE_BYTES) or b"{}")
                self._states = data if isinstance(data, dict) else {}
            except (OSError, ValueError, RecursionError):
                self._states = {}
        return self._states

    def get(self, key: str) -> State | None:
        """The state kept under ``key``, or None."""
        found = self._load().get(key)
        if not isinstance(found, list) or len(found) != 5:
            return None
        phase, size, where, how, saved = found
        return (phase, size, where, how, saved)

    def put(self, key: str, state: State) -> None:
        """Keep ``state`` (written to the file at exit)."""
        states = self._load()
        if len(states) >= MAX_ENTRIES:
            states.clear()
        states[key] = list(state)
        if not self._dirty:
            self._dirty = True
            atexit.register(self.flush)

    def flush(self) -> None:
        """Write the file now (atomically; errors ignored)."""
        if not self._dirty or self._states is None:
            return
        self._dirty = False
        write_checked(self.path, json.dumps(self._states, separators=(",", ":")).encode())


__all__ = ["MAX_ENTRIES", "StateCache", "analyser_version", "state_key"]
