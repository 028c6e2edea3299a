"""The ``backchain`` command: argument parsing and printing (nothing else prints).

``backchain DUMP`` opens the explorer; subcommands print text or ``--json``. Bad input is
one line on stderr and exit status 2; analysis that ran exits 0 whatever it found.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from parsers.errors import DumpError

EXIT_OK = 0
EXIT_BAD_INPUT = 2

Handler = Callable[[argparse.Namespace], int]
_HANDLERS: dict[str, Handler] = {}


def _common(parser: argparse.ArgumentParser) -> None:
    """Options every subcommand and the TUI share."""
    g = parser.add_argument_group("symbols and types (found beside the dump when omitted)")
    g.add_argument("--vmlinux", metavar="FILE", help="vmlinux with symbols (and DWARF types)")
    g.add_argument("--map", metavar="FILE", dest="system_map", help="System.map (or .zst)")
    g.add_argument("--profile", metavar="FILE", help="type profile made by 'backchain profile'")
    g.add_argument(
        "--era",
        choices=("v5.5", "current"),
        help="unwinder rules to apply (default: from the kernel release)",
    )


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the subcommands."""
    parser = argparse.ArgumentParser(
        prog="backchain",
        description="Explore s390x Linux kernel dumps: stack frames, pt_regs, lowcore, and "
        "why a stack trace is or is not reliable. 'backchain DUMP' opens the explorer.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("info", help="one-screen triage card of a dump (CPUs, memory, kernel)")
    p.add_argument("dump", help="dump file (ELF vmcore, optionally .zst)")
    _common(p)
    _json_flag(p)
    p.set_defaults(handler=cmd_info)

    p = sub.add_parser("ps", help="every task: pid, ppid, CPU, task address, state, comm")
    p.add_argument("dump", help="dump file")
    _common(p)
    _json_flag(p)
    p.add_argument(
        "-v", "--verbose", action="store_true", help="also say where each struct offset came from"
    )
    p.set_defaults(handler=cmd_ps)
    return parser


def build_tui_parser() -> argparse.ArgumentParser:
    """The parser of ``backchain [DUMP]`` (the explorer)."""
    parser = argparse.ArgumentParser(
        prog="backchain",
        usage="backchain [DUMP] [options]  |  backchain COMMAND ...",
        description="Open DUMP (default: the bundled sample) in the explorer. Commands: "
        + ", ".join(_command_names())
        + " ('backchain COMMAND --help').",
    )
    parser.add_argument("dump", nargs="?", help="dump file (default: the bundled sample)")
    _common(parser)
    return parser


def _command_names() -> list[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


# -- formatting helpers ------------------------------------------------------------------------
def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << (shift - 10)) == 0:
            return f"{n / (1 << shift):g} {unit}"
    return f"{n} bytes"


def _w(value: str | None) -> str:
    """A ``"0x…"`` string from the facts as a full 64-bit word (``0x%016x``)."""
    return "?" if value is None else f"0x{int(value, 16):016x}"


def _print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _options(args: argparse.Namespace) -> Any:
    from explorer.kernel import Options

    return Options(
        vmlinux=args.vmlinux, system_map=args.system_map, profile=args.profile, era=args.era
    )


def _open(args: argparse.Namespace) -> Any:
    from explorer.kernel import Kernel

    return Kernel.open(args.dump, _options(args), progress=_progress_printer())


def _progress_printer() -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None
    last = [-1]

    def show(done: int, total: int) -> None:
        pct = 100 * done // total if total else 100
        if pct != last[0]:
            last[0] = pct
            sys.stderr.write(f"\rdecompressing the dump once into the cache: {pct:3d}%")
            if pct >= 100:
                sys.stderr.write("\n")
            sys.stderr.flush()

    return show


# -- info ----------------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    """``backchain info``."""
    from explorer.facts import info_facts

    kernel = _open(args)
    facts = info_facts(kernel)
    if args.json:
        _print_json(facts)
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
    row("memory", f"{_size(mem['size'])} in {len(mem['ranges'])} range(s): {ranges}{more}")
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
    row(
        "lowcore",
        f"era {f['lowcore_era']}; pt_regs {f['pt_regs']['size']} bytes "
        f"({f['pt_regs']['layout']}); THREAD_SIZE {_size(f['thread_size'])} "
        f"({f['thread_size_source']})",
    )
    row("CPUs", len(f["cpus"]))
    lines.append("")
    lines.append(f"{'CPU':>3}  {'prefix':<10} {'current task':<18} {'PSW mask':<18} PSW address")
    for c in f["cpus"]:
        psw = c["psw"]
        where = "user mode" if psw["user_mode"] else (psw["symbol"] or "")
        if psw["wait"]:
            where = f"{where} (wait state)".strip()
        lines.append(
            f"{c['cpu']:>3}  {c['prefix'] or '?':<10} {_w(c['current_task'])} "
            f"{_w(psw['mask'])} {_w(psw['addr'])}  {where}"
        )
        lines.append(f"{'':16}{psw['bits']}   r15 {_w(c['r15'])}")
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


# -- ps ------------------------------------------------------------------------------------------
def task_json(task: Any) -> dict[str, Any]:
    """The JSON of one task (shared by ps, bt and check)."""
    return {
        "pid": task.pid,
        "tgid": task.tgid,
        "ppid": task.ppid,
        "comm": task.comm,
        "state": task.state,
        "cpu": task.cpu,
        "task": f"0x{task.address:x}",
        "stack": f"0x{task.stack:x}" if task.stack else None,
        "ksp": f"0x{task.ksp:x}",
        "kthread": task.is_kthread,
        "idle": task.is_idle,
    }


def cmd_ps(args: argparse.Namespace) -> int:
    """``backchain ps``: like crash's ps."""
    from explorer.tasks import find_tasks

    kernel = _open(args)
    scan = find_tasks(kernel)
    tasks = sorted(scan.tasks, key=lambda t: (t.pid, t.cpu if t.cpu is not None else -1))
    if args.json:
        _print_json({"tasks": [task_json(t) for t in tasks], "warnings": scan.warnings})
        return EXIT_OK
    print(f"   {'PID':>6} {'PPID':>6} {'CPU':>3} {'TASK':<16} {'ST':<2} COMM")
    for t in tasks:
        mark = ">" if t.running else " "
        ppid = "?" if t.ppid is None else str(t.ppid)
        cpu = t.cpu if t.cpu is not None else t.last_cpu
        comm = f"[{t.comm}]" if t.is_kthread or t.is_idle else t.comm
        print(f"{mark}  {t.pid:>6} {ppid:>6} {cpu:>3} {t.address:016x} {t.state:<2} {comm}")
    for w in scan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.verbose and kernel.types is not None:
        for key in (
            "task_struct.tasks",
            "task_struct.pid",
            "task_struct.comm",
            "task_struct.stack",
            "task_struct.thread.ksp",
        ):
            if kernel.types.has(key):
                print(
                    f"offset {key} = 0x{kernel.types.offset(key):x} "
                    f"({kernel.types.source_of(key)})",
                    file=sys.stderr,
                )
    return EXIT_OK


# -- entry point -------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``backchain``; returns the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] in _command_names():
            args = build_parser().parse_args(args_list)
            handler: Handler = args.handler
            return handler(args)
        return run_tui(build_tui_parser().parse_args(args_list))
    except DumpError as exc:
        print(f"backchain: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


def run_tui(args: argparse.Namespace) -> int:
    """Open the explorer (the TUI arrives with its issue; until then, print the card)."""
    from explorer.samples import default_sample

    if args.dump is None:
        args.dump = default_sample()
    args.json = False
    return cmd_info(args)
