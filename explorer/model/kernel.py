"""The model a user opens: a dump plus symbols and types, as CPUs, memory and stacks.

A :class:`Kernel` is made by :func:`explorer.model.opening.open_kernel`, which decides every
file, type and layout (the policy); the kernel itself only answers questions about what was
decided: read memory, name addresses, tell text from data. Opening does the cheap work only
(headers, notes, VMCOREINFO, lowcores): opening a dump of any size takes well under a second.
Tasks and modules load on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from explorer.image.dumpimage import DumpIdentity, DumpImage
from explorer.model.options import Options
from explorer.sources.companions import Files
from parsers.dumps.cpustate import CpuRegisters
from parsers.dumps.memory import AddressSpace, VaLayout
from parsers.dumps.physmem import total_size
from parsers.dumps.vmcoreinfo import OsInfo, VmcoreInfo
from parsers.errors import SymbolError, TranslationError, UnmappedError
from parsers.s390.layouts import (
    LOWCORE_SIZE,
    PT_REGS_LAYOUTS,
    STACK_FRAME_SIZE,
    LowcoreLayout,
)
from parsers.s390.records import Lowcore
from parsers.s390.stacks import STACK_TYPES, StackRange
from parsers.symbols.table import Symbol, SymbolTable
from parsers.types.profile import TypeProfile

if TYPE_CHECKING:
    from explorer.model.modules import ModuleScan
    from parsers.dumps.dumpfile import DumpFile

DEFAULT_THREAD_SIZE = 16384  # PAGE_SIZE << THREAD_SIZE_ORDER (2) without KASAN


@dataclass(frozen=True)
class Cpu:
    """One CPU: its registers at dump time, its lowcore and its per-CPU stacks.

    Attributes:
        registers: from the dump's notes.
        lowcore: decoded lowcore at the prefix, or None (see ``problem``).
        problem: why the lowcore could not be read.
        stacks: irq, nodat, restart, mcck stack ranges derived from the lowcore.
    """

    registers: CpuRegisters
    lowcore: Lowcore | None
    problem: str | None
    stacks: tuple[StackRange, ...] = ()

    @property
    def number(self) -> int:
        """Logical CPU number (``lowcore.cpu_nr``; the note order if unknown)."""
        return self.lowcore.cpu_nr if self.lowcore else self.registers.index

    @property
    def current_task(self) -> int | None:
        """``lowcore.current_task``: the task this CPU runs."""
        return self.lowcore.current_task if self.lowcore else None

    def stack(self, stack_type: str) -> StackRange | None:
        """The per-CPU stack of ``stack_type`` or None."""
        for s in self.stacks:
            if s.stack_type == stack_type:
                return s
        return None


@dataclass(frozen=True)
class Layouts:
    """The layouts of ``pt_regs``, ``struct lowcore`` and ``struct stack_frame`` this kernel
    is decoded with, each with where it came from (the kernel's types or an era table).

    Attributes:
        pt_regs: a key of :data:`parsers.s390.layouts.PT_REGS_LAYOUTS`.
        pt_regs_source: where it came from.
        lowcore: the lowcore's fields (an era table or the kernel's own types).
        lowcore_source: where they came from.
        stack_frame_source: where the (fixed) stack_frame layout was confirmed.
    """

    pt_regs: str
    pt_regs_source: str
    lowcore: LowcoreLayout
    lowcore_source: str
    stack_frame_source: str


class Kernel:
    """A kernel dump opened for analysis: made by :func:`explorer.model.opening.open_kernel`.

    Attributes:
        image: what the dump says about itself (VMCOREINFO, os_info, identity).
        options: what the user gave (unchanged).
        files: the symbol and type files used (given or found beside the dump).
        symbols: the symbol table, or None.
        release: the kernel release, or None.
        types: the type profile, or None.
        layouts: pt_regs, lowcore and stack_frame layouts.
        space: kernel virtual memory.
        cpus: every CPU with its lowcore and stacks.
        warnings: what opening found worth saying (``forced`` and ``skipped`` among them).
        forced: warnings about files used with --force although they do not belong to the
            dump.
        skipped: companions found beside the dump and not used.
        probe_problem: why ``auto`` found no types, not even by inference.
    """

    def __init__(
        self,
        image: DumpImage,
        options: Options,
        files: Files,
        symbols: SymbolTable | None,
        release: str | None,
        types: TypeProfile | None,
        layouts: Layouts,
        space: AddressSpace,
        cpus: tuple[Cpu, ...],
        thread_size: tuple[int, str],
        warnings: list[str],
        forced: list[str],
        skipped: list[str],
        probe_problem: str | None = None,
    ) -> None:
        self.image = image
        self.dump: DumpFile = image.dump
        self.path = image.path
        self.options = options
        self.files = files
        self.symbols = symbols
        self.release = release
        self.types = types
        self.layouts = layouts
        self.space = space
        self.cpus = cpus
        self.thread_size, self.thread_size_source = thread_size
        self.warnings = warnings
        self.forced = forced
        self.skipped = skipped
        self.probe_problem = probe_problem

    def close(self) -> None:
        """Release the dump file."""
        self.dump.close()

    # -- what the dump says about itself -----------------------------------------------------
    @property
    def vmcoreinfo(self) -> VmcoreInfo | None:
        """VMCOREINFO, or None."""
        return self.image.vmcoreinfo

    @property
    def os_info(self) -> OsInfo | None:
        """s390's os_info, or None."""
        return self.image.os_info

    @property
    def identity(self) -> DumpIdentity:
        """What the dump says about its kernel (files are verified against it)."""
        return self.image.identity

    @property
    def early_kaslr_offset(self) -> int | None:
        """The KASLR offset at 0xE0C (VMCOREINFO found in memory)."""
        return self.image.early_kaslr_offset

    @property
    def layout(self) -> VaLayout:
        """The identity mapping's layout."""
        return self.image.layout

    @property
    def asce(self) -> int:
        """The kernel ASCE (0: unknown, vmalloc addresses cannot be translated)."""
        return self.space.asce

    # -- layouts ------------------------------------------------------------------------------
    @property
    def pt_regs_layout(self) -> str:
        """A key of :data:`parsers.s390.layouts.PT_REGS_LAYOUTS`."""
        return self.layouts.pt_regs

    @property
    def pt_regs_source(self) -> str:
        """Where the pt_regs layout came from."""
        return self.layouts.pt_regs_source

    @property
    def lowcore_era(self) -> str:
        """The lowcore layout's name (an era, or the source of the kernel's own fields)."""
        return self.layouts.lowcore.name

    @property
    def lowcore_fields(self) -> LowcoreLayout:
        """The lowcore layout (decode with it: :func:`parsers.s390.records.lowcore_values`)."""
        return self.layouts.lowcore

    @property
    def lowcore_source(self) -> str:
        """Where the lowcore layout came from."""
        return self.layouts.lowcore_source

    @property
    def stack_frame_source(self) -> str:
        """Where the stack_frame layout was confirmed."""
        return self.layouts.stack_frame_source

    # -- derived facts ----------------------------------------------------------------------
    @property
    def pt_regs_size(self) -> int:
        """``sizeof(struct pt_regs)`` for this kernel."""
        return PT_REGS_LAYOUTS[self.pt_regs_layout].size

    @property
    def stack_init_offset(self) -> int:
        """``STACK_INIT_OFFSET = THREAD_SIZE - STACK_FRAME_OVERHEAD - sizeof(pt_regs)``."""
        return self.thread_size - STACK_FRAME_SIZE - self.pt_regs_size

    @property
    def memory_size(self) -> int:
        """Bytes of memory in the dump."""
        return total_size(self.dump)

    @property
    def kaslr_offset(self) -> int | None:
        """KERNELOFFSET from VMCOREINFO (or the early offset at 0xE0C)."""
        return self.image.kaslr_offset

    @cached_property
    def crash_time(self) -> int | None:
        """CRASHTIME from VMCOREINFO (kdump dumps after a panic)."""
        return self.vmcoreinfo.crash_time if self.vmcoreinfo else None

    def symbolize(self, address: int) -> str | None:
        """The kernel's ``%pS`` text of an address: ``name+0xoff/0xsize`` in the core kernel,
        ``name+0xoff/0xsize [module]`` in a loaded module's text (``[module]+0xoff`` when the
        module's symbols cannot be read), or None."""
        sym = self.lookup_symbol(address)
        if sym is not None:
            return str(sym)
        module = self.modules.module_at(address)
        if module is not None:
            start = next(s for s, e in module.text if s <= address < e)
            return f"[{module.name}]+0x{address - start:x}"
        return None

    def psw_name(self, address: int) -> str | None:
        """A kernel-mode PSW address by name: :meth:`symbolize`, else for an address in the
        lowcore the field there (a CPU leaving for user space runs the lpswe the kernel keeps
        at ``lowcore.return_lpswe``): ``return_lpswe (lowcore+0x400)``."""
        name = self.symbolize(address)
        if name is not None or address >= LOWCORE_SIZE:
            return name
        fields = self.layouts.lowcore.fields
        field = next((f for f in fields if f.offset <= address < f.offset + f.size), None)
        return None if field is None else f"{field.name} (lowcore+0x{address:x})"

    def lookup_symbol(self, address: int) -> Symbol | None:
        """The symbol holding ``address``: core kernel (``kallsyms_lookup``), else a loaded
        module's own symbols (``module_address_lookup``)."""
        sym = self.symbols.lookup(address) if self.symbols is not None else None
        if sym is None and self.symbols is not None:
            sym = self.modules.lookup(address)
        return sym

    @cached_property
    def modules(self) -> ModuleScan:
        """Loaded modules and their text ranges (empty without type information)."""
        from explorer.model.modules import find_modules

        return find_modules(self)

    def is_text(self, address: int) -> bool:
        """``__kernel_text_address()``: core kernel text or a loaded module's text."""
        if self.symbols is not None and self.symbols.is_text(address):
            return True
        return self.modules.module_at(address) is not None

    def read(self, va: int, size: int) -> bytes:
        """Read kernel virtual memory."""
        return self.space.read(va, size)

    def readable(self, va: int, size: int = 1) -> bool:
        """True if kernel virtual memory at ``va`` can be read."""
        try:
            self.space.read(va, size)
        except (TranslationError, UnmappedError):
            return False
        return True


__all__ = [
    "STACK_TYPES",
    "Cpu",
    "Kernel",
    "Layouts",
    "Options",
    "StackRange",
    "Symbol",
    "SymbolError",
]
