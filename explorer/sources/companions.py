"""Symbol and type files: the ones the user named, else companions found beside the dump.

An explicit option always wins: a companion only fills what the user left out. A companion is
recognised by its content (:func:`parsers.elf.fileid.content_kind`), looked for beside the dump
as named and beside a symlink's target, names carrying the dump's release first; each is
verified against the dump (:mod:`explorer.sources.verify`) and skipped with a note when it
does not match or cannot be read. A compressed vmlinux (``.zst``, ``.xz``, ``.gz``) named
with ``--vmlinux`` is decompressed once into the cache; one beside the dump is only noted (a
plain ``info`` never writes hundreds of MiB into the cache).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from explorer.image.dumpimage import Diagnostics, DumpImage
from explorer.sources.symcache import cached_file_symbols, file_symbols_key, save_file_symbols
from explorer.sources.verify import (
    Evidence,
    forced_warning,
    mismatch_error,
    profile_evidence,
    require_confirmation,
    symbol_evidence,
    vmlinux_evidence,
)
from parsers.cache import cache_dir
from parsers.compressed import decompressed_path
from parsers.elf.extent import elf_extent
from parsers.elf.fileid import (
    PROFILE,
    SYSTEM_MAP,
    VMLINUX,
    content_kind,
    elf_identity,
    is_compressed,
)
from parsers.errors import DumpError, MismatchError
from parsers.symbols.table import SymbolTable, load_system_map, load_vmlinux_symbols
from parsers.types.profile import TypeProfile

#: Files looked at per folder: a folder of many dumps stays quick.
MAX_FILES_PER_FOLDER = 256
_WHAT = {SYSTEM_MAP: "System.map", VMLINUX: "vmlinux", PROFILE: "type profile"}


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file beside the dump that holds symbols or types, by its content."""

    path: str
    kind: str
    names_release: bool


def companion_folders(dump_path: str) -> list[Path]:
    """The dump's folder as named, then its symlink target's folder if that differs."""
    given = Path(os.path.abspath(dump_path)).parent
    folders = [given]
    try:
        target = Path(dump_path).resolve().parent
    except OSError:
        return folders
    if target != given and target.is_dir():
        folders.append(target)
    return folders


def find_candidates(dump_path: str, release: str | None) -> list[Candidate]:
    """Files beside the dump that are a System.map, vmlinux or profile by content.

    Names that start with the dump's own name (``b.System.map.zst`` beside ``b.elf``, as
    ``convert`` names them) come first, then names that carry ``release``; otherwise folder
    order, then name order.
    """
    try:
        dump_real = Path(dump_path).resolve()
    except OSError:
        dump_real = Path(dump_path)
    seen: set[Path] = {dump_real}
    found: list[Candidate] = []
    for folder in companion_folders(dump_path):
        try:
            names = sorted(e.name for e in os.scandir(folder) if not e.name.startswith("."))
        except OSError:
            continue
        for name in names[:MAX_FILES_PER_FOLDER]:
            path = folder / name
            try:
                real = path.resolve()
                if real in seen or not real.is_file():  # is_file: no FIFO, device, socket
                    continue
                seen.add(real)
                kind = content_kind(path)
            except (OSError, DumpError):
                continue
            if kind is not None:
                found.append(Candidate(str(path), kind, bool(release and release in name)))
    own = Path(dump_path).stem + "."
    # stable: folder, name order
    return sorted(found, key=lambda c: (not Path(c.path).name.startswith(own), not c.names_release))


def plain_vmlinux(path: str) -> str:
    """``path`` itself, or its decompressed copy in the cache for ``.zst``/``.xz``/``.gz``.

    Raises:
        DumpError: unreadable or damaged compressed data.
    """
    if is_compressed(path):
        return str(decompressed_path(path, cache_dir=cache_dir("vmlinux"), extent=elf_extent))
    return path


