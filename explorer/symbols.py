"""Symbols from the dump itself: the kernel's kallsyms, read through VMCOREINFO."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parsers.errors import DumpError
from parsers.kallsyms import kallsyms_tables, read_kallsyms
from parsers.symbols import SymbolTable

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
