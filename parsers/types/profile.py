"""Struct offsets and sizes the explorer needs, from DWARF, BTF or a saved profile.

A :class:`TypeProfile` is the small record of kernel type layout that finding tasks and
walking s390x stacks depends on: ``task_struct`` members, ``struct lowcore`` stack
pointers, ``struct stack_frame``, ``struct pt_regs``, ``THREAD_SIZE`` and a few more.
Keys are ``"struct.member"``; members of anonymous structs and unions appear under the
enclosing struct (as C sees them), and a few nested structs are flattened by dots, e.g.
``"task_struct.thread.ksp"`` is ``offsetof(struct task_struct, thread.ksp)``.

Three sources fill it:

* :func:`profile_from_dwarf` reads a vmlinux with debug info (the ``-dbg`` package),
  finding each struct's definition without walking the whole ``.debug_info``, and caches
  the result by build-id.
* :func:`profile_from_btf` parses raw BTF, e.g. the bytes between ``__start_BTF`` and
  ``__stop_BTF`` read from a dump.
* :meth:`TypeProfile.load` reads a JSON profile written by :meth:`TypeProfile.save`.

Every layout fact comes from the kernel being read: task_struct offsets differ between
builds of the same release, so nothing here is a table of offsets.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
import json
import os
import struct
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from parsers.btf.reader import Btf, BtfMember
from parsers.dwarf.leb128 import Overlong, uleb128
from parsers.elf.sections import SHT_NOBITS, ElfSections
from parsers.errors import DumpError, FormatError, TypeInfoError
from parsers.inputs import open_regular

if TYPE_CHECKING:  # imported where used: loading a cached profile needs neither, and a
    # start that takes its types from BTF (info, a warm start) no DWARF reader
    from elftools.dwarf.die import DIE
    from elftools.dwarf.dwarfinfo import DWARFInfo
    from elftools.elf.elffile import ELFFile

    from parsers.dwarf.reader import Die
    from parsers.dwarf.structs import DwarfStructs

__all__ = [
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "WANTED",
    "TypeProfile",
    "build_ahead",
    "default_cache_dir",
    "profile_from_btf",
    "profile_from_dwarf",
]

PROFILE_FORMAT = "backchain-profile"
PROFILE_VERSION = 1

#: What to do when a member is unknown; part of every "not known" message.
REMEDY = (
    "pass --vmlinux with debug info, or --profile FILE made by `backchain profile VMLINUX -o FILE`"
)

#: Structs a profile records, by profile key, with the names the kernel has used for them
#: (``struct _lowcore`` became ``struct lowcore`` around v4.7).
STRUCTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "task_struct": ("task_struct",),
        "signal_struct": ("signal_struct",),
        "list_head": ("list_head",),
        "ftrace_ret_stack": ("ftrace_ret_stack",),
        "lowcore": ("lowcore", "_lowcore"),
        "stack_frame": ("stack_frame",),
        "pt_regs": ("pt_regs",),
        "thread_union": ("thread_union",),
        # Loaded modules' text ranges, for __kernel_text_address(): ``struct module`` with
        # ``core_layout``/``init_layout`` (struct module_layout) up to v6.3, ``mem[]`` of
        # struct module_memory since v6.4.
        "module": ("module",),
        "module_layout": ("module_layout",),
        "module_memory": ("module_memory",),
        # Each module's symbols (kernel/module/kallsyms.c): symtab, num_symtab, strtab.
        "mod_kallsyms": ("mod_kallsyms",),
        # The livepatch state (include/linux/livepatch.h, kernel/livepatch/patch.h); only
        # kernels built with CONFIG_LIVEPATCH have them.
        "klp_patch": ("klp_patch",),
        "klp_object": ("klp_object",),
        "klp_func": ("klp_func",),
        "klp_ops": ("klp_ops",),
    }
)

#: Structs some kernels (or test objects) lack: only one of module_layout/module_memory exists.
OPTIONAL_STRUCTS = frozenset(
    {
        "module",
        "module_layout",
        "module_memory",
        "mod_kallsyms",
        "klp_patch",
        "klp_object",
        "klp_func",
        "klp_ops",
    }
)

#: Named struct members whose own members are recorded too, as "outer.member.inner".
EXPAND = frozenset(
    {
        "task_struct.thread",
        "task_struct.thread_info",
        "pt_regs.psw",
        "module.core_layout",
        "module.init_layout",
    }
)

#: The members the explorer needs; each entry lists alternatives (newest name first), any
#: one of which will do. A profile's ``missing`` names the entries it has none of.
WANTED: tuple[tuple[str, ...], ...] = (
    ("task_struct.tasks",),
    ("task_struct.pid",),
    ("task_struct.tgid",),
    ("task_struct.comm",),
    ("task_struct.stack",),
    # "sched: Change task_struct::state" (v5.14) renamed state to __state.
    ("task_struct.__state", "task_struct.state"),
    ("task_struct.exit_state",),
    ("task_struct.flags",),
    ("task_struct.on_cpu",),
    # v5.16 moved cpu back into thread_info for THREAD_INFO_IN_TASK ("sched: move CPU field
    # back into thread_info if THREAD_INFO_IN_TASK=y"); Debian 6.1 and 6.12 have it there.
    ("task_struct.thread_info.cpu", "task_struct.cpu"),
    ("task_struct.real_parent",),
    # thread_group is gone in newer kernels (absent in Debian 6.12, present in 6.1).
    ("task_struct.thread_node", "task_struct.thread_group"),
    ("task_struct.signal",),
    ("signal_struct.thread_head",),
    ("task_struct.thread.ksp",),
    # Both need CONFIG_FUNCTION_GRAPH_TRACER.
    ("task_struct.ret_stack",),
    ("task_struct.curr_ret_stack",),
    ("ftrace_ret_stack.ret",),
    ("ftrace_ret_stack.func",),
    # Debian 6.12 has both (kretprobes on rethook); 6.1 only kretprobe_instances.
    ("task_struct.rethooks", "task_struct.kretprobe_instances"),
    ("list_head.next",),
    ("list_head.prev",),
    ("lowcore.current_task",),
    ("lowcore.kernel_stack",),
    ("lowcore.async_stack",),
    # v4.x kernels had panic_stack in the slot after async_stack (docs/kernel-facts.md, lowcore).
    ("lowcore.nodat_stack", "lowcore.panic_stack"),
    ("lowcore.restart_stack",),
    ("lowcore.mcck_stack",),
    ("lowcore.kernel_asce",),
    ("lowcore.percpu_offset",),
    ("lowcore.preempt_count",),
    ("lowcore.vmcore_info",),
    ("lowcore.os_info",),
    ("stack_frame.back_chain",),
    ("stack_frame.gprs",),
    ("pt_regs.psw",),
    ("pt_regs.gprs",),
    ("pt_regs.orig_gpr2",),
    ("pt_regs.int_code",),
    ("pt_regs.flags",),
    ("pt_regs.cr1",),
    ("pt_regs.last_break",),
    ("task_struct",),
    ("pt_regs",),
    ("stack_frame",),
    ("lowcore",),
    ("thread_union",),
    ("ftrace_ret_stack",),
)

# Bumped whenever extraction changes what a profile holds, so stale cache files are ignored.
_CACHE_GENERATION = 4
# Anonymous struct/union nesting deeper than this is damage, not C.
_MAX_NESTING = 16
# A profile file is a few tens of KiB; refuse to slurp anything absurd.
_MAX_PROFILE_BYTES = 16 << 20


@dataclass(frozen=True)
class TypeProfile:
    """Offsets and sizes of the kernel structs backchain reads.

    Attributes:
        release: kernel release (``uname -r``) if known.
        build_id: hex GNU build-id of the vmlinux the profile describes, if known.
        source: where it came from: ``"dwarf:PATH"``, ``"btf:dump"``, ``"profile:PATH"``.
        offsets: byte offsets keyed ``"struct.member"`` (nested members by more dots).
        sizes: ``sizeof`` keyed by struct name (``"task_struct"``; ``"thread_union"`` is
            THREAD_SIZE) and by member key (``"task_struct.comm"`` is the comm length).
        member_sources: source of the keys that did not come from ``source`` (after
            :meth:`merged`).
        missing: entries of :data:`WANTED` the source did not have, alternatives joined
            by ``"|"``.
        notes: how it was read, when a user should know (DWARF left to pyelftools); not
            saved with the profile.
    """

    release: str | None
    build_id: str | None
    source: str
    offsets: Mapping[str, int]
    sizes: Mapping[str, int]
    member_sources: Mapping[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        # Read-only views: a profile is shared by every reader of one dump.
        for name in ("offsets", "sizes", "member_sources"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        object.__setattr__(self, "missing", tuple(self.missing))

    def has(self, name: str) -> bool:
        """Return whether an offset or a size named ``name`` is known."""
        return name in self.offsets or name in self.sizes

    def offset(self, name: str) -> int:
        """Return the offset of member ``name`` (``"task_struct.thread.ksp"``).

        Raises:
            TypeInfoError: the member is not in this profile.
        """
        try:
            return self.offsets[name]
        except KeyError:
            raise self._unknown(f"offset of {name}") from None

    def size(self, name: str) -> int:
        """Return the size of struct ``name`` (``"pt_regs"``) or member ``"struct.member"``.

        Raises:
            TypeInfoError: the size is not in this profile.
        """
        try:
            return self.sizes[name]
        except KeyError:
            raise self._unknown(f"size of {name}") from None

    def first_of(self, *names: str) -> str:
        """Return the first of ``names`` this profile knows, for members kernels renamed.

        Example: ``p.offset(p.first_of("task_struct.__state", "task_struct.state"))``.

        Raises:
            TypeInfoError: none of ``names`` is known.
        """
        for name in names:
            if self.has(name):
                return name
        raise self._unknown(" or ".join(names))

    @property
    def thread_size(self) -> int:
        """THREAD_SIZE: the size of ``union thread_union`` (every s390 stack is this long)."""
        return self.size("thread_union")

    def source_of(self, name: str) -> str:
        """Return the source that gave ``name``."""
        return self.member_sources.get(name, self.source)

    def merged(self, other: TypeProfile) -> TypeProfile:
        """Return this profile completed by ``other``; where both know a key, self wins.

        Args:
            other: a profile of the same kernel from another source.
        """
        offsets = {**other.offsets, **self.offsets}
        sizes = {**other.sizes, **self.sizes}
        sources = dict(self.member_sources)
        for key in (*other.offsets, *other.sizes):
            if key not in self.offsets and key not in self.sizes:
                sources[key] = other.source_of(key)
        return TypeProfile(
            release=self.release or other.release,
            build_id=self.build_id or other.build_id,
            source=self.source,
            offsets=offsets,
            sizes=sizes,
            member_sources=sources,
            missing=_missing(offsets, sizes),
        )

    def to_json(self) -> str:
        """Return the profile as JSON text (see :meth:`from_json`)."""
        document = {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "release": self.release,
            "build_id": self.build_id,
            "source": self.source,
            "missing": list(self.missing),
            "offsets": dict(sorted(self.offsets.items())),
            "sizes": dict(sorted(self.sizes.items())),
            "member_sources": dict(sorted(self.member_sources.items())),
        }
        return json.dumps(document, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> TypeProfile:
        """Parse a profile written by :meth:`to_json`.

        Raises:
            FormatError: the text is not a backchain profile of a version this code reads.
        """
        try:
            document = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise FormatError(f"not a backchain type profile (not JSON: {error})") from None
        except RecursionError:  # arrays nested thousands deep: no profile is
            raise FormatError("not a backchain type profile (JSON nested too deep)") from None
        if not isinstance(document, dict) or document.get("format") != PROFILE_FORMAT:
            raise FormatError(f'not a backchain type profile (no "format": "{PROFILE_FORMAT}")')
        version = document.get("version")
        if version != PROFILE_VERSION:
            raise FormatError(
                f"type profile version {version!r} is not supported (this backchain reads "
                f"version {PROFILE_VERSION}); make it again with `backchain profile VMLINUX`"
            )
        return cls(
            release=_optional_str(document, "release"),
            build_id=_optional_str(document, "build_id"),
            source=_optional_str(document, "source") or "profile",
            offsets=_int_map(document, "offsets"),
            sizes=_int_map(document, "sizes"),
            member_sources=_str_map(document, "member_sources"),
            missing=tuple(_str_list(document, "missing")),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile as JSON to ``path``, atomically.

        Raises:
            DumpError: the file cannot be written.
        """
        from parsers.cache import exclusive_temp

        try:
            with exclusive_temp(Path(path), make_folder=False) as out:
                out.write(self.to_json().encode("utf-8"))
        except OSError as error:
            raise DumpError(f"cannot write type profile: {error.strerror}", str(path)) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TypeProfile:
        """Read a profile saved by :meth:`save`; its ``source`` becomes ``"profile:PATH"``.

        Raises:
            DumpError: the file cannot be read.
            FormatError: the file is not a backchain profile of a version this code reads.
        """
        name = os.fspath(path)
        try:
            with open_regular(name, "type profile") as stream:
                size = os.fstat(stream.fileno()).st_size
                if size > _MAX_PROFILE_BYTES:
                    raise FormatError("too large to be a backchain type profile", name)
                text = stream.read(size + 1)  # no buffer of the maximum size up front
        except OSError as error:
            raise DumpError(f"cannot read type profile: {error.strerror}", name) from None
        if len(text) > _MAX_PROFILE_BYTES:  # grew while being read
            raise FormatError("too large to be a backchain type profile", name)
        try:
            profile = cls.from_json(text)
        except DumpError as error:
            raise error.with_path(name) from None
        return replace(profile, source=f"profile:{name}")

    def _unknown(self, what: str) -> TypeInfoError:
        return TypeInfoError(f"{what} is not known from {self.source}: {REMEDY}")


