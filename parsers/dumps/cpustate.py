"""CPU register sets, from the ELF notes of one CPU (or, for s390 formats, a lowcore).

Per CPU the kernel (crash_dump.c) and QEMU (target/s390x/arch_dump.c) write NT_PRSTATUS
first, then NT_PRFPREG and the NT_S390_* notes. QEMU 7.2 writes ``pr_pid`` byte-swapped
(CPU 0 appears as 0x01000000): the id is un-swapped when that is the only plausible reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from parsers.dumps.elfcore import Note
from parsers.errors import DumpError, FormatError
from parsers.s390.layouts import (
    NOTE_TYPES,
    NT_PRFPREG,
    NT_S390_CTRS,
    NT_S390_PREFIX,
    NT_S390_TIMER,
    NT_S390_TODCMP,
    NT_S390_TODPREG,
)
from parsers.s390.records import FpRegs, Psw, decode_note, decode_prstatus


@dataclass(frozen=True, slots=True)
class CpuRegisters:
    """The registers of one CPU at dump time.

    Attributes:
        index: position of this CPU's note set in the dump (0-based).
        cpu_id: ``pr_pid`` (kernel: CPU sequence number from 1; QEMU: see module doc).
        pid_swapped: ``pr_pid`` was stored byte-swapped (QEMU 7.2).
        psw: current PSW. gprs/acrs: general and access registers.
        crs: control registers (NT_S390_CTRS) if present.
        prefix: prefix register (NT_S390_PREFIX): absolute address of the lowcore.
        timer, todcmp, todpreg, fpc: as in their notes, None if absent.
        note_names: the note types present, by name.
        source: "ELF notes" or "lowcore save area".
    """

    index: int
    cpu_id: int
    pid_swapped: bool
    psw: Psw
    gprs: tuple[int, ...]
    acrs: tuple[int, ...]
    orig_gpr2: int
    crs: tuple[int, ...] | None
    prefix: int | None
    timer: int | None
    todcmp: int | None
    todpreg: int | None
    fpc: int | None
    fprs: tuple[int, ...] | None
    note_names: tuple[str, ...]
    source: str = "ELF notes"


def _fix_pid(raw: int) -> tuple[int, bool]:
    swapped = int.from_bytes(raw.to_bytes(4, "big", signed=True), "little", signed=True)
    if not 0 <= raw <= 0xFFFF and 0 <= swapped <= 0xFFFF:
        return swapped, True
    return raw, False


def cpu_registers_from_notes(index: int, notes: Sequence[Note], path: str) -> CpuRegisters:
    """Decode one CPU's note group (NT_PRSTATUS first).

    Raises:
        DumpError: a note is shorter than its type requires.
    """
    try:
        pr = decode_prstatus(notes[0].desc)
        values = {n.type: decode_note(n.type, n.desc) for n in notes[1:]}
    except DumpError as exc:
        raise FormatError(f"CPU {index}: {exc.message}", path) from None
    pid, swapped = _fix_pid(pr.pid)

    def scalar(ntype: int) -> int | None:
        v = values.get(ntype)
        return v if isinstance(v, int) else None

    ctrs = values.get(NT_S390_CTRS)
    fp = values.get(NT_PRFPREG)
    return CpuRegisters(
        index=index,
        cpu_id=pid,
        pid_swapped=swapped,
        psw=pr.psw,
        gprs=pr.gprs,
        acrs=pr.acrs,
        orig_gpr2=pr.orig_gpr2,
        crs=ctrs if isinstance(ctrs, tuple) else None,
        prefix=scalar(NT_S390_PREFIX),
        timer=scalar(NT_S390_TIMER),
        todcmp=scalar(NT_S390_TODCMP),
        todpreg=scalar(NT_S390_TODPREG),
        fpc=fp.fpc if isinstance(fp, FpRegs) else None,
        fprs=fp.fprs if isinstance(fp, FpRegs) else None,
        note_names=tuple(NOTE_TYPES.get(n.type, f"0x{n.type:x}") for n in notes),
    )
