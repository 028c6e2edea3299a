"""Does a symbol file, vmlinux or type profile belong to the dump? Evidence, then a verdict.

The evidence, strongest first:

* VMCOREINFO ``SYMBOL(x)=`` values (runtime addresses the crashed kernel wrote) against the
  file's address of ``x`` after the KASLR offset: one differing value proves a System.map
  belongs to another build, even of the same release.
* VMCOREINFO ``BUILD-ID`` against the vmlinux's GNU build-id note or a profile's build-id.
* The release (VMCOREINFO ``OSRELEASE``) against the vmlinux's ``linux_banner`` or the
  profile's release.
* ``linux_banner`` read from the dump's memory at the file's address of ``linux_banner``:
  it must read ``Linux version RELEASE``, and equal the vmlinux's own banner.

A file with contrary evidence is refused (:class:`MismatchError`, exit 2) unless ``--force``
is given; then it is used and every output carries a warning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from explorer.image.dumpimage import DumpIdentity
from parsers.elf.fileid import ElfIdentity, release_of_banner
from parsers.errors import MismatchError
from parsers.symbols.table import SymbolTable
from parsers.types.profile import TypeProfile

#: SYMBOL() entries whose value is a pointer's content, not a symbol's address
#: (VMCOREINFO_SYMBOL_ARRAY of SPARSEMEM_EXTREME's mem_section; s390's vmemmap).
_VALUE_SYMBOLS = frozenset({"mem_section", "vmemmap"})
#: The KASLR anchor itself proves nothing (the relocation is computed from it).
_ANCHOR = "_stext"
#: SYMBOL() names that are macros, not symbols (``node_online_map`` is
#: ``node_states[N_ONLINE]``): no symbol file has them.
_NOT_SYMBOLS = frozenset({"node_online_map"})
#: Symbols every kernel's table has: the bounds of its text (a file cut short lacks _etext).
_TEXT_BOUNDS = ("_stext", "_etext")


@dataclass
class Evidence:
    """What was compared: ``agree`` and ``differ`` are short sentences."""

    agree: list[str] = field(default_factory=list)
    differ: list[str] = field(default_factory=list)
    memory_banner: str | None = None
    #: the dump has nothing to compare the file with (no VMCOREINFO symbols, no banner)
    unconfirmed: bool = False
    #: The dump's memory or VMCOREINFO values positively agree with the file (a SYMBOL()
    #: value, linux_banner read where the file puts it); a build-id or release the file
    #: merely claims does not count.
    confirmed: bool = False

    @property
    def mismatch(self) -> bool:
        """True when anything contradicts the file belonging to the dump."""
        return bool(self.differ)

    def summary(self) -> str:
        """The evidence in one line."""
        return "; ".join(self.differ or self.agree) or "nothing to compare"


def symbol_evidence(
    ident: DumpIdentity, table: SymbolTable, kaslr: int, confirm: bool = True
) -> Evidence:
    """Compare a relocated symbol table with the dump's SYMBOL() values and linux_banner.

    A table must be whole (``_stext`` and ``_etext``; most names VMCOREINFO gives when it
    has data symbols). With ``confirm``, one the dump has nothing to compare with is
    :attr:`Evidence.unconfirmed` (used with a warning); :func:`require_confirmation` refuses
    one it could confirm but does not.

    Args:
        ident: the dump's identity.
        table: the file's symbols, already relocated by ``kaslr``.
        kaslr: the relocation applied (for the message).
        confirm: mark a table nothing can confirm (False for a table read from the dump
            itself, which its caller confirms by ``_stext``).
    """
    ev = Evidence()
    same = 0
    wrong: list[tuple[str, int, int]] = []
    absent = [  # a table of text symbols only (kallsyms without KALLSYMS_ALL) lacks them all
        name
        for name in ident.symbols
        if name not in _VALUE_SYMBOLS and name not in _NOT_SYMBOLS and name != _ANCHOR
        if table.address_of(name) is None
    ]
    # init_uts_ns (it holds the release) first: the best-known name in the message
    for name, value in sorted(
        ident.symbols.items(), key=lambda kv: (kv[0] != "init_uts_ns", kv[0])
    ):
        if name in _VALUE_SYMBOLS or name == _ANCHOR:
            continue
        have = table.address_of(name)
        if have is None:
            continue
        if have == value:
            same += 1
        else:
            wrong.append((name, value, have))
    if wrong:
        name, value, have = wrong[0]
        ev.differ.append(
            f"VMCOREINFO has SYMBOL({name})=0x{value:x} but the file puts {name} at "
            f"0x{have:x} after the KASLR offset 0x{kaslr:x} "
            f"({len(wrong)} of {len(wrong) + same} SYMBOL() values differ)"
        )
    elif same:
        ev.agree.append(f"{same} VMCOREINFO SYMBOL() values agree")
        ev.confirmed = True
    if table.has_data_symbols and absent and len(absent) * 4 > len(absent) + same + len(wrong):
        ev.differ.append(
            f"the file lacks {len(absent)} of the {len(absent) + same + len(wrong)} symbols "
            f"VMCOREINFO names ({', '.join(sorted(absent)[:3])}…): cut short, or not this "
            "kernel's"
        )
    bounds = [name for name in _TEXT_BOUNDS if table.address_of(name) is None]
    if bounds:
        ev.differ.append(
            f"the file has no {' or '.join(bounds)}: a symbol table cut short, or not a kernel's"
        )
    banner_address = table.address_of("linux_banner")
    if banner_address is not None:
        text = ident.banner_at(banner_address)
        if text is not None and not text.startswith("Linux version "):
            ev.differ.append(
                f"memory at the file's linux_banner 0x{banner_address:x} reads {text!r}, "
                "not 'Linux version …'"
            )
        elif text is not None:
            ev.memory_banner = text
            release = release_of_banner(text)
            if ident.release and release != ident.release:
                ev.differ.append(
                    f"memory at the file's linux_banner reads release {release}, the dump's "
                    f"VMCOREINFO says {ident.release}"
                )
            else:
                ev.agree.append(f"linux_banner in memory reads {release}")
                ev.confirmed = ev.confirmed or release == ident.release
    nothing = not ident.symbols.keys() - {_ANCHOR} - _VALUE_SYMBOLS and banner_address is None
    if confirm and nothing and not ev.differ and not ev.agree:
        ev.unconfirmed = True  # nothing to compare with: used, with a warning
    return ev


def require_confirmation(ident: DumpIdentity, ev: Evidence) -> Evidence:
    """Make "nothing contradicts it" not enough: a symbol file the dump could confirm (its
    VMCOREINFO has SYMBOL() values besides the KASLR anchor) but does not is refused like a
    contradicting one (a file forging the dump's build-id, with none of its symbols, was
    accepted before). A dump without such values cannot confirm anything: as before."""
    checkable = [n for n in ident.symbols if n not in _VALUE_SYMBOLS and n != _ANCHOR]
    if ev.mismatch or ev.confirmed or not checkable:
        return ev
    ev.differ.append(
        "nothing in the dump confirms it: none of its "
        f"{len(checkable)} VMCOREINFO SYMBOL() values is in the file and no linux_banner is "
        "in memory where the file puts one"
    )
    return ev


def vmlinux_evidence(ident: DumpIdentity, elf: ElfIdentity, ev: Evidence | None = None) -> Evidence:
    """Compare a vmlinux's build-id and banner with the dump (adds to ``ev`` if given)."""
    ev = ev or Evidence()
    if ident.build_id and elf.build_id:
        if ident.build_id != elf.build_id:
            ev.differ.insert(
                0,
                f"BUILD-ID {ident.build_id[:16]}… in the dump's VMCOREINFO, "
                f"{elf.build_id[:16]}… in the file's build-id note",
            )
        else:
            ev.agree.insert(0, f"BUILD-ID {ident.build_id[:16]}… agrees")
    if ident.release and elf.release and ident.release != elf.release:
        ev.differ.append(f"release {ident.release} in the dump, {elf.release} in the file")
    banners = elf.banners or ((elf.banner,) if elf.banner else ())
    if ev.memory_banner and banners and ev.memory_banner not in banners:
        ev.differ.append(
            f"linux_banner in memory {_tail(ev.memory_banner, banners[0])!r} differs from the "
            f"file's {_tail(banners[0], ev.memory_banner)!r}"
        )
    return ev