def _missing(offsets: Mapping[str, int], sizes: Mapping[str, int]) -> tuple[str, ...]:
    return tuple(
        "|".join(group)
        for group in WANTED
        if not any(name in offsets or name in sizes for name in group)
    )


def _optional_str(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise FormatError(f'type profile: "{key}" must be a string')
    return value


def _int_map(document: Mapping[str, Any], key: str) -> dict[str, int]:
    value = document.get(key, {})
    if not isinstance(value, dict) or not all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value.values()
    ):
        raise FormatError(f'type profile: "{key}" must map names to non-negative integers')
    return value


def _str_map(document: Mapping[str, Any], key: str) -> dict[str, str]:
    value = document.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise FormatError(f'type profile: "{key}" must map names to strings')
    return value


def _str_list(document: Mapping[str, Any], key: str) -> list[str]:
    value = document.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormatError(f'type profile: "{key}" must be a list of strings')
    return value


# --------------------------------------------------------------------------------------------
# Flattening, shared by DWARF and BTF


class _Member(NamedTuple):
    """One data member as the DWARF readers describe it, bitfields already left out (BTF's
    reader gives :class:`parsers.btf.reader.BtfMember`, the same four fields)."""

    name: str | None  # None for an anonymous struct/union member
    offset: int  # bytes from the start of the enclosing struct
    size: int | None  # None when the source cannot say (e.g. a flexible array)
    aggregate: Any  # the member's struct/union type (a source handle) or None


