"""What ``bt`` and ``check`` add to frames from debug information: the options and the
glue (the subcommand modules stay small)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from explorer.cli.frameopts import frame_options, lines_options

if TYPE_CHECKING:  # the readers are imported when an option asks for them: a plain
    # ``check`` or ``bt`` reads no DWARF and imports no pyelftools
    from explorer.debuginfo.frames import FrameLayout
    from explorer.debuginfo.lines import FrameSource
    from explorer.model.kernel import Kernel
    from explorer.walk.unwind import Step, Walk


class FrameExtras:
    """What to add under each frame (text) or into it (JSON), per the options."""

    def __init__(
        self, kernel: Kernel, lines: FrameSource | None, full: bool = False, symbols: bool = False
    ) -> None:
        self.kernel = kernel
        self.lines = lines
        self.full = full or symbols
        self.symbols = symbols
        self.layout: FrameLayout | None = None
        if self.full:
            from explorer.debuginfo.frames import frame_layout

            self.layout = frame_layout(kernel)

    @classmethod
    def from_args(cls, kernel: Kernel, args: argparse.Namespace) -> FrameExtras:
        want_lines = bool(getattr(args, "lines", False) or getattr(args, "source", None))
        lines = None
        if want_lines:
            from explorer.debuginfo.lines import FrameSource

            lines = FrameSource.open(kernel, getattr(args, "source", None))
        symbols = bool(getattr(args, "full_symbols", False))
        return cls(kernel, lines, bool(getattr(args, "full", False)), symbols)

    def close(self) -> None:
        if self.lines is not None:
            self.lines.close()

    def head_text(self) -> list[str]:
        """Lines before the frames (why there are no source lines, the frame layout)."""
        out: list[str] = []
        if self.lines is not None:
            from explorer.debuginfo.lines import unavailable_text

            out = unavailable_text(self.lines)
        if self.layout is not None:
            out.append(f"frame words: register save area from {self.layout.source}")
        return out

    def under_for(self, walk: Walk) -> Callable[[Step], list[str]]:
        """The lines to print under each frame of ``walk``."""

        def under(step: Step) -> list[str]:
            out: list[str] = []
            if self.lines is not None:
                from explorer.debuginfo.lines import frame_text

                out.extend(frame_text(self.lines, step))
            if self.layout is not None:
                from explorer.debuginfo.frames import frame_words, words_text

                words = frame_words(self.kernel, walk, step.index, self.layout)
                out.extend(words_text(self.kernel, words, self.symbols))
            return out

        return under

    def add_json(self, doc: dict[str, Any], walk: Walk) -> dict[str, Any]:
        """Add the frames' extra fields to a walk's JSON document."""
        if self.lines is not None:
            from explorer.debuginfo.lines import add_to_walk_json

            add_to_walk_json(doc, walk.steps, self.lines)
        if self.layout is not None:
            from explorer.debuginfo.frames import frame_words, words_json

            for frame, step in zip(doc.get("frames", ()), walk.steps, strict=False):
                words = frame_words(self.kernel, walk, step.index, self.layout)
                frame.update(words_json(self.kernel, words, self.symbols))
            doc["frame_layout"] = {
                "gprs": self.layout.gprs,
                "back_chain": self.layout.back_chain,
                "size": self.layout.size,
                "source": self.layout.source,
            }
        return doc


class StackLines:
    """``check --lines``: the source lines of one task of each identical stack."""

    def __init__(self, lines: FrameSource) -> None:
        self.lines = lines
        self.by_stack: dict[tuple[str, ...], list[str]] = {}

    def keeper(self, summarize: Any) -> Any:
        """Wrap ``check``'s summarizer: also note the first walk of each stack."""

        def keep(a: Any) -> Any:
            row = summarize(a)
            if row.stack not in self.by_stack:
                self.by_stack[row.stack] = [_one_line(self.lines.for_step(s)) for s in a.walk.steps]
            return row

        return keep

    def text(self, stacks: list[tuple[str, ...]]) -> list[str]:
        """The section printed after ``check``'s report, stacks in its order."""
        if not self.lines.available:
            from explorer.debuginfo.lines import unavailable_text

            return ["", *unavailable_text(self.lines)]
        out = ["", "source lines of each stack (one task of each):"]
        for n, key in enumerate(stacks, 1):
            out.append(f"  stack {n}:" + ("" if self.by_stack.get(key) else " (no frames)"))
            out.extend(f"    #{i:<2} {text}" for i, text in enumerate(self.by_stack.get(key, ())))
        return out


def _one_line(lines: Any) -> str:
    if lines.function is None:
        return f"? ({lines.why})"
    inl = "".join(f"{f.function} ({f.source or '?'}) < " for f in lines.inlined)
    return f"{inl}{lines.function} ({lines.source or '?'})"


__all__ = ["FrameExtras", "StackLines", "frame_options", "lines_options"]
