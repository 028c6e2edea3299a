"""Code bytes as the kernel ran them, and the functions they belong to.

Kernel text is patched at run time (ftrace call sites, static keys, alternatives), so code
is read from the dump first; a vmlinux given with ``--vmlinux`` is the fallback for text
the dump does not hold (a filtered dump). Init text (``_sinittext`` .. ``_einittext``) is
freed once the kernel runs (``system_state`` >= 2: ``SYSTEM_FREEING_INITMEM`` in v6.x,
``SYSTEM_RUNNING`` in v5.10), its pages reused: the dump's bytes there are not the code
any more (zeros in the bundled samples), so only a vmlinux can show it. Pages are cached:
the call-site check reads a few bytes before every return address, many on the same pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel

PAGE = 4096
_SHT_PROGBITS = 1
_PAGE_MASK = ~(PAGE - 1)
#: Pages kept (4 KiB each): the hot text of a kernel is a few MiB.
_CACHE_PAGES = 4096
#: A function is never listed beyond this many bytes (sizes implied by the next symbol can
#: be huge at the end of a section).
MAX_FUNCTION = 1 << 16


@dataclass(frozen=True, slots=True)
class Function:
    """A function's code range ``[start, start + size)``.

    Attributes:
        name: the symbol, or ``[module]`` for module text without symbols.
        start: its first byte.
        size: its length (kallsyms-style: up to the next symbol when the map has no sizes).
    """

    name: str
    start: int
    size: int

    @property
    def end(self) -> int:
        """One past its last byte."""
        return self.start + self.size

    def where(self, address: int) -> str:
        """``name+0xoff`` of ``address``."""
        return f"{self.name}+0x{address - self.start:x}"


class CodeText:
    """Reads kernel code of a :class:`~explorer.model.kernel.Kernel`.

    Args:
        kernel: the opened dump.
    """

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._pages: dict[int, bytes | None] = {}
        self._vmlinux: _VmlinuxText | bool | None = False  # False: not opened yet
        self._freed_init = self._find_freed_init()

    def _find_freed_init(self) -> tuple[int, int] | None:
        """``[_sinittext, _einittext)`` if the kernel has freed it (or cannot say)."""
        syms = self.kernel.symbols
        if syms is None:
            return None
        start, end = syms.address_of("_sinittext"), syms.address_of("_einittext")
        if start is None or end is None or start >= end:
            return None
        state = syms.address_of("system_state")
        try:
            if state is not None and int.from_bytes(self.kernel.read(state, 4), "big") < 2:
                return None  # still booting: init text is code
        except DumpError:
            pass
        return start, end

    def freed(self, address: int) -> bool:
        """True if ``address`` is init text the kernel has already freed."""
        init = self._freed_init
        return init is not None and init[0] <= address < init[1]

    # -- bytes -----------------------------------------------------------------------------
    def _page(self, base: int) -> bytes | None:
        pages = self._pages
        if base in pages:
            return pages[base]
        data: bytes | None
        if self.freed(base):
            data = self._from_vmlinux(base, PAGE)
        else:
            try:
                data = self.kernel.read(base, PAGE)
            except DumpError:
                data = self._from_vmlinux(base, PAGE)
        if len(pages) >= _CACHE_PAGES:
            pages.clear()
        pages[base] = data
        return data

    def read(self, address: int, size: int) -> bytes | None:
        """``size`` bytes of code at ``address``, or None if any of them is unreadable."""
        base = address & _PAGE_MASK
        off = address - base
        if off + size <= PAGE:
            page = self._page(base)
            return None if page is None else page[off : off + size]
        parts = []
        while size > 0:
            page = self._page(base)
            if page is None:
                return None
            take = min(size, PAGE - off)
            parts.append(page[off : off + take])
            size -= take
            base += PAGE
            off = 0
        return b"".join(parts)

    def _from_vmlinux(self, address: int, size: int) -> bytes | None:
        if self._vmlinux is False:
            path = self.kernel.files.vmlinux
            delta = self.kernel.symbols.delta if self.kernel.symbols is not None else 0
            self._vmlinux = _VmlinuxText.load(path, delta) if path else None
        if not isinstance(self._vmlinux, _VmlinuxText):
            return None
        return self._vmlinux.read(address, size)

    # -- functions --------------------------------------------------------------------------
    def function_at(self, address: int) -> Function | None:
        """The function holding ``address``: its symbol, else the module text range."""
        kernel = self.kernel
        if kernel.symbols is not None:
            sym = kernel.lookup_symbol(address)  # core kernel, else a module's own symbols
            if sym is not None and kernel.is_text(address):
                size = sym.size or (sym.offset + 2)
                return Function(sym.name, sym.address, min(size, MAX_FUNCTION))
        module = kernel.modules.module_at(address)
        if module is not None:
            for start, end in module.text:
                if start <= address < end:
                    return Function(f"[{module.name}]", start, end - start)
        return None

    def function_named(self, name: str) -> Function | None:
        """The function called ``name`` (core kernel symbols)."""
        syms = self.kernel.symbols
        if syms is None:
            return None
        start = syms.address_of(name)
        if start is None:
            return None
        size = syms.size_of(name) or 2
        return Function(name, start, min(size, MAX_FUNCTION))

    def where(self, address: int) -> str | None:
        """``name+0xoff`` of a code address, or None."""
        func = self.function_at(address)
        return None if func is None else func.where(address)


class _VmlinuxText:
    """The executable sections of a vmlinux, read from the file on demand."""

    def __init__(self, path: str, sections: list[tuple[int, int, int]]) -> None:
        self.path = path
        self.sections = sections  # (runtime address, size, file offset)

    @classmethod
    def load(cls, path: str, delta: int) -> _VmlinuxText | None:
        from parsers.elf.sections import SHF_EXECINSTR, ElfSections

        try:
            with ElfSections(path) as elf:
                sections = [
                    (s.address + delta, s.size, s.offset)
                    for s in elf.sections
                    if s.flags & SHF_EXECINSTR and s.type == _SHT_PROGBITS
                ]
        except DumpError:
            return None
        return cls(path, sections)

    def read(self, address: int, size: int) -> bytes | None:
        for start, length, offset in self.sections:
            if start <= address and address + size <= start + length:
                try:
                    with open(self.path, "rb") as f:
                        f.seek(offset + address - start)
                        data = f.read(size)
                except OSError:
                    return None
                return data if len(data) == size else None
        return None
