"""What the user gave besides the dump: a module of its own, light to import (a
``check --cluster`` client builds the options without loading the dump readers)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Options:
    """What the user gave besides the dump (all optional). Never changed: the files opening
    chose are the kernel's :attr:`Kernel.files`.

    Attributes:
        vmlinux: vmlinux with symbols (and DWARF for types).
        system_map: System.map (plain or .zst).
        profile: a saved type profile (JSON).
        era: force the unwinder/lowcore era instead of deriving it from the release.
        force: use a symbol file, vmlinux or profile that does not belong to the dump (with
            a warning on every output) instead of refusing it.
        types: the type source: auto, dwarf, btf, profile, bundled or probe.
        source: a kernel source tree, to show the source lines of frames.
    """

    vmlinux: str | None = None
    system_map: str | None = None
    profile: str | None = None
    era: str | None = None
    force: bool = False
    types: str = "auto"
    source: str | None = None
