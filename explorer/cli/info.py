"""``backchain info``: the one-screen triage card."""

from __future__ import annotations

import argparse
from typing import Any

from explorer.cli.common import (
    EXIT_OK,
    common_options,
    json_flag,
    open_kernel,
    print_json,
    size_text,
    word,
)


def register(sub: Any) -> None:
    """Add the subcommand's parser."""
    p = sub.add_parser("info", help="one-screen triage card of a dump (CPUs, memory, kernel)")
    p.add_argument(
        "dump",
        help="dump file: ELF vmcore, compressed kdump (also flattened or split), s390 or "
        "s390_ext stand-alone dump; any of them .zst-compressed",
    )
    common_options(p)
    json_flag(p)
    p.set_defaults(handler=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    """``backchain info``."""
    from explorer.livepatch.summary import livepatch_summary
    from explorer.reports.info import info_facts

    kernel = open_kernel(args)
    facts = info_facts(kernel)
    livepatch = livepatch_summary(kernel)
    if livepatch is not None:  # only kernels with a livepatch loaded
        facts["livepatch"] = livepatch
    if args.json:
        print_json(facts)
        return EXIT_OK
    print(render_info(facts))
    return EXIT_OK


def render_info(f: dict[str, Any]) -> str:
    """The text card of ``backchain info``."""
    lines = []

    def row(label: str, value: object) -> None:
        lines.append(f"{label:<13}{value}")

    mem = f["memory"]
    ranges = ", ".join(f"{a}-{b}" for a, b in mem["ranges"][:4])
    more = f" (+{len(mem['ranges']) - 4} more)" if len(mem["ranges"]) > 4 else ""
    lay = f["va_layout"]
    row("dump", f["dump"])
    row("format", f["format"])
    row("arch", "s390x (64-bit big-endian, z/Architecture)")
    row("release", f["release"] or "unknown")
    if f["crash_time"]:
        import datetime

        when = datetime.datetime.fromtimestamp(f["crash_time"], datetime.UTC)
        row("crash time", when.strftime("%Y-%m-%d %H:%M:%S UTC"))
    row("memory", f"{size_text(mem['size'])} in {len(mem['ranges'])} range(s): {ranges}{more}")
    if f.get("panic"):
        pan = f["panic"]
        where = f"on CPU {pan['cpu']}" if pan["cpu"] is not None else ""
        row("PANIC", f"{where} {pan['message'] or ''}".strip())
    if f.get("livepatch"):
        row("livepatch", f["livepatch"])
    row("KASLR offset", f["kaslr_offset"] or "unknown")
    if lay["kind"] == "split":
        row(
            "VA layout",
            f"v6.10+: identity map at {lay['identity_base']}, kernel image at "
            f"{lay['kernel_base']} (physical {lay['kernel_base_phys']})",
        )
    else:
        row("VA layout", "legacy (<= v6.9): identity map at 0, kernel image inside it")
    row("kernel ASCE", f["kernel_asce"] or "unknown")
    row("VMCOREINFO", f["vmcoreinfo"] or "none")
    sym = f["symbols"]
    row(
        "symbols",
        f"{sym['count']} from {sym['source']}"
        if sym
        else "none (pass --map System.map or --vmlinux)",
    )
    types = f["types"]
    if types and types["source"] == "probe":  # one evidence per offset: `ps -v` shows them
        n = sum(types["values_by_source"].values())
        row(
            "types",
            f"probe ({n} values inferred from the dump, `ps -v` names each one's evidence; "
            "not inferred: ftrace ret_stack, kretprobe/rethook lists, module taints)",
        )
    elif types:
        others = {k: v for k, v in types["values_by_source"].items() if k != types["source"]}
        more = "".join(f"; {n} from {src}" for src, n in others.items())
        row("types", f"{types['source']}{more}")
    else:
        row("types", "none (pass --vmlinux with debug info or --profile FILE)")
    pt = f["pt_regs"]
    tail = ", ".join(
        f"{name} at {pt[name]}" if pt[name] else f"no {name}" for name in ("last_break", "cr1")
    )
    row("pt_regs", f"{pt['size']} bytes, layout {pt['layout']}: {tail} ({pt['source']})")
    row("lowcore", f"layout {f['lowcore']['layout']} ({f['lowcore']['source']})")
    row("stack_frame", f"{f['stack_frame']['size']} bytes ({f['stack_frame']['source']})")
    row("THREAD_SIZE", f"{size_text(f['thread_size'])} ({f['thread_size_source']})")
    row("CPUs", len(f["cpus"]))
    facts = f.get("format_facts") or {}  # dump-format facts (issue 8)
    if facts:
        import textwrap

        text = "; ".join(f"{k} {v}" for k, v in facts.items())
        wrapped = textwrap.wrap(text, 100 - 13, break_long_words=False)
        lines.extend(f"{'format facts' if i == 0 else '':<13}{t}" for i, t in enumerate(wrapped))
    lines.append("")
    lines.append(f"{'CPU':>3}  {'prefix':<10} {'current task':<18} {'PSW mask':<18} PSW address")
    for c in f["cpus"]:
        psw = c["psw"]
        where = "user mode" if psw["user_mode"] else (psw["symbol"] or "")
        if psw["wait"]:
            where = f"{where} (wait state)".strip()
        lines.append(
            f"{c['cpu']:>3}  {c['prefix'] or '?':<10} {word(c['current_task'])} "
            f"{word(psw['mask'])} {word(psw['addr'])}  {where}"
        )
        lines.append(f"{'':16}{psw['bits']}   r15 {word(c['r15'])}")
        if c["stacks"]:
            lines.append(
                f"{'':16}" + "  ".join(f"{t} {a}-{b}" for t, (a, b) in c["stacks"].items())
            )
        if c.get("lowcore"):
            lastint = c["lowcore"]["last_interrupts"]
            shown = [
                f"{k}:{v['symbol'] or v['addr']}"
                for k, v in lastint.items()
                if k in ("external", "io", "program", "svc")
            ]
            if shown:
                lines.append(f"{'':16}old PSWs  " + "  ".join(shown))
        if c["problem"]:
            lines.append(f"{'':16}! {c['problem']}")
    for w in f["warnings"]:
        lines.append(f"note: {w}")
    return "\n".join(lines)
