"""Build synthetic s390x kernel dumps: the fixtures of the tests and the training scenarios.

Everything is written with the schemas of :mod:`parsers.s390.structs` in build mode and the ELF
writer of :mod:`parsers.write.elfwriter`, laid out like a QEMU ``dump-guest-memory`` of a v6.1-style
kernel (legacy layout: identity map at 0, the kernel image inside it, VMAP stacks in vmalloc
space reached through page tables). Only the pages a scenario touches are written, so dumps
stay small; reading any other page reports it as not in the dump. Output is deterministic.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from explorer.sources.bundled import BUNDLED_PROFILES
from parsers.cache import exclusive_temp
from parsers.s390.layouts import (
    NT_PRFPREG,
    NT_PRSTATUS,
    NT_S390_CTRS,
    NT_S390_PREFIX,
    NT_S390_TIMER,
    NT_S390_TODCMP,
    NT_S390_TODPREG,
)
from parsers.s390.structs import build_lowcore, build_note_desc, build_prstatus
from parsers.types.profile import TypeProfile
from parsers.write.elfwriter import NoteSpec, memory_runs, write_elf_core

PAGE = 4096
KERNEL_PSW_MASK = 0x0704C00180000000  # DAT, IO, EXT, MCHECK, home space, 64-bit
KERNEL_WAIT_PSW_MASK = 0x0706C00180000000  # ... plus wait state (an idle CPU)
USER_PSW_MASK = 0x0705C00180000000  # ... problem state (user mode)
VMALLOC_BASE = 0x37F_0000_0000  # where the synthetic kernel's vmalloc area starts

_U64 = struct.Struct(">Q")


@dataclass
class SyntheticCpu:
    """A CPU to write: registers in the notes and its lowcore at ``prefix``."""

    prefix: int
    psw: tuple[int, int]
    gprs: list[int]
    lowcore: dict[str, object] = field(default_factory=dict)
    crs: list[int] = field(default_factory=lambda: [0] * 16)


class SyntheticDump:
    """An absolute-memory image plus CPUs and symbols, written as an ELF vmcore.

    Args:
        release: the kernel release written into VMCOREINFO.
        mem_size: size of "physical memory" (only touched pages are written).
        lowcore_era: era of the lowcore schema to build.
        vmcoreinfo_note: write VMCOREINFO as an ELF note (kdump style) instead of only
            through the pointer at absolute 0xE0C (QEMU style).
    """

    def __init__(
        self,
        release: str = "6.1.0-synthetic-s390x",
        mem_size: int = 256 << 20,
        lowcore_era: str = "v6.1",
        vmcoreinfo_note: bool = False,
    ) -> None:
        self.release = release
        self.mem_size = mem_size
        self.lowcore_era = lowcore_era
        self.vmcoreinfo_note = vmcoreinfo_note
        self.pages: dict[int, bytearray] = {}
        self.symbols: list[tuple[int, str, str]] = []
        self.cpus: list[SyntheticCpu] = []
        self.vmcoreinfo: dict[str, str] = {"OSRELEASE": release, "PAGESIZE": "4096"}
        self._text_next = 0x100000 + 0x1000  # kernel text starts at 1 MiB (legacy layout)
        self._data_next = 0x2000000  # data/heap from 32 MiB
        self._vmalloc_next = VMALLOC_BASE
        self.asce = 0
        self._rtt = 0
        self.add_symbol("_text", 0x100000)
        self.add_symbol("_stext", 0x100000)

    # -- memory --------------------------------------------------------------------------------
    def write(self, address: int, data: bytes) -> None:
        """Write absolute memory."""
        pos = 0
        while pos < len(data):
            a = address + pos
            page = self.pages.setdefault(a & ~(PAGE - 1), bytearray(PAGE))
            off = a & (PAGE - 1)
            take = min(PAGE - off, len(data) - pos)
            page[off : off + take] = data[pos : pos + take]
            pos += take

    def put_u64(self, address: int, value: int) -> None:
        """Write one big-endian u64 of absolute memory."""
        self.write(address, _U64.pack(value & 0xFFFFFFFFFFFFFFFF))

    def touch(self, address: int, size: int) -> None:
        """Make a range present in the dump (zero-filled) without changing its contents."""
        for page in range(address & ~(PAGE - 1), address + size, PAGE):
            self.pages.setdefault(page, bytearray(PAGE))

    def alloc(self, size: int, align: int = 8) -> int:
        """Allocate identity-mapped memory (virtual == absolute in this layout)."""
        addr = (self._data_next + align - 1) & ~(align - 1)
        self._data_next = addr + size
        self.touch(addr, size)
        return addr

    # -- symbols -------------------------------------------------------------------------------
    def add_symbol(self, name: str, address: int, kind: str = "T") -> int:
        """Add a System.map entry."""
        self.symbols.append((address, kind, name))
        return address

    def add_function(self, name: str, size: int = 0x200) -> int:
        """Allocate kernel text for a function and name it; returns its address."""
        addr = self._text_next
        self._text_next += (size + 0xFF) & ~0xFF
        self.add_symbol(name, addr)
        self.touch(addr, size)
        return addr

    def function(self, name: str) -> int:
        """Address of a function added before (added now if unknown)."""
        for addr, _, n in self.symbols:
            if n == name:
                return addr
        return self.add_function(name)

    # -- page tables (vmalloc space) -----------------------------------------------------------
    def _table(self, entries: int, fill: int) -> int:
        addr = self.alloc(entries * 8, align=entries * 8 if entries == 2048 else 2048)
        self.write(addr, _U64.pack(fill) * entries)
        return addr

    def map_page(self, va: int, pa: int) -> None:
        """Map one 4 KiB virtual page to absolute ``pa`` (region-third -> segment -> page)."""
        if not self._rtt:
            self._rtt = self._table(2048, 0x20 | (1 << 2))  # invalid region-third entries
            self.asce = self._rtt | (1 << 2) | 3  # DT region-third, TL 3
            # identity map of the first 2 GiB through a 2 GiB frame, as the kernel's
            # large-page identity mapping would
            self.put_u64(self._rtt, 0x400 | (1 << 2))
        rtx, sx, px = (va >> 31) & 0x7FF, (va >> 20) & 0x7FF, (va >> 12) & 0xFF
        rte_addr = self._rtt + rtx * 8
        rte = _U64.unpack(bytes(self._read(rte_addr, 8)))[0]
        if rte & 0x20:
            sgt = self._table(2048, 0x20)
            rte = sgt | (1 << 2) | 3
            self.put_u64(rte_addr, rte)
        sgt = rte & ~0xFFF
        ste_addr = sgt + sx * 8
        ste = _U64.unpack(bytes(self._read(ste_addr, 8)))[0]
        if ste & 0x20:
            pgt = self._table(256, 0x400)
            ste = pgt
            self.put_u64(ste_addr, ste)
        self.put_u64((ste & ~0x7FF) + px * 8, pa & ~(PAGE - 1))

    def _read(self, address: int, size: int) -> bytes:
        page = self.pages[address & ~(PAGE - 1)]
        off = address & (PAGE - 1)
        return bytes(page[off : off + size])

    def vmalloc(self, size: int, align: int = PAGE) -> tuple[int, int]:
        """Allocate ``size`` bytes in vmalloc space backed by identity memory.

        Returns:
            (virtual address, absolute address of its first byte).
        """
        va = (self._vmalloc_next + align - 1) & ~(align - 1)
        self._vmalloc_next = va + size + PAGE  # a guard page like vmalloc leaves
        pa = self.alloc(size, align=PAGE)
        for off in range(0, size, PAGE):
            self.map_page(va + off, pa + off)
        return va, pa

    def va_to_pa(self, va: int) -> int:
        """Translate an address this builder handed out (identity or vmalloc)."""
        if va < self.mem_size:
            return va
        rtx, sx, px = (va >> 31) & 0x7FF, (va >> 20) & 0x7FF, (va >> 12) & 0xFF
        rte = _U64.unpack(self._read(self._rtt + rtx * 8, 8))[0]
        ste = _U64.unpack(self._read((rte & ~0xFFF) + sx * 8, 8))[0]
        pte = _U64.unpack(self._read((ste & ~0x7FF) + px * 8, 8))[0]
        return (pte & ~0xFFF) | (va & 0xFFF)

    def write_va(self, va: int, data: bytes) -> None:
        """Write virtual memory handed out by this builder (page by page)."""
        pos = 0
        while pos < len(data):
            take = min(PAGE - ((va + pos) & (PAGE - 1)), len(data) - pos)
            self.write(self.va_to_pa(va + pos), data[pos : pos + take])
            pos += take

    def put_u64_va(self, va: int, value: int) -> None:
        """Write one u64 of virtual memory."""
        self.write_va(va, _U64.pack(value & 0xFFFFFFFFFFFFFFFF))

    # -- CPUs ----------------------------------------------------------------------------------
    def add_cpu(
        self,
        psw: tuple[int, int],
        gprs: Iterable[int] | Mapping[int, int] | None = None,
        lowcore: Mapping[str, object] | None = None,
        prefix: int | None = None,
    ) -> SyntheticCpu:
        """Add a CPU; its lowcore is allocated (8 KiB aligned, below 2 GiB) unless given."""
        regs = [0] * 16
        if isinstance(gprs, Mapping):
            for k, v in gprs.items():
                regs[k] = v
        elif gprs is not None:
            regs = list(gprs)
        if prefix is None:
            prefix = self.alloc(0x2000, align=0x2000)
        cpu = SyntheticCpu(prefix, psw, regs, dict(lowcore or {}))
        cpu.lowcore.setdefault("cpu_nr", len(self.cpus))
        self.cpus.append(cpu)
        return cpu

    # -- output --------------------------------------------------------------------------------
    def _finish_memory(self) -> None:
        text = "".join(f"{k}={v}\n" for k, v in self.vmcoreinfo.items())
        self.vmcoreinfo_text = text
        desc = text.encode() + b"\0"
        note = struct.pack(">III", 11, len(desc), 0) + b"VMCOREINFO\0\0" + desc
        addr = self.alloc(len(note) + 8)
        self.write(addr, note)
        self.put_u64(0xE0C, addr)  # absolute lowcore: lowcore.vmcore_info
        for cpu in self.cpus:
            fields = dict(cpu.lowcore)
            if self.asce:
                fields.setdefault("kernel_asce", self.asce)
                cpu.crs[13] = self.asce
            fields["prefixreg_save_area"] = cpu.prefix
            self.write(
                cpu.prefix, build_lowcore(self.lowcore_era, **_known(self.lowcore_era, fields))
            )
            if cpu.prefix:  # the absolute zero lowcore keeps the 0xE0C pointer
                self.put_u64(0xE0C, addr)

    def notes(self) -> list[NoteSpec]:
        """The per-CPU notes, QEMU order."""
        out: list[NoteSpec] = []
        for i, cpu in enumerate(self.cpus):
            out.append(
                NoteSpec("CORE", NT_PRSTATUS, build_prstatus(pid=i + 1, psw=cpu.psw, gprs=cpu.gprs))
            )
            out.append(NoteSpec("CORE", NT_PRFPREG, b"\0" * 136))
            out.append(
                NoteSpec(
                    "LINUX", NT_S390_PREFIX, build_note_desc(NT_S390_PREFIX, prefix=cpu.prefix)
                )
            )
            out.append(NoteSpec("LINUX", NT_S390_CTRS, struct.pack(">16Q", *cpu.crs)))
            out.append(NoteSpec("LINUX", NT_S390_TIMER, b"\0" * 8))
            out.append(NoteSpec("LINUX", NT_S390_TODCMP, b"\0" * 8))
            out.append(NoteSpec("LINUX", NT_S390_TODPREG, b"\0" * 4))
        if self.vmcoreinfo_note:
            out.append(NoteSpec("VMCOREINFO", 0, self.vmcoreinfo_text.encode()))
        return out

    def system_map(self) -> str:
        """System.map text, sorted by address."""
        rows = sorted(set(self.symbols))
        return "".join(f"{a:016x} {k} {n}\n" for a, k, n in rows)

    def save(self, folder: str | Path, name: str = "vmcore") -> Path:
        """Write ``NAME`` (ELF vmcore) and ``System.map`` into ``folder``; return the dump path."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.add_symbol("_etext", self._text_next)
        self._finish_memory()
        image = {addr: bytes(data) for addr, data in self.pages.items()}
        dump = folder / name
        # Each file appears whole or not at all (written aside under a random name, then
        # renamed): served classroom sessions build the same scenario at once while others
        # already read it. The files are as a plain open() makes them (0666 less the umask).
        with exclusive_temp(dump, make_folder=False, mode=0o666) as out:
            write_elf_core(out, memory_runs(image), self.notes())
        system_map = self.system_map()
        with exclusive_temp(folder / "System.map", make_folder=False, mode=0o666) as out:
            out.write(system_map.encode())
        return dump


