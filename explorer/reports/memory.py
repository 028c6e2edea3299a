"""Kernel memory as words with their meaning (``rd``): value and symbol."""

from __future__ import annotations

from dataclasses import dataclass

from explorer.model.kernel import Kernel

#: Word sizes ``rd`` reads (crash rd -8/-16/-32/-64).
WORD_SIZES = (1, 2, 4, 8)


@dataclass(frozen=True, slots=True)
class Word:
    """One big-endian word of kernel memory.

    Attributes:
        size: bytes (1, 2, 4 or 8).
        symbol: ``name+0xoff`` when the value is a kernel address with a symbol (8-byte
            words only: a shorter one holds no kernel address).
    """

    address: int
    value: int
    symbol: str | None
    size: int = 8


def read_words(
    kernel: Kernel, address: int, count: int, size: int = 8, physical: bool = False
) -> list[Word]:
    """``count`` words of ``size`` bytes from ``address`` (aligned down to ``size``, as crash
    does); ``physical``: a physical (absolute) address, read from the dump directly.

    Raises:
        DumpError: the memory is not in the dump or not mapped.
    """
    start = address & ~(size - 1)
    raw = kernel.dump.read(start, count * size) if physical else kernel.read(start, count * size)
    out = []
    for i in range(count):
        value = int.from_bytes(raw[i * size : (i + 1) * size], "big")
        sym = None
        if size == 8 and value and kernel.symbols is not None:
            found = kernel.symbols.lookup(value)
            sym = None if found is None else _short(str(found))
        out.append(Word(start + size * i, value, sym, size))
    return out


def _short(text: str) -> str:
    """``name+0xoff`` without the ``/0xsize``."""
    return text.split("/", 1)[0]
