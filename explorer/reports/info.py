"""The triage facts of a dump (``backchain info``), as plain data for text, JSON and the TUI."""

from __future__ import annotations

from typing import Any

from explorer.model.kernel import Cpu, Kernel
from parsers.s390.layouts import PT_REGS_LAYOUTS, STACK_FRAME_SIZE


def hexaddr(value: int | None) -> str | None:
    """Addresses in JSON: ``"0x…"`` strings (None stays None)."""
    return None if value is None else f"0x{value:x}"


def dump_format(kernel: Kernel) -> str:
    """A one-line description of the dump format and its producer."""
    fmt = getattr(kernel.dump, "format", "elf")
    if fmt != "elf":
        return {
            "kdump": "compressed kdump (makedumpfile/diskdump)",
            "kdump-flat": "flattened compressed kdump (makedumpfile -F)",
            "s390": "s390 stand-alone dump",
            "s390_ext": "s390_ext stand-alone dump",
        }.get(fmt, fmt)
    from parsers.write.origin import converted_from

    origin = converted_from(kernel.dump.notes)
    if origin:
        return f"ELF vmcore (converted by backchain from {origin})"
    names = [n.name for n in kernel.dump.notes]
    cpu_notes = kernel.cpus[0].registers.note_names if kernel.cpus else ()
    if "VMCOREINFO" in names:
        producer = "kdump / zgetdump style (VMCOREINFO note)"
    elif "S390_GS_CB" in cpu_notes or any(c.registers.pid_swapped for c in kernel.cpus):
        producer = "QEMU dump-guest-memory"
    else:
        producer = "no VMCOREINFO note"
    return f"ELF vmcore ({producer})"


def cpu_facts(kernel: Kernel, cpu: Cpu) -> dict[str, Any]:
    """Facts of one CPU for display and JSON."""
    regs = cpu.registers
    psw = regs.psw
    out: dict[str, Any] = {
        "cpu": cpu.number,
        "note_index": regs.index,
        "prefix": hexaddr(regs.prefix),
        "psw": {
            "mask": hexaddr(psw.mask),
            "addr": hexaddr(psw.addr),
            "bits": psw.describe(),
            "user_mode": psw.user_mode,
            "wait": bool(psw.wait),
            "symbol": None if psw.user_mode else kernel.psw_name(psw.addr),
        },
        "r15": hexaddr(regs.gprs[15]),
        "current_task": hexaddr(cpu.current_task),
        "problem": cpu.problem,
    }
    lc = cpu.lowcore
    if lc is not None:
        out["lowcore"] = {
            "kernel_asce": hexaddr(lc.kernel_asce),
            "percpu_offset": hexaddr(lc.percpu_offset),
            "preempt_count": hexaddr(lc.preempt_count & 0xFFFFFFFF),
            "current_pid": lc.current_pid,
            "kernel_stack": hexaddr(lc.kernel_stack),
            "last_interrupts": {
                name: {
                    "addr": hexaddr(p.addr),
                    "symbol": None if p.user_mode else kernel.symbolize(p.addr),
                    "user_mode": p.user_mode,
                }
                for name, p in lc.old_psws.items()
                if p.addr or p.mask
            },
        }
    out["stacks"] = {s.stack_type: [hexaddr(s.begin), hexaddr(s.end)] for s in cpu.stacks}
    return out


def _panic(kernel: Kernel) -> dict[str, Any] | None:
    from explorer.model.printk import panic_info

    p = panic_info(kernel)
    if p.cpu is None and p.message is None:
        return None
    cpu = next((c for c in kernel.cpus if c.number == p.cpu), None)
    return {
        "cpu": p.cpu,
        "message": p.message,
        "task": hexaddr(cpu.current_task) if cpu is not None else None,
    }


def info_facts(kernel: Kernel) -> dict[str, Any]:
    """Everything ``backchain info`` reports."""
    lay = kernel.layout
    vi = kernel.vmcoreinfo
    return {
        "dump": kernel.path,
        "format": dump_format(kernel),
        "arch": "s390x",
        "release": kernel.release,
        "crash_time": kernel.crash_time,
        "memory": {
            "size": kernel.memory_size,
            "ranges": [[hexaddr(r.start), hexaddr(r.end)] for r in kernel.dump.ranges],
        },
        "kaslr_offset": hexaddr(kernel.kaslr_offset),
        "va_layout": {
            "kind": lay.kind,
            "identity_base": hexaddr(lay.identity_base),
            "kernel_base": hexaddr(lay.kernel_base) if lay.kind == "split" else None,
            "kernel_base_phys": hexaddr(lay.kernel_base_phys) if lay.kind == "split" else None,
        },
        "kernel_asce": hexaddr(kernel.asce),
        "vmcoreinfo": vi.source if vi else None,
        "os_info": hexaddr(kernel.os_info.address) if kernel.os_info else None,
        "symbols": (
            {
                "source": kernel.symbols.source,
                "count": len(kernel.symbols),
                "delta": hexaddr(kernel.symbols.delta),
            }
            if kernel.symbols
            else None
        ),
        "lowcore_era": kernel.lowcore_era,
        "types": _types_facts(kernel),
        "lowcore": {"layout": kernel.lowcore_era, "source": kernel.lowcore_source},
        "pt_regs": {
            "layout": kernel.pt_regs_layout,
            "size": kernel.pt_regs_size,
            "source": kernel.pt_regs_source,
            "cr1": _offset(PT_REGS_LAYOUTS[kernel.pt_regs_layout].cr1_offset),
            "last_break": _offset(PT_REGS_LAYOUTS[kernel.pt_regs_layout].last_break_offset),
        },
        "stack_frame": {"size": STACK_FRAME_SIZE, "source": kernel.stack_frame_source},
        "thread_size": kernel.thread_size,
        "thread_size_source": kernel.thread_size_source,
        "panic": _panic(kernel),
        "cpus": [cpu_facts(kernel, c) for c in kernel.cpus],
        "warnings": list(kernel.warnings),
        "format_facts": kernel.dump.format_facts(),
    }


def _offset(value: int | None) -> str | None:
    return None if value is None else f"0x{value:x}"


def _types_facts(kernel: Kernel) -> dict[str, Any] | None:
    """Where the struct offsets came from: the profile's source and, per source, how many."""
    types = kernel.types
    if types is None:
        return None
    counts: dict[str, int] = {}
    for key in (*types.offsets, *types.sizes):
        source = types.source_of(key)
        counts[source] = counts.get(source, 0) + 1
    return {
        "source": types.source,
        "release": types.release,
        "build_id": types.build_id,
        "values_by_source": counts,
        "missing": list(types.missing),
    }
