"""The kernel's circular doubly linked lists (``struct list_head``), walked one bounded way.

Every walk remembers what it visited and stops at the first sign of damage: a node seen
before (a loop), a pointer that is not 8-aligned or null, more entries than any kernel has,
an unreadable link, or (``linked_back``) a ``prev`` that does not point at the node before.
Why it stopped is a sentence in ``warnings``, never an exception and never an endless loop.
Tasks, modules and the type probe all walk their lists with :func:`walk_list`; the walks of
one task discovery share one visited set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from parsers.errors import DumpError


def walk_list(
    read_u64: Callable[[int], int],
    head: int,
    what: str,
    warnings: list[str],
    limit: int,
    linked_back: bool = False,
    seen: set[int] | None = None,
) -> Iterator[int]:
    """Yield the addresses of the ``list_head`` entries of the circular list at ``head``.

    Args:
        read_u64: reads a 64-bit word of kernel memory (raises DumpError when it cannot).
        head: the list head (not an entry).
        what: the list's name, for the warning.
        warnings: where a damaged list says why the walk stopped (``"what: why"``).
        limit: more entries than this are damage.
        linked_back: also require every entry's ``prev`` (and the head's) to point at the
            entry before it (an intact list, as the type probe needs).
        seen: the entries (and heads) of every list walked so far, shared by the walks of
            one discovery (a task's threads): an entry already met ends the walk, and a head
            already met skips it, so lists that a damaged dump makes share their entries are
            walked once in all, not once per list (that was quadratic).
    """
    seen = set() if seen is None else seen
    if head in seen:
        warnings.append(f"{what}: head 0x{head:x} belongs to a list already walked; skipped")
        return
    seen.add(head)
    try:
        node = read_u64(head)
    except DumpError as exc:
        warnings.append(f"{what}: head 0x{head:x} unreadable ({exc.message})")
        return
    count = 0
    prev = head
    while node != head:
        if node in seen:
            warnings.append(
                f"{what}: loops back to 0x{node:x} before reaching its head; "
                "the list is corrupted, stopped there"
            )
            return
        if count >= limit:
            warnings.append(f"{what}: more than {limit} entries; stopped")
            return
        if node & 7 or node == 0:
            warnings.append(f"{what}: bad pointer 0x{node:x}; stopped there")
            return
        try:  # an entry whose own link cannot be read is not trusted as an entry either
            following = read_u64(node)
            back = read_u64(node + 8) if linked_back else prev
        except DumpError as exc:
            warnings.append(f"{what}: entry 0x{node:x} unreadable ({exc.message}); stopped there")
            return
        if back != prev:
            warnings.append(f"{what}: entry 0x{node:x} does not link back to 0x{prev:x}")
            return
        seen.add(node)
        count += 1
        yield node
        prev, node = node, following
    if linked_back:
        try:
            back = read_u64(head + 8)
        except DumpError as exc:
            warnings.append(f"{what}: head 0x{head:x} unreadable ({exc.message})")
            return
        if back != prev:
            warnings.append(f"{what}: the head does not link back to 0x{prev:x}")


def intact_list(
    read_u64: Callable[[int], int], head: int, limit: int, accept: Callable[[int], bool]
) -> list[int] | None:
    """The entries of the list at ``head`` when it is intact (every ``prev`` links back) and
    every entry is accepted; else None (evidence wanted, not a best effort)."""
    problems: list[str] = []
    nodes = []
    for node in walk_list(read_u64, head, "list", problems, limit, linked_back=True):
        if not accept(node):
            return None
        nodes.append(node)
    return None if problems else nodes


__all__ = ["intact_list", "walk_list"]
