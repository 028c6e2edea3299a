"""Write a copy of a QEMU ``dump-guest-memory`` ELF that drgn can open.

QEMU 7.2 writes ``pr_pid`` of each CPU's NT_PRSTATUS byte-swapped and no VMCOREINFO note (the
kernel's VMCOREINFO is only reachable through the pointer at absolute 0xE0C); drgn 0.3.0
needs both right (docs/real-dumps.md). :func:`fix_for_drgn` streams the dump into a new ELF
with the project's own writer (:func:`parsers.write.convert.convert_to_elf`): the same memory, the
same notes with ``pr_pid`` in big-endian order, and a VMCOREINFO note read from guest memory.

    python -m samples.drgn_copy samples/real/bpo12-6.12-busy/vmcore.zst /tmp/busy.drgn.elf
"""

from __future__ import annotations

import argparse
import os
import sys

from parsers.dumps.cpustate import cpu_registers_from_notes
from parsers.dumps.dumpfile import open_dump
from parsers.dumps.elfcore import group_cpu_notes
from parsers.dumps.vmcoreinfo import vmcoreinfo_from_memory
from parsers.errors import DumpError
from parsers.s390.layouts import NT_PRSTATUS
from parsers.s390.structs import ELF_PRSTATUS
from parsers.write.convert import convert_to_elf, dump_notes
from parsers.write.elfwriter import NoteSpec


def _fixed_prstatus(desc: bytes, cpu_id: int) -> bytes:
    """``desc`` (an NT_PRSTATUS descriptor) with ``pr_pid`` set to ``cpu_id``."""
    record = ELF_PRSTATUS.parse(desc)
    record.pr_pid = cpu_id
    return bytes(ELF_PRSTATUS.build(record)) + desc[ELF_PRSTATUS.sizeof() :]


def drgn_notes(dump) -> list[NoteSpec]:  # type: ignore[no-untyped-def]
    """The notes of ``dump`` as drgn wants them: pr_pid in file byte order, VMCOREINFO present.

    Raises:
        DumpError: the dump has no per-CPU notes, or no VMCOREINFO anywhere.
    """
    notes = dump_notes(dump)
    groups = group_cpu_notes(dump.notes)
    if not groups:
        raise DumpError("no per-CPU NT_PRSTATUS notes to fix", dump.source_path)
    ids = [cpu_registers_from_notes(i, g, dump.path).cpu_id for i, g in enumerate(groups)]
    fixed: list[NoteSpec] = []
    cpu = 0
    for note in notes:
        if note.name == "CORE" and note.type == NT_PRSTATUS and cpu < len(ids):
            note = NoteSpec(note.name, note.type, _fixed_prstatus(note.desc, ids[cpu]))
            cpu += 1
        fixed.append(note)
    if not any(n.name == "VMCOREINFO" for n in fixed):
        found = vmcoreinfo_from_memory(dump)
        if found.info is None:
            raise DumpError(f"no VMCOREINFO: {found.problem}", dump.source_path)
        text = "".join(f"{k}={v}\n" for k, v in found.info.entries.items())
        fixed.append(NoteSpec("VMCOREINFO", 0, text.encode()))
    return fixed


def fix_for_drgn(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Write ``dst``: an ELF copy of the dump ``src`` (any format backchain reads, ``.zst``
    too) that drgn 0.3.0 opens.

    Raises:
        DumpError: ``src`` cannot be read or ``dst`` cannot be written.
    """
    dump = open_dump(os.fspath(src))
    try:
        convert_to_elf(dump, dst, notes=drgn_notes(dump))
    finally:
        dump.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="a dump (QEMU ELF, .zst, kdump, s390)")
    ap.add_argument("dst", help="the ELF copy to write")
    args = ap.parse_args(argv)
    try:
        fix_for_drgn(args.src, args.dst)
    except DumpError as exc:
        print(f"drgn_copy: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