def _flatten(
    members_of: Callable[[Any], Iterable[_Member | BtfMember]],
    aggregate: Any,
    prefix: str,
    base: int,
    offsets: dict[str, int],
    sizes: dict[str, int],
    depth: int = 0,
) -> None:
    """Record the members of ``aggregate`` under ``prefix``, anonymous ones flattened."""
    if depth > _MAX_NESTING:
        raise FormatError(f"type information nests deeper than {_MAX_NESTING} at {prefix}")
    for member in members_of(aggregate):
        offset = base + member.offset
        if not member.name:
            if member.aggregate is not None:
                _flatten(members_of, member.aggregate, prefix, offset, offsets, sizes, depth + 1)
            continue
        key = prefix + member.name
        offsets.setdefault(key, offset)
        if member.size is not None:
            sizes.setdefault(key, member.size)
        if key in EXPAND and member.aggregate is not None:
            _flatten(members_of, member.aggregate, key + ".", offset, offsets, sizes, depth + 1)


def _build_profile(
    found: Mapping[str, tuple[Any, int | None]],
    members_of: Callable[[Any], Iterable[_Member | BtfMember]],
    *,
    release: str | None,
    build_id: str | None,
    source: str,
) -> TypeProfile:
    offsets: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for key in STRUCTS:
        if key not in found:
            continue
        aggregate, size = found[key]
        if size is not None:
            sizes[key] = size
        _flatten(members_of, aggregate, key + ".", 0, offsets, sizes)
    return TypeProfile(
        release=release,
        build_id=build_id,
        source=source,
        offsets=offsets,
        sizes=sizes,
        missing=_missing(offsets, sizes),
    )


# --------------------------------------------------------------------------------------------
# DWARF