def _known(era: str, fields: Mapping[str, object]) -> dict[str, object]:
    """Drop fields the era's lowcore lacks (e.g. mcck_stack before v5.12)."""
    from parsers.s390.layouts import LOWCORE_FIELDS

    names = {f.name for f in LOWCORE_FIELDS[era]}
    return {k: v for k, v in fields.items() if k in names}


# ------------------------------------------------------------------------------------------------
# Kernels with tasks and stacks
# ------------------------------------------------------------------------------------------------

#: The task_struct members a synthetic kernel writes, with the offsets of Debian's 6.1 build
#: (samples/profiles/6.1.0-50-s390x.profile.json): realistic, and small enough to write.
_PROFILE_SOURCE = BUNDLED_PROFILES / "6.1.0-50-s390x.profile.json"
_TASK_KEYS = (
    "task_struct.tasks",
    "task_struct.pid",
    "task_struct.tgid",
    "task_struct.comm",
    "task_struct.stack",
    "task_struct.__state",
    "task_struct.exit_state",
    "task_struct.flags",
    "task_struct.on_cpu",
    "task_struct.thread_info.cpu",
    "task_struct.real_parent",
    "task_struct.thread_node",
    "task_struct.thread_group",
    "task_struct.signal",
    "signal_struct.thread_head",
    "task_struct.thread.ksp",
    "task_struct.ret_stack",
    "task_struct.curr_ret_stack",
    "task_struct.kretprobe_instances",
    "list_head.next",
    "list_head.prev",
    "ftrace_ret_stack.ret",
    "ftrace_ret_stack.func",
    "ftrace_ret_stack.retp",
    "module.list",
    "module.name",
    "module.core_layout.base",
    "module.core_layout.text_size",
    "module.init_layout.base",
    "module.init_layout.text_size",
    "module.core_layout.size",
    "module.state",
    "module.taints",
    "module.kallsyms",
    "mod_kallsyms.symtab",
    "mod_kallsyms.num_symtab",
    "mod_kallsyms.strtab",
    "mod_kallsyms.typetab",
)

