"""Loaded kernel modules and their text, for ``__kernel_text_address()``.

A return address inside a module's code is kernel text to the unwinder's reliability check
(``is_module_text_address``). Modules hang on the list ``modules`` through
``struct module.list``; their code is ``mem[MOD_TEXT]`` and ``mem[MOD_INIT_TEXT]`` (struct
module_memory, v6.4+) or the text part of ``core_layout`` and ``init_layout`` (struct
module_layout, up to v6.3). Offsets come from the type profile; without them no module is
known and module addresses are not treated as text.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.kernel import Kernel

MOD_TEXT, MOD_INIT_TEXT = 0, 4  # enum mod_mem_type (include/linux/module.h, v6.4+)
MODULE_NAME_LEN = 56  # 64 - sizeof(unsigned long)
MAX_MODULES = 1 << 14


@dataclass(frozen=True, slots=True)
class Module:
    """A loaded module: its ``struct module``, name and text ranges ``[start, end)``."""

    address: int
    name: str
    text: tuple[tuple[int, int], ...]


@dataclass
class ModuleScan:
    """The modules found, sorted text ranges for look-ups, and what went wrong."""

    modules: list[Module] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _starts: list[int] = field(default_factory=list)
    _ranges: list[tuple[int, int, Module]] = field(default_factory=list)

    def index(self) -> None:
        """Sort the text ranges for :meth:`module_at`."""
        self._ranges = sorted((s, e, m) for m in self.modules for s, e in m.text if e > s)
        self._starts = [s for s, _, _ in self._ranges]

    def module_at(self, address: int) -> Module | None:
        """The module whose text holds ``address``."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self._ranges[i][1]:
            return self._ranges[i][2]
        return None


def find_modules(kernel: Kernel) -> ModuleScan:
    """Walk the ``modules`` list; never raises (problems become warnings)."""
    from explorer.tasks import TaskScan, walk_list

    scan = ModuleScan()
    types, syms = kernel.types, kernel.symbols
    head = syms.address_of("modules") if syms is not None else None
    if types is None or head is None or not types.has("module.list"):
        return scan
    list_off = types.offset("module.list")
    name_off = types.offset("module.name")
    warn = TaskScan()
    for node in walk_list(kernel, head, "modules", warn, MAX_MODULES):
        address = node - list_off
        try:
            raw = kernel.read(address + name_off, MODULE_NAME_LEN)
            name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
            text = _text_ranges(kernel, address)
        except DumpError as exc:
            scan.warnings.append(f"module at 0x{address:x} unreadable: {exc.message}")
            continue
        scan.modules.append(Module(address, name, text))
    scan.warnings.extend(warn.warnings)
    scan.index()
    return scan


def _text_ranges(kernel: Kernel, module: int) -> tuple[tuple[int, int], ...]:
    types = kernel.types
    assert types is not None
    u64 = kernel.space.read_u64
    if types.has("module.mem") and types.has("module_memory"):  # v6.4+
        stride = types.size("module_memory")
        base = types.offset("module_memory.base")
        size = types.offset("module_memory.size")
        out = []
        for kind in (MOD_TEXT, MOD_INIT_TEXT):
            mem = module + types.offset("module.mem") + kind * stride
            start = u64(mem + base)
            length = struct.unpack(">I", kernel.read(mem + size, 4))[0]
            out.append((start, start + length))
        return tuple(out)
    out = []
    for layout in ("module.core_layout", "module.init_layout"):  # up to v6.3
        if types.has(f"{layout}.base") and types.has(f"{layout}.text_size"):
            start = u64(module + types.offset(f"{layout}.base"))
            raw = kernel.read(module + types.offset(f"{layout}.text_size"), 4)
            out.append((start, start + struct.unpack(">I", raw)[0]))
    return tuple(out)
