"""The call-site check: was a return address really pushed by a call?

A return address R taken from a stack frame (the saved r14) should be the address right
after a call: ``brasl``/``bras``/``basr``/``bas``/``balr``/``bal`` with r14 as link register
(``brasl %r0`` too: ftrace's patched entry). The instruction ending at R is found from the
bytes before it, without decoding whole functions: an instruction's length is in its first
opcode byte's top two bits, so R-6, R-4 and R-2 are probed and a candidate is accepted only
if its own length says it ends at R. Over 130,836 real call sites (Debian 6.1) the true call
is always found this way; the longest r14 call among the candidates was right in 100%.

A return address may also follow a PSW swap (``lpswe``/``lpsw``/``lpswey``): the kernel
loads a PSW whose address is the label right after that instruction (``__load_psw_mask()``
of an enabled wait in ``arch_cpu_idle()``, a restart), so the address is in registers and
stack slots without any call. That is a kernel idiom, classified as ``psw_swap``, not an
alarm; only an address after neither is "not after a call".

This is advice for the reader, kept apart from the kernel's verdict: the unwinder checks
only ``__kernel_text_address()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from explorer.code.insn import Instruction, decode_one, insn_length

if TYPE_CHECKING:
    from explorer.code.text import CodeText
    from explorer.walk.unwind import Step

#: How a frame got an ip that is a return address (a saved r14), not a PSW.
RETURN_ADDRESS_KINDS = frozenset({"start", "backchain", "r14_guess"})
_R14 = 14


def _call_length(window: bytes) -> int:
    """Length of the call instruction ending at the end of the 6-byte ``window``, or 0.

    Probes the 6-, 4- and 2-byte candidates, longest first (the longest was right in every
    real case where two candidates decode).
    """
    b0 = window[0]
    if b0 == 0xC0 and window[1] & 0x0F == 0x05 and window[1] >> 4 in (_R14, 0):
        return 6  # brasl %r14 (and %r0: ftrace's patched function entry)
    b2 = window[2]
    if insn_length(b2) == 4:
        r1 = window[3] >> 4
        if r1 == _R14 and (
            (b2 == 0xA7 and window[3] & 0x0F == 0x05)  # bras
            or b2 in (0x4D, 0x45)  # bas, bal
        ):
            return 4
    b4 = window[4]
    if b4 in (0x0D, 0x05):  # basr, balr (r2 = 0 is an address load, not a call)
        regs = window[5]
        if regs >> 4 == _R14 and regs & 0x0F:
            return 2
    return 0


def _psw_swap_length(window: bytes) -> int:
    """Length of the PSW-swap instruction ending at the end of the 6-byte ``window``, or 0:
    ``lpswey`` (EB..71, 6 bytes), ``lpswe`` (B2B2, 4 bytes) or ``lpsw`` (82, 4 bytes)."""
    if window[0] == 0xEB and window[5] == 0x71:
        return 6
    if (window[2] == 0xB2 and window[3] == 0xB2) or window[2] == 0x82:
        return 4
    return 0


#: The calls :func:`call_insn_text` spells without Capstone: (first byte, low nibble of the
#: second byte or None) -> mnemonic; the register forms have a 2-byte RR encoding.
_RELATIVE_CALLS = {(0xC0, 0x5): "brasl", (0xA7, 0x5): "bras"}
_REGISTER_CALLS = {0x0D: "basr", 0x05: "balr"}


def _capstone_int(value: int) -> str:
    """An immediate as Capstone prints it: signed 64-bit, in hex when its magnitude is
    above 9 (``0xa``, ``-0x12``), else in decimal (``8``, ``-2``)."""
    value = ((value + (1 << 63)) & ((1 << 64) - 1)) - (1 << 63)
    sign, magnitude = ("-", -value) if value < 0 else ("", value)
    return f"{sign}0x{magnitude:x}" if magnitude > 9 else f"{sign}{magnitude}"


def call_insn_text(raw: bytes, address: int) -> tuple[str, str] | None:
    """``(mnemonic, operands)`` of the call instructions the call-site check finds
    (``brasl``, ``bras``, ``basr``, ``balr``) exactly as Capstone spells them, from their
    encoding (so ``check`` needs no disassembler); None for anything else (``bas``/``bal``
    with their D(X,B) operand are left to Capstone). ``tests/test_code_callsite.py``
    compares it with Capstone."""
    if len(raw) == 2 and raw[0] in _REGISTER_CALLS and raw[1] & 0x0F:
        return _REGISTER_CALLS[raw[0]], f"%r{raw[1] >> 4}, %r{raw[1] & 0x0F}"
    if len(raw) not in (4, 6):
        return None
    mnemonic = _RELATIVE_CALLS.get((raw[0], raw[1] & 0x0F))
    if mnemonic is None or (mnemonic == "brasl") != (len(raw) == 6):
        return None
    offset = int.from_bytes(raw[2:], "big", signed=True)
    return mnemonic, f"%r{raw[1] >> 4}, {_capstone_int(address + 2 * offset)}"


def is_call(insn: Instruction) -> bool:
    """True if ``insn`` is a call that sets r14 (or ftrace's r0) to its end."""
    window = bytes(6 - insn.size) + insn.raw
    return len(insn.raw) <= 6 and _call_length(window) == insn.size


def is_psw_swap(insn: Instruction) -> bool:
    """True if ``insn`` loads a new PSW (``lpswe``, ``lpsw``, ``lpswey``)."""
    window = bytes(6 - insn.size) + insn.raw
    return len(insn.raw) <= 6 and _psw_swap_length(window) == insn.size


@dataclass(frozen=True, slots=True)
class CallSite:
    """The check of one return address.

    Attributes:
        address: the return address R.
        after: what ends at R: ``"call"``, ``"psw_swap"`` (an ``lpswe``: the kernel loaded
            a PSW pointing here, see the module's docstring), ``"other"`` (neither: the
            alarm), None if the code before R is not readable (not in the dump, no vmlinux).
        call_at: where that instruction starts (R minus its length), for a call or a swap.
    """

    address: int
    after: str | None
    call_at: int | None = None

    @property
    def after_call(self) -> bool | None:
        """True after a call, False after neither a call nor a PSW swap (the alarm), None
        otherwise (after a PSW swap, or the code is unreadable)."""
        if self.after == "call":
            return True
        return False if self.after == "other" else None


class CallChecker:
    """Checks return addresses of one kernel, memoised (stacks repeat the same ones).

    Args:
        code: the kernel's code bytes.
    """

    def __init__(self, code: CodeText) -> None:
        self.code = code
        self._memo: dict[int, CallSite] = {}
        self._text: dict[int, str | None] = {}

    def check(self, address: int) -> CallSite:
        """Is the instruction ending at ``address`` a call?"""
        known = self._memo.get(address)
        if known is None:
            known = self._memo[address] = self.check_uncached(address)
        return known

    def check_uncached(self, address: int) -> CallSite:
        """:meth:`check` without the memo (what the benchmark measures)."""
        window = self.code.read(address - 6, 6)
        if window is None:
            return CallSite(address, None)
        size = _call_length(window)
        if size:
            return CallSite(address, "call", address - size)
        size = _psw_swap_length(window)
        if size:
            return CallSite(address, "psw_swap", address - size)
        return CallSite(address, "other")

    def call_text(self, site: CallSite) -> str | None:
        """The call as text, ``brasl %r14, __switch_to`` (target named), or None (also
        after a PSW swap: :meth:`insn_text`)."""
        if site.after != "call":
            return None
        return self.insn_text(site)

    def insn_text(self, site: CallSite) -> str | None:
        """The call or PSW swap ending at the return address as text (a call's target
        named: ``brasl %r14, __switch_to``; ``lpswe 0xa0(%r15)``), or None."""
        if site.call_at is None:
            return None
        if site.address in self._text:
            return self._text[site.address]
        text = None
        raw = self.code.read(site.call_at, site.address - site.call_at) or b""
        decoded = call_insn_text(raw, site.call_at)
        if decoded is None:
            insn = decode_one(raw, site.call_at)
            decoded = None if insn is None else (insn.mnemonic, insn.operands)
        if decoded is not None:
            from explorer.code.branches import relative_target

            mnemonic, ops = decoded
            target = relative_target(site.call_at, raw)
            name = None if target is None else self.code.where(target)
            if name is not None and name.endswith("+0x0"):
                name = name[:-4]
            if name is not None:
                ops = ops.rsplit(",", 1)[0] + ", " + name
            text = f"{mnemonic} {ops}"
        self._text[site.address] = text
        return text

    def for_step(self, step: Step) -> CallSite | None:
        """The check of a frame's return address; None for a frame whose ip is a PSW
        (the first frame of a running CPU, a frame from pt_regs)."""
        if step.how not in RETURN_ADDRESS_KINDS:
            return None
        return self.check(step.ip)

    def suspicious(self, steps: Iterable[Step]) -> list[tuple[Step, CallSite]]:
        """Frames whose return address does not follow a call."""
        out = []
        for step in steps:
            site = self.for_step(step)
            if site is not None and site.after_call is False:
                out.append((step, site))
        return out
