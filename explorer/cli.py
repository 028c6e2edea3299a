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


def _address(text: str) -> int:
    """An address on the command line: hex with or without 0x."""
    try:
        return int(text, 16)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a hex address: {text!r}") from None


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

    p = sub.add_parser("log", help="the kernel log (dmesg) from the printk ring buffer")
    p.add_argument("dump", help="dump file")
    p.add_argument("--tail", type=int, metavar="N", help="only the last N messages")
    p.add_argument("--grep", metavar="TEXT", help="only messages containing TEXT")
    _common(p)
    _json_flag(p)
    p.set_defaults(handler=cmd_log)

    p = sub.add_parser("profile", help="save the struct offsets backchain needs from a vmlinux")
    p.add_argument("vmlinux", help="vmlinux with DWARF (e.g. from the -dbg package)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the JSON profile here")
    _json_flag(p)
    p.set_defaults(handler=cmd_profile)

    p = sub.add_parser("bt", help="walk one stack frame by frame and judge its reliability")
    p.add_argument("dump", help="dump file")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--pid", type=int, help="task with this pid (pid 0: idle tasks)")
    who.add_argument("--task", type=_address, metavar="ADDR", help="task_struct address")
    who.add_argument("--cpu", type=int, help="the task running on this CPU, from its registers")
    who.add_argument("--sp", type=_address, metavar="ADDR", help="start at this stack pointer")
    p.add_argument("--steps", action="store_true", help="print every check of every step")
    p.add_argument("--markdown", action="store_true", help="print Markdown (course material)")
    _common(p)
    _json_flag(p)
    p.set_defaults(handler=cmd_bt)

    p = sub.add_parser("check", help="every task's reliability verdict, grouped by cause")
    p.add_argument("dump", help="dump file")
    p.add_argument(
        "--functions",
        metavar="F,G",
        default="",
        help="functions a livepatch would replace: which tasks sleep on them",
    )
    p.add_argument("--all", action="store_true", help="list every task, not just a summary")
    _common(p)
    _json_flag(p)
    p.set_defaults(handler=cmd_check)
    _add_convert_parser(sub)  # issue 8
    _add_scenarios_parser(sub)  # issue 7: training scenarios
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
    parser.add_argument(
        "--exercise",
        action="store_true",
        help="hide every verdict until you name the failing frame and rule (a answers, R reveals)",
    )
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


