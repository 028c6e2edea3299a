"""Fitting text into a narrow cell without lying: names are cut with "…", numbers never."""

from __future__ import annotations

import re

_OFFSET = re.compile(r"\+0x[0-9a-fA-F]+(?:/0x[0-9a-fA-F]+)?")


def short_symbol(symbol: str) -> str:
    """``name+0xoff`` without the ``/0xsize`` suffix, a module's tag kept as the CLI shows
    it: ``kjournald2+0x2d0/0x330 [jbd2]`` is ``kjournald2+0x2d0 [jbd2]``."""
    tag = symbol.find(" [")
    body, tag_text = (symbol[:tag], symbol[tag:]) if tag >= 0 else (symbol, "")
    head, slash, size = body.rpartition("/")  # a "/" in the name stays
    return (head if slash and size.startswith("0x") else body) + tag_text


def fit_symbol(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cutting only the function name.

    ``update_process_times+0xa4/0x1b0`` at width 20 is ``update_proce…+0xa4/0x1b0``: a cut
    offset ("+0xa" for +0xa4) would look like a real one. The ``/size`` goes before any of
    the offset; if even the offset does not fit, it is shown whole (wider than ``width``).
    """
    if len(text) <= width:
        return text
    m = _OFFSET.search(text)
    if m is None:
        return text[: max(width - 1, 1)] + "…"
    head, offset, tail = text[: m.start()], m.group(0), text[m.end() :]
    if len(head) + len(offset.partition("/")[0]) + len(tail) <= width:
        offset = offset.partition("/")[0]  # drop the size first: it is no part of the address
        room = width - len(offset) - len(tail)
        return (
            head[:room] + offset + tail
            if room >= len(head)
            else head[: room - 1] + "…" + offset + tail
        )
    offset = offset.partition("/")[0]
    room = width - len(offset) - len(tail) - 1
    lead = "(" if head.startswith("(") else ""
    name = head[len(lead) :]
    if room - len(lead) < 1:
        return f"{lead}{name[:1]}…{offset}{tail}"
    return f"{lead}{name[: room - len(lead)]}…{offset}{tail}"
