"""The note a converted ELF vmcore carries about its origin (:mod:`parsers.write.convert`
writes it), read without importing the writers: ``info`` names the format from it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Name of the note a converted file carries: ``origin=FORMAT FILE`` (readers ignore it).
ORIGIN_NOTE = "BACKCHAIN"


def converted_from(notes: Sequence[Any]) -> str | None:
    """What a file written by :func:`parsers.write.convert.convert_to_elf` was converted
    from, or None."""
    for n in notes:
        if n.name == ORIGIN_NOTE and bytes(n.desc).startswith(b"origin="):
            return bytes(n.desc)[7:].split(b"\0", 1)[0].decode("utf-8", "replace")
    return None


__all__ = ["ORIGIN_NOTE", "converted_from"]
