"""parsers.dumps.elfcore unpacks an ELF core's headers with ``struct``: the same segments and
notes as pyelftools reads from every bundled real dump (and the drgn-openable copy)."""

from __future__ import annotations

from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from parsers.dumps.dumpfile import open_dump
from parsers.dumps.elfcore import ElfCore

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
NAMES = sorted(p.name for p in SAMPLES.iterdir() if (p / "vmcore.zst").is_file())


@pytest.mark.parametrize("name", NAMES)
def test_headers_and_notes_equal_pyelftools(name: str) -> None:
    dump = open_dump(str(SAMPLES / name / "vmcore.zst"))
    try:
        assert isinstance(dump, ElfCore)
        with open(dump.path, "rb") as f:
            elf = ELFFile(f)
            assert elf["e_machine"] == "EM_S390" and elf["e_type"] == "ET_CORE"
            loads = sorted(
                (s["p_paddr"], s["p_vaddr"], s["p_offset"], s["p_filesz"], s["p_memsz"])
                for s in elf.iter_segments()
                if s["p_type"] == "PT_LOAD"
            )
            notes = [
                (n["n_name"] or "", n["n_descdata"], n["n_offset"])
                for s in elf.iter_segments()
                if s["p_type"] == "PT_NOTE"
                for n in s.iter_notes()
                if n["n_namesz"] or n["n_descsz"] or n["n_type"]
            ]
        if len(loads) > 1 and sum(1 for s in loads if s[0] == 0) > 1:  # QEMU 7.2 p_paddr 0
            loads = sorted((v, v, o, fs, ms) for _, v, o, fs, ms in loads)
        ours = [(s.paddr, s.vaddr, s.offset, s.filesz, s.memsz) for s in dump.segments]
        assert ours == loads and len(ours) > 0
        assert [(n.name, n.desc, n.offset) for n in dump.notes] == notes
        assert any(n.name == "CORE" and n.type == 1 for n in dump.notes)  # NT_PRSTATUS
    finally:
        dump.close()
