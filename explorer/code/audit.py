"""``backchain audit``: functions that allocate a stack frame without storing a back chain,
and code that switches stacks.

The seed thread: "All functions written in assembler code should do the same [store the
back chain], if you find one that does not we should fix that." A function compiled
without ``-mbackchain`` (a module or livepatch module built apart from the kernel) is where
real gaps are: the back-chain unwinder cannot get past its frame.

Whole functions are scanned, not a prefix (some allocate their frame after 20+
instructions). Only instructions naming %r15 can allocate a frame, store the back chain
at 152(%r15) or load r15, so the others are skipped before their operands are parsed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from explorer.code.effects import effect_of
from explorer.code.insn import Instruction, decode
from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel


@dataclass(frozen=True, slots=True)
class Finding:
    """One function the audit reports.

    Attributes:
        kind: ``no_back_chain`` (allocates a frame, stores no back chain) or
            ``switches_stack`` (loads r15 with another stack's address).
        function: its name. address: its start. size: its length.
        at: the instruction that allocates the frame or loads r15.
        back_chain: what it stores at 152(%r15) (``zero``, ``rN``, ``other``) and where,
            or None if nothing; for ``no_back_chain``, ``unpacked`` if it stores the old r15
            at 0(%r15) instead (the layout without -mpacked-stack).
        section: the ELF section (objects and modules), else None.
    """

    kind: str
    function: str
    address: int
    size: int
    at: Instruction
    back_chain: tuple[str, Instruction] | None
    section: str | None = None

    @property
    def detail(self) -> str:
        """One line: what it does and where."""
        off = self.at.address - self.address
        what = f"+0x{off:x} {self.at.text}"
        if self.kind == "no_back_chain":
            if self.back_chain is not None:
                at = self.back_chain[1].address - self.address
                return (
                    f"allocates its frame at {what}; stores the old r15 at 0(%r15) (+0x{at:x}, "
                    "the unpacked layout), never at 152(%r15) where the unwinder reads it"
                )
            return f"allocates its frame at {what} and never stores a back chain"
        if self.back_chain is None:
            return f"loads r15 at {what}; stores no back chain"
        how, insn = self.back_chain
        verb = "zeroes the back chain" if how == "zero" else f"stores a back chain ({how})"
        return f"loads r15 at {what}; {verb} at +0x{insn.address - self.address:x}"


@dataclass(frozen=True)
class AuditReport:
    """What ``audit`` found in one file.

    Attributes:
        source: the file. kind: ``vmlinux``, ``module``, ``object`` or ``dump``.
        functions: functions scanned. allocating: how many allocate a frame.
        findings: frames without a back chain first, then stack switches.
        notes: what could not be scanned, and why.
    """

    source: str
    kind: str
    functions: int
    allocating: int
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()

    @property
    def without_back_chain(self) -> list[Finding]:
        """Functions that allocate a frame and store no back chain."""
        return [f for f in self.findings if f.kind == "no_back_chain"]

    @property
    def stack_switches(self) -> list[Finding]:
        """Code that loads r15 with another stack."""
        return [f for f in self.findings if f.kind == "switches_stack"]


def scan_function(
    name: str, address: int, insns: Iterable[Instruction], section: str | None = None
) -> tuple[bool, list[Finding]]:
    """Whether the function allocates a frame, and its findings."""
    alloc: Instruction | None = None
    chain: tuple[str, Instruction] | None = None
    switch: Instruction | None = None
    switched: tuple[str, Instruction] | None = None  # the first back chain after the switch
    unpacked: Instruction | None = None  # old r15 stored at 0(%r15): the unpacked layout
    copies: dict[int, int] = {}
    sizes = {0}  # r15 minus the entry r15 seen so far (linear: every path's frame)
    delta = 0
    saved15: int | None = None
    size = 0
    for insn in insns:
        size = insn.end - address
        if "%r15" not in insn.operands:
            continue
        e = effect_of(insn)
        if e.r15_saved_at is not None and delta == 0 and saved15 is None:
            saved15 = e.r15_saved_at
        if e.copy_r15_to is not None:
            copies[e.copy_r15_to] = delta
        if e.r15_add:
            delta += e.r15_add
            sizes.add(delta)
        if (e.r15_add < 0 or e.r15_from == "dynamic") and alloc is None:
            alloc = insn
        if e.unpacked_chain is not None and e.unpacked_chain in copies and unpacked is None:
            unpacked = insn
        if e.chain_store is not None and (chain is None or (switch and switched is None)):
            chain = (e.chain_store, insn)
            if switch is not None:
                switched = chain
        src = e.r15_from
        if src is None or switch is not None:
            continue
        if src.startswith("slot:"):
            _, base, disp = src.split(":")
            at = sizes if base == "15" else {copies[int(base)]} if int(base) in copies else set()
            if saved15 is None or not any(d + int(disp) == saved15 for d in at):
                switch = insn
        elif src == "other" or (src.startswith("copy:") and int(src[5:]) not in copies):
            switch = insn
    found = []
    if switch is not None:
        found.append(Finding("switches_stack", name, address, size, switch, switched, section))
    elif alloc is not None and chain is None:
        wrong = None if unpacked is None else ("unpacked", unpacked)
        found.append(Finding("no_back_chain", name, address, size, alloc, wrong, section))
    return alloc is not None, found


def _report(
    source: str,
    kind: str,
    functions: Iterator[tuple[str, int, bytes, str | None]],
    notes: list[str],
) -> AuditReport:
    count = allocating = 0
    findings: list[Finding] = []
    for name, address, data, section in functions:
        count += 1
        allocates, found = scan_function(name, address, decode(data, address), section)
        allocating += allocates
        findings.extend(found)
    findings.sort(key=lambda f: (f.kind != "no_back_chain", f.address))
    return AuditReport(source, kind, count, allocating, tuple(findings), tuple(notes))


def audit_file(path: str) -> AuditReport:
    """Audit an ELF (vmlinux, module, object): its ``STT_FUNC`` symbols.

    Raises:
        DumpError: not a readable s390x ELF with symbols.
    """
    from parsers.elf.code import ElfCode

    elf = ElfCode(path)

    def functions() -> Iterator[tuple[str, int, bytes, str | None]]:
        for func in elf.functions():
            yield func.name, func.address, elf.read(func), func.section.name

    return _report(path, elf.kind, functions(), [])


def audit_kernel(kernel: Kernel, span: tuple[int, int] | None = None) -> AuditReport:
    """Audit the core kernel text of a dump, function by function (symbols from the
    System.map or vmlinux; sizes up to the next symbol where the map has none).

    Args:
        span: only the functions starting in ``[start, end)`` (default: ``_stext`` ..
            ``_etext``).
    """
    from explorer.code.cache import code_of

    syms = kernel.symbols
    if syms is None:
        raise DumpError("audit of a dump needs its symbols (--map or --vmlinux)", kernel.path)
    code = code_of(kernel)
    start, end = span or (syms.address_of("_stext"), syms.address_of("_etext"))
    if start is None or end is None:
        raise DumpError("no _stext/_etext in the symbols: kernel text unknown", kernel.path)
    notes: list[str] = []
    unreadable: list[str] = []
    spans: list[tuple[int, int, str | None]] = [(start, end, None)]
    if span is None:
        scan = kernel.modules
        for module in scan.modules:
            if module.address not in scan.symbols:
                notes.append(f"module {module.name}: its symbols are unreadable, not audited")
                continue
            spans += [(s, e, module.name) for s, e in module.text if e > s]

    def functions() -> Iterator[tuple[str, int, bytes, str | None]]:
        for first, last, module in spans:
            address = first
            while address < last:
                sym = kernel.lookup_symbol(address)
                if sym is None or not sym.size or sym.address + sym.size <= address:
                    address += 2
                    continue
                data = code.read(sym.address, sym.size)
                if data is None:
                    unreadable.append(sym.name)
                else:
                    yield sym.name, sym.address, data, module and f"[{module}]"
                address = sym.address + sym.size

    report = _report(kernel.path, "dump", functions(), notes)
    if unreadable:
        notes.append(f"{len(unreadable)} function(s) not in the dump, e.g. {unreadable[0]}")
    return AuditReport(
        report.source,
        report.kind,
        report.functions,
        report.allocating,
        report.findings,
        tuple(notes),
    )


def report_json(report: AuditReport) -> dict[str, Any]:
    """The report as ``audit --json`` prints it."""

    def one(f: Finding) -> dict[str, Any]:
        return {
            "kind": f.kind,
            "function": f.function,
            "address": f"0x{f.address:x}",
            "size": f.size,
            "section": f.section,
            "at": f"0x{f.at.address:x}",
            "instruction": f.at.text,
            "back_chain": None
            if f.back_chain is None
            else {"how": f.back_chain[0], "at": f"0x{f.back_chain[1].address:x}"},
            "detail": f.detail,
        }

    return {
        "source": report.source,
        "kind": report.kind,
        "functions": report.functions,
        "allocating": report.allocating,
        "without_back_chain": [one(f) for f in report.without_back_chain],
        "stack_switches": [one(f) for f in report.stack_switches],
        "notes": list(report.notes),
    }


def report_text(report: AuditReport) -> list[str]:
    """The report as text."""
    lines = [
        f"audit of {report.source} ({report.kind}): {report.functions} functions, "
        f"{report.allocating} allocate a stack frame",
        "",
        f"frames without a back chain: {len(report.without_back_chain) or 'none'}",
    ]
    width = max((len(f.function) for f in report.findings), default=0)
    for f in report.without_back_chain:
        lines.append(f"  {f.function:<{width}}  0x{f.address:x}  {f.detail}")
    lines += ["", f"code that switches stacks: {len(report.stack_switches) or 'none'}"]
    for f in report.stack_switches:
        lines.append(f"  {f.function:<{width}}  0x{f.address:x}  {f.detail}")
    lines += [f"note: {n}" for n in report.notes]
    return lines
