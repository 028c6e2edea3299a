"""Symbols from the dump itself: the kernel's kallsyms, read through VMCOREINFO or found in
its memory by content."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from parsers.cache import cache_dir, content_digest
from parsers.errors import DumpError, SymbolError
from parsers.kallsyms import (
    KallsymsTables,
    decode_kallsyms,
    kallsyms_tables,
    read_kallsyms_bytes,
)
from parsers.symbols import Symbol, SymbolTable
from parsers.symcache import load_table, save_table

if TYPE_CHECKING:
    from explorer.kernel import Kernel

#: Bumped whenever the way a table is built or stored changes (filtering, order, the file
#: layout of parsers.symcache), so that tables cached by an older backchain are not used
#: (nor overwritten: both can share one cache).
GENERATION = 3


def dump_kallsyms(kernel: Kernel) -> SymbolTable | None:
    """The kernel's kallsyms: where VMCOREINFO locates them, else found in memory by content
    (explorer.sources.memscan); None when neither gives a table (a warning says why).
    Decoded once and cached by a digest of the bytes decoded (:func:`cached_kallsyms`)."""
    tables = kallsyms_tables(kernel.vmcoreinfo)
    if tables is None:
        from explorer.sources.memscan import kallsyms_in_memory

        return kallsyms_in_memory(kernel)
    try:
        return cached_kallsyms(kernel._identity_read, tables, "kallsyms in the dump")
    except DumpError as exc:
        kernel.warnings.append(f"the dump's kallsyms are unusable: {exc.message}")
        return None


def cached_kallsyms(
    read: Callable[[int, int], bytes], tables: KallsymsTables, source: str
) -> SymbolTable:
    """:func:`parsers.kallsyms.read_kallsyms`, from the cache when the same bytes were
    decoded before: the cache file is named by a digest of the bytes themselves (never by
    the dump's own BUILD-ID, which a tampered copy keeps), and a cached table is moved by
    this dump's ``kallsyms_relative_base``, exactly as decoding moves it: the same answers
    on a first and a later run.

    Raises:
        SymbolError: the tables cannot be read or are not kallsyms.
    """
    raw = read_kallsyms_bytes(read, tables)
    path = cache_dir("symbols", f"kallsyms-{raw.digest()}-g{GENERATION}.syms")
    table = load_table(path)
    if table is not None and len(table) == raw.count:
        table.relocate(raw.base or 0)
        table.source = source  # where this dump holds them
        return table
    table = decode_kallsyms(raw, source)
    save_table(table, path)
    return table


def file_symbols_key(path: str, kind: str) -> str | None:
    """What names a System.map's or vmlinux's table in the cache: a digest of the bytes it
    is read from (a vmlinux's ``.symtab`` and its string table; a System.map's whole file),
    never the build-id the file claims. None when they cannot be read (nothing is cached)."""
    from parsers.elfsections import ElfSections
    from parsers.inputs import open_regular
    from parsers.symbols import MAX_SYSTEM_MAP_BYTES

    try:
        if kind == "vmlinux":
            with ElfSections(path) as elf:
                symtab = elf.get(".symtab")
                if symtab is None or not 0 < symtab.link < len(elf.sections):
                    return None
                strtab = elf.sections[symtab.link]
                return content_digest(elf.bytes_of(symtab), elf.bytes_of(strtab))
        with open_regular(path, "System.map") as f:
            data = f.read(MAX_SYSTEM_MAP_BYTES + 1)
        return content_digest(data) if len(data) <= MAX_SYSTEM_MAP_BYTES else None
    except (OSError, DumpError):
        return None


def _file_cache(key: str) -> Path:
    return cache_dir("symbols", f"file-{key}-g{GENERATION}.syms")


def cached_file_symbols(key: str | None) -> SymbolTable | None:
    """The table cached under ``key`` (:func:`file_symbols_key`), if any."""
    return load_table(_file_cache(key)) if key else None


def save_file_symbols(key: str | None, table: SymbolTable) -> None:
    """Cache a table verified against the dump under ``key`` (never one refused)."""
    if key:
        save_table(table, _file_cache(key))


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
    for target in _larl_targets(code, start):
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
        for target in _larl_targets(code, start):
            if target % 8 == 0 and _is_module_list(kernel, target):
                return target
    return None


def _larl_targets(code: bytes, start: int) -> list[int]:
    """Operands of ``larl`` (RIL-b, opcode C0x0) in straight-line code from its start."""
    out = []
    i = 0
    while i + 2 <= len(code):
        op = code[i]
        length = (2, 4, 4, 6)[op >> 6]  # the instruction length code in the first byte
        if op == 0xC0 and code[i + 1] & 0x0F == 0 and i + 6 <= len(code):
            out.append(start + i + 2 * int.from_bytes(code[i + 2 : i + 6], "big", signed=True))
        i += length
    return out


def _is_module_list(kernel: Kernel, head: int) -> bool:
    types = kernel.types
    if types is None or not (types.has("module.list") and types.has("module.name")):
        return False
    u64 = kernel.space.read_u64
    try:
        node, last = u64(head), head
        if node == head:
            return u64(head + 8) == head
        for _ in range(MAX_MODULES):
            if node & 7 or u64(node + 8) != last:
                return False
            module = node - types.offset("module.list")
            name = kernel.read(module + types.offset("module.name"), 56).split(b"\0", 1)[0]
            if not name or not all(0x21 <= c < 0x7F for c in name):
                return False
            last, node = node, u64(node)
            if node == head:
                return u64(head + 8) == last
    except DumpError:
        return False
    return False


#: More modules than any kernel loads.
MAX_MODULES = 1 << 14
