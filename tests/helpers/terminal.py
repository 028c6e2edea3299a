"""Driving a program on a pseudo-terminal in tests: reading what it shows."""

from __future__ import annotations

import os
import select
import time


def read_until(fd: int, marker: bytes, seen: bytearray, timeout: float = 120) -> None:
    """Read the terminal into ``seen`` until ``marker`` shows up after what was there."""
    start = len(seen)
    deadline = time.monotonic() + timeout
    while marker not in seen[start:]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {marker!r} on the terminal; it shows:\n{seen.decode()}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the shell ended
                chunk = b""
            if not chunk:
                raise AssertionError(f"the shell ended before {marker!r}:\n{seen.decode()}")
            seen += chunk


__all__ = ["read_until"]