def _tail(text: str, other: str, width: int = 60) -> str:
    """``text`` from a little before where it first differs from ``other``."""
    same = next((i for i, (a, b) in enumerate(zip(text, other, strict=False)) if a != b), len(text))
    start = max(0, same - 20)
    return (
        ("…" if start else "")
        + text[start : start + width]
        + ("…" if start + width < len(text) else "")
    )


def profile_evidence(ident: DumpIdentity, profile: TypeProfile) -> Evidence:
    """Compare a type profile's build-id and release with the dump."""
    ev = Evidence()
    if ident.build_id and profile.build_id:
        if ident.build_id != profile.build_id:
            ev.differ.append(
                f"BUILD-ID {ident.build_id[:16]}… in the dump's VMCOREINFO, "
                f"{profile.build_id[:16]}… in the profile"
            )
        else:
            ev.agree.append(f"BUILD-ID {ident.build_id[:16]}… agrees")
    if ident.release and profile.release and ident.release != profile.release:
        ev.differ.append(f"release {ident.release} in the dump, {profile.release} in the profile")
    return ev


def mismatch_error(ident: DumpIdentity, path: str, what: str, ev: Evidence) -> MismatchError:
    """The one-line refusal naming both files and the evidence."""
    error = MismatchError(
        f"this {what} does not belong to the dump {ident.path}: {ev.summary()} "
        "(--force uses it anyway)",
        path,
    )
    error.evidence = ev.summary()
    return error


def forced_warning(ident: DumpIdentity, path: str, what: str, ev: Evidence) -> str:
    """The warning every output carries when ``--force`` made a mismatching file be used."""
    return (
        f"FORCED: using {what} {path} although it does not belong to the dump "
        f"{ident.path} ({ev.summary()}): names and offsets may be wrong"
    )


__all__ = [
    "DumpIdentity",
    "Evidence",
    "forced_warning",
    "mismatch_error",
    "profile_evidence",
    "require_confirmation",
    "symbol_evidence",
    "vmlinux_evidence",
]
