"""Kernel memory as words with their meaning (``rd``): value and symbol."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from explorer.model.kernel import Kernel


@dataclass(frozen=True, slots=True)
class Word:
    """One 64-bit big-endian word of kernel memory.

    Attributes:
        symbol: ``name+0xoff`` when the value is a kernel address with a symbol.
    """

    address: int
    value: int
    symbol: str | None


def read_words(kernel: Kernel, address: int, count: int) -> list[Word]:
    """``count`` words from ``address`` (8-byte aligned down, as crash does).

    Raises:
        DumpError: the memory is not in the dump or not mapped.
    """
    start = address & ~7
    raw = kernel.read(start, count * 8)
    out = []
    for i, (value,) in enumerate(struct.iter_unpack(">Q", raw)):
        sym = kernel.symbols.lookup(value) if kernel.symbols is not None and value else None
        out.append(Word(start + 8 * i, value, None if sym is None else _short(str(sym))))
    return out


def _short(text: str) -> str:
    """``name+0xoff`` without the ``/0xsize``."""
    return text.split("/", 1)[0]