_AGGREGATE_TAGS = frozenset({"DW_TAG_structure_type", "DW_TAG_union_type"})
_QUALIFIER_TAGS = frozenset(
    {
        "DW_TAG_typedef",
        "DW_TAG_const_type",
        "DW_TAG_volatile_type",
        "DW_TAG_restrict_type",
        "DW_TAG_atomic_type",
    }
)
_DW_OP_CONSTU = 0x10
_DW_OP_PLUS = 0x22
_DW_OP_PLUS_UCONST = 0x23
# A struct DIE starts with its abbreviation code (a ULEB128), then its attributes, the name
# first with GCC and clang; codes longer than this many bytes do not occur.
_PROBE_BACK = 4


def default_cache_dir() -> Path:
    """Return the ``profiles`` folder of the cache (:func:`parsers.cache.cache_dir`)."""
    from parsers.cache import cache_dir

    return cache_dir("profiles")


def profile_from_dwarf(
    vmlinux_path: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    use_cache: bool = True,
) -> TypeProfile:
    """Build a profile from the DWARF of a vmlinux (or any ELF object with debug info).

    Only the definitions of the structs in :data:`STRUCTS` are read: each is located by
    searching ``.debug_info`` for references to its name in ``.debug_str``, so a 200 MB
    vmlinux takes seconds, not minutes. With a build-id, the result is cached as JSON in
    ``cache_dir`` and the next call for the same build is instant.

    Args:
        vmlinux_path: the ELF file.
        cache_dir: cache directory; default :func:`default_cache_dir`.
        use_cache: read and write the cache.

    Returns:
        The profile, ``source`` ``"dwarf:PATH"``.

    Raises:
        DumpError: the file cannot be read.
        FormatError: the file is not ELF, or its DWARF is damaged.
        TypeInfoError: the file has no DWARF (a stripped vmlinux).
    """
    path = os.fspath(vmlinux_path)
    source = _dwarf_source(path)
    elf = ElfSections(path, "vmlinux")  # no pyelftools: neither a cached profile nor
    with elf, _elf_errors(path):  # the usual reader (parsers.dwarf.structs) needs it
        build_id = elf.build_id()
        cache_file = None
        if use_cache and build_id:
            directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            cache_file = _dwarf_cache_file(directory, build_id)
            cached = _read_cache(cache_file, build_id)
            if cached is not None:
                return replace(cached, source=source)
        profile = _AHEAD.pop((path, build_id), None) or _profile_from_elf(elf, source, build_id)
    if cache_file is not None:
        _write_cache(cache_file, profile)
    return profile


#: Profiles built ahead of their use (:func:`build_ahead`), by path and build-id.
_AHEAD: dict[tuple[str, str | None], TypeProfile] = {}


def build_ahead(vmlinux_path: str | os.PathLike[str]) -> None:
    """Build a vmlinux's DWARF profile now, when none is cached for its build, and keep it
    for the :func:`profile_from_dwarf` call that follows (which caches it or not, as it
    decides): a process waiting for other work does this one meanwhile. What goes wrong is
    left for that call to report."""
    path = os.fspath(vmlinux_path)
    try:
        with ElfSections(path, "vmlinux") as elf, _elf_errors(path):
            build_id = elf.build_id()
            if build_id and _dwarf_cache_file(default_cache_dir(), build_id).is_file():
                return
            _AHEAD[(path, build_id)] = _profile_from_elf(elf, _dwarf_source(path), build_id)
    except DumpError:
        return


def _dwarf_source(path: str) -> str:
    """A DWARF profile's ``source``."""
    return f"dwarf:{path}"


def _dwarf_cache_file(directory: Path, build_id: str) -> Path:
    """Where the DWARF profile of the build ``build_id`` is cached in ``directory``."""
    return directory / f"{build_id}.g{_CACHE_GENERATION}.profile.json"


@contextlib.contextmanager
def _elf_errors(path: str) -> Iterator[None]:
    """Turn pyelftools' and construct's exceptions into FormatError naming ``path`` (their
    classes are imported only when something failed: a cached profile imports neither)."""
    try:
        yield
    except DumpError as error:
        raise error.with_path(path) from None
    except OSError as error:
        raise DumpError(f"cannot read vmlinux: {error.strerror}", path) from None
    except Exception as error:
        if not isinstance(error, _parse_errors()):
            raise
        raise FormatError(f"cannot read ELF/DWARF: {error}", path) from None


def _parse_errors() -> tuple[type[Exception], ...]:
    from construct import ConstructError
    from elftools.common.exceptions import DWARFError, ELFError, ELFParseError
    from elftools.construct import ConstructError as ElftoolsConstructError

    # pyelftools checks what it reads with assert and indexes what it was told: damaged
    # DWARF surfaces as any of these from inside it (NotImplementedError: a reference of a
    # form it does not follow, e.g. DW_FORM_ref_sup8 "to dwo")
    return (
        NotImplementedError,
        ELFError,
        ELFParseError,
        DWARFError,
        ConstructError,
        ElftoolsConstructError,
        struct.error,
        AssertionError,
        IndexError,
        KeyError,
        TypeError,
        ValueError,
        OverflowError,
        RecursionError,
    )


def _read_cache(cache_file: Path, build_id: str | None = None) -> TypeProfile | None:
    """A profile written by :func:`_write_cache`: None when absent, not a regular file,
    damaged since, or of another build-id."""
    from parsers.cache import read_checked

    text = read_checked(cache_file, _MAX_PROFILE_BYTES)
    if text is None:
        return None
    try:
        profile = TypeProfile.from_json(text)
    except DumpError:
        return None
    return profile if build_id is None or profile.build_id == build_id else None


