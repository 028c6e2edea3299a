"""Symbol names kept packed in one NUL-separated blob, decoded one at a time when asked for,
and found by name with a binary search through an index ordered by name.

The blob is either a cached table's names or a vmlinux's own ``.strtab`` as it lies in the
file (where several symbols may share one string, or the tail of a longer one): each symbol
has the offset of its NUL-terminated name. Building a table this way decodes no name up
front; a kernel has ~130,000 symbols and a run asks for a few dozen.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import overload


class PackedNames(Sequence[str]):
    """The names of a symbol table, decoded one at a time, and found by name.

    Args:
        blob: NUL-terminated names (it ends with a NUL).
        starts: where each symbol's name starts in ``blob``, in table order.
        by_name: symbol indexes ordered by (name bytes, index).
    """

    def __init__(self, blob: bytes, starts: array[int], by_name: array[int]) -> None:
        self._blob = blob
        self._starts = starts
        self._by_name = by_name

    @property
    def blob(self) -> bytes:
        """The NUL-terminated names."""
        return self._blob

    @property
    def starts(self) -> array[int]:
        """Where each symbol's name starts in :attr:`blob`."""
        return self._starts

    @property
    def by_name(self) -> array[int]:
        """Symbol indexes ordered by (name bytes, index)."""
        return self._by_name

    def __len__(self) -> int:
        return len(self._by_name)

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self._raw(i).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        if not len(self):
            return iter(())
        text = self._blob.decode("utf-8")
        if len(text) != len(self._blob):  # multi-byte names: offsets are into the bytes
            return map(self.__getitem__, range(len(self)))
        find = text.index
        return (text[s : find("\0", s)] for s in self._starts[: len(self)])

    def _raw(self, i: int) -> bytes:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = self._starts[i]
        try:
            return self._blob[start : self._blob.index(b"\0", start)]
        except ValueError:  # no NUL after it: a damaged blob
            raise IndexError(i) from None

    def get(self, name: str, default: int | None = None) -> int | None:
        """The index of the first symbol called ``name`` (``dict.get`` of a name index)."""
        key = name.encode("utf-8", "surrogatepass")
        order = self._by_name
        try:
            k = bisect.bisect_left(order, key, key=self._raw)
            if k < len(order) and self._raw(order[k]) == key:
                return order[k]
        except IndexError:  # a damaged cache file: an index past the table
            pass
        return default

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None


def pack_names(names: Sequence[str]) -> PackedNames:
    """``names`` (in table order) packed, with their index by name."""
    if not len(names):
        return PackedNames(b"", array("I"), array("I"))
    text = "\0".join(names)
    blob = text.encode("utf-8") + b"\0"
    # ASCII: a name's length in the text is its length in the blob (names hold no NUL)
    ascii_only = len(blob) == len(text) + 1
    lengths = map(len, names if ascii_only else blob[:-1].split(b"\0"))
    starts = array("I", accumulate(map((1).__add__, lengths), initial=0))
    del starts[-1]
    # UTF-8 keeps the order of code points: names sort as their bytes do
    by_name = array("I", sorted(range(len(names)), key=names.__getitem__))  # stable
    return PackedNames(blob, starts, by_name)


__all__ = ["PackedNames", "pack_names"]
