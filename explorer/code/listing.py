"""``backchain dis``: a function's instructions with ``func+off``, symbolic branch targets
and marks (the address asked about, CPUs' PSWs), as data the CLI and the TUI present."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from explorer.code.branches import relative_target
from explorer.code.insn import MAX_INSN, Instruction, decode, iter_decode
from explorer.code.text import CodeText, Function
from parsers.errors import DumpError, SymbolError

#: Instructions listed from an address outside any known function (crash lists one; a
#: screenful is more useful when there is no function to list).
DEFAULT_COUNT = 16
_SPEC = re.compile(r"^(?P<name>[A-Za-z_.$][\w.$]*)(?:\+(?P<off>(0x)?[0-9a-fA-F]+))?$")


@dataclass(frozen=True, slots=True)
class Line:
    """One listed instruction.

    Attributes:
        insn: the instruction.
        where: ``func+0xoff`` of its address, or None outside known functions.
        target: address a relative branch, call or address load refers to.
        target_name: ``func+0xoff`` of ``target``.
        marks: what is at this address (``ADDR``, ``CPU 0 PSW``, ``return address``...).
    """

    insn: Instruction
    where: str | None
    target: int | None
    target_name: str | None
    marks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Listing:
    """What ``dis`` shows.

    Attributes:
        address: the address asked about.
        function: the function listed (None: a run of instructions from ``address``).
        lines: the instructions.
    """

    address: int
    function: Function | None
    lines: tuple[Line, ...]


def resolve(code: CodeText, spec: str) -> int:
    """An address from ``FUNC``, ``FUNC+OFF`` or a hex address (``0x`` optional).

    A name that is also valid hex (``add``, ``dead``) is taken as a symbol when one exists.

    Raises:
        SymbolError: neither a known symbol nor a hex address.
    """
    text = spec.strip()
    m = _SPEC.match(text)
    if m is not None and code.kernel.symbols is not None:
        base = code.kernel.symbols.address_of(m.group("name"))
        if base is not None:
            off = m.group("off")
            return base + (int(off, 16) if off else 0)
    try:
        return int(text, 16)
    except ValueError:
        pass
    if code.kernel.symbols is None:
        raise SymbolError(f"{spec!r}: not a hex address, and no symbols are loaded (--map)")
    raise SymbolError(f"{spec!r}: no such symbol and not a hex address")


def function_code(code: CodeText, func: Function) -> list[Instruction]:
    """Every instruction of ``func``, decoded from its first byte.

    Raises:
        DumpError: its code is neither in the dump nor in a given vmlinux.
    """
    data = code.read(func.start, func.size)
    if data is None:
        raise DumpError(
            f"the code of {func.name} (0x{func.start:x}, {func.size} bytes) is not in the dump "
            "(give the vmlinux with --vmlinux)"
        )
    return decode(data, func.start)


def make_listing(
    code: CodeText,
    address: int,
    reverse: bool = False,
    forward: bool = False,
    count: int | None = None,
    marks: dict[int, list[str]] | None = None,
) -> Listing:
    """The instructions ``dis`` shows for ``address``.

    Args:
        code: the kernel's code.
        address: the address asked about.
        reverse: from the function's start up to and including ``address`` (crash ``-r``).
        forward: from ``address`` to the function's end (crash ``-f``).
        count: at most this many instructions from ``address`` (crash's count); with
            ``reverse`` the last ``count``.
        marks: labels to show at addresses (also ``inside`` an instruction), e.g. ``ADDR``.

    Raises:
        DumpError: the code is unreadable.
    """
    func = code.function_at(address)
    if func is None:
        data = code.read(address, (count or DEFAULT_COUNT) * MAX_INSN)
        if data is None:
            raise DumpError(f"0x{address:x} is not readable code in the dump")
        insns = list(iter_decode(data, address))[: count or DEFAULT_COUNT]
    else:
        insns = function_code(code, func)
        if reverse:
            insns = [i for i in insns if i.address <= address]
            if count:
                insns = insns[-count:]
        elif forward or count:
            insns = [i for i in insns if i.end > address]
            if count:
                insns = insns[:count]
    labels = marks or {}
    return Listing(address, func, tuple(_line(code, i, func, labels) for i in insns))


def _line(
    code: CodeText, insn: Instruction, func: Function | None, labels: dict[int, list[str]]
) -> Line:
    target = relative_target(insn.address, insn.raw)
    target_name = None if target is None else code.where(target)
    marks: list[str] = []
    for at, names in labels.items():
        if at == insn.address:
            marks.extend(names)
        elif insn.address < at < insn.end:
            marks.extend(f"{n} (0x{at:x}, inside this instruction)" for n in names)
    if func is not None and func.start <= insn.address < func.end:
        where: str | None = func.where(insn.address)
    else:
        where = code.where(insn.address)
    return Line(insn, where, target, target_name, tuple(marks))


def listing_text(listing: Listing) -> list[str]:
    """The listing as text lines: ``0xADDR <func+off>:  bytes  mnemonic operands  <-- marks``."""
    rows = []
    for ln in listing.lines:
        head = f"0x{ln.insn.address:x}" + (f" <{ln.where}>" if ln.where else "") + ":"
        raw = ln.insn.raw.hex(" ")
        ops = ln.insn.operands
        if ln.target_name:
            ops = f"{ops} <{ln.target_name}>"
        rows.append((head, raw, ln.insn.mnemonic, ops, ln.marks))
    width = max((len(r[0]) for r in rows), default=0)
    out = []
    for head, raw, mnemonic, ops, marks in rows:
        line = f"{head:<{width}}  {raw:<17}  {mnemonic:<7} {ops}".rstrip()
        if marks:
            line += "   <== " + ", ".join(marks)
        out.append(line)
    return out


def listing_json(listing: Listing) -> dict[str, Any]:
    """The listing as ``dis --json`` prints it."""
    func = listing.function
    return {
        "address": f"0x{listing.address:x}",
        "function": None
        if func is None
        else {"name": func.name, "start": f"0x{func.start:x}", "size": func.size},
        "instructions": [
            {
                "address": f"0x{ln.insn.address:x}",
                "symbol": ln.where,
                "bytes": ln.insn.raw.hex(),
                "mnemonic": ln.insn.mnemonic,
                "operands": ln.insn.operands,
                "target": None if ln.target is None else f"0x{ln.target:x}",
                "target_symbol": ln.target_name,
                "marks": list(ln.marks),
            }
            for ln in listing.lines
        ],
    }


def cpu_marks(kernel: Any) -> dict[int, list[str]]:
    """Kernel-mode PSW addresses of every CPU: its current PSW and its lowcore's old PSWs."""
    out: dict[int, list[str]] = {}
    for cpu in kernel.cpus:
        psw = cpu.registers.psw
        if not psw.user_mode:
            out.setdefault(psw.addr, []).append(f"CPU {cpu.number} PSW")
        if cpu.lowcore is None:
            continue
        for name, old in cpu.lowcore.old_psws.items():
            if old.addr and not old.user_mode:
                out.setdefault(old.addr, []).append(f"CPU {cpu.number} {name} old PSW")
    return out
