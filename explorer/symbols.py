"""Symbols from the dump itself: the kernel's kallsyms, read through VMCOREINFO."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parsers.errors import DumpError, SymbolError
from parsers.kallsyms import kallsyms_tables, read_kallsyms
from parsers.symbols import Symbol, SymbolTable

if TYPE_CHECKING:
    from explorer.kernel import Kernel


def dump_kallsyms(kernel: Kernel) -> SymbolTable | None:
    """The kernel's kallsyms, or None when VMCOREINFO does not locate it (a warning says why
    it could not be read)."""
    tables = kallsyms_tables(kernel.vmcoreinfo)
    if tables is None:
        return None
    try:
        return read_kallsyms(kernel._identity_read, tables, "kallsyms in the dump")
    except DumpError as exc:
        kernel.warnings.append(f"the dump's kallsyms are unusable: {exc.message}")
        return None


def complete_symbols(kernel: Kernel) -> None:
    """Give a table without data symbols (kallsyms without ``CONFIG_KALLSYMS_ALL``, as in
    Debian 6.1) the addresses the explorer needs: VMCOREINFO's ``SYMBOL()`` values, and
    ``init_task`` as the end of any task's ``real_parent`` chain (``init_task.real_parent``
    is ``&init_task``, the only task that is its own parent)."""
    table, info = kernel.symbols, kernel.vmcoreinfo
    if table is None:
        return
    if info is not None:
        for key in info.entries:
            if key.startswith("SYMBOL(") and key.endswith(")"):
                value = info.hex(key)
                if value is not None:
                    table.add_known(key[7:-1], value, "VMCOREINFO")
    if table.address_of("init_task") is None:
        found = _init_task_from_parents(kernel)
        if found is not None:
            table.add_known("init_task", found, "the end of a running task's real_parent chain")


def _init_task_from_parents(kernel: Kernel) -> int | None:
    types = kernel.types
    if types is None or not (types.has("task_struct.real_parent") and types.has("task_struct.pid")):
        return None
    parent_off = types.offset("task_struct.real_parent")
    pid_off = types.offset("task_struct.pid")
    for cpu in kernel.cpus:
        task = cpu.current_task
        try:
            for _ in range(MAX_DEPTH):
                if not task:
                    break
                parent = kernel.space.read_u64(task + parent_off)
                if parent == task:
                    pid = int.from_bytes(kernel.read(task + pid_off, 4), "big")
                    if pid == 0:
                        return task
                    break
                task = parent
        except DumpError:
            continue
    return None


#: Process trees deeper than this are damage.
MAX_DEPTH = 4096


@dataclass(frozen=True)
class Resolved:
    """What ``sym`` answers for one query.

    Attributes:
        query: as the user typed it.
        symbol: the symbol (offset 0 for a name; the offset into it for an address).
        by_address: the query was an address.
    """

    query: str
    symbol: Symbol
    by_address: bool

    @property
    def address(self) -> int:
        """The address asked about (an address query) or the symbol's address."""
        return self.symbol.address + self.symbol.offset

    def text(self) -> str:
        """crash's form: ``ADDR (T) name+0xoff/0xsize [module]``; a name prints its start."""
        s = self.symbol
        what = str(s) if self.by_address else s.name
        if not self.by_address and s.module:
            what += f" [{s.module}]"
        return f"{self.address:016x} ({s.type}) {what}"

    def to_json(self) -> dict[str, Any]:
        """``{"name", "address", "size", "module"}`` (plus type, offset and the query)."""
        s = self.symbol
        return {
            "name": s.name,
            "address": f"0x{s.address:x}",
            "size": s.size,
            "module": s.module,
            "type": s.type,
            "offset": s.offset,
            "query": self.query,
        }


def resolve(kernel: Kernel, query: str) -> Resolved:
    """Resolve a name (``schedule``, ``jbd2:kjournald2``) or an address (hex, ``0x``
    optional; a name wins over a hex-looking word such as ``add``).

    Raises:
        SymbolError: no symbol by that name, or none holding that address.
    """
    if kernel.symbols is None:
        raise SymbolError(
            "no symbols: this dump carries no kallsyms; pass --map System.map or --vmlinux",
            kernel.path,
        )
    text = query.strip()
    if not text.lower().startswith("0x"):
        found = _by_name(kernel, kernel.symbols, text)
        if found is not None:
            return Resolved(query, found, False)
    try:
        address = int(text, 16)
    except ValueError:
        hint = ""
        if not kernel.symbols.has_data_symbols:
            hint = " (it holds text symbols only: no CONFIG_KALLSYMS_ALL; pass --map for data)"
        raise SymbolError(f"no symbol {query!r} in {kernel.symbols.source}{hint}") from None
    sym = kernel.lookup_symbol(address)
    if sym is None:
        raise SymbolError(f"0x{address:x}: no kernel or module symbol holds this address")
    return Resolved(query, sym, True)


def _by_name(kernel: Kernel, table: SymbolTable, name: str) -> Symbol | None:
    address = table.address_of(name) if ":" not in name else None
    if address is not None:
        sym = table.lookup(address)
        if sym is not None and sym.address == address and sym.name == name:
            return sym
        return Symbol(name, address, 0, table.size_of(name), table.type_of(name) or "?")
    return kernel.modules.find(name)
