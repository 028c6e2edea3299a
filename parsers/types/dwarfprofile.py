"""A :class:`~parsers.types.profile.TypeProfile` from the few DIEs it needs, read by
:mod:`parsers.dwarf.structs` (the usual path of
:func:`~parsers.types.profile.profile_from_dwarf`; pyelftools' general reader is the
fallback). Apart from :mod:`parsers.types.profile` so that a start without a vmlinux imports
no DWARF reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from types import MappingProxyType

from parsers.dwarf.reader import Damaged, Die
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
    DwarfStructs,
)
from parsers.elf.sections import ElfSections
from parsers.errors import FormatError
from parsers.types.profile import (
    _MAX_NESTING,
    STRUCTS,
    TypeProfile,
    _build_profile,
    _Member,
    _missing,
    _plus_uconst,
)


def profile_from_structs(
    elf: ElfSections, source: str, build_id: str | None, release: str | None
) -> TypeProfile:
    """:func:`_profile_from_structs` of ``elf``'s DWARF.

    Raises:
        Unsupported: the DWARF uses what :mod:`parsers.dwarf.structs` does not decode.
        Damaged: the DWARF contradicts itself where it was read.
    """
    return _profile_from_structs(DwarfStructs(elf), source, build_id, release)


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
    by_name = {key: names for key, names in STRUCTS.items() if key not in MEMBER_TYPES}
    found = _find_structs(dwarf, by_name, _is_definition)
    module = found.get("module")
    if module is not None:
        members = {dwarf.name(m): m for m in dwarf.children(module) if m.tag == TAG_MEMBER}
        for key, names in MEMBER_TYPES.items():
            present = [members[name] for name in names if name in members]
            for member in present:
                target = _pointee(dwarf, dwarf.target(member))
                if (
                    target is not None
                    and _is_definition(target)
                    and dwarf.name(target) in STRUCTS[key]
                ):
                    found[key] = target
                    break
            else:
                if present:  # a declaration there: the definition is elsewhere
                    found.update(_find_structs(dwarf, {key: STRUCTS[key]}, _is_definition))

    def size_of(die: Die | None, depth: int = 0) -> int | None:
        die = _strip(dwarf, die)
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
            target = _strip(dwarf, dwarf.target(child))
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
        variables = _find_structs(dwarf, {"thread_union": ("init_stack",)}, _is_variable)
        if variables:
            size = size_of(dwarf.target(variables["thread_union"]))
            if size:
                sizes = {**profile.sizes, "thread_union": size}
                profile = replace(profile, sizes=sizes, missing=_missing(profile.offsets, sizes))
    return profile


def _find_structs(
    dwarf: DwarfStructs, wanted: Mapping[str, tuple[str, ...]], accept: Callable[[Die], bool]
) -> dict[str, Die]:
    """:meth:`DwarfStructs.lookup`."""
    return dwarf.lookup(wanted, accept)


def _is_definition(die: Die) -> bool:
    return (
        die.tag in AGGREGATE_TAGS and AT_DECLARATION not in die.attrs and AT_BYTE_SIZE in die.attrs
    )


def _is_variable(die: Die) -> bool:
    return die.tag == TAG_VARIABLE and AT_TYPE in die.attrs


def _strip(dwarf: DwarfStructs, die: Die | None) -> Die | None:
    """Follow typedef/const/volatile/restrict/atomic to the type they qualify."""
    for _ in range(_MAX_NESTING):
        if die is None or die.tag not in QUALIFIER_TAGS:
            return die
        die = dwarf.target(die)
    raise FormatError("DWARF type qualifiers loop")


def _pointee(dwarf: DwarfStructs, die: Die | None) -> Die | None:
    """Through qualifiers, pointers and arrays to the type they lead to."""
    for _ in range(_MAX_NESTING):
        die = _strip(dwarf, die)
        if die is None or die.tag not in (_TAG_POINTER, TAG_ARRAY):
            return die
        die = dwarf.target(die)
    raise Damaged("pointer and array types loop")


__all__ = ["MEMBER_TYPES", "profile_from_structs"]