def _write_cache(cache_file: Path, profile: TypeProfile) -> None:
    """Cache ``profile`` (checked on reading: :func:`parsers.cache.write_checked`)."""
    from parsers.cache import write_checked

    write_checked(cache_file, profile.to_json().encode("utf-8"))


def _banner_release(elf: ElfSections) -> str | None:
    """Return the release from ``linux_banner`` ("Linux version 6.1.0-41-s390x (...")."""
    section = elf.get(".rodata")
    if section is None or section.type == SHT_NOBITS:
        return None
    data, end = elf.data, section.offset + section.size
    marker = b"Linux version "
    start = data.find(marker, section.offset, end)
    while start >= 0:
        first = start + len(marker)
        token = data[first : min(first + 65, end)].split(b" ", 1)[0]
        if token[:1].isdigit():
            return token.decode("ascii", "replace")
        start = data.find(marker, start + 1, end)
    return None


def _profile_from_elf(elf: ElfSections, source: str, build_id: str | None) -> TypeProfile:
    """The profile by :func:`_profile_from_structs` (the few DIEs it needs), or, for DWARF
    that reader does not decode, by pyelftools' general reader (seconds, not milliseconds)."""
    if elf.get(".debug_info") is None and elf.get(".zdebug_info") is None:
        raise TypeInfoError("has no DWARF debug info; use the vmlinux of the kernel's -dbg package")
    from parsers.dwarf.reader import Damaged, Unsupported
    from parsers.dwarf.structs import DwarfStructs

    release = _banner_release(elf)
    try:
        return _profile_from_structs(DwarfStructs(elf), source, build_id, release)
    except Unsupported as error:
        why = error  # the general reader reads what this one does not
    except (Damaged, IndexError, ValueError, struct.error) as error:
        raise FormatError(f"damaged DWARF: {error or type(error).__name__}") from None
    from elftools.elf.elffile import ELFFile

    with open_regular(elf.path, "vmlinux") as stream:
        profile = _profile_from_elftools(ELFFile(stream), source, build_id, release)
    note = (
        f"{elf.path}: {why}: not decoded by backchain's DWARF reader, read with pyelftools "
        "instead (slower)"
    )
    return replace(profile, notes=(*profile.notes, note))


def _profile_from_elftools(
    elf: ELFFile, source: str, build_id: str | None, release: str | None
) -> TypeProfile:
    if not elf.has_dwarf_info(strict=True):
        raise TypeInfoError("has no DWARF debug info; use the vmlinux of the kernel's -dbg package")
    # A linked vmlinux needs no relocation of its DWARF, and with --emit-relocs applying
    # the kept relocations would take minutes; an object file (.o) does need them.
    dwarf = elf.get_dwarf_info(relocate_dwarf_sections=elf["e_type"] == "ET_REL")
    finder = DwarfFinder(dwarf, elf.little_endian)
    found = finder.find(STRUCTS, _is_struct_definition)
    structs = {key: (die, _dwarf_attr_int(die, "DW_AT_byte_size")) for key, die in found.items()}
    profile = _build_profile(
        structs, _dwarf_members, release=release, build_id=build_id, source=source
    )
    if "thread_union" not in profile.sizes:
        # v6.x kernels may use union thread_union nowhere, so DWARF lacks it; sched.h
        # declares "extern unsigned long init_stack[THREAD_SIZE / sizeof(unsigned long)]".
        variables = finder.find({"thread_union": ("init_stack",)}, _is_typed_variable)
        if variables:
            size = _dwarf_type_size(variables["thread_union"].get_DIE_from_attribute("DW_AT_type"))
            if size:
                sizes = {**profile.sizes, "thread_union": size}
                profile = replace(profile, sizes=sizes, missing=_missing(profile.offsets, sizes))
    return profile


# The few DIEs a profile needs (parsers.dwarf.structs): the usual path.

_TAG_POINTER = 0x0F
#: Structs recorded as the types of ``struct module``'s members, not looked for by name: a
#: kernel whose struct module has none of these members (module_layout since v6.4,
#: module_memory before it) has no use for them, and proving a name absent from all of
#: ``.debug_info`` means reading all of it.
MEMBER_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "module_layout": ("core_layout", "init_layout"),
        "module_memory": ("mem",),
        "mod_kallsyms": ("kallsyms",),
    }
)


