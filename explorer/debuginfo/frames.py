"""What is in each frame (crash ``bt -f``/``-F``): the words from a frame's sp up to the next
frame, the register save area labelled from the kernel's ``struct stack_frame``.

On s390x a frame's first bytes are a ``struct stack_frame``: the function called from this
frame saves r6..r15 of this frame's function into its ``gprs`` (its prologue's ``stmg``),
and writes the back chain. The layout comes from the kernel's types (the DWARF or BTF
profile) when the dump has them, else from the packed-stack table (parsers.s390.structs).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parsers.errors import DumpError
from parsers.s390.layouts import STACK_FRAME_BACK_CHAIN, STACK_FRAME_GPRS, STACK_FRAME_SIZE

if TYPE_CHECKING:
    from explorer.model.kernel import Kernel
    from explorer.walk.unwind import Walk

#: Longest frame shown (a frame larger than this is cut, and says so).
MAX_FRAME_BYTES = 4096
#: The packed-stack layout (parsers.s390.layouts): gprs at 0x48, back_chain at 0x98.
TABLE_GPRS, TABLE_BACK_CHAIN = STACK_FRAME_GPRS, STACK_FRAME_BACK_CHAIN


@dataclass(frozen=True, slots=True)
class FrameLayout:
    """Where ``struct stack_frame`` keeps the saved registers and the back chain."""

    gprs: int
    back_chain: int
    size: int
    source: str

    def labels(self) -> dict[int, str]:
        """Offset in the frame -> ``r6`` .. ``r15``, ``back_chain``."""
        out = {self.gprs + 8 * i: f"r{6 + i}" for i in range(10)}
        out[self.back_chain] = "back_chain"
        return out


def frame_layout(kernel: Kernel) -> FrameLayout:
    """``struct stack_frame`` from the kernel's types, else the packed-stack table."""
    types = kernel.types
    if types is not None and types.has("stack_frame.gprs") and types.has("stack_frame.back_chain"):
        size = types.size("stack_frame") if types.has("stack_frame") else STACK_FRAME_SIZE
        return FrameLayout(
            types.offset("stack_frame.gprs"),
            types.offset("stack_frame.back_chain"),
            size,
            f"struct stack_frame from {types.source_of('stack_frame.gprs')}",
        )
    return FrameLayout(
        TABLE_GPRS,
        TABLE_BACK_CHAIN,
        STACK_FRAME_SIZE,
        "packed-stack table (no type information for struct stack_frame)",
    )


@dataclass(frozen=True, slots=True)
class FrameWord:
    """One 8-byte word of a frame: ``offset`` from the frame's sp, its ``label`` in the
    register save area (``r6`` .. ``r15``, ``back_chain``) or None."""

    address: int
    offset: int
    value: int
    label: str | None


@dataclass(frozen=True, slots=True)
class FrameWords:
    """A frame's words; ``cut`` says why fewer than the frame's bytes are shown."""

    sp: int
    words: tuple[FrameWord, ...]
    cut: str | None


def frame_words(kernel: Kernel, walk: Walk, index: int, layout: FrameLayout) -> FrameWords:
    """The words of frame ``index``: from its sp to the next frame's sp on the same stack, and
    at least its whole ``struct stack_frame``: with the packed stack a callee's frame
    overlaps the unused first words of its caller's, so the save area of one frame may lie
    inside the next (the same words are then shown under both)."""
    steps = walk.steps
    step = steps[index]
    end = step.sp + layout.size
    cut = None
    if index + 1 < len(steps):
        nxt = steps[index + 1]
        if nxt.stack.begin == step.stack.begin and nxt.sp > end:
            end = nxt.sp
    end = min(end, step.stack.end) if step.stack.end > step.sp else end
    if end - step.sp > MAX_FRAME_BYTES:
        cut = f"frame of {end - step.sp} bytes: first {MAX_FRAME_BYTES} shown"
        end = step.sp + MAX_FRAME_BYTES
    length = (end - step.sp) // 8 * 8
    try:
        data = kernel.read(step.sp, length)
    except DumpError as error:
        return FrameWords(step.sp, (), f"unreadable: {error}")
    labels = layout.labels()
    words = tuple(
        FrameWord(step.sp + off, off, value, labels.get(off))
        for off, (value,) in zip(range(0, length, 8), struct.iter_unpack(">Q", data), strict=True)
    )
    return FrameWords(step.sp, words, cut)


def word_symbol(kernel: Kernel, value: int) -> str | None:
    """``-F``: the kernel symbol a value points into (``name+0xoff/0xsize``), or None."""
    if value == 0:
        return None
    try:
        return kernel.symbolize(value)
    except DumpError:
        return None


def words_json(kernel: Kernel, fw: FrameWords, symbols: bool) -> dict[str, Any]:
    """``bt -f --json``: the frame's words."""
    rows = []
    for w in fw.words:
        row: dict[str, Any] = {
            "offset": w.offset,
            "address": f"0x{w.address:x}",
            "value": f"0x{w.value:x}",
            "label": w.label,
        }
        if symbols:
            row["symbol"] = word_symbol(kernel, w.value)
        rows.append(row)
    return {"words": rows, "cut": fw.cut}


def words_text(kernel: Kernel, fw: FrameWords, symbols: bool, indent: str = "    ") -> list[str]:
    """crash ``bt -f``: unlabelled words four to a line, the register save area one labelled
    word a line; with ``symbols`` (``-F``) values inside kernel symbols by name."""
    out: list[str] = []
    row: list[FrameWord] = []

    def value_text(w: FrameWord) -> str:
        name = word_symbol(kernel, w.value) if symbols else None
        return name if name is not None else f"{w.value:016x}"

    def flush() -> None:
        if row:
            out.append(f"{indent}{row[0].address:016x}: " + " ".join(value_text(w) for w in row))
            row.clear()

    for w in fw.words:
        if w.label is not None:
            flush()
            out.append(f"{indent}{w.address:016x}: {value_text(w):<16}  {w.label}")
            continue
        if len(row) == 4 or (row and w.address != row[-1].address + 8):
            flush()
        row.append(w)
    flush()
    if fw.cut:
        out.append(f"{indent}({fw.cut})")
    return out
