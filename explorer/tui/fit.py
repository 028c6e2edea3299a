"""Fitting text into a narrow cell without lying: names are cut with "…", numbers never."""

from __future__ import annotations

import re

_OFFSET = re.compile(r"\+0x[0-9a-fA-F]+(?:/0x[0-9a-fA-F]+)?")
_LEAD = re.compile(r"^(?:[!≠] )?\(?")
_TAG = re.compile(r" \[([^\]]+)\]")

#: A cut name keeps at least this many cells (with its "…") before a tag after the offset
#: (``[ftrace_graph]``) is cut: the name says which function the frame is, the tag less.
MIN_NAME = 10
#: A cut tag keeps at least this many cells of its text (with its "…").
MIN_TAG = 4


def short_symbol(symbol: str) -> str:
    """``name+0xoff`` without the ``/0xsize`` suffix, a module's tag kept as the CLI shows
    it: ``kjournald2+0x2d0/0x330 [jbd2]`` is ``kjournald2+0x2d0 [jbd2]``."""
    tag = symbol.find(" [")
    body, tag_text = (symbol[:tag], symbol[tag:]) if tag >= 0 else (symbol, "")
    head, slash, size = body.rpartition("/")  # a "/" in the name stays
    return (head if slash and size.startswith("0x") else body) + tag_text


def _cut(name: str, room: int) -> str:
    """``name`` in ``room`` cells, ending in "…" when cut (one letter at least)."""
    return name if len(name) <= room else name[: max(room - 1, 1)] + "…"


def _cut_tags(tail: str, room: int) -> str:
    """``tail`` (``) [ftrace_graph]``) in ``room`` cells if it can be, cutting its tags'
    text, never below :data:`MIN_TAG` cells each."""
    over = len(tail) - room
    if over <= 0:
        return tail

    def shorter(m: re.Match[str]) -> str:
        nonlocal over
        inner = m.group(1)
        keep = max(len(inner) - over - 1, MIN_TAG - 1)
        if keep >= len(inner):
            return m.group(0)
        over -= len(inner) - keep - 1
        return f" [{inner[:keep]}…]"

    return _TAG.sub(shorter, tail)


def fit_symbol(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cutting the least telling parts first.

    ``update_process_times+0xa4/0x1b0`` at width 20 is ``update_proce…+0xa4``: a cut
    offset ("+0xa" for +0xa4) would look like a real one. The ``/size`` goes first; then a
    tag after the offset (``[ftrace_graph]``) is cut if the whole name then fits
    (``! do_nanosleep+0x5e [ftrace_…]``); else the name is cut down to :data:`MIN_NAME`
    cells, then the tag, then the name down to one letter. Marks before the name (``! ``,
    ``≠ ``, ``(``) and the offset stay whole, even if that is wider than ``width``: never is a name
    cut to nothing (``! …+0x5e [ftrace_graph]`` was).
    """
    if len(text) <= width:
        return text
    m = _OFFSET.search(text)
    if m is None:
        return _cut(text, width)
    head, offset, tail = text[: m.start()], m.group(0).partition("/")[0], text[m.end() :]
    lead = _LEAD.match(head)
    assert lead is not None  # the pattern matches the empty string
    name = head[lead.end() :]
    fixed = len(lead.group(0)) + len(offset)
    cut = _cut_tags(tail, width - fixed - len(name))
    if fixed + len(name) + len(cut) <= width:  # the whole name, the tag cut
        return f"{lead.group(0)}{name}{offset}{cut}"
    room = width - fixed - len(tail)
    if room < min(len(name), MIN_NAME):
        tail = _cut_tags(tail, width - fixed - min(len(name), MIN_NAME))
        room = width - fixed - len(tail)
    return f"{lead.group(0)}{_cut(name, max(room, 2))}{offset}{tail}"
