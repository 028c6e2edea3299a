"""Small synthetic dumps written by code, shared by several test modules."""

from __future__ import annotations

from pathlib import Path

from explorer.training.synthetic import KERNEL_PSW_MASK, KERNEL_WAIT_PSW_MASK, SyntheticDump


def two_cpu_dump(folder: Path, vmcoreinfo_note: bool = False) -> Path:
    """A 2-CPU v6.1-style dump: CPU 0 idle in wait state, CPU 1 running kernel code."""
    d = SyntheticDump(vmcoreinfo_note=vmcoreinfo_note)
    idle = d.add_function("arch_cpu_idle", 0x100)
    work = d.add_function("do_work", 0x300)
    d.add_function("ext_int_handler", 0x100)
    d.vmcoreinfo["SYMBOL(_stext)"] = "100000"
    d.vmcoreinfo["KERNELOFFSET"] = "0"
    stacks = {}
    for cpu in range(2):
        for kind in ("async", "nodat", "mcck"):
            base = d.alloc(16384, align=16384)
            stacks[cpu, kind] = base + 16384 - 160 - 200
    restart = d.alloc(16384, align=16384) + 16384 - 160 - 200
    task0, task1 = d.alloc(4096, 64), d.alloc(4096, 64)
    d.add_cpu(
        (KERNEL_WAIT_PSW_MASK, idle + 0x1C),
        {15: stacks[0, "async"] - 0x400},
        {
            "current_task": task0,
            "async_stack": stacks[0, "async"],
            "nodat_stack": stacks[0, "nodat"],
            "mcck_stack": stacks[0, "mcck"],
            "restart_stack": restart,
            "current_pid": 0,
        },
    )
    d.add_cpu(
        (KERNEL_PSW_MASK, work + 0x42),
        {15: 0x2100000},
        {
            "current_task": task1,
            "async_stack": stacks[1, "async"],
            "nodat_stack": stacks[1, "nodat"],
            "mcck_stack": stacks[1, "mcck"],
            "restart_stack": restart,
            "current_pid": 42,
            "external_old_psw": (KERNEL_PSW_MASK, work + 0x10),
        },
    )
    d.map_page(0x37F00000000, 0x3000000)  # one vmalloc page, to need the DAT walk
    d.put_u64(0x3000000, 0xFEEDFACECAFEBEEF)
    return d.save(folder)
