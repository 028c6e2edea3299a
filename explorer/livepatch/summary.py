"""The livepatch line of ``info``, ``sys`` and the triage report, without the livepatch reader
when no livepatch is loaded (most dumps): two symbols and two words tell that, and
:mod:`explorer.livepatch.state` (its records, a tenth of ``info``'s imports) is imported only
for a kernel with a patch on ``klp_patches`` or in transition."""

from __future__ import annotations

from typing import TYPE_CHECKING

from parsers.errors import DumpError

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel


def livepatch_summary(kernel: Kernel) -> str | None:
    """:func:`explorer.livepatch.state.livepatch_summary`: one line, or None when no
    livepatch is loaded, the kernel has none, or that cannot be told."""
    if nothing_loaded(kernel):
        return None
    from explorer.livepatch.state import livepatch_summary as summary

    return summary(kernel)


def nothing_loaded(kernel: Kernel) -> bool:
    """True where :func:`explorer.livepatch.state.read_livepatch` finds no livepatch or
    cannot tell (its summary is None then): no symbols, no ``klp_patches`` symbol, or
    ``klp_patches`` empty and ``klp_transition_patch`` NULL (either unreadable: cannot tell).
    False: a patch may be loaded, the reader decides."""
    syms = kernel.symbols
    head = None if syms is None else syms.address_of("klp_patches")
    if syms is None or head is None:
        return True
    transition = syms.address_of("klp_transition_patch")
    try:
        first = kernel.space.read_u64(head)
        patch = 0 if transition is None else kernel.space.read_u64(transition)
    except DumpError:
        return True
    return first == head and not patch


__all__ = ["livepatch_summary", "nothing_loaded"]