def _profile_from_structs(
    dwarf: DwarfStructs, source: str, build_id: str | None, release: str | None
) -> TypeProfile:
    """The profile from the DIEs of :data:`STRUCTS` and the types their members name.

    Raises:
        Unsupported: the DWARF uses what :mod:`parsers.dwarf.structs` does not decode.
        Damaged: the DWARF contradicts itself where it was read.
    """
    from parsers.dwarf.reader import Damaged
    from parsers.dwarf.structs import (
        AGGREGATE_TAGS,
        AT_BIT_SIZE,
        AT_BYTE_SIZE,
        AT_COUNT,
        AT_DATA_MEMBER_LOCATION,
        AT_DECLARATION,
        AT_TYPE,
        AT_UPPER_BOUND,
        QUALIFIER_TAGS,
        TAG_ARRAY,
        TAG_MEMBER,
        TAG_SUBRANGE,
        TAG_VARIABLE,
    )

    def _is_definition(die: Die) -> bool:
        return (
            die.tag in AGGREGATE_TAGS
            and AT_DECLARATION not in die.attrs
            and AT_BYTE_SIZE in die.attrs
        )

    def _is_variable(die: Die) -> bool:
        return die.tag == TAG_VARIABLE and AT_TYPE in die.attrs

    def _strip(die: Die | None) -> Die | None:
        """Follow typedef/const/volatile/restrict/atomic to the type they qualify."""
        for _ in range(_MAX_NESTING):
            if die is None or die.tag not in QUALIFIER_TAGS:
                return die
            die = dwarf.target(die)
        raise FormatError("DWARF type qualifiers loop")

    def _pointee(die: Die | None) -> Die | None:
        """Through qualifiers, pointers and arrays to the type they lead to."""
        for _ in range(_MAX_NESTING):
            die = _strip(die)
            if die is None or die.tag not in (_TAG_POINTER, TAG_ARRAY):
                return die
            die = dwarf.target(die)
        raise Damaged("pointer and array types loop")

    by_name = {key: names for key, names in STRUCTS.items() if key not in MEMBER_TYPES}
    found = dwarf.lookup(by_name, _is_definition)
    module = found.get("module")
    if module is not None:
        members = {dwarf.name(m): m for m in dwarf.children(module) if m.tag == TAG_MEMBER}
        for key, names in MEMBER_TYPES.items():
            present = [members[name] for name in names if name in members]
            for member in present:
                target = _pointee(dwarf.target(member))
                if (
                    target is not None
                    and _is_definition(target)
                    and dwarf.name(target) in STRUCTS[key]
                ):
                    found[key] = target
                    break
            else:
                if present:  # a declaration there: the definition is elsewhere
                    found.update(dwarf.lookup({key: STRUCTS[key]}, _is_definition))

    def size_of(die: Die | None, depth: int = 0) -> int | None:
        die = _strip(die)
        if die is None or depth > _MAX_NESTING:
            return None
        size = die.int_attr(AT_BYTE_SIZE)
        if size is not None or die.tag != TAG_ARRAY:
            return size
        element = size_of(dwarf.target(die), depth + 1)
        if element is None:
            return None
        count = 1
        for child in dwarf.children(die):
            if child.tag != TAG_SUBRANGE:
                continue
            bound = child.int_attr(AT_COUNT)
            if bound is None:
                upper = child.int_attr(AT_UPPER_BOUND)
                bound = 0 if upper is None else upper + 1  # no bound: a flexible array
            count *= bound
        return element * count

    def members_of(die: Die) -> Iterator[_Member]:
        for child in dwarf.children(die):
            if child.tag != TAG_MEMBER or AT_BIT_SIZE in child.attrs:
                continue  # bitfields have no byte offset of their own
            location = child.attrs.get(AT_DATA_MEMBER_LOCATION)
            offset: int | None = 0  # union members, and members at 0 with some producers
            if location is not None:
                value = location[1]
                offset = value if isinstance(value, int) else None
                if isinstance(value, bytes):
                    offset = _plus_uconst(value)
            if offset is None:
                continue
            target = _strip(dwarf.target(child))
            yield _Member(
                name=dwarf.name(child),
                offset=offset,
                size=size_of(target),
                aggregate=target if target is not None and target.tag in AGGREGATE_TAGS else None,
            )

    structs = {key: (die, die.int_attr(AT_BYTE_SIZE)) for key, die in found.items()}
    profile = _build_profile(structs, members_of, release=release, build_id=build_id, source=source)
    if "thread_union" not in profile.sizes:
        # As in _profile_from_elftools: init_stack[THREAD_SIZE / sizeof(long)].
        variables = dwarf.lookup({"thread_union": ("init_stack",)}, _is_variable)
        if variables:
            size = size_of(dwarf.target(variables["thread_union"]))
            if size:
                sizes = {**profile.sizes, "thread_union": size}
                profile = replace(profile, sizes=sizes, missing=_missing(profile.offsets, sizes))
    return profile


def _section_bytes(section: Any) -> bytes:
    return b"" if section is None else bytes(section.stream.getvalue())


def _is_struct_definition(die: DIE) -> bool:
    return (
        die.tag in _AGGREGATE_TAGS
        and "DW_AT_declaration" not in die.attributes
        and "DW_AT_byte_size" in die.attributes
    )


def _is_typed_variable(die: DIE) -> bool:
    return die.tag == "DW_TAG_variable" and "DW_AT_type" in die.attributes


def _unit_offsets(info: bytes, little_endian: bool) -> list[int]:
    """Return the offsets of the unit headers in ``.debug_info``."""
    u32 = struct.Struct("<I" if little_endian else ">I")
    u64 = struct.Struct("<Q" if little_endian else ">Q")
    offsets = []
    position = 0
    while position + 4 <= len(info):
        offsets.append(position)
        (length,) = u32.unpack_from(info, position)
        if length == 0xFFFFFFFF:  # 64-bit DWARF
            if position + 12 > len(info):
                break
            (length,) = u64.unpack_from(info, position + 4)
            position += 12 + length
        else:
            position += 4 + length
    return offsets


def _occurrences(
    data: bytes, needle: bytes, start: int = 0, end: int | None = None
) -> Iterator[int]:
    """Yield where ``needle`` starts in ``data[start:end]`` (it may run past ``end``)."""
    stop = len(data) if end is None else min(len(data), end + len(needle) - 1)
    position = data.find(needle, start, stop)
    while position >= 0:
        yield position
        position = data.find(needle, position + 1, stop)