THREAD_SIZE = 16384
STACK_FRAME_OVERHEAD = 160
PF_KTHREAD = 0x00200000
PF_IDLE = 0x00000002
TASK_STATES = {
    "R": 0,
    "S": 1,
    "D": 2,
    "T": 4 | 0x100,
    "t": 8,
    "Z": 0,
    "X": 0,
    "I": 0x402,
    "P": 0x40,
}


def _profile_offsets() -> tuple[dict[str, int], dict[str, int]]:
    import json

    doc = json.loads(_PROFILE_SOURCE.read_text())
    offsets = {k: doc["offsets"][k] for k in _TASK_KEYS}
    sizes = {
        k: doc["sizes"][k]
        for k in (
            "task_struct",
            "task_struct.comm",
            "task_struct.__state",
            "ftrace_ret_stack",
            "list_head",
        )
    }
    return offsets, sizes


@dataclass
class Frame:
    """One frame to lay out on a stack.

    Attributes:
        function: the function owning the frame; ``ip`` is ``function + offset``.
        offset: where in the function the call returns to.
        size: bytes the frame occupies (at least 160).
        r14: override the saved r14 (default: function + offset).
        back_chain: override the back chain (default: the next outer frame, 0 for the last).
    """

    function: str
    offset: int = 0x40
    size: int = 0xA8
    r14: int | None = None
    back_chain: int | None = None


