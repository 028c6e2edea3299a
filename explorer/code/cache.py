"""The code caches of one opened kernel: its code reader (pages of text, functions), its
call-site checker and its prologue analyzer, made once and shared by every face.

One :class:`KernelCode` per kernel, held as long as the kernel lives (a weak key: closing
and dropping a kernel drops its caches); presentation lives in :mod:`explorer.code.present`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

from explorer.code.callsite import CallChecker
from explorer.code.prologue import PrologueAnalyzer
from explorer.code.statecache import StateCache
from explorer.code.text import CodeText

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel


@dataclass
class KernelCode:
    """One kernel's code caches.

    Attributes:
        text: the code reader (its page cache serves every face).
        calls: the memoised call-site checker.
    """

    text: CodeText
    calls: CallChecker
    _analyzer: PrologueAnalyzer | None = field(default=None, repr=False)

    @property
    def analyzer(self) -> PrologueAnalyzer:
        """The prologue analyzer (cached per function), made on first use."""
        if self._analyzer is None:
            self._analyzer = PrologueAnalyzer(self.text, StateCache())
        return self._analyzer


_BY_KERNEL: WeakKeyDictionary[Any, KernelCode] = WeakKeyDictionary()


def kernel_code(kernel: Kernel) -> KernelCode:
    """The code caches of ``kernel`` (made on first use)."""
    found = _BY_KERNEL.get(kernel)
    if found is None:
        text = CodeText(kernel)
        found = _BY_KERNEL[kernel] = KernelCode(text, CallChecker(text))
    return found


def code_of(kernel: Kernel) -> CodeText:
    """The kernel's code reader."""
    return kernel_code(kernel).text


def calls_of(kernel: Kernel) -> CallChecker:
    """The kernel's memoised call-site checker."""
    return kernel_code(kernel).calls


def analyzer_of(kernel: Kernel) -> PrologueAnalyzer:
    """The kernel's prologue analyzer (cached per function)."""
    return kernel_code(kernel).analyzer


__all__ = ["KernelCode", "analyzer_of", "calls_of", "code_of", "kernel_code"]
