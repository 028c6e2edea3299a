"""``--types probe`` for loaded modules: the ``struct module`` members that locate each
module's text and its symbols, inferred from the modules themselves.

Evidence, checked on every loaded module:

* ``state``, ``list``, ``name``: the first three members of ``struct module`` in every
  release (include/linux/module.h), verified: the list is intact (each ``next->prev``), every
  name printable, every state a ``enum module_state``.
* Text, v6.4+: ``mem[MOD_MEM_NUM_TYPES]``: the only run of seven words pointing back to the
  module at one stride (each ``module_memory.mtn.mod``, 16 bytes into its entry, after
  ``base`` and ``size``); ``module_memory.size``: the word after ``base`` holding a whole
  number of pages in every module's MOD_TEXT.
* Text, up to v6.3: ``core_layout`` and ``init_layout`` (``struct module_layout``: base,
  size, text_size, ro_size, ro_after_init_size, then ``mtn``): the only two words pointing
  back to the module whose layouts have a page-aligned base and ``0 < text_size <= size``.
* ``kallsyms``: the pointer to the word right after it (``&mod->core_kallsyms`` once the
  module is live), where a ``struct mod_kallsyms`` holds a symbol count and, since v5.2, a
  type letter for every symbol.

A kernel without loaded modules gives only the first three. ``taints`` is not inferred.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from explorer.image.lists import intact_list
from parsers.errors import DumpError

__all__ = ["ModuleLayout", "infer_module_layout"]

#: Bytes of a struct module searched (v7.2's kallsyms pointer is at 0x468).
MODULE_WINDOW = 0x800
MODULE_NAME_LEN = 56
MOD_MEM_NUM_TYPES = 7
MAX_MODULES = 1 << 14
PAGE = 4096
#: Letters of ``mod_kallsyms.typetab`` (the kernel's nm-style symbol types).
TYPE_LETTERS = frozenset(b"aAbBcCdDgGiINpPrRsStTuUvVwW?-")


@dataclass
class ModuleLayout:
    """What the module probe found: offsets, sizes and each one's evidence."""

    offsets: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    #: why a part was not inferred (shown by the caller)
    problems: list[str] = field(default_factory=list)

    def put(self, name: str, offset: int, why: str) -> None:
        self.offsets[name] = offset
        self.sources[name] = f"probe: {why}"


def _u64(buf: bytes, off: int) -> int:
    return int(struct.unpack_from(">Q", buf, off)[0])


def _u32(buf: bytes, off: int) -> int:
    return int(struct.unpack_from(">I", buf, off)[0])


def module_list(read: Callable[[int, int], bytes], head: int) -> list[int] | None:
    """The ``struct module`` addresses on the list at ``head`` if it is intact and every
    entry looks like a module (state, list, name); else None."""

    def word(address: int) -> int:
        return _u64(read(address, 8), 0)

    def is_module(node: int) -> bool:
        try:
            raw = read(node - 8, 24 + MODULE_NAME_LEN)
        except DumpError:
            return False
        name = raw[24:].split(b"\0", 1)[0]
        return _u32(raw, 0) <= 3 and bool(name) and all(0x21 <= c < 0x7F for c in name)

    nodes = intact_list(word, head, MAX_MODULES, is_module)
    return None if nodes is None else [node - 8 for node in nodes]


def infer_module_layout(
    read: Callable[[int, int], bytes], head: int, memory_array: bool, typetab: bool
) -> ModuleLayout:
    """The module members from the modules on the list at ``head``.

    Args:
        read: reads kernel virtual memory (raises DumpError).
        head: ``&modules``.
        memory_array: the kernel has ``mem[]`` (v6.4+), not ``core_layout``/``init_layout``.
        typetab: ``mod_kallsyms`` has ``typetab`` (v5.2+).
    """
    out = ModuleLayout()
    modules = module_list(read, head)
    if modules is None:
        out.problems.append(f"the list at 0x{head:x} is not an intact list of modules")
        return out
    why = "struct module begins state, list, name (module.h); checked on every module"
    out.put("module.state", 0, why)
    out.put("module.list", 8, why)
    out.put("module.name", 24, why)
    out.sizes["module.name"] = MODULE_NAME_LEN
    if not modules:
        out.problems.append("no module is loaded: the text members cannot be inferred")
        return out
    bufs = {}
    for m in modules:
        try:
            bufs[m] = read(m, MODULE_WINDOW)
        except DumpError as exc:
            out.problems.append(f"module at 0x{m:x} unreadable: {exc.message}")
            return out
    selves = sorted(
        set.intersection(
            *({o for o in range(0, MODULE_WINDOW, 8) if _u64(b, o) == m} for m, b in bufs.items())
        )
    )
    if memory_array:
        _memory_array(out, read, bufs, selves)
    else:
        _layouts(out, bufs, selves)
    _kallsyms(out, read, bufs, typetab)
    return out


