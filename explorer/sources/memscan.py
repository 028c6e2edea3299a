"""The dump's kallsyms found in its memory by content, for kernels whose VMCOREINFO does not
locate them (5.10 and any kernel without the ``KALLSYMS`` entries).

The search (parsers/symbols/kallsyms_scan.py) proves the tables consistent with each other; this
module checks them against what the dump says about itself, and uses them only when they
agree: the decoded ``_stext`` is VMCOREINFO's ``SYMBOL(_stext)``, every other ``SYMBOL()``
value the table holds agrees, and ``linux_banner`` at its decoded address reads ``Linux
version RELEASE``. Tables nothing confirms, or anything contradicts, are not used (a warning
says why): no symbols beat plausible-looking wrong ones.
"""

from __future__ import annotations

from explorer.image.dumpimage import Diagnostics, DumpImage
from explorer.sources.symcache import cached_kallsyms
from explorer.sources.verify import symbol_evidence
from parsers.errors import DumpError
from parsers.symbols.kallsyms_scan import SCAN_LIMIT, scan_kallsyms
from parsers.symbols.table import SymbolTable

#: How the table names its source (``info``: "symbols N from kallsyms found in memory ...").
SOURCE = "kallsyms found in memory by content at 0x{:x}"


def kallsyms_in_memory(image: DumpImage, notes: Diagnostics) -> SymbolTable | None:
    """The kernel's kallsyms found by content in its image, verified against the dump; None
    (and a warning saying why) when there are none or they cannot be vouched for."""
    start = image.image_start()
    read = image.read
    try:
        found = scan_kallsyms(read, start, SCAN_LIMIT)
        table = cached_kallsyms(read, found.tables, SOURCE.format(found.tables.token_table))
    except DumpError as exc:
        notes.warnings.append(
            "no symbols from the dump: VMCOREINFO does not locate its kallsyms and none were "
            f"found in its memory ({exc.message})"
        )
        return None
    problem = disagreement(image, table)
    if problem is not None:
        notes.warnings.append(
            f"kallsyms found in memory at 0x{found.tables.token_table:x} not used: {problem}"
        )
        return None
    return table


def disagreement(image: DumpImage, table: SymbolTable) -> str | None:
    """Why ``table`` cannot be vouched for as the dump's own, or None when the dump confirms
    it (``_stext``, SYMBOL() values, ``linux_banner``)."""
    info = image.vmcoreinfo
    stext = info.symbol("_stext") if info is not None else None
    have = table.address_of("_stext")
    if stext is not None and have != stext:
        where = f"0x{have:x}" if have is not None else "nowhere"
        return f"it puts _stext at {where}, VMCOREINFO has SYMBOL(_stext)=0x{stext:x}"
    evidence = symbol_evidence(image.identity, table, 0, confirm=False)
    if evidence.mismatch:
        return evidence.summary().replace("the file puts", "the table puts")
    if stext is None and not evidence.agree:
        return "nothing in the dump confirms it (no SYMBOL(_stext), no linux_banner)"
    return None


__all__ = ["SOURCE", "disagreement", "kallsyms_in_memory"]