@dataclass
class SyntheticTask:
    """A task written into a :class:`SyntheticKernel`."""

    address: int
    pid: int
    comm: str
    stack: int  # virtual base of its stack (0: none)
    ksp: int = 0

    @property
    def stack_top(self) -> int:
        """End of the task stack."""
        return self.stack + THREAD_SIZE


class SyntheticKernel(SyntheticDump):
    """A synthetic kernel with tasks on VMAP stacks, per-CPU stacks and a type profile.

    Args:
        release: kernel release; decides the lowcore era, pt_regs layout and unwinder rules
            (a 5.x release gives the v5.5 layout: pt_regs of 184 bytes, no mcck stack).
        cpus: how many CPUs (each gets async/nodat/mcck stacks; one restart stack shared).
    """

    def __init__(
        self, release: str = "6.1.0-synthetic-s390x", cpus: int = 1, vmcoreinfo_note: bool = False
    ) -> None:
        from parsers.s390.layouts import kernel_version, lowcore_era_for_release, pt_regs_layout

        super().__init__(
            release=release,
            lowcore_era=lowcore_era_for_release(release),
            vmcoreinfo_note=vmcoreinfo_note,
        )
        self.pt_regs_layout = pt_regs_layout(None, release)
        self.pt_regs_size = {"v4.14": 184, "v5.12": 192, "v6.1": 200, "v6.16": 192}[
            self.pt_regs_layout
        ]
        self.has_mcck = kernel_version(release)[:2] >= (5, 12)
        self.offsets, self.sizes = _profile_offsets()
        self.sizes["pt_regs"] = self.pt_regs_size
        self.sizes["thread_union"] = THREAD_SIZE
        self.tasks: list[SyntheticTask] = []
        self.vmcoreinfo["SYMBOL(_stext)"] = "100000"
        self.vmcoreinfo["KERNELOFFSET"] = "0"
        for name in (
            "__switch_to",
            "__schedule",
            "schedule",
            "do_nanosleep",
            "hrtimer_nanosleep",
            "__do_sys_clock_nanosleep",
            "__do_syscall",
            "system_call",
            "kthread",
            "__ret_from_fork",
            "ret_from_fork",
            "worker_thread",
            "schedule_idle",
            "do_idle",
            "cpu_startup_entry",
            "arch_cpu_idle",
            "psw_idle",
            "psw_idle_exit",
            "ext_int_handler",
            "do_ext_irq",
            "do_irq_async",
            "handle_irq_desc",
            "do_ext_interrupt",
            "io_int_handler",
            "irqentry_exit",
            "preempt_schedule_irq",
            "mcck_int_handler",
            "s390_do_machine_check",
            "restart_int_handler",
            "do_restart",
            "smp_call_ipl_cpu",
            "pgm_check_handler",
            "do_page_fault",
            "handle_mm_fault",
            "copy_from_user_fault",
            "return_to_handler",
            "__kretprobe_trampoline",
            "arch_rethook_trampoline",
            "vfs_read",
            "ksys_read",
            "pipe_read",
            "start_kernel",
        ):
            self.add_function(name, 0x1000)
        self.restart_stack = self.alloc(THREAD_SIZE, THREAD_SIZE)
        self.cpu_stacks: list[dict[str, int]] = []
        for _ in range(cpus):
            stacks = {
                "irq": self.vmalloc(THREAD_SIZE, THREAD_SIZE)[0],
                "nodat": self.alloc(THREAD_SIZE, THREAD_SIZE),
                "restart": self.restart_stack,
            }
            if self.has_mcck:
                stacks["mcck"] = self.vmalloc(THREAD_SIZE, THREAD_SIZE)[0]
            self.cpu_stacks.append(stacks)
        self._ncpus = cpus
        self.init_task = self._new_task_struct()
        self.add_symbol("init_task", self.init_task, "D")
        head = self.init_task + self.offsets["task_struct.tasks"]
        self.put_u64(head, head)  # an empty circular list
        self.put_u64(head + 8, head)
        self._last_in_list = self.init_task
        self.modules_head = 0

    @property
    def stack_init_offset(self) -> int:
        """THREAD_SIZE - STACK_FRAME_OVERHEAD - sizeof(pt_regs)."""
        return THREAD_SIZE - STACK_FRAME_OVERHEAD - self.pt_regs_size

    def ip(self, function: str, offset: int = 0) -> int:
        """Address of ``function + offset`` (the function is added, 4 KiB long, if new)."""
        for addr, _, n in self.symbols:
            if n == function:
                return addr + offset
        return self.add_function(function, 0x1000) + offset

    # -- tasks -----------------------------------------------------------------------------------
    def _new_task_struct(self) -> int:
        return self.alloc(self.sizes["task_struct"], 64)

    def add_task(
        self,
        pid: int,
        comm: str,
        state: str = "S",
        *,
        kthread: bool = False,
        idle: bool = False,
        with_stack: bool = True,
        cpu: int = 0,
        address: int | None = None,
    ) -> SyntheticTask:
        """Write a task_struct (linked into init_task.tasks) with a VMAP stack."""
        o = self.offsets
        addr = address if address is not None else self._new_task_struct()
        stack = self.vmalloc(THREAD_SIZE, THREAD_SIZE)[0] if with_stack else 0
        self.put_u64(addr + o["task_struct.stack"], stack)
        self.write(addr + o["task_struct.pid"], struct.pack(">I", pid))
        self.write(addr + o["task_struct.tgid"], struct.pack(">I", pid))
        self.write(addr + o["task_struct.comm"], comm.encode()[:15].ljust(16, b"\0"))
        self.write(addr + o["task_struct.__state"], struct.pack(">I", TASK_STATES[state]))
        exit_state = {"Z": 0x20, "X": 0x10}.get(state, 0)
        self.write(addr + o["task_struct.exit_state"], struct.pack(">I", exit_state))
        flags = (PF_KTHREAD if kthread else 0) | (PF_IDLE if idle else 0)
        self.write(addr + o["task_struct.flags"], struct.pack(">I", flags))
        self.write(addr + o["task_struct.thread_info.cpu"], struct.pack(">I", cpu))
        self.put_u64(addr + o["task_struct.real_parent"], self.init_task)
        self.write(addr + o["task_struct.curr_ret_stack"], struct.pack(">i", -1))
        task = SyntheticTask(addr, pid, comm, stack)
        if addr != self.init_task:
            self._link(addr)
        self.tasks.append(task)
        return task

    def _link(self, addr: int) -> None:
        off = self.offsets["task_struct.tasks"]
        head = self.init_task + off
        node = addr + off
        prev = self._last_in_list + off
        self.put_u64(prev, node)  # prev->next
        self.put_u64(node + 8, prev)  # node->prev
        self.put_u64(node, head)  # node->next = head
        self.put_u64(head + 8, node)  # head->prev
        self._last_in_list = addr

    def add_module(
        self,
        name: str,
        text_size: int = 0x4000,
        symbols: Sequence[tuple[str, int, str]] = (),
        taints: int = 0,
    ) -> int:
        """Load a module (v6.1 ``struct module`` layout): returns the start of its text,
        which lies in vmalloc space like real module code.

        Args:
            symbols: (name, offset into the text, type letter) of its kallsyms
                (``module->kallsyms`` -> symtab/strtab/typetab, as kernel/module/kallsyms.c
                keeps them; entry 0 is the null symbol).
            taints: ``module->taints`` bits.
        """
        o = self.offsets
        if not self.modules_head:
            self.modules_head = self.alloc(16, 8)
            self.add_symbol("modules", self.modules_head, "d")
            self.put_u64(self.modules_head, self.modules_head)
            self.put_u64(self.modules_head + 8, self.modules_head)
        module = self.alloc(0x500, 64)
        text, _ = self.vmalloc(text_size)
        self.write(module + o["module.name"], name.encode()[:55].ljust(56, b"\0"))
        self.put_u64(module + o["module.core_layout.base"], text)
        self.write(module + o["module.core_layout.text_size"], struct.pack(">I", text_size))
        self.write(module + o["module.core_layout.size"], struct.pack(">I", text_size + 0x1000))
        self.put_u64(module + o["module.taints"], taints)
        if symbols:
            strtab = b"\0" + b"".join(n.encode() + b"\0" for n, _, _ in symbols)
            rows = [bytes(24)]
            pos = 1
            for sym_name, offset, _ in symbols:
                rows.append(struct.pack(">IBBHQQ", pos, 0x12, 0, 1, text + offset, 0))
                pos += len(sym_name) + 1
            symtab = self.alloc(24 * len(rows), 8)
            self.write(symtab, b"".join(rows))
            strings = self.alloc(len(strtab), 8)
            self.write(strings, strtab)
            typetab = self.alloc(len(rows), 8)
            self.write(typetab, b" " + "".join(t for _, _, t in symbols).encode())
            kallsyms = self.alloc(32, 8)
            self.put_u64(kallsyms + o["mod_kallsyms.symtab"], symtab)
            self.write(kallsyms + o["mod_kallsyms.num_symtab"], struct.pack(">I", len(rows)))
            self.put_u64(kallsyms + o["mod_kallsyms.strtab"], strings)
            self.put_u64(kallsyms + o["mod_kallsyms.typetab"], typetab)
            self.put_u64(module + o["module.kallsyms"], kallsyms)
        node, head = module + o["module.list"], self.modules_head
        last = _U64.unpack(self._read(head + 8, 8))[0]  # head->prev
        self.put_u64(last, node)
        self.put_u64(node, head)
        self.put_u64(node + 8, last)
        self.put_u64(head + 8, node)
        return text

    def set_ksp(self, task: SyntheticTask, ksp: int) -> None:
        """Set ``thread.ksp``."""
        task.ksp = ksp
        self.put_u64(task.address + self.offsets["task_struct.thread.ksp"], ksp)

    # -- stacks ----------------------------------------------------------------------------------
    def write_pt_regs(
        self,
        address: int,
        *,
        psw: tuple[int, int],
        gprs: Mapping[int, int] | None = None,
        int_code: int = 0,
        flags: int = 0,
    ) -> None:
        """Write a pt_regs of this kernel's layout at ``address`` (virtual)."""
        from parsers.s390.structs import build_pt_regs

        self.write_va(
            address,
            build_pt_regs(
                self.pt_regs_layout, psw=psw, gprs=dict(gprs or {}), int_code=int_code, flags=flags
            ),
        )

    def write_frame(self, sp: int, *, r14: int, back_chain: int, r15: int | None = None) -> None:
        """Write a 160-byte packed stack frame at ``sp`` (virtual)."""
        from parsers.s390.structs import build_stack_frame

        self.write_va(
            sp,
            build_stack_frame(
                gprs={14: r14, 15: r15 if r15 is not None else sp}, back_chain=back_chain
            ),
        )

    def lay_frames(self, top_sp: int, frames: list[Frame], last_back_chain: int = 0) -> list[int]:
        """Lay out ``frames`` (innermost first) downward from ``top_sp`` (the outermost
        frame's address); returns each frame's sp, innermost first."""
        # A frame's size is the distance from its sp up to its caller's (the next outer) sp.
        sps = [top_sp]
        for frame in reversed(frames[:-1]):
            sps.append(sps[-1] - max(frame.size, STACK_FRAME_OVERHEAD))
        sps.reverse()
        for i, (frame, sp) in enumerate(zip(frames, sps, strict=True)):
            chain = sps[i + 1] if i + 1 < len(sps) else last_back_chain
            if frame.back_chain is not None:
                chain = frame.back_chain
            r14 = frame.r14 if frame.r14 is not None else self.ip(frame.function, frame.offset)
            self.write_frame(sp, r14=r14, back_chain=chain)
            if frame.r14 is None and frame.offset >= 6:
                callee = self.ip(frames[i - 1].function) if i else r14
                self.write_call(r14, callee)
        return sps

    def write_call(self, return_address: int, target: int) -> None:
        """Put ``brasl %r14,target`` right before ``return_address`` (kernel text), as the
        compiler does at every call site: the call-site check then finds the call."""
        offset = (target - (return_address - 6)) // 2
        self.write(return_address - 6, b"\xc0\xe5" + (offset & 0xFFFFFFFF).to_bytes(4, "big"))

    def task_stack(
        self,
        task: SyntheticTask,
        frames: list[Frame],
        *,
        user: bool = True,
        psw_addr: int = 0x1000_1000,
        kthread_fn: str = "worker_thread",
    ) -> list[int]:
        """Lay a complete sleeping stack: ``frames`` (innermost first) down from the frame
        at STACK_INIT_OFFSET (back chain 0), final pt_regs on top, ``ksp`` = innermost.

        Args:
            user: final pt_regs hold a user PSW (a task in a system call); else a kernel
                thread's zeroed pt_regs with a kernel PSW.
        """
        top = task.stack + self.stack_init_offset
        regs_at = top + STACK_FRAME_OVERHEAD
        if user:
            self.write_pt_regs(
                regs_at,
                psw=(USER_PSW_MASK, psw_addr),
                gprs={15: 0x3FFF_FFF0_000},
                int_code=0x20072,
                flags=1,
            )
        else:
            self.write_pt_regs(regs_at, psw=(KERNEL_PSW_MASK, 0))
        sps = self.lay_frames(top, frames)
        self.set_ksp(task, sps[0])
        return sps

    def irq_stack(self, cpu: int) -> int:
        """Virtual base of CPU ``cpu``'s irq (async) stack."""
        return self.cpu_stacks[cpu]["irq"]

    def stack_top_frame(self, base: int) -> int:
        """``base + STACK_INIT_OFFSET``: where the lowcore's stack pointers point."""
        return base + self.stack_init_offset

    # -- CPUs ------------------------------------------------------------------------------------
    def run_on_cpu(
        self, cpu: int, task: SyntheticTask, psw: tuple[int, int], gprs: Mapping[int, int]
    ) -> None:
        """Make ``task`` current on CPU ``cpu`` with these registers."""
        stacks = self.cpu_stacks[cpu]
        lowcore: dict[str, object] = {
            "current_task": task.address,
            "kernel_stack": (task.stack + self.stack_init_offset) if task.stack else 0,
            "async_stack": stacks["irq"] + self.stack_init_offset,
            "nodat_stack": stacks["nodat"] + self.stack_init_offset,
            "restart_stack": stacks["restart"] + self.stack_init_offset,
            "current_pid": task.pid,
            "cpu_nr": cpu,
        }
        if "mcck" in stacks:
            lowcore["mcck_stack"] = stacks["mcck"] + self.stack_init_offset
        self.add_cpu(psw, dict(gprs), lowcore)

    def profile(self) -> TypeProfile:
        """The type profile of this synthetic kernel."""
        return TypeProfile(
            release=self.release,
            build_id=None,
            source="synthetic",
            offsets=self.offsets,
            sizes=self.sizes,
        )

    def save(self, folder: str | Path, name: str = "vmcore") -> Path:
        """Write the dump, System.map and ``profile.json``."""
        if len(self.cpus) < self._ncpus:
            raise ValueError("every CPU needs a current task: call run_on_cpu()")
        dump = super().save(folder, name)
        self.profile().save(Path(folder) / "profile.json")
        return dump
