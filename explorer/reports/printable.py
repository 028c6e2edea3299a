"""Text from a dump made safe for a terminal: control characters shown, never obeyed.

A task's ``comm``, the kernel log, ``OSRELEASE``, symbol names and trainee names come from
machines nobody vouches for: an ``ESC [`` in one of them would drive the reader's terminal
(colours, cursor moves, window titles, OSC 52 clipboard writes). :func:`printable` shows
each such character as ``\\xHH`` (``\\uHHHH`` above U+00FF); :class:`EscapingWriter` applies
it to everything a text face writes, so no print site can forget it. JSON output needs
nothing: ``json.dump`` escapes control characters itself.
"""

from __future__ import annotations

from typing import Any, TextIO

#: C0 controls but tab and newline, DEL, the C1 controls (U+009B is CSI for some terminals)
#: and the bidirectional overrides and isolates (text that reads otherwise than it is).
_UNSAFE = (
    [c for c in range(0x20) if c not in (0x09, 0x0A)]
    + list(range(0x7F, 0xA0))
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)
_TABLE = {c: (f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}") for c in _UNSAFE}


def printable(text: str) -> str:
    """``text`` with every terminal control character shown as an escape."""
    return text.translate(_TABLE)


class EscapingWriter:
    """A text stream that writes :func:`printable` text to ``raw`` (``sys.stdout``)."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(text.translate(_TABLE))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, fileno, encoding, ...
        return getattr(self.raw, name)


def unescaped(stream: Any) -> Any:
    """The stream under ``stream`` when it is an :class:`EscapingWriter`, else ``stream``:
    for text that cannot hold a control character, such as JSON written by ``json``'s
    ASCII encoders (every character of it printable ASCII, lines apart), which escaping
    would only scan (85 MB for ``check --json`` of 10,000 tasks)."""
    return stream.raw if isinstance(stream, EscapingWriter) else stream


__all__ = ["EscapingWriter", "printable", "unescaped"]