def _progress_printer(
    what: str = "decompressing the dump once into the cache",
) -> Callable[[int, int], None] | None:
    """A percentage on stderr while long work runs, when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None
    last = [-1]

    def show(done: int, total: int) -> None:
        pct = 100 * done // total if total else 100
        if pct != last[0]:
            last[0] = pct
            sys.stderr.write(f"\r{what}: {pct:3d}%")
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
    if f.get("panic"):
        pan = f["panic"]
        where = f"on CPU {pan['cpu']}" if pan["cpu"] is not None else ""
        row("PANIC", f"{where} {pan['message'] or ''}".strip())
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
    if args.verbose:
        from explorer.tasks import offsets_used

        print(
            f"sizeof(pt_regs) {kernel.pt_regs_size}, THREAD_SIZE {kernel.thread_size} "
            f"({kernel.thread_size_source})",
            file=sys.stderr,
        )
        for name, offset, source in offsets_used(kernel):
            print(f"offset {name} = 0x{offset:x} ({source})", file=sys.stderr)
    return EXIT_OK


# -- log -----------------------------------------------------------------------------------------
def cmd_log(args: argparse.Namespace) -> int:
    """``backchain log``: like ``dmesg`` (crash's ``log``)."""
    from explorer.printk import read_log

    kernel = _open(args)
    records = read_log(kernel)
    if args.grep:
        records = [r for r in records if args.grep in r.text]
    if args.tail is not None:
        records = records[-args.tail :] if args.tail > 0 else []
    if args.json:
        _print_json([{"seq": r.seq, "ts_nsec": r.ts_nsec, "text": r.text} for r in records])
        return EXIT_OK
    for r in records:
        print(r.line())
    return EXIT_OK


# -- profile -------------------------------------------------------------------------------------
def cmd_profile(args: argparse.Namespace) -> int:
    """``backchain profile VMLINUX -o FILE``: a few KB instead of a 200 MB vmlinux."""
    import time

    from parsers.types import WANTED, profile_from_dwarf

    started = time.monotonic()
    profile = profile_from_dwarf(args.vmlinux)
    elapsed = time.monotonic() - started
    if args.output:
        profile.save(args.output)
    if args.json:
        _print_json(json.loads(profile.to_json()))
        return EXIT_OK
    print(f"kernel      {profile.release or 'unknown release'}")
    print(f"build-id    {profile.build_id or 'none'}")
    print(f"source      {profile.source} ({elapsed:.1f} s)")
    print(
        f"recorded    {len(profile.offsets)} offsets, {len(profile.sizes)} sizes; "
        f"THREAD_SIZE {profile.sizes.get('thread_union', '?')}, "
        f"sizeof(pt_regs) {profile.sizes.get('pt_regs', '?')}"
    )
    have = sum(1 for alts in WANTED if any(profile.has(a) for a in alts))
    print(
        f"needed      {have} of {len(WANTED)} members found"
        + (f"; missing: {', '.join(profile.missing)}" if profile.missing else "")
    )
    if args.output:
        print(f"written     {args.output} (use it with --profile, or put it beside the dump)")
    return EXIT_OK


# -- bt and check ------------------------------------------------------------------------------
def _select_tasks(kernel: Any, scan: Any, args: argparse.Namespace) -> list[Any]:
    if args.pid is not None:
        tasks = scan.by_pid(args.pid)
        if not tasks:
            raise DumpError(f"no task with pid {args.pid} (see 'backchain ps')", kernel.path)
        return list(tasks)
    if args.task is not None:
        task = scan.by_address(args.task)
        if task is None:
            from explorer.tasks import read_task

            task = read_task(kernel, args.task, "--task")
        return [task]
    for cpu in kernel.cpus:
        if cpu.number == args.cpu:
            task = scan.by_address(cpu.current_task or 0)
            if task is None:
                raise DumpError(
                    f"CPU {args.cpu} runs task 0x{cpu.current_task or 0:x}, which is unreadable",
                    kernel.path,
                )
            return [task]
    raise DumpError(f"no CPU {args.cpu} in the dump (it has {len(kernel.cpus)})", kernel.path)


def cmd_bt(args: argparse.Namespace) -> int:
    """``backchain bt``."""
    from explorer.analysis import analyse_task, unwind_context, walk_sp
    from explorer.report import (
        analysis_json,
        end_json,
        step_json,
        task_header,
        verdict_text,
        walk_markdown,
        walk_text,
    )
    from explorer.tasks import find_tasks

    kernel = _open(args)
    ctx = unwind_context(kernel)
    if args.sp is not None:
        walk = walk_sp(kernel, args.sp, ctx=ctx)
        if args.json:
            _print_json(
                {
                    "sp": f"0x{args.sp:x}",
                    "era": walk.era,
                    "frames": [step_json(kernel, s, args.steps) for s in walk.steps],
                    "end": end_json(kernel, walk.end, args.steps),
                }
            )
        else:
            print(f"walk from sp 0x{args.sp:016x} (rules: {walk.era})")
            print("\n".join(walk_text(kernel, walk, args.steps)))
        return EXIT_OK
    scan = find_tasks(kernel)
    analyses = [analyse_task(kernel, t, ctx) for t in _select_tasks(kernel, scan, args)]
    if args.json:
        docs = [analysis_json(kernel, a, args.steps) for a in analyses]
        _print_json(docs[0] if len(docs) == 1 else docs)
        return EXIT_OK
    for i, a in enumerate(analyses):
        if i:
            print()
        if args.markdown:
            print(walk_markdown(kernel, a), end="")
            continue
        print(task_header(kernel, a))
        regions = "  ".join(f"{r.stack_type} 0x{r.begin:x}-0x{r.end:x}" for r in a.walk.regions.all)
        print(f"stacks: {regions or 'none'}   (rules: {a.walk.era})")
        print("\n".join(walk_text(kernel, a.walk, args.steps)))
        print("\n".join(verdict_text(a)))
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    """``backchain check``: every task's verdict, grouped by cause and by identical stack."""
    from explorer.analysis import analyse_all, unwind_context
    from explorer.report import analysis_json
    from explorer.summary import summarizer
    from explorer.tasks import find_tasks

    kernel = _open(args)
    functions = [f for f in args.functions.split(",") if f]
    ctx = unwind_context(kernel)
    scan = find_tasks(kernel)
    if args.json:  # streamed: one task at a time, nothing kept
        out = sys.stdout
        out.write("[")
        first = [True]

        def emit(a: Any) -> None:
            out.write("\n  " if first[0] else ",\n  ")
            first[0] = False
            json.dump(analysis_json(kernel, a), out)

        analyse_all(kernel, scan.tasks, ctx, functions, keep=emit)
        out.write("\n]\n")
        return EXIT_OK
    rows = analyse_all(kernel, scan.tasks, ctx, functions, keep=summarizer(kernel))
    print("\n".join(render_check(rows, functions, args.all)))
    for w in scan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return EXIT_OK


def render_check(rows: list[Any], functions: list[str], every: bool) -> list[str]:
    """The text report of ``backchain check`` from :class:`explorer.summary.TaskVerdict`."""
    from explorer.summary import blocking, by_stack, by_verdict

    total = len(rows)
    ok = sum(1 for r in rows if r.verdict.reliable)
    lines = [
        f"{total} tasks: {ok} reliable, {total - ok} not (rules: {rows[0].era if rows else '-'})",
        "",
        "by verdict:",
    ]
    lines += [f"  {n:>5}  {label}" for label, n in by_verdict(rows)]
    lines += ["", "by identical stack (most common first):"]
    for key, members in by_stack(rows):
        good = sum(1 for r in members if r.verdict.reliable)
        names = sorted({r.task.comm for r in members})
        shown = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
        stack = " <- ".join(key[:6]) + (" <- ..." if len(key) > 6 else "") if key else "(none)"
        lines.append(f"  {len(members):>5} tasks, {good} reliable  [{shown}]")
        lines.append(f"         {stack}")
    if functions:
        stuck = blocking(rows)
        lines += [
            "",
            f"livepatch transition for {', '.join(functions)}: "
            + ("would complete" if not stuck else f"{len(stuck)} task(s) would block it"),
        ]
        lines += [f"  {r.livepatch}" for r in stuck]
    if every:
        lines += ["", f"{'PID':>7} {'CPU':>3} {'ST':<2} {'COMM':<16} VERDICT"]
        for r in rows:
            cpu = "-" if r.cpu is None else str(r.cpu)
            frame = "" if r.verdict.frame is None else f" at #{r.verdict.frame}"
            lines.append(
                f"{r.task.pid:>7} {cpu:>3} {r.task.state:<2} {r.task.comm:<16} "
                f"{r.verdict.label}{frame}"
            )
    return lines


# -- convert (issue 8: dump formats) -----------------------------------------------------------
def _add_convert_parser(sub: Any) -> None:
    """Register ``backchain convert``."""
    p = sub.add_parser("convert", help="convert a dump (kdump, s390, s390_ext, ELF) to ELF")
    p.add_argument("dump", nargs="+", help="dump file (all parts of a split kdump dump)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.elf", help="ELF file to write")
    p.add_argument("--force", action="store_true", help="overwrite OUT.elf if it exists")
    p.set_defaults(handler=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    """``backchain convert DUMP -o OUT.elf [--force]``."""
    import os

    from parsers.convert import convert_to_elf
    from parsers.dumps import open_dump

    if os.path.exists(args.output) and not args.force:
        raise DumpError("exists; pass --force to overwrite it", args.output)
    dump = open_dump(args.dump if len(args.dump) > 1 else args.dump[0])
    progress = _progress_printer("converting to ELF")
    try:
        convert_to_elf(dump, args.output, progress=progress)
    finally:
        dump.close()
    return EXIT_OK


# -- scenarios (issue 7: training scenarios) ---------------------------------------------------
def _add_scenarios_parser(sub: Any) -> None:
    """Register ``backchain scenarios list|show|build|open``."""
    p = sub.add_parser("scenarios", help="training scenarios: small dumps, one lesson each")
    actions = p.add_subparsers(dest="scenarios_command", metavar="ACTION")
    a = actions.add_parser("list", help="the catalog: name, rules, title, expected verdict")
    _json_flag(a)
    a = actions.add_parser("show", help="a scenario's story and what to look for")
    a.add_argument("name", help="scenario name (see 'backchain scenarios list')")
    a.add_argument("--answer", action="store_true", help="also print the expected verdict")
    _json_flag(a)
    a = actions.add_parser("build", help="write a scenario's vmcore, System.map and profile")
    a.add_argument("name", help="scenario name")
    a.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write")
    a.add_argument("--force", action="store_true", help="write into a non-empty DIR")
    a = actions.add_parser("open", help="build a scenario into the cache and open the explorer")
    a.add_argument("name", help="scenario name")
    p.set_defaults(handler=cmd_scenarios)


def cmd_scenarios(args: argparse.Namespace) -> int:
    """``backchain scenarios ACTION``: list, show, build or open a training scenario."""
    from samples import scenarios

    action = args.scenarios_command or "list"
    if action == "list":
        if getattr(args, "json", False):
            _print_json(
                [
                    {
                        "name": s.name,
                        "title": s.title,
                        "era": s.era,
                        "release": s.release,
                        "pid": s.pid,
                        "expected": s.answer.label,
                        "answer": s.answer.to_json(),
                    }
                    for s in scenarios.SCENARIOS
                ]
            )
            return EXIT_OK
        width = max(len(s.name) for s in scenarios.SCENARIOS)
        print(f"{'NAME':<{width}}  {'RULES':<7}  {'EXPECTED VERDICT':<38}  TITLE")
        for s in scenarios.SCENARIOS:
            at = "" if s.answer.frame is None else f" at #{s.answer.frame}"
            print(f"{s.name:<{width}}  {s.era:<7}  {s.answer.label + at:<38}  {s.title}")
        return EXIT_OK
    scenario = scenarios.get(args.name)
    if action == "show":
        if args.json:
            _print_json(scenario.to_json(answer=args.answer))
            return EXIT_OK
        print("\n".join(_scenario_text(scenario, args.answer)))
        return EXIT_OK
    if action == "build":
        import os

        if os.path.isdir(args.output) and os.listdir(args.output) and not args.force:
            raise DumpError("is not empty; pass --force to write the scenario into it", args.output)
        if os.path.exists(args.output) and not os.path.isdir(args.output):
            raise DumpError("exists and is not a folder", args.output)
        dump = scenario.build(args.output)
        print(f"built scenario {scenario.name} ({scenario.era} rules, {scenario.release})")
        print(f"  {dump}  {dump.parent / 'System.map'}  {dump.parent / 'profile.json'}")
        print("next:")
        print(f"  backchain scenarios show {scenario.name}     # the story")
        print(f"  backchain bt {dump} --pid {scenario.pid}")
        print(f"  backchain bt {dump} --pid {scenario.pid} --markdown")
        print(f"  backchain check {dump} --all")
        print(f"  backchain {dump}     # the explorer")
        return EXIT_OK
    return _open_scenario(scenario)


def _scenario_text(scenario: Any, answer: bool) -> list[str]:
    import textwrap

    where = f"running on CPU {scenario.cpu}" if scenario.cpu is not None else "asleep"
    lines = [
        f"{scenario.name}: {scenario.title}",
        f"rules {scenario.era}, kernel {scenario.release}; examine pid {scenario.pid} ({where})",
        "",
        *textwrap.wrap(scenario.story, 96),
        "",
        "What to look for:",
        *textwrap.wrap(scenario.look_for, 96, initial_indent="  ", subsequent_indent="  "),
    ]
    if answer:
        a = scenario.answer
        lines += ["", f"Answer: {a.summary}; the walk ends: {a.end}"]
    else:
        lines += ["", f"(the answer: backchain scenarios show {scenario.name} --answer)"]
    return lines


def _open_scenario(scenario: Any) -> int:
    """Build into ``$XDG_CACHE_HOME/backchain/scenarios/NAME`` and open the explorer there;
    without the explorer, print ``bt`` of the scenario's task."""
    import importlib.util
    import os
    from pathlib import Path

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    dump = scenario.build(Path(base) / "backchain" / "scenarios" / scenario.name)
    try:
        has_tui = importlib.util.find_spec("explorer.tui.app") is not None
    except ImportError:
        has_tui = False
    if has_tui:
        args = build_tui_parser().parse_args([str(dump)])
        args.scenario = scenario.name  # for an exercise mode of the explorer
        return run_tui(args)
    print(f"(the explorer is not available; bt of pid {scenario.pid} in {dump})")
    return cmd_bt(build_parser().parse_args(["bt", str(dump), "--pid", str(scenario.pid)]))


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
    """Open the explorer on DUMP (default: the bundled sample). Errors opening the dump are
    shown inside the explorer, which keeps running."""
    from explorer.samples import default_sample
    from explorer.tui.app import run

    if args.dump is None:
        args.dump = default_sample()
    scenario = getattr(args, "scenario", None)  # set by 'backchain scenarios open NAME'
    exercise = bool(getattr(args, "exercise", False)) or scenario is not None
    return run(args.dump, _options(args), exercise=exercise, scenario=scenario)