class DwarfFinder:
    """Finds named top-level DIEs without parsing the units that do not name them.

    A DIE's name is either inline (DW_FORM_string) or a 4-byte offset into ``.debug_str``
    (DW_FORM_strp), so the DIE named X lies where ``.debug_info`` contains one of those
    byte strings. Each occurrence is probed as the name attribute of a DIE; what the probe
    cannot settle falls back to scanning the top-level DIEs of the units with occurrences.
    """

    def __init__(self, dwarf: DWARFInfo, little_endian: bool) -> None:
        from elftools.dwarf.die import DIE

        self._die = DIE
        self.dwarf = dwarf
        self.little_endian = little_endian
        self.info = _section_bytes(dwarf.debug_info_sec)
        self.strings = _section_bytes(dwarf.debug_str_sec)
        self.unit_offsets = _unit_offsets(self.info, little_endian)

    def find(
        self,
        wanted: Mapping[str, tuple[str, ...]],
        accept: Callable[[DIE], bool],
        probe: bool = True,
    ) -> dict[str, DIE]:
        """Return the first DIE (in file order) named like each entry and accepted.

        Args:
            wanted: names to look for, by result key.
            accept: whether a DIE with a wanted name is the one (e.g. not a declaration).
            probe: probe occurrences of the names (fast); if false, only scan units.
        """
        needles = {key: self._needles(names) for key, names in wanted.items()}
        found: dict[str, DIE] = {}
        if probe:
            self._probe_windows(wanted, needles, accept, found)
        remaining = {key: names for key, names in wanted.items() if key not in found}
        if remaining:
            if self.dwarf.debug_str_offsets_sec is not None:
                # DW_FORM_strx names are indices, invisible to the needles: look everywhere.
                units: Iterable[int] = self.unit_offsets
            else:
                units = sorted(
                    {
                        self._unit_at(position)
                        for key in remaining
                        for needle in needles[key]
                        for position in _occurrences(self.info, needle)
                    }
                )
            self._scan_units(units, remaining, accept, found)
        return found

    def _needles(self, names: Iterable[str]) -> list[bytes]:
        """Return the byte strings a DIE named one of ``names`` must contain.

        The linker merges string tails, so "list_head" may live inside "hlist_head": every
        occurrence in ``.debug_str`` is a possible offset.
        """
        order: Literal["little", "big"] = "little" if self.little_endian else "big"
        needles = []
        for name in names:
            text = name.encode() + b"\0"
            needles.append(text)
            needles.extend(p.to_bytes(4, order) for p in _occurrences(self.strings, text))
        return needles

    def _unit_at(self, position: int) -> int:
        return self.unit_offsets[bisect.bisect_right(self.unit_offsets, position) - 1]

    def _probe_windows(
        self,
        wanted: Mapping[str, tuple[str, ...]],
        needles: Mapping[str, list[bytes]],
        accept: Callable[[DIE], bool],
        found: dict[str, DIE],
    ) -> None:
        """Probe the names' occurrences in file order, window by window, until all are found.

        Definitions usually sit in the first megabytes (init/main.c includes most of the
        kernel's headers), so growing windows keep the searches for unused needles short.
        """
        start, window = 0, 1 << 20
        while start < len(self.info) and len(found) < len(wanted):
            end = start + window
            for key, names in wanted.items():
                if key in found:
                    continue
                hits = heapq.merge(*(_occurrences(self.info, n, start, end) for n in needles[key]))
                for position in hits:
                    die = self._probe(position, names)
                    if die is not None and accept(die):
                        found[key] = die
                        break
            start, window = end, min(window * 2, 32 << 20)

    def _probe(self, position: int, names: tuple[str, ...]) -> DIE | None:
        """Return the DIE whose DW_AT_name value is at ``position`` and is in ``names``.

        The DIE would start with its abbreviation code, a ULEB128 ending just before the
        name: its last byte is at ``position - 1``, earlier ones have the high bit set. The
        longest such start is tried first: a shorter one is the tail of the real code, a
        small number that may well be another abbreviation with a name first, while a
        longer one is a huge code that no abbreviation table has.
        """
        info = self.info
        if position < 1 or info[position - 1] & 0x80 or not self.unit_offsets:
            return None
        back = 1
        while back < _PROBE_BACK and position > back and info[position - back - 1] & 0x80:
            back += 1
        unit = self.dwarf.get_CU_at(self._unit_at(position))
        assert self.dwarf.debug_info_sec is not None  # we read it in __init__
        stream = self.dwarf.debug_info_sec.stream
        for length in range(back, 0, -1):
            start = position - length
            if start < unit.cu_die_offset:
                continue
            try:
                die = self._die(cu=unit, stream=stream, offset=start)
            except Exception:  # most starts tried are not DIEs; any failure says so
                continue
            name = die.attributes.get("DW_AT_name")
            if name is not None and name.offset == position:
                return die if _die_name(die) in names and _plausible(die) else None
        return None

    def _scan_units(
        self,
        units: Iterable[int],
        remaining: dict[str, tuple[str, ...]],
        accept: Callable[[DIE], bool],
        found: dict[str, DIE],
    ) -> None:
        """Look among the top-level DIEs of ``units``; stop when all are found."""
        for unit_offset in units:
            top = self.dwarf.get_CU_at(unit_offset).get_top_DIE()
            for die in top.iter_children():
                name = _die_name(die)
                if name is None:
                    continue
                for key, names in list(remaining.items()):
                    if name in names and accept(die):
                        found[key] = die
                        del remaining[key]
                if not remaining:
                    return


def _plausible(die: DIE) -> bool:
    """Whether a probed DIE can be real: random bytes that happen to hold a name's string
    offset decode as a DIE too (a "union thread_union" of 6 bytes whose sibling lies outside
    its unit was found so in a -gdwarf-4 object)."""
    cu = die.cu
    unit_end = cu.cu_offset + cu["unit_length"] + cu.structs.initial_length_field_size()
    sibling = die.attributes.get("DW_AT_sibling")
    if sibling is not None:
        target = sibling.raw_value + (0 if sibling.form == "DW_FORM_ref_addr" else cu.cu_offset)
        if not die.offset < target <= unit_end:
            return False
    decl_file = die.attributes.get("DW_AT_decl_file")
    if decl_file is not None and decl_file.value == 0 and cu["version"] < 5:
        return False  # file 0 is "no file" before DWARF 5
    if die.has_children and die.tag in _AGGREGATE_TAGS:
        children = list(itertools.islice(die.iter_children(), 1))
        if not children:
            return False
    return True


