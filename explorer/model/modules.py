"""Loaded kernel modules: their text (for ``__kernel_text_address()``) and their symbols.

A return address inside a module's code is kernel text to the unwinder's reliability check
(``is_module_text_address``). Modules hang on the list ``modules`` through
``struct module.list``; their code is ``mem[MOD_TEXT]`` and ``mem[MOD_INIT_TEXT]`` (struct
module_memory, v6.4+) or the text part of ``core_layout`` and ``init_layout`` (struct
module_layout, up to v6.3). Offsets come from the type profile; without them no module is
known and module addresses are not treated as text.

Each module keeps its own symbol table in memory (kernel/module/kallsyms.c):
``module->kallsyms`` points to a ``struct mod_kallsyms`` (``symtab``, ``num_symtab``,
``strtab``; ``typetab`` since v5.2). :meth:`ModuleScan.lookup` names an address the way
``find_kallsyms_symbol()`` does: the defined, named symbol with the highest value not above
the address (the first of equal ones), its size running to the next higher symbol or the end
of the module's text, printed ``name+0xoff/0xsize [module]``.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from explorer.image.lists import walk_list
from parsers.errors import DumpError
from parsers.symbols.table import Symbol

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel

MOD_TEXT, MOD_INIT_TEXT = 0, 4  # enum mod_mem_type (include/linux/module.h, v6.4+)
MOD_MEM_NUM_TYPES = 7
MODULE_NAME_LEN = 56  # 64 - sizeof(unsigned long)
MAX_MODULES = 1 << 14
MAX_MODULE_SYMBOLS = 1 << 20
#: Symbols read over all modules together (a kernel with every module of a distribution
#: loaded has about 200,000): beyond it the list is forged, and the rest are not read.
MAX_SYMBOLS_TOTAL = 1 << 20
KSYM_NAME_LEN = 512
#: enum module_state, as /proc/modules words it.
MODULE_STATES = {0: "Live", 1: "Loading", 2: "Unloading", 3: "Unformed"}
#: Taint letters by bit (kernel/panic.c taint_flags[]).
TAINT_LETTERS = "PFSRMBUDAWCIOELKXTNJ"
#: ``struct mod_kallsyms`` members when no type source has them: unchanged since v4.5 (symtab,
#: num_symtab, strtab; typetab appended in v5.2).
MOD_KALLSYMS_FALLBACK = {"symtab": 0, "num_symtab": 8, "strtab": 16}
_ELF_SYM = struct.Struct(">IBBHQQ")  # Elf64_Sym, big-endian
SHN_UNDEF = 0


@dataclass(frozen=True, slots=True)
class Module:
    """A loaded module: its ``struct module``, name and text ranges ``[start, end)``.

    Attributes:
        base: start of its core text (``/proc/modules``' address).
        size: bytes of all its memory (``/proc/modules``' size).
        state: ``Live``, ``Loading``, ``Unloading``, ``Unformed`` or None when unknown.
        taints: ``module->taints`` bits (letters: :attr:`taint_letters`).
    """

    address: int
    name: str
    text: tuple[tuple[int, int], ...]
    base: int = 0
    size: int = 0
    state: str | None = None
    taints: int = 0

    @property
    def taint_letters(self) -> str:
        """The taint flags as the kernel prints them after a module's name (``OE``)."""
        return "".join(c for i, c in enumerate(TAINT_LETTERS) if self.taints >> i & 1)


@dataclass(frozen=True)
class ModuleSymbols:
    """One module's symbols, sorted by address (the first of equal addresses kept first)."""

    addrs: tuple[int, ...]
    names: tuple[str, ...]
    types: str
    read: int = 0  # entries of its table read (``num_symtab``)

    def __len__(self) -> int:
        return len(self.addrs)


@dataclass
class ModuleScan:
    """The modules found, sorted text ranges for look-ups, and what went wrong."""

    modules: list[Module] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    symbols: dict[int, ModuleSymbols] = field(default_factory=dict)
    _starts: list[int] = field(default_factory=list)
    _ranges: list[tuple[int, int, Module]] = field(default_factory=list)

    def index(self) -> None:
        """Sort the text ranges for :meth:`module_at`."""
        self._ranges = sorted(
            ((s, e, m) for m in self.modules for s, e in m.text if e > s), key=lambda r: r[0]
        )
        self._starts = [s for s, _, _ in self._ranges]

    def module_at(self, address: int) -> Module | None:
        """The module whose text holds ``address``."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i >= 0 and address < self._ranges[i][1]:
            return self._ranges[i][2]
        return None

    def by_name(self, name: str) -> Module | None:
        """The loaded module called ``name``."""
        return next((m for m in self.modules if m.name == name), None)

    def lookup(self, address: int) -> Symbol | None:
        """``find_kallsyms_symbol()``: the module symbol holding ``address`` (in module text)."""
        i = bisect.bisect_right(self._starts, address) - 1
        if i < 0 or address >= self._ranges[i][1]:
            return None
        _, end, module = self._ranges[i]
        table = self.symbols.get(module.address)
        if table is None or not table.addrs:
            return None
        j = bisect.bisect_right(table.addrs, address) - 1
        if j < 0:
            return None
        start = table.addrs[j]
        j = bisect.bisect_left(table.addrs, start, hi=j)  # the first of equal values
        k = bisect.bisect_right(table.addrs, start)
        following = table.addrs[k] if k < len(table.addrs) else end
        return Symbol(
            table.names[j],
            start,
            address - start,
            min(following, end) - start,
            table.types[j],
            module.name,
        )

    def find(self, name: str) -> Symbol | None:
        """A module symbol by name (``name`` or ``module:name``), at offset 0."""
        wanted_module, _, wanted = name.rpartition(":")
        for module in self.modules:
            if wanted_module and module.name != wanted_module:
                continue
            table = self.symbols.get(module.address)
            if table is None:
                continue
            for address, sym_name in zip(table.addrs, table.names, strict=True):
                if sym_name == wanted:
                    return self.lookup(address) or Symbol(sym_name, address, 0, 0, "?", module.name)
        return None


def find_modules(kernel: Kernel) -> ModuleScan:
    """Walk the ``modules`` list; never raises (problems become warnings)."""
    scan = ModuleScan()
    types, syms = kernel.types, kernel.symbols
    head = syms.address_of("modules") if syms is not None else None
    if syms is not None and head is None and not syms.has_data_symbols:
        scan.warnings.append(
            f"loaded modules unknown: the list head 'modules' is not in {syms.source} (text "
            "symbols only); pass --map System.map to see modules and name their frames"
        )
        return scan
    if types is None or head is None or not types.has("module.list"):
        return scan
    list_off = types.offset("module.list")
    name_off = types.offset("module.name")
    walk_problems: list[str] = []
    budget = MAX_SYMBOLS_TOTAL
    skipped = 0
    for node in walk_list(kernel.space.read_u64, head, "modules", walk_problems, MAX_MODULES):
        address = node - list_off
        try:
            raw = kernel.read(address + name_off, MODULE_NAME_LEN)
            name = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
            text, base, size = _memory(kernel, address)
            module = Module(
                address, name, text, base, size, _state(kernel, address), _taints(kernel, address)
            )
        except DumpError as exc:
            scan.warnings.append(f"module at 0x{address:x} unreadable: {exc.message}")
            continue
        scan.modules.append(module)
        try:
            table = _symbols(kernel, address, budget)
        except DumpError as exc:
            scan.warnings.append(f"module {name}: symbols unreadable: {exc.message}")
            table = None
        except _OverBudget:
            skipped += 1
            table = None
        if table is not None:
            scan.symbols[address] = table
            budget -= table.read
    if skipped:
        scan.warnings.append(
            f"symbols of {skipped} module(s) not read: more than {MAX_SYMBOLS_TOTAL} module "
            "symbols in all (the module list is damaged)"
        )
    scan.warnings.extend(walk_problems)
    scan.index()
    return scan


def _memory(kernel: Kernel, module: int) -> tuple[tuple[tuple[int, int], ...], int, int]:
    """Text ranges (core, init), base of the core text, and the total size of the module."""
    types = kernel.types
    assert types is not None
    u64 = kernel.space.read_u64

    def u32(address: int) -> int:
        return int(struct.unpack(">I", kernel.read(address, 4))[0])

    if types.has("module.mem") and types.has("module_memory"):  # v6.4+
        stride = types.size("module_memory")
        base_off = types.offset("module_memory.base")
        size_off = types.offset("module_memory.size")
        mems = []
        for kind in range(MOD_MEM_NUM_TYPES):
            mem = module + types.offset("module.mem") + kind * stride
            mems.append((u64(mem + base_off), u32(mem + size_off)))
        text = tuple((mems[k][0], mems[k][0] + mems[k][1]) for k in (MOD_TEXT, MOD_INIT_TEXT))
        return text, mems[MOD_TEXT][0], sum(s for _, s in mems)
    out = []
    base = total = 0
    for layout in ("module.core_layout", "module.init_layout"):  # up to v6.3
        if types.has(f"{layout}.base") and types.has(f"{layout}.text_size"):
            start = u64(module + types.offset(f"{layout}.base"))
            out.append((start, start + u32(module + types.offset(f"{layout}.text_size"))))
            if layout == "module.core_layout":
                base = start
            if types.has(f"{layout}.size"):
                total += u32(module + types.offset(f"{layout}.size"))
    return tuple(out), base, total


def _state(kernel: Kernel, module: int) -> str | None:
    types = kernel.types
    if types is None or not types.has("module.state"):
        return None
    value = struct.unpack(">I", kernel.read(module + types.offset("module.state"), 4))[0]
    return MODULE_STATES.get(value, f"state {value}")


def _taints(kernel: Kernel, module: int) -> int:
    types = kernel.types
    if types is None or not types.has("module.taints"):
        return 0
    return kernel.space.read_u64(module + types.offset("module.taints"))


def _mod_kallsyms_offsets(kernel: Kernel) -> dict[str, int]:
    types = kernel.types
    assert types is not None
    if all(types.has(f"mod_kallsyms.{m}") for m in MOD_KALLSYMS_FALLBACK):
        return {m: types.offset(f"mod_kallsyms.{m}") for m in MOD_KALLSYMS_FALLBACK}
    return dict(MOD_KALLSYMS_FALLBACK)


class _OverBudget(Exception):
    """A module's symbols would pass what is left of :data:`MAX_SYMBOLS_TOTAL`."""


def _symbols(kernel: Kernel, module: int, budget: int) -> ModuleSymbols | None:
    """The module's symbols through ``module->kallsyms`` (None without the offsets).

    Raises:
        DumpError: a damaged symbol table (counts, name offsets past their table).
        _OverBudget: more symbols than ``budget``.
    """
    types = kernel.types
    if types is None or not types.has("module.kallsyms"):
        return None
    ks = kernel.space.read_u64(module + types.offset("module.kallsyms"))
    if not ks:
        return None
    off = _mod_kallsyms_offsets(kernel)
    symtab = kernel.space.read_u64(ks + off["symtab"])
    count = struct.unpack(">I", kernel.read(ks + off["num_symtab"], 4))[0]
    strtab = kernel.space.read_u64(ks + off["strtab"])
    typetab = None
    if types.has("mod_kallsyms.typetab"):
        typetab = kernel.space.read_u64(ks + types.offset("mod_kallsyms.typetab"))
    if not 0 < count <= MAX_MODULE_SYMBOLS:
        raise DumpError(f"num_symtab is {count}")
    if count > budget:
        raise _OverBudget
    raw = kernel.read(symtab, count * _ELF_SYM.size)
    entries = list(_ELF_SYM.iter_unpack(raw))
    letters = kernel.read(typetab, count).decode("latin-1") if typetab else None
    longest = max(e[0] for e in entries)
    if longest >= count * KSYM_NAME_LEN:  # the table holds count names of < KSYM_NAME_LEN
        raise DumpError(
            f"a name at offset {longest} of a string table of {count} names (at most "
            f"{count * KSYM_NAME_LEN} bytes): the symbol table is damaged"
        )
    try:
        strings = kernel.read(strtab, longest + KSYM_NAME_LEN)
    except DumpError:  # the string table ends before a page we cannot read: read each name
        strings = b""
    rows = []
    for i, (st_name, st_info, _other, shndx, value, _size) in enumerate(entries):
        if i == 0 or shndx == SHN_UNDEF:
            continue
        if strings:
            end = strings.find(b"\0", st_name)
            raw_name = strings[st_name:end]
        else:
            raw_name = kernel.read(strtab + st_name, KSYM_NAME_LEN).split(b"\0", 1)[0]
        name = raw_name.decode("utf-8", "replace")
        if not name or _is_mapping_symbol(name):
            continue
        kind = letters[i] if letters else chr(st_info) if 32 < st_info < 127 else "?"
        rows.append((value, i, name, kind))
    rows.sort()
    return ModuleSymbols(
        tuple(r[0] for r in rows), tuple(r[2] for r in rows), "".join(r[3] for r in rows), count
    )


def _is_mapping_symbol(name: str) -> bool:
    """``is_mapping_symbol()``: local labels and ARM-style mapping symbols are skipped."""
    return name.startswith(("$", ".L", "L0"))
