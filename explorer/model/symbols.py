"""Symbols resolved: a name or address as ``sym`` answers it, the real caller of a call that
never returns, and the data symbols a text-only kallsyms lacks (completed from the dump)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from explorer.image.lists import intact_list
from explorer.sources.larl import larl_targets
from parsers.errors import DumpError, SymbolError
from parsers.symbols.table import Symbol, SymbolTable

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel


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
    if table.address_of("modules") is None:
        found = modules_head_from_code(kernel)
        if found is not None:
            table.add_known("modules", found, "the list LARL loads in find_module_all()")
    init_task = table.address_of("init_task")
    if table.address_of("idle_threads") is None and init_task is not None:
        found = _idle_threads_from_code(kernel, init_task)
        if found is not None:
            table.add_known("idle_threads", found, "the per-CPU LARL in idle_thread_get()")


def _idle_threads_from_code(kernel: Kernel, init_task: int) -> int | None:
    """``&idle_threads`` (per-CPU): the LARL operand in ``idle_thread_get()`` whose CPU 0
    copy is ``init_task`` (swapper/0 is CPU 0's idle thread)."""
    table = kernel.symbols
    start = table.address_of("idle_thread_get") if table is not None else None
    cpu0 = next((c for c in kernel.cpus if c.lowcore is not None and c.number == 0), None)
    if table is None or start is None or cpu0 is None or cpu0.lowcore is None:
        return None
    try:
        code = kernel.read(start, min(table.size_of("idle_thread_get") or _LARL_SCAN, _LARL_SCAN))
    except DumpError:
        return None
    for target in larl_targets(code, start):
        try:
            slot = (target + cpu0.lowcore.percpu_offset) & 0xFFFFFFFFFFFFFFFF
            if target % 8 == 0 and kernel.space.read_u64(slot) == init_task:
                return target
        except DumpError:
            continue
    return None


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


#: Characters that make a ``sym`` query a glob (``kjournald*``, ``__s390x_sys_?et*``).
GLOB_CHARS = frozenset("*?[")


def search_symbols(kernel: Kernel, pattern: str, substring: bool = False) -> list[Resolved]:
    """Every kernel and module symbol whose name matches ``pattern``: a glob, or with
    ``substring`` any name containing it (crash ``sym -q``); ``module:pattern`` searches
    that module only. In address order, core kernel first.

    Raises:
        SymbolError: no symbols at all.
    """
    import fnmatch

    if kernel.symbols is None:
        raise SymbolError(
            "no symbols: this dump carries no kallsyms; pass --map System.map or --vmlinux",
            kernel.path,
        )
    wanted_module, colon, text = pattern.rpartition(":")

    def matches(name: str) -> bool:
        return text in name if substring else fnmatch.fnmatchcase(name, text)

    found = []
    if not colon:
        for address, kind, name in kernel.symbols.rows():
            if matches(name):
                size = kernel.symbols.size_of(name)
                found.append(Resolved(pattern, Symbol(name, address, 0, size, kind), False))
    for module in kernel.modules.modules:
        if colon and module.name != wanted_module:
            continue
        table = kernel.modules.symbols.get(module.address)
        if table is None:
            continue
        for address, name in zip(table.addrs, table.names, strict=True):
            if matches(name):
                sym = kernel.modules.lookup(address)
                if sym is None or sym.name != name:
                    sym = Symbol(name, address, 0, 0, "?", module.name)
                found.append(Resolved(pattern, sym, False))
    return found


def _by_name(kernel: Kernel, table: SymbolTable, name: str) -> Symbol | None:
    address = table.address_of(name) if ":" not in name else None
    if address is not None:
        sym = table.lookup(address)
        if sym is not None and sym.address == address and sym.name == name:
            return sym
        return Symbol(name, address, 0, table.size_of(name), table.type_of(name) or "?")
    return kernel.modules.find(name)


#: Steps whose ip is a return address (a saved r14), not a PSW: the kernel's %pB looks these
#: up at R-1. (s390's Call Trace prints %pSR, at R itself: frame names stay at R.)
RETURN_ADDRESS_STEPS = frozenset({"start", "backchain", "r14_guess"})
#: Entry points stored as return addresses by ftrace's graph tracer, kretprobes and rethook.
TRAMPOLINES = frozenset(
    {
        "return_to_handler",
        "__kretprobe_trampoline",
        "kretprobe_trampoline",
        "arch_rethook_trampoline",
    }
)


def noreturn_caller(kernel: Kernel, ip: int, how: str) -> Symbol | None:
    """The function that really made the call, when a return address lies past its end.

    A call to a function that never returns (``panic``) can be a function's last
    instruction: the return address R is then the first byte of the next symbol, and the
    kernel's Call Trace names that next symbol (``sysrq_reset_seq_param_set+0x0/0x88``).
    Looking up R-1 names the caller, with the offset R - start as ``sprint_backtrace()``
    prints it (``sysrq_handle_crash+0x38/0x38``). None when R-1 and R are in one symbol or
    ``ip`` is no return address.
    """
    if how not in RETURN_ADDRESS_STEPS or not ip:
        return None
    at = kernel.lookup_symbol(ip)
    if at is not None and at.name in TRAMPOLINES:
        return None  # an unresolved ftrace/kretprobe/rethook return: no call ends there
    before = kernel.lookup_symbol(ip - 1)
    if before is None or (at is not None and at.address == before.address):
        return None
    return Symbol(
        before.name, before.address, ip - before.address, before.size, before.type, before.module
    )


#: Functions that load the address of the list head ``modules`` with LARL (kernel/module:
#: ``find_module_all()``; its first LARL is ``&modules`` in Debian 6.1 and 7.2).
_MODULES_USERS = ("find_module_all",)
_LARL_SCAN = 0x400


def modules_head_from_code(kernel: Kernel) -> int | None:
    """``&modules`` for a text-only table: the LARL operand in ``find_module_all()`` that is
    an intact circular list (empty: pointing at itself; else each entry's ``prev`` leading
    back, every entry a ``struct module`` with a printable name)."""
    table = kernel.symbols
    if table is None:
        return None
    for function in _MODULES_USERS:
        start = table.address_of(function)
        if start is None:
            continue
        try:
            code = kernel.read(start, min(table.size_of(function) or _LARL_SCAN, _LARL_SCAN))
        except DumpError:
            continue
        for target in larl_targets(code, start):
            if target % 8 == 0 and _is_module_list(kernel, target):
                return target
    return None


def _is_module_list(kernel: Kernel, head: int) -> bool:
    types = kernel.types
    if types is None or not (types.has("module.list") and types.has("module.name")):
        return False
    list_off, name_off = types.offset("module.list"), types.offset("module.name")

    def is_module(node: int) -> bool:
        try:
            name = kernel.read(node - list_off + name_off, 56).split(b"\0", 1)[0]
        except DumpError:
            return False
        return bool(name) and all(0x21 <= c < 0x7F for c in name)

    return intact_list(kernel.space.read_u64, head, MAX_MODULES, is_module) is not None


#: More modules than any kernel loads.
MAX_MODULES = 1 << 14
