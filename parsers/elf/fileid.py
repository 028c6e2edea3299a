"""What a file is by its content, and which kernel a vmlinux says it is.

Companion files beside a dump are recognised by what they hold, never by their names: a
``vmlinux-zst.log`` is text, not a kernel, and a ``System.map`` may be called anything.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass

from parsers.compressed import compression_of, decompressed_head
from parsers.errors import DumpError, FormatError
from parsers.inputs import open_regular

#: Kinds :func:`content_kind` tells apart.
VMLINUX, SYSTEM_MAP, PROFILE = "vmlinux", "system_map", "profile"

_EM_S390 = 22
_ET_EXEC = 2
_MAP_LINE = re.compile(rb"^[0-9a-fA-F]{8,16} [A-Za-z] \S+$")
_PROFILE_MARK = b'"backchain-profile"'


def content_kind(path: str | os.PathLike[str]) -> str | None:
    """:data:`VMLINUX` (an s390x ELF executable), :data:`SYSTEM_MAP` (``address type name``
    lines) or :data:`PROFILE` (a backchain type profile), compressed or not; else None.

    Raises:
        DumpError: the file is not a regular readable file.
    """
    head = decompressed_head(path, 4096)
    return kind_of_head(head)


def kind_of_head(head: bytes) -> str | None:
    """:func:`content_kind` of a file's first (decompressed) bytes."""
    if head[:4] == b"\x7fELF":
        if len(head) < 20 or head[4] != 2 or head[5] != 2:  # ELFCLASS64, ELFDATA2MSB
            return None
        e_type, e_machine = struct.unpack_from(">HH", head, 16)
        return VMLINUX if e_type == _ET_EXEC and e_machine == _EM_S390 else None
    if head.lstrip()[:1] == b"{":
        return PROFILE if _PROFILE_MARK in head else None
    lines = [line for line in head.split(b"\n")[:-1] if line.strip()][:8]
    if len(lines) >= 3 and all(_MAP_LINE.match(line) for line in lines):
        return SYSTEM_MAP
    return None


def is_compressed(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is zstd, xz or gzip data."""
    with open_regular(path) as f:
        return compression_of(f.read(8)) is not None


@dataclass(frozen=True, slots=True)
class ElfIdentity:
    """Which kernel a vmlinux is: its GNU build-id and the release in its ``linux_banner``.

    ``banners`` holds every ``Linux version …`` string of ``.rodata``: a kernel can carry more
    than one (Debian's 6.1 has ``# SMP …`` from init/version.c and the linked ``linux_banner``
    ``#1 SMP …`` from init/version-timestamp.c), and only one of them is ``linux_banner``.
    """

    build_id: str | None
    release: str | None
    banner: str | None
    banners: tuple[str, ...] = ()


def elf_identity(path: str | os.PathLike[str]) -> ElfIdentity:
    """Read the build-id note and ``linux_banner`` of an uncompressed vmlinux (its section
    table by ``struct``, :mod:`parsers.elf.sections`: no pyelftools on every start).

    Raises:
        DumpError: not a readable ELF file.
    """
    from parsers.elf.sections import SHT_NOBITS, ElfSections

    name = os.fspath(path)
    try:
        st = os.stat(name)
        key: tuple[str, int, int] | None = (os.path.realpath(name), st.st_size, st.st_mtime_ns)
    except OSError:
        key = None
    known = _IDENTITIES.get(key) if key is not None else None
    if known is not None:
        return known
    build_id = banner = None
    banners: tuple[str, ...] = ()
    try:
        with ElfSections(name, "vmlinux") as elf:
            build_id = elf.build_id()
            rodata = elf.get(".rodata")
            if rodata is not None and rodata.type != SHT_NOBITS:
                banners = all_banners_in(elf.bytes_of(rodata))
                banner = banners[0] if banners else None
    except FormatError as exc:
        raise FormatError(f"not a readable ELF file ({exc.message})", name) from None
    except OSError as exc:
        raise DumpError(f"cannot read: {exc.strerror or exc}", name) from None
    found = ElfIdentity(build_id, release_of_banner(banner), banner, banners)
    if key is not None:
        _IDENTITIES[key] = found
    return found


#: Identities read in this process, by (real path, size, modification time): a vmlinux named
#: for symbols and types is verified twice per start.
_IDENTITIES: dict[tuple[str, int, int], ElfIdentity] = {}


def banner_in(data: bytes) -> str | None:
    """The first ``Linux version <digit>…`` line in ``data`` (a kernel's ``linux_banner``)."""
    marker = b"Linux version "
    start = data.find(marker)
    while start >= 0:
        rest = data[start + len(marker) : start + len(marker) + 1]
        if rest.isdigit():
            end = data.find(b"\0", start, start + 512)
            text = data[start : end if end >= 0 else start + 512]
            return text.decode("ascii", "replace").rstrip("\n")
        start = data.find(marker, start + 1)
    return None


def all_banners_in(data: bytes, limit: int = 8) -> tuple[str, ...]:
    """Every ``Linux version <digit>…`` string in ``data`` (at most ``limit``), in order."""
    found: list[str] = []
    marker = b"Linux version "
    start = data.find(marker)
    while start >= 0 and len(found) < limit:
        banner = banner_in(data[start : start + 512])
        if banner is not None and data[start + len(marker) : start + len(marker) + 1].isdigit():
            found.append(banner)
        start = data.find(marker, start + 1)
    return tuple(found)


def release_of_banner(banner: str | None) -> str | None:
    """``6.1.0-50-s390x`` from ``Linux version 6.1.0-50-s390x (debian-kernel@…``."""
    if not banner:
        return None
    m = re.match(r"Linux version (\S+)", banner)
    return m.group(1) if m else None


__all__ = [
    "PROFILE",
    "SYSTEM_MAP",
    "VMLINUX",
    "ElfIdentity",
    "all_banners_in",
    "banner_in",
    "content_kind",
    "elf_identity",
    "is_compressed",
    "kind_of_head",
    "release_of_banner",
]
