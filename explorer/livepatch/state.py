"""The livepatch state as the kernel keeps it (kernel/livepatch/{core,patch,transition}.c).

* ``klp_patches`` (core.c): the list of ``struct klp_patch`` (``list``); each patch's objects
  on ``obj_list`` (the static ``objs`` array and the dynamic ``nop`` objects of an atomic
  replace alike), each object's functions on ``func_list``.
* ``klp_ops`` (patch.c): one ``struct klp_ops`` per patched function; its ``func_stack``
  holds the ``klp_func`` of every patch of that function, newest first (``stack_node``).
* ``klp_transition_patch`` (transition.c): the patch in transition, NULL when none.
* ``klp_target_state`` and ``klp_signals_cnt`` (static in transition.c): found by symbol.
* each task's ``patch_state`` and its ``TIF_PATCH_PENDING`` thread flag.

Everything is read through the bounded list walk every list of the dump uses; what
contradicts the kernel's own invariants is refused with the field named (``DumpError``),
never repaired or guessed.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from explorer.image.lists import walk_list
from explorer.model.kernel import Kernel
from parsers.errors import DumpError, FormatError, TypeInfoError
from parsers.s390.layouts import kernel_version

if TYPE_CHECKING:  # only named: `info` reads no task unless a patch is loaded
    from explorer.model.tasks import Task

#: ``enum`` values of ``klp_target_state`` and ``task->patch_state``
#: (KLP_UNDEFINED/KLP_TRANSITION_IDLE, ..._UNPATCHED, ..._PATCHED in include/linux/livepatch.h).
KLP_UNDEFINED, KLP_UNPATCHED, KLP_PATCHED = -1, 0, 1
STATE_WORDS = {KLP_UNDEFINED: "idle", KLP_UNPATCHED: "unpatched", KLP_PATCHED: "patched"}

#: Bounds no real kernel reaches; beyond them the lists are damaged.
MAX_PATCHES = 1024
MAX_OBJECTS = 4096
MAX_FUNCS = 1 << 16
MAX_OPS = 1 << 16
#: A function larger than this is no function (``old_size``/``new_size`` come from kallsyms).
MAX_FUNC_SIZE = 16 << 20
KSYM_NAME_LEN = 512
MODULE_NAME_LEN = 56

_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")

#: Members read, by struct (include/linux/livepatch.h, kernel/livepatch/patch.h).
_MEMBERS = {
    "klp_patch": ("mod", "replace", "list", "obj_list", "enabled", "forced"),
    "klp_object": ("name", "func_list", "node", "mod", "dynamic", "patched"),
    "klp_func": (
        "old_name",
        "new_func",
        "old_sympos",
        "old_func",
        "node",
        "stack_node",
        "old_size",
        "new_size",
        "nop",
        "patched",
        "transition",
    ),
    "klp_ops": ("node", "func_stack"),
}


def tif_patch_pending_bit(release: str | None) -> int:
    """``TIF_PATCH_PENDING`` of s390: bit 5 in arch/s390/include/asm/thread_info.h from the
    s390 livepatch support (v4.12) on; bit 9 since s390 took the generic TIF bits of
    include/asm-generic/thread_info_tif.h (v6.18)."""
    try:
        version = kernel_version(release or "")
    except DumpError:
        return 5
    return 9 if version[:2] >= (6, 18) else 5


@dataclass(frozen=True, slots=True)
class KlpFunc:
    """One ``struct klp_func``.

    Attributes:
        address: the struct.
        old_name: the function it replaces (the kernel's name in every message).
        old_func, old_size: the original function (resolved when its object is loaded).
        new_func, new_size: the replacement (for a ``nop``: the original again).
    """

    address: int
    old_name: str
    old_sympos: int
    old_func: int
    old_size: int
    new_func: int
    new_size: int
    nop: bool
    patched: bool
    transition: bool


@dataclass(frozen=True, slots=True)
class KlpObject:
    """One ``struct klp_object``: ``name`` None is vmlinux; ``module`` the loaded module
    (0 while a patched module is not loaded); ``dynamic``: a ``nop`` object of an atomic
    replace."""

    address: int
    name: str | None
    module: int
    dynamic: bool
    patched: bool
    funcs: tuple[KlpFunc, ...]

    @property
    def loaded(self) -> bool:
        """``klp_is_object_loaded()``: vmlinux, or its module is loaded."""
        return self.name is None or self.module != 0

    @property
    def label(self) -> str:
        """``vmlinux`` or the module's name."""
        return self.name if self.name is not None else "vmlinux"


@dataclass(frozen=True, slots=True)
class KlpPatch:
    """One ``struct klp_patch``; ``name`` is its module's (the sysfs directory's) name."""

    address: int
    name: str
    module: int
    enabled: bool
    forced: bool
    replace: bool
    objects: tuple[KlpObject, ...]

    @property
    def funcs(self) -> Iterator[tuple[KlpObject, KlpFunc]]:
        """``klp_for_each_object`` / ``klp_for_each_func``, in the kernel's order."""
        for obj in self.objects:
            for func in obj.funcs:
                yield obj, func


@dataclass(frozen=True, slots=True)
class KlpOps:
    """One ``struct klp_ops``: the ``klp_func`` addresses on its ``func_stack``, newest
    first."""

    address: int
    func_stack: tuple[int, ...]


@dataclass(frozen=True)
class TaskPatchState:
    """A task's ``patch_state`` and its ``TIF_PATCH_PENDING`` flag."""

    patch_state: int
    pending: bool


@dataclass(frozen=True)
class LivepatchState:
    """Everything livepatch keeps in memory.

    Attributes:
        patches: ``klp_patches`` in list order (oldest first).
        transition_patch: the patch in transition, None when none.
        target_state: ``klp_target_state``; None when its static symbol is not known.
        signals_cnt: ``klp_signals_cnt``; None when its static symbol is not known.
        ops: ``klp_ops`` in list order.
        tif_bit: the ``TIF_PATCH_PENDING`` bit number of this kernel.
        funcs_by_address: every ``klp_func`` of every patch, with its patch.
        below: for a ``klp_func`` on a ``func_stack``, the one under it (the previous
            patch of the same function: ``list_next_entry(func, stack_node)``).
    """

    patches: tuple[KlpPatch, ...]
    transition_patch: KlpPatch | None
    target_state: int | None
    signals_cnt: int | None
    ops: tuple[KlpOps, ...]
    tif_bit: int
    funcs_by_address: dict[int, tuple[KlpPatch, KlpFunc]] = field(default_factory=dict)
    below: dict[int, int] = field(default_factory=dict)

    def find_ops(self, old_func: int) -> KlpOps | None:
        """``klp_find_ops()``: the ops whose top function patches ``old_func``."""
        for ops in self.ops:
            if ops.func_stack:
                top = self.funcs_by_address.get(ops.func_stack[0])
                if top is not None and top[1].old_func == old_func:
                    return ops
        return None

    def func(self, address: int) -> tuple[KlpPatch, KlpFunc] | None:
        """The ``klp_func`` at ``address`` with its patch (any patch on ``klp_patches``)."""
        return self.funcs_by_address.get(address)

    def previous(self, func: KlpFunc) -> tuple[KlpPatch, KlpFunc] | None:
        """The function under ``func`` on its ``func_stack`` (the previous patch's)."""
        lower = self.below.get(func.address)
        return None if lower is None else self.funcs_by_address.get(lower)


@dataclass(frozen=True)
class NoLivepatch:
    """No livepatch is loaded, and how that is known (``reason``)."""

    reason: str


class _Reader:
    """Member offsets of the klp structs, resolved once."""

    def __init__(self, kernel: Kernel) -> None:
        types = kernel.types
        if types is None or not types.has("klp_patch.list"):
            source = "no type information" if types is None else types.source
            raise TypeInfoError(
                f"livepatch state unknown: struct klp_patch is not known from {source}; pass "
                "--vmlinux with debug info of this kernel, or use its BTF"
                + (f" ({kernel.probe_problem})" if kernel.probe_problem else "")
            )
        self.kernel = kernel
        self.off: dict[str, int] = {}
        self.size: dict[str, int] = {}
        for name, members in _MEMBERS.items():
            for member in members:
                key = f"{name}.{member}"
                self.off[key] = types.offset(key)
                self.size[key] = types.sizes.get(key, 8)
        self.patch_state = types.offset("task_struct.patch_state")
        self.flags = types.offset(types.first_of("task_struct.thread_info.flags"))
        self.module_name = types.offset("module.name")

    def u64(self, address: int) -> int:
        return self.kernel.space.read_u64(address)

    def member(self, base: int, key: str) -> int:
        size = self.size[key]
        raw = self.kernel.read(base + self.off[key], size)
        return int.from_bytes(raw, "big")

    def flag(self, base: int, key: str) -> bool:
        return self.member(base, key) != 0

    def string(self, address: int, limit: int, what: str) -> str:
        if not address:
            raise DumpError(f"{what} is NULL")
        raw = _read_upto(self.kernel, address, limit)
        end = raw.find(b"\0")
        if end <= 0:
            raise DumpError(f"{what} at 0x{address:x} is not a name (no NUL in {limit} bytes)")
        text = raw[:end]
        if any(b < 0x21 or b > 0x7E for b in text):
            raise DumpError(f"{what} at 0x{address:x} is not a name ({text[:32]!r})")
        return text.decode("ascii")


def _read_upto(kernel: Kernel, address: int, limit: int) -> bytes:
    """Up to ``limit`` bytes at ``address``, stopping at the first unreadable page."""
    out = b""
    while len(out) < limit:
        take = min(limit - len(out), 4096 - ((address + len(out)) & 4095))
        try:
            chunk = kernel.read(address + len(out), take)
        except DumpError:
            if not out:
                raise
            break
        out += chunk
        if b"\0" in chunk:
            break
    return out


def _walk(kernel: Kernel, head: int, what: str, limit: int) -> list[int]:
    """The entries of a circular list; a loop, a bad pointer or too many entries refuse."""
    problems: list[str] = []
    nodes = list(walk_list(kernel.space.read_u64, head, what, problems, limit))
    if problems:
        raise FormatError(f"livepatch state damaged: {problems[0]}")
    return nodes


def _entries(r: _Reader, head: int, node_key: str, what: str, limit: int) -> list[int]:
    """The structs on the list at ``head``, linked through their member ``node_key``."""
    return [node - r.off[node_key] for node in _walk(r.kernel, head, what, limit)]


def read_livepatch(kernel: Kernel) -> LivepatchState | NoLivepatch:
    """The kernel's livepatch state, or why there is none.

    Raises:
        DumpError: the state is damaged (a list loops, a function is not text, a state
            value the kernel never writes), or the types to read it are unknown.
    """
    syms = kernel.symbols
    if syms is None:
        raise DumpError("livepatch state unknown: no symbols (pass --map System.map)")
    head = syms.address_of("klp_patches")
    if head is None:
        if not syms.has_data_symbols:
            raise DumpError(
                f"livepatch state unknown: {syms.source} has text symbols only; pass --map "
                "System.map to find klp_patches"
            )
        return NoLivepatch(
            f"the kernel has no symbol klp_patches in {syms.source} (built without "
            "CONFIG_LIVEPATCH)"
        )
    try:
        first = kernel.space.read_u64(head)
    except DumpError as exc:
        raise DumpError(
            f"livepatch state unknown: klp_patches unreadable ({exc.message})"
        ) from None
    transition = _optional_u64(kernel, "klp_transition_patch")
    if first == head and not transition:
        return NoLivepatch("klp_patches is empty and klp_transition_patch is NULL")
    reader = _Reader(kernel)
    patches = tuple(
        _read_patch(reader, at)
        for at in _entries(reader, head, "klp_patch.list", "klp_patches", MAX_PATCHES)
    )
    funcs = {f.address: (p, f) for p in patches for _, f in p.funcs}
    target = _optional_int(kernel, "klp_target_state")
    if target is not None and target not in STATE_WORDS:
        raise FormatError(
            f"livepatch state damaged: klp_target_state is {target} (the kernel writes only "
            "-1, 0 or 1)"
        )
    signals = _optional_int(kernel, "klp_signals_cnt", signed=False)
    transition_patch = None
    if transition:
        transition_patch = next((p for p in patches if p.address == transition), None)
        if transition_patch is None:
            raise FormatError(
                f"livepatch state damaged: klp_transition_patch 0x{transition:x} is not on "
                "klp_patches"
            )
        if target == KLP_UNDEFINED:
            raise FormatError(
                "livepatch state damaged: klp_transition_patch is set but klp_target_state "
                "is -1 (no transition)"
            )
    elif target not in (None, KLP_UNDEFINED):
        raise FormatError(
            f"livepatch state damaged: klp_target_state is {target} but "
            "klp_transition_patch is NULL"
        )
    ops, below = _read_ops(reader, funcs)
    return LivepatchState(
        patches=patches,
        transition_patch=transition_patch,
        target_state=target,
        signals_cnt=signals,
        ops=ops,
        tif_bit=tif_patch_pending_bit(kernel.release),
        funcs_by_address=funcs,
        below=below,
    )


def _optional_u64(kernel: Kernel, name: str) -> int:
    assert kernel.symbols is not None
    address = kernel.symbols.address_of(name)
    if address is None:
        return 0
    try:
        return kernel.space.read_u64(address)
    except DumpError as exc:
        raise DumpError(f"livepatch state unknown: {name} unreadable ({exc.message})") from None


def _optional_int(kernel: Kernel, name: str, signed: bool = True) -> int | None:
    """A static ``int`` of transition.c by its symbol (kallsyms has static data only with
    KALLSYMS_ALL; System.map always), None when the symbol is not known."""
    assert kernel.symbols is not None
    address = kernel.symbols.address_of(name)
    if address is None:
        return None
    try:
        raw = kernel.read(address, 4)
    except DumpError as exc:
        raise DumpError(f"livepatch state unknown: {name} unreadable ({exc.message})") from None
    return int((_I32 if signed else _U32).unpack(raw)[0])


def _read_patch(r: _Reader, address: int) -> KlpPatch:
    try:
        module = r.u64(address + r.off["klp_patch.mod"])
        name = r.string(module + r.module_name, MODULE_NAME_LEN, "klp_patch.mod->name")
        head = address + r.off["klp_patch.obj_list"]
        what = f"klp_patch '{name}' obj_list"
        objects = tuple(
            _read_object(r, at, name)
            for at in _entries(r, head, "klp_object.node", what, MAX_OBJECTS)
        )
        return KlpPatch(
            address=address,
            name=name,
            module=module,
            enabled=r.flag(address, "klp_patch.enabled"),
            forced=r.flag(address, "klp_patch.forced"),
            replace=r.flag(address, "klp_patch.replace"),
            objects=objects,
        )
    except FormatError:
        raise
    except DumpError as exc:  # unreadable memory inside a patch's structures
        raise FormatError(
            f"livepatch state damaged: klp_patch at 0x{address:x}: {exc.message}"
        ) from None


def _read_object(r: _Reader, address: int, patch: str) -> KlpObject:
    name_ptr = r.u64(address + r.off["klp_object.name"])
    name = r.string(name_ptr, MODULE_NAME_LEN, "klp_object.name") if name_ptr else None
    module = r.u64(address + r.off["klp_object.mod"])
    label = name or "vmlinux"
    loaded = name is None or module != 0
    head = address + r.off["klp_object.func_list"]
    what = f"klp_patch '{patch}' object '{label}' func_list"
    funcs = tuple(
        _read_func(r, at, f"patch '{patch}' object '{label}'", loaded)
        for at in _entries(r, head, "klp_func.node", what, MAX_FUNCS)
    )
    return KlpObject(
        address=address,
        name=name,
        module=module,
        dynamic=r.flag(address, "klp_object.dynamic"),
        patched=r.flag(address, "klp_object.patched"),
        funcs=funcs,
    )


def _read_func(r: _Reader, address: int, where: str, loaded: bool) -> KlpFunc:
    old_name = r.string(
        r.u64(address + r.off["klp_func.old_name"]), KSYM_NAME_LEN, f"{where}: klp_func.old_name"
    )
    func = KlpFunc(
        address=address,
        old_name=old_name,
        old_sympos=r.member(address, "klp_func.old_sympos"),
        old_func=r.u64(address + r.off["klp_func.old_func"]),
        old_size=r.member(address, "klp_func.old_size"),
        new_func=r.u64(address + r.off["klp_func.new_func"]),
        new_size=r.member(address, "klp_func.new_size"),
        nop=r.flag(address, "klp_func.nop"),
        patched=r.flag(address, "klp_func.patched"),
        transition=r.flag(address, "klp_func.transition"),
    )
    if loaded:  # klp_init_object_loaded() resolved old_func (and a nop's new_func)
        for what, at, size in (
            ("old_func", func.old_func, func.old_size),
            ("new_func", func.new_func, func.new_size),
        ):
            if not r.kernel.is_text(at):
                raise FormatError(
                    f"livepatch state damaged: {where} func '{old_name}': {what} 0x{at:x} is "
                    "not kernel text"
                )
            if not 0 < size <= MAX_FUNC_SIZE:
                size_name = what.replace("func", "size")
                raise FormatError(
                    f"livepatch state damaged: {where} func '{old_name}': {size_name} is {size}"
                )
    return func


def _read_ops(
    r: _Reader, funcs: dict[int, tuple[KlpPatch, KlpFunc]]
) -> tuple[tuple[KlpOps, ...], dict[int, int]]:
    """``klp_ops`` with each ``func_stack``, and which func lies under which."""
    assert r.kernel.symbols is not None
    head = r.kernel.symbols.address_of("klp_ops")
    below: dict[int, int] = {}
    if head is None:
        return (), below
    out = []
    for ops in _entries(r, head, "klp_ops.node", "klp_ops", MAX_OPS):
        what = f"klp_ops 0x{ops:x} func_stack"
        stack = tuple(
            _entries(r, ops + r.off["klp_ops.func_stack"], "klp_func.stack_node", what, MAX_FUNCS)
        )
        for f in stack:
            if f not in funcs:
                raise FormatError(
                    f"livepatch state damaged: klp_ops 0x{ops:x} func_stack holds 0x{f:x}, "
                    "no klp_func of a patch on klp_patches"
                )
        below.update(itertools.pairwise(stack))
        out.append(KlpOps(ops, stack))
    return tuple(out), below


def task_patch_states(
    kernel: Kernel, tasks: Iterable[Task], tif_bit: int
) -> dict[int, TaskPatchState]:
    """Each task's ``patch_state`` and ``TIF_PATCH_PENDING``, by ``task_struct`` address.

    Raises:
        DumpError: a ``patch_state`` the kernel never writes (the task named).
    """
    r_types = kernel.types
    assert r_types is not None
    state_off = r_types.offset("task_struct.patch_state")
    flags_off = r_types.offset("task_struct.thread_info.flags")
    out: dict[int, TaskPatchState] = {}
    for task in tasks:
        try:
            state = int(_I32.unpack(kernel.read(task.address + state_off, 4))[0])
            flags = kernel.space.read_u64(task.address + flags_off)
        except DumpError as exc:
            raise DumpError(
                f"livepatch state unknown: task {task.pid} ({task.comm}) patch_state "
                f"unreadable ({exc.message})"
            ) from None
        if state not in STATE_WORDS:
            raise FormatError(
                f"livepatch state damaged: task {task.pid} ({task.comm}) patch_state is "
                f"{state} (the kernel writes only -1, 0 or 1)"
            )
        out[task.address] = TaskPatchState(state, bool(flags >> tif_bit & 1))
    return out


def livepatch_summary(kernel: Kernel) -> str | None:
    """One line for ``sys``/``info``: the patches and the transition state; None when no
    livepatch is loaded, the kernel has none, or that cannot be told (text symbols only);
    the refusal's words when the state is damaged or its layout unknown."""
    try:
        state = read_livepatch(kernel)
    except FormatError as exc:
        return f"damaged: {exc.message}"
    except TypeInfoError as exc:  # klp_patches is not empty, its layout is unknown
        return f"loaded, but {exc.message}"
    except DumpError:  # whether one is loaded cannot be told here ('klp' says why)
        return None
    if isinstance(state, NoLivepatch):
        return None
    names = ", ".join(
        p.name + ("" if p.enabled else " (disabled)") + (" (forced)" if p.forced else "")
        for p in state.patches
    )
    line = f"{len(state.patches)} loaded: {names}"
    patch = state.transition_patch
    if patch is not None and state.target_state is not None:
        direction = "patching" if state.target_state == KLP_PATCHED else "unpatching"
        line += f"; transition in progress: {patch.name} {direction} ('backchain klp' says why)"
    return line