def _memory_array(
    out: ModuleLayout, read: Callable[[int, int], bytes], bufs: dict[int, bytes], selves: list[int]
) -> None:
    runs = [
        (first, stride)
        for first in selves
        for stride in range(24, 257, 8)
        if all(first + i * stride in selves for i in range(MOD_MEM_NUM_TYPES))
        and first + MOD_MEM_NUM_TYPES * stride not in selves
        and first - stride not in selves
    ]
    if len(runs) != 1:
        out.problems.append(
            f"{len(runs)} runs of {MOD_MEM_NUM_TYPES} words pointing back to the module "
            "(mem[].mtn.mod): module text not inferred"
        )
        return
    first, stride = runs[0]
    mem = first - 16
    if mem < 0 or any(_u64(b, mem) % PAGE or not _u64(b, mem) for b in bufs.values()):
        out.problems.append("mem[MOD_TEXT].base is not a page-aligned address in every module")
        return
    sizes = [
        off
        for off in (8, 12)
        if all(_u32(b, mem + off) and _u32(b, mem + off) % PAGE == 0 for b in bufs.values())
    ]
    if len(sizes) != 1:
        out.problems.append(f"module_memory.size: {len(sizes)} words fit; module text not inferred")
        return
    evidence = (
        f"the run of {MOD_MEM_NUM_TYPES} words pointing back to the module every {stride} "
        "bytes (mem[].mtn.mod, 16 bytes into each entry)"
    )
    out.put("module.mem", mem, evidence)
    out.put("module_memory.base", 0, evidence + "; a page-aligned address in MOD_TEXT")
    out.put("module_memory.size", sizes[0], "whole pages in every module's MOD_TEXT")
    out.sizes["module_memory"] = stride
    out.sources["module_memory"] = f"probe: {evidence}"


def _layouts(out: ModuleLayout, bufs: dict[int, bytes], selves: list[int]) -> None:
    def sane(layout: int, core: bool) -> bool:
        for b in bufs.values():
            base, size, text = _u64(b, layout), _u32(b, layout + 8), _u32(b, layout + 12)
            if base % PAGE or text > size or (core and not (base and text)):
                return False
        return True

    pairs = [
        (a - 24, b - 24)
        for a in selves
        for b in selves
        if 24 <= a < b and sane(a - 24, True) and sane(b - 24, False)
    ]
    if len(pairs) != 1:
        out.problems.append(
            f"{len(pairs)} pairs of core_layout/init_layout fit (mtn.mod pointing back, a "
            "page-aligned base, 0 < text_size <= size): module text not inferred"
        )
        return
    core, init = pairs[0]
    evidence = (
        "mtn.mod points back to the module, base page-aligned, 0 < text_size <= size in every "
        "module (module_layout: base, size, text_size, ..., mtn)"
    )
    for name, at in (("module.core_layout", core), ("module.init_layout", init)):
        out.put(f"{name}.base", at, evidence)
        out.put(f"{name}.size", at + 8, evidence)
        out.put(f"{name}.text_size", at + 12, evidence)


def _kallsyms(
    out: ModuleLayout, read: Callable[[int, int], bytes], bufs: dict[int, bytes], typetab: bool
) -> None:
    found = []
    for off in range(0, MODULE_WINDOW - 40, 8):
        ok = True
        for m, b in bufs.items():
            ks = _u64(b, off)
            if ks != m + off + 8:
                ok = False
                break
            symtab, count, strtab = _u64(b, off + 8), _u32(b, off + 16), _u64(b, off + 24)
            if not symtab or not strtab or not 0 < count <= 1 << 20:
                ok = False
                break
            if typetab and not _letters(read, _u64(b, off + 32), count):
                ok = False
                break
        if ok:
            found.append(off)
    if len(found) != 1:
        out.problems.append(
            f"module.kallsyms: {len(found)} offsets fit (a pointer to the mod_kallsyms right "
            "after it): module symbols not read"
        )
        return
    evidence = (
        "points to the mod_kallsyms right after it (&core_kallsyms): symtab, a symbol count, "
        "strtab" + (", a type letter per symbol" if typetab else "")
    )
    out.put("module.kallsyms", found[0], evidence)
    out.put("mod_kallsyms.symtab", 0, evidence)
    out.put("mod_kallsyms.num_symtab", 8, evidence)
    out.put("mod_kallsyms.strtab", 16, evidence)
    if typetab:
        out.put("mod_kallsyms.typetab", 24, evidence)


def _letters(read: Callable[[int, int], bytes], address: int, count: int) -> bool:
    if not address:
        return False
    try:
        raw = read(address, min(count, 4096))
    except DumpError:
        return False
    return all(c in TYPE_LETTERS for c in raw[1:])