@dataclass(frozen=True, slots=True)
class Files:
    """The symbol and type files a kernel is opened with: the ones the user named, else the
    verified companions found beside the dump (a vmlinux as its plain, decompressed copy
    once the kernel is open).

    Attributes:
        vmlinux: vmlinux with symbols and DWARF, or None.
        system_map: System.map, or None.
        profile: a saved type profile, or None.
    """

    vmlinux: str | None = None
    system_map: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class Verifier:
    """Verifies files against one dump's image; what it finds goes to ``notes``.

    Attributes:
        image: the dump's own identity.
        notes: where warnings, ``--force`` mismatches and skipped companions are said.
        force: use a mismatching file (with a warning) instead of refusing it.
        loaded: symbol tables already loaded and verified, by the path given.
    """

    image: DumpImage
    notes: Diagnostics
    force: bool = False
    loaded: dict[str, SymbolTable] = field(default_factory=dict)

    def judge(self, path: str, what: str, ev: Evidence) -> None:
        """Refuse a file the evidence says is not the dump's, or with ``--force`` warn.

        Raises:
            MismatchError: the file does not belong to the dump and ``--force`` was not given.
        """
        if ev.unconfirmed:
            note = (
                f"{what} {path} could not be checked against the dump (no VMCOREINFO symbols, "
                "no linux_banner to compare): its names are unconfirmed"
            )
            if note not in self.notes.warnings:
                self.notes.warnings.append(note)
        if not ev.mismatch:
            return
        identity = self.image.identity
        if not self.force:
            raise mismatch_error(identity, path, what, ev)
        warning = forced_warning(identity, path, what, ev)
        if warning not in self.notes.forced:
            self.notes.forced.append(warning)
            self.notes.warnings.append(warning)

    def symbols(self, path: str, kind: str) -> SymbolTable:
        """Load a System.map or vmlinux's symbols, relocate them, verify them against the
        dump: the dump must confirm them (:func:`require_confirmation`), not merely fail to
        contradict them. Cached by a digest of the bytes they are read from, and only once
        verified.

        Raises:
            DumpError: unreadable file.
            MismatchError: another kernel's symbols (without ``--force``).
        """
        cached = self.loaded.get(path)
        if cached is not None:
            return cached
        plain = plain_vmlinux(path) if kind == VMLINUX else path
        key = file_symbols_key(plain, "vmlinux" if kind == VMLINUX else "System.map")
        table = cached_file_symbols(key)
        built = table is None
        if table is None and kind == VMLINUX:  # built beside this process, if it was
            from explorer.sources import prefetch

            table = prefetch.take(plain)
        if table is None:
            table = load_vmlinux_symbols(plain) if kind == VMLINUX else load_system_map(plain)
        else:  # the same bytes under this name: as reading them here would call them
            table.source = f"vmlinux {plain}" if kind == VMLINUX else f"System.map {plain}"
        delta, warning = self.image.symbol_delta(table)
        if warning is not None:
            self.notes.warnings.append(warning)
        if delta:
            table.relocate(delta)
        ev = symbol_evidence(self.image.identity, table, delta)
        if kind == VMLINUX:
            vmlinux_evidence(self.image.identity, elf_identity(plain), ev)
        self.judge(path, _WHAT[kind], require_confirmation(self.image.identity, ev))
        if built and not ev.mismatch:
            save_file_symbols(key, table)
        if kind == VMLINUX and key is not None and not ev.mismatch:
            from explorer.sources import prefetch

            prefetch.remember(plain, key)  # the next start forks no worker for it
        self.loaded[path] = table
        return table

    def vmlinux(self, path: str) -> str:
        """Check a vmlinux named for its types only; return its plain path. Its build-id and
        release must agree, and its symbols must be confirmed by the dump (as
        :meth:`symbols`): a build-id is only what the file claims.

        Raises:
            DumpError: unreadable.
            MismatchError: another kernel's vmlinux (without ``--force``).
        """
        plain = plain_vmlinux(path)
        self.judge(path, "vmlinux", vmlinux_evidence(self.image.identity, elf_identity(plain)))
        try:
            self.symbols(path, VMLINUX)
        except MismatchError:
            raise
        except DumpError:  # no .symtab (a stripped vmlinux): its types stand on the build-id
            pass
        return plain

    def profile(self, profile: TypeProfile, path: str) -> TypeProfile:
        """Check a type profile against the dump (build-id, release); return it.

        Raises:
            MismatchError: another kernel's profile (without ``--force``).
        """
        self.judge(path, "type profile", profile_evidence(self.image.identity, profile))
        return profile


def choose_companions(verifier: Verifier, given: Files) -> Files:
    """The files to open with: ``given`` completed by verified companions found beside the
    dump where the user left one out; each companion skipped is noted. ``--force`` never
    makes a companion be used."""
    want_symbols = not (given.system_map or given.vmlinux)
    want_types = not (given.vmlinux or given.profile)
    if not (want_symbols or want_types):
        return given
    chosen = given
    image, notes = verifier.image, verifier.notes
    strict = replace(verifier, force=False)  # shares the notes and the loaded tables
    ident = image.identity
    for cand in find_candidates(image.path, ident.release):
        if cand.kind == PROFILE and not want_types:
            continue
        if cand.kind == SYSTEM_MAP and not want_symbols:
            continue
        if cand.kind == VMLINUX and not (want_symbols or want_types):
            continue
        what = _WHAT[cand.kind]
        if cand.kind == VMLINUX and is_compressed(cand.path):
            notes.skip(
                f"skipped {what} {cand.path} found beside the dump: compressed, and not "
                f"decompressed unasked (pass --vmlinux {cand.path} to use it)"
            )
            continue
        try:
            if cand.kind == PROFILE:
                profile = TypeProfile.load(cand.path)
                ev = profile_evidence(ident, profile)
                if ev.mismatch:
                    raise mismatch_error(ident, cand.path, what, ev)
                chosen = replace(chosen, profile=cand.path)
                want_types = False
            elif cand.kind == SYSTEM_MAP:
                strict.symbols(cand.path, SYSTEM_MAP)
                chosen = replace(chosen, system_map=cand.path)
                want_symbols = False
            else:
                if want_symbols:
                    strict.symbols(cand.path, VMLINUX)
                    want_symbols = False
                else:
                    strict.vmlinux(cand.path)
                chosen = replace(chosen, vmlinux=cand.path)
                want_types = False
        except MismatchError as exc:
            notes.skip(
                f"skipped {what} {cand.path} found beside the dump: it belongs to another "
                f"kernel ({exc.evidence or exc.message})"
            )
            continue
        except DumpError as exc:
            notes.skip(f"skipped {what} {cand.path} found beside the dump: {exc}")
            continue
        notes.warnings.append(f"using {what} {cand.path} found beside the dump")
        if not (want_symbols or want_types):
            break
    return chosen


__all__ = [
    "Candidate",
    "Files",
    "Verifier",
    "choose_companions",
    "companion_folders",
    "find_candidates",
    "plain_vmlinux",
]