def _die_name(die: DIE) -> str | None:
    name = die.attributes.get("DW_AT_name")
    if name is None or not isinstance(name.value, bytes):
        return None
    return name.value.decode("utf-8", "replace")


def _dwarf_attr_int(die: DIE, name: str) -> int | None:
    attribute = die.attributes.get(name)
    if attribute is None or not isinstance(attribute.value, int):
        return None
    return attribute.value


def _dwarf_strip(die: DIE | None) -> DIE | None:
    """Follow typedef/const/volatile/restrict/atomic to the type they qualify."""
    for _ in range(_MAX_NESTING):
        if die is None or die.tag not in _QUALIFIER_TAGS:
            return die
        die = die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes else None
    raise FormatError("DWARF type qualifiers loop")


def _dwarf_type_size(die: DIE | None, depth: int = 0) -> int | None:
    die = _dwarf_strip(die)
    if die is None or depth > _MAX_NESTING:
        return None
    size = _dwarf_attr_int(die, "DW_AT_byte_size")
    if size is not None or die.tag != "DW_TAG_array_type":
        return size
    element = _dwarf_type_size(
        die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes else None,
        depth + 1,
    )
    if element is None:
        return None
    count = 1
    for child in die.iter_children():
        if child.tag != "DW_TAG_subrange_type":
            continue
        bound = _dwarf_attr_int(child, "DW_AT_count")
        if bound is None:
            upper = _dwarf_attr_int(child, "DW_AT_upper_bound")
            bound = 0 if upper is None else upper + 1  # no bound: a flexible array
        count *= bound
    return element * count


def _dwarf_member_location(die: DIE) -> int | None:
    """Return DW_AT_data_member_location as a byte offset (a constant or an expression)."""
    attribute = die.attributes.get("DW_AT_data_member_location")
    if attribute is None:
        return 0  # union members, and struct members at 0 with some producers
    value = attribute.value
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple | bytes):
        return _plus_uconst(bytes(value))
    return None


def _plus_uconst(expression: bytes) -> int | None:
    """Evaluate the member-location expressions producers emit (DWARF 2/3)."""
    try:
        if expression[:1] == bytes([_DW_OP_PLUS_UCONST]):
            value, end = uleb128(expression, 1)
            return value if end == len(expression) else None
        if expression[:1] == bytes([_DW_OP_CONSTU]):
            value, end = uleb128(expression, 1)
            return value if expression[end:] == bytes([_DW_OP_PLUS]) else None
    except (IndexError, Overlong):
        return None  # a number cut short or overlong: no location
    return None


def _dwarf_members(die: DIE) -> Iterator[_Member]:
    for child in die.iter_children():
        if child.tag != "DW_TAG_member" or "DW_AT_bit_size" in child.attributes:
            continue  # bitfields have no byte offset of their own
        offset = _dwarf_member_location(child)
        if offset is None:
            continue
        name = child.attributes.get("DW_AT_name")
        if name is not None and not isinstance(name.value, bytes):
            raise FormatError("a struct member's DW_AT_name is not a string")
        if "DW_AT_type" in child.attributes:
            declared = child.get_DIE_from_attribute("DW_AT_type")
        else:
            declared = None
        target = _dwarf_strip(declared)
        yield _Member(
            name=name.value.decode("utf-8", "replace") if name is not None else None,
            offset=offset,
            size=_dwarf_type_size(target),
            aggregate=target if target is not None and target.tag in _AGGREGATE_TAGS else None,
        )


# --------------------------------------------------------------------------------------------
# BTF (include/uapi/linux/btf.h, Documentation/bpf/btf.rst)


def profile_from_btf(
    data: bytes,
    release: str | None = None,
    *,
    source: str = "btf",
    build_id: str | None = None,
    thread_size: int | None = None,
) -> TypeProfile:
    """Build a profile from raw BTF (``.BTF`` of a vmlinux, or ``__start_BTF..__stop_BTF``).

    Args:
        data: the BTF blob, in either byte order (s390x writes big-endian).
        release: kernel release to record, if known.
        source: what to call the source in messages, e.g. ``"btf:dump"``.
        build_id: build-id to record, if known.
        thread_size: THREAD_SIZE to record when the BTF has no ``union thread_union`` (v6.x
            kernels may not use it), e.g. ``__end_init_stack - init_stack`` (v6.12) or
            ``__end_init_task - init_stack`` (v6.1) from the symbols.

    Raises:
        FormatError: the blob is not BTF or is damaged (nothing in it is trusted).

    The profile is cached under a digest of the blob and of the other arguments (a dump's
    BTF is the same bytes on every start; indexing it costs a quarter of a second).
    """
    from parsers.cache import blake2b

    digest = blake2b(data, digest_size=20)
    digest.update(repr((release, build_id, thread_size, _CACHE_GENERATION)).encode())
    cache_file = default_cache_dir() / f"btf-{digest.hexdigest()}.profile.json"
    cached = _read_cache(cache_file)
    if cached is not None:
        return replace(cached, source=source)
    profile = _profile_from_btf(data, release, build_id, thread_size, source)
    _write_cache(cache_file, profile)
    return profile


def _profile_from_btf(
    data: bytes,
    release: str | None,
    build_id: str | None,
    thread_size: int | None,
    source: str,
) -> TypeProfile:
    btf = Btf(data)
    found = btf.find_aggregates(STRUCTS)
    profile = _build_profile(
        {key: (type_id, btf.values[type_id]) for key, type_id in found.items()},
        btf.members,
        release=release,
        build_id=build_id,
        source=source,
    )
    if thread_size is not None and "thread_union" not in profile.sizes:
        sizes = {**profile.sizes, "thread_union": thread_size}
        profile = replace(profile, sizes=sizes, missing=_missing(profile.offsets, sizes))
    return profile
