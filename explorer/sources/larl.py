"""Addresses a function loads with LARL: how a text-only kallsyms finds data symbols
(``modules``, ``idle_threads``) in the code that uses them."""

from __future__ import annotations


def larl_targets(code: bytes, start: int) -> list[int]:
    """Operands of ``larl`` (RIL-b, opcode C0x0) in straight-line code from its start."""
    out = []
    i = 0
    while i + 2 <= len(code):
        op = code[i]
        length = (2, 4, 4, 6)[op >> 6]  # the instruction length code in the first byte
        if op == 0xC0 and code[i + 1] & 0x0F == 0 and i + 6 <= len(code):
            out.append(start + i + 2 * int.from_bytes(code[i + 2 : i + 6], "big", signed=True))
        i += length
    return out


__all__ = ["larl_targets"]
