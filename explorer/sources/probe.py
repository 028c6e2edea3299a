"""``--types probe``: the few struct offsets task discovery and the walk need, inferred from
the dump itself (no DWARF, no BTF, no profile).

Every offset comes from evidence in memory, checked on every task found, and must be the
only candidate the evidence leaves; when two survive the probe refuses (a
:class:`~parsers.errors.TypeInfoError` naming the member and the candidates) instead of
picking one. Where the evidence of a dump can never separate two members (``pid`` and
``tgid`` are equal in every thread-group leader; ``real_parent`` and ``parent`` differ only
under ptrace; ``thread_info.cpu`` and ``wake_cpu`` agree unless a wakeup is in flight) the
kernel's own declaration order in ``include/linux/sched.h`` (the same in every release
backchain reads) names them, and the source of the member says so.

Evidence, in order (each step uses the ones before):

* ``init_task``: its symbol, else the only static ``task_struct`` in the image's data
  (``[_etext, _edata)``) holding ``"swapper/0"`` with three pointers to itself
  (``real_parent``, ``parent``, ``group_leader``); ``comm``: where ``"swapper/0"`` is in it.
* ``tasks``: the list_head in ``init_task`` whose circular list leads, entry by entry (each
  ``next->prev`` checked), through tasks with a printable ``comm`` back to ``init_task``.
* ``pid``/``tgid``: 0 in ``init_task``, 1 and 2 in the first two tasks (``init`` and
  ``kthreadd``), distinct in every task.
* ``real_parent``: ``init_task`` in ``init_task``, ``init`` and ``kthreadd``, a listed task
  in every task.
* ``stack`` and THREAD_SIZE: each CPU's ``lowcore.kernel_stack`` is its current task's
  ``stack + THREAD_SIZE - STACK_FRAME_OVERHEAD - sizeof(pt_regs)`` (``__switch_to``), with
  THREAD_SIZE a power of two the stack is aligned to.
* ``thread.ksp``: the one word inside its own stack in every task that is not running,
  pointing at a frame whose back chain stays in that stack.
* ``__state``: 0 in every running task, a task state in every task, not 0 in all.
* ``flags``: PF_KTHREAD|PF_IDLE in ``init_task``, PF_KTHREAD in ``kthreadd`` and only in
  tasks whose parent is ``kthreadd`` or ``init_task``, not in ``init``.
* ``exit_state``: 8 bytes before ``exit_signal`` (SIGCHLD in every task forked after
  ``kthreadd``; sched.h declares ``exit_state, exit_code, exit_signal``).
* ``thread_info.cpu``: each CPU's number in its current task, a CPU number in every task.
* ``signal``/``thread_node``/``signal_struct.thread_head``: the circular list through each
  task that holds only tasks of its thread group and one head, inside the struct one of
  the task's pointers points to.

``struct module`` (text ranges and symbols of loaded modules): explorer.sources.probe_modules.

Not inferred (absent from the profile, named in ``missing``): ``pt_regs``, ``struct
lowcore`` and ``struct stack_frame`` (the era tables of the release, as without types),
ftrace's ``ret_stack`` (a walk through ``return_to_handler`` cannot be resolved), rethook
and kretprobe lists, ``on_cpu``, and ``module.taints``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from explorer.image.lists import intact_list
from parsers.errors import DumpError, TypeInfoError
from parsers.s390.layouts import STACK_FRAME_BACK_CHAIN
from parsers.s390.sched import (
    EXIT_STATES,
    PF_IDLE,
    PF_KTHREAD,
    STATE_BASE,
    STATE_MODIFIERS,
    TASK_IDLE,
)
from parsers.types.profile import WANTED, TypeProfile

if TYPE_CHECKING:
    from explorer.image.dumpimage import Diagnostics
    from explorer.model.kernel import Kernel

__all__ = ["NOT_INFERRED", "ProbeInput", "infer_offsets", "probe_types"]

#: Bytes of a task_struct searched for members (5.10's thread.ksp is at 0x1af8).
TASK_WINDOW = 0x2000
#: init_task's comm: "swapper/0" (init_idle(): "swapper/%d"), TASK_COMM_LEN bytes.
INIT_COMM = b"swapper/0"
COMM_LEN = 16
#: Lists longer than this are damage, for the probe's purposes.
MAX_LIST = 1 << 16
#: Threads of one group followed while probing the thread list.
MAX_THREADS = 4096
SIGCHLD = 17
#: Why the members the probe does not infer are absent.
NOT_INFERRED = {
    "ftrace_ret_stack": "ftrace's return stack (ret_stack) is not inferred: a walk through "
    "return_to_handler cannot name the original return address",
    "rethooks": "rethook/kretprobe lists are not inferred: a return through a kretprobe "
    "trampoline cannot be resolved",
    "taints": "module taints are not inferred",
    "layouts": "pt_regs, struct lowcore and struct stack_frame come from the era tables of "
    "the release (no types in the dump)",
}

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class ProbeInput:
    """What the probe reads, independent of the kernel model (unit tests build it).

    Attributes:
        read: reads ``size`` bytes of kernel virtual memory (raises DumpError).
        cpus: ``(cpu number, lowcore.current_task, lowcore.kernel_stack)`` per CPU.
        stack_init_extra: ``STACK_FRAME_OVERHEAD + sizeof(pt_regs)``: THREAD_SIZE minus
            ``STACK_INIT_OFFSET``.
        init_task: its address from the symbols, if known.
        data: ``[start, end)`` of the image's data where a static init_task would be.
        init_stack_size: ``__end_init_stack - init_stack`` from the symbols, if known.
        long_state: the state member is ``long state`` (before v5.14), not ``__state``.
        cpu_in_thread_info: the CPU member is ``thread_info.cpu`` (v5.16+).
    """

    read: Callable[[int, int], bytes]
    cpus: tuple[tuple[int, int, int], ...]
    stack_init_extra: int
    init_task: int | None = None
    data: tuple[int, int] | None = None
    init_stack_size: int | None = None
    long_state: bool = False
    cpu_in_thread_info: bool = True


@dataclass
class Inferred:
    """Offsets and sizes found, each with the evidence that gave it."""

    offsets: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    init_task: int = 0
    taken: list[tuple[int, int]] = field(default_factory=list)
    #: task_struct members other than ``thread`` lie below it (``thread`` must be last).
    limit: int = TASK_WINDOW

    def put(self, name: str, offset: int, why: str, width: int = 8) -> None:
        self.offsets[name] = offset
        self.sources[name] = f"probe: {why}"
        if name.startswith("task_struct."):
            self.taken.append((offset, offset + width))

    def free(self, offset: int, width: int) -> bool:
        """Whether ``[offset, offset + width)`` overlaps no task_struct member found."""
        return all(offset + width <= a or b <= offset for a, b in self.taken)


class _Memory:
    """Task-sized windows of memory, read once; words decoded on demand."""

    def __init__(self, read: Callable[[int, int], bytes]) -> None:
        self._read = read
        self._windows: dict[int, bytes] = {}

    def window(self, address: int) -> bytes:
        """Up to TASK_WINDOW bytes from ``address`` (fewer where memory ends)."""
        got = self._windows.get(address)
        if got is None:
            parts = []
            at, end = address, address + TASK_WINDOW
            while at < end:  # page by page past the first unreadable page: stop there
                step = min(end - at, 4096 - (at & 4095))
                try:
                    parts.append(self._read(at, step))
                except DumpError:
                    break
                at += step
            got = self._windows[address] = b"".join(parts)
        return got

    def read(self, address: int, size: int) -> bytes:
        """``size`` bytes, or none where memory cannot be read."""
        try:
            return self._read(address, size)
        except DumpError:
            return b""

    def word(self, address: int) -> int:
        """A 64-bit word.

        Raises:
            DumpError: not in the dump.
        """
        return int(_U64.unpack(self._read(address, 8))[0])

    def u64(self, address: int) -> int | None:
        try:
            return int(_U64.unpack(self._read(address, 8))[0])
        except DumpError:
            return None


def _w64(buf: bytes, off: int) -> int | None:
    return int(_U64.unpack_from(buf, off)[0]) if off + 8 <= len(buf) else None


def _w32(buf: bytes, off: int) -> int | None:
    return int(_U32.unpack_from(buf, off)[0]) if off + 4 <= len(buf) else None


def _printable_comm(raw: bytes) -> bool:
    name = raw.split(b"\0", 1)[0]
    return 0 < len(name) < len(raw) and all(0x20 <= b < 0x7F for b in name)


def _refuse(member: str, why: str) -> TypeInfoError:
    return TypeInfoError(f"--types probe: {member}: {why}")


def _one(member: str, candidates: Sequence[int], evidence: str) -> int:
    """The single candidate offset, or a refusal naming the member and what was left."""
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise _refuse(member, f"no offset fits the evidence ({evidence})")
    shown = ", ".join(f"0x{c:x}" for c in candidates[:6]) + (" ..." if len(candidates) > 6 else "")
    raise _refuse(
        member,
        f"ambiguous: {len(candidates)} offsets ({shown}) fit the evidence ({evidence}); "
        "pass --vmlinux with debug info or --profile FILE",
    )


def infer_offsets(inp: ProbeInput) -> Inferred:
    """Infer the task_struct members backchain needs from memory.

    Raises:
        TypeInfoError: a member has no candidate, or more than one, given the evidence.
    """
    mem = _Memory(inp.read)
    out = Inferred()
    init, comm = _find_init_task(inp, mem)
    out.init_task = init
    out.put("task_struct.comm", comm, "where init_task holds 'swapper/0'", COMM_LEN)
    out.sizes["task_struct.comm"] = COMM_LEN
    tasks_off, tasks = _find_tasks(mem, init, comm)
    out.put(
        "task_struct.tasks",
        tasks_off,
        f"init_task's list through {len(tasks)} tasks with a printable comm, each next->prev "
        "checked",
        16,
    )
    if len(tasks) < 2:
        raise _refuse("task_struct.pid", "fewer than two tasks (init, kthreadd) on the list")
    bufs = {t: mem.window(t) for t in (init, *tasks)}
    currents = [(cpu, cur, ks) for cpu, cur, ks in inp.cpus if cur]
    for _, cur, _ in currents:
        bufs.setdefault(cur, mem.window(cur))
    every = list(bufs)
    listed = set(tasks) | {init}

    pid = _pid(out, bufs, init, tasks)
    parent = _real_parent(out, bufs, init, tasks, listed)
    _stack(out, inp, bufs, currents, tasks)
    _ksp(out, mem, bufs, {cur for _, cur, _ in currents}, every)
    _state(out, inp, bufs, currents, tasks, every)
    _flags(out, bufs, init, tasks, parent)
    _exit_state(out, bufs, init, tasks)
    _cpu(out, inp, bufs, currents, every)
    _threads(out, mem, bufs, tasks, pid)
    return out


def _find_init_task(inp: ProbeInput, mem: _Memory) -> tuple[int, int]:
    """``init_task`` and its comm offset."""
    if inp.init_task is not None:
        buf = mem.window(inp.init_task)
        hits = [o for o in _comm_hits(buf) if o < len(buf)]
        return inp.init_task, _one("task_struct.comm", hits, "'swapper/0' in init_task")
    if inp.data is None:
        raise _refuse("init_task", "no init_task symbol and no data section to find it in")
    start, end = inp.data
    found: list[tuple[int, int]] = []
    chunk = 1 << 20
    at = start
    while at < end:  # the image's data, a MiB at a time (overlapping by a comm)
        size = min(chunk, end - at)
        try:
            raw = inp.read(at, size + COMM_LEN)
        except DumpError:
            try:
                raw = inp.read(at, size)
            except DumpError:
                at += size
                continue
        for hit in _comm_hits(raw):
            if hit < size:
                found.extend(_self_pointing(mem, at + hit))
        at += size
    if len(found) != 1:
        what = ", ".join(f"0x{a:x}" for a, _ in found) or "none"
        raise _refuse(
            "init_task",
            f"{len(found)} static tasks hold 'swapper/0' with three pointers to themselves "
            f"({what}); pass --map System.map",
        )
    return found[0]


def _comm_hits(raw: bytes) -> list[int]:
    pattern = INIT_COMM + b"\0" * (COMM_LEN - len(INIT_COMM))
    hits, at = [], raw.find(pattern)
    while at >= 0:
        hits.append(at)
        at = raw.find(pattern, at + 1)
    return hits


def _self_pointing(mem: _Memory, comm_at: int) -> list[tuple[int, int]]:
    """Candidate task starts before ``comm_at``: 8-aligned addresses with at least three
    words pointing to themselves (real_parent, parent, group_leader) in the window."""
    base = (comm_at - TASK_WINDOW) & ~7
    raw = mem.window(base) + mem.window(base + TASK_WINDOW)
    words: dict[int, int] = {}
    for off in range(0, len(raw) - 7, 8):
        value = _U64.unpack_from(raw, off)[0]
        if base <= value <= comm_at and value & 7 == 0:
            where = base + off
            if value < where < value + TASK_WINDOW:
                words[value] = words.get(value, 0) + 1
    return [(start, comm_at - start) for start, n in words.items() if n >= 3]


def _find_tasks(mem: _Memory, init: int, comm: int) -> tuple[int, list[int]]:
    buf = mem.window(init)
    found: list[tuple[int, list[int]]] = []
    for off in range(0, min(len(buf), TASK_WINDOW) - 15, 8):
        delta = comm - off  # from an entry's list_head to its task's comm

        def has_comm(node: int, delta: int = delta) -> bool:
            return _printable_comm(_comm_of(mem, node + delta))

        nodes = intact_list(mem.word, init + off, MAX_LIST, has_comm)
        if nodes is not None and len(nodes) >= 2:
            found.append((off, [n - off for n in nodes]))
    offset = _one(
        "task_struct.tasks",
        [o for o, _ in found],
        "a circular list from init_task through tasks with a printable comm",
    )
    return offset, next(t for o, t in found if o == offset)


def _comm_of(mem: _Memory, address: int) -> bytes:
    return mem.read(address, COMM_LEN)


def _fields(bufs: dict[int, bytes], width: int, out: Inferred | None = None) -> list[int]:
    """Offsets of ``width``-byte words in every task's window, not inside a member found."""
    shortest = min(len(b) for b in bufs.values())
    return [
        off
        for off in range(0, min(shortest, out.limit if out else shortest) - width + 1, width)
        if out is None or out.free(off, width)
    ]


def _pid(out: Inferred, bufs: dict[int, bytes], init: int, tasks: list[int]) -> int:
    found = []
    for off in _fields(bufs, 4, out):
        if _w32(bufs[init], off) != 0:
            continue
        values = [_w32(bufs[t], off) for t in tasks]
        if values[0] != 1 or values[1] != 2:
            continue
        if all(v is not None and 0 < v < 1 << 22 for v in values) and len(set(values)) == len(
            values
        ):
            found.append(off)
    evidence = "0 in init_task, 1 and 2 in init and kthreadd, distinct in every task"
    if len(found) == 2 and found[1] == found[0] + 4:
        pid, tgid = found
        out.put("task_struct.pid", pid, evidence + "; declared before tgid", 4)
        out.put("task_struct.tgid", tgid, evidence + "; the word after pid", 4)
        return pid
    _one("task_struct.pid", found, evidence + " (expected pid and tgid side by side)")
    raise _refuse("task_struct.tgid", "no word after pid fits the evidence")


def _real_parent(
    out: Inferred, bufs: dict[int, bytes], init: int, tasks: list[int], listed: set[int]
) -> int:
    found = []
    for off in _fields(bufs, 8, out):
        if any(_w64(bufs[t], off) != init for t in (init, tasks[0], tasks[1])):
            continue
        if all(_w64(bufs[t], off) in listed for t in tasks):
            found.append(off)
    evidence = "&init_task in init_task, init and kthreadd; a listed task in every task"
    if len(found) == 2 and found[1] == found[0] + 8:  # real_parent, then parent
        out.put("task_struct.real_parent", found[0], evidence + "; declared before parent", 16)
        return found[0]
    off = _one("task_struct.real_parent", found, evidence)
    out.put("task_struct.real_parent", off, evidence)
    return off


def _stack(
    out: Inferred,
    inp: ProbeInput,
    bufs: dict[int, bytes],
    currents: list[tuple[int, int, int]],
    tasks: list[int],
) -> None:
    if not currents:
        raise _refuse("task_struct.stack", "no CPU names its current task in its lowcore")
    found: set[tuple[int, int]] | None = None
    for _, cur, kernel_stack in currents:
        here = set()
        buf = bufs[cur]
        for off in range(0, len(buf) - 7, 8):
            base = _w64(buf, off)
            if not base:
                continue
            size = kernel_stack + inp.stack_init_extra - base
            if 8192 <= size <= 1 << 18 and size & (size - 1) == 0 and base % size == 0:
                here.add((off, size))
        found = here if found is None else found & here
    assert found is not None
    found = {
        (off, size)
        for off, size in found
        if all((_w64(bufs[t], off) or 0) % size == 0 for t in tasks)
    }
    evidence = (
        "each CPU's lowcore.kernel_stack is its current task's stack + THREAD_SIZE - "
        f"{inp.stack_init_extra}, stacks aligned to THREAD_SIZE"
    )
    off = _one("task_struct.stack", sorted(o for o, _ in found), evidence)
    size = next(s for o, s in found if o == off)
    if inp.init_stack_size is not None and inp.init_stack_size != size:
        raise _refuse(
            "THREAD_SIZE",
            f"the stacks say {size} bytes, init_stack's symbols {inp.init_stack_size}",
        )
    out.put("task_struct.stack", off, evidence)
    out.sizes["thread_union"] = size
    out.sources["thread_union"] = (
        f"probe: lowcore.kernel_stack - task stack + {inp.stack_init_extra}"
        + (" == __end_init_stack - init_stack" if inp.init_stack_size else "")
    )


def _ksp(
    out: Inferred, mem: _Memory, bufs: dict[int, bytes], running: set[int], every: list[int]
) -> None:
    size = out.sizes["thread_union"]
    stack_off = out.offsets["task_struct.stack"]
    sleeping = [t for t in every if t not in running and _w64(bufs[t], stack_off)]
    if not sleeping:
        raise _refuse("task_struct.thread.ksp", "no task that is not running")
    found = []
    for off in _fields(bufs, 8, out):
        ok = off != stack_off
        for t in sleeping if ok else ():
            base = _w64(bufs[t], stack_off) or 0
            ksp = _w64(bufs[t], off)
            if ksp is None or ksp & 7 or not base < ksp <= base + size - 160:
                ok = False
                break
            chain = mem.u64(ksp + STACK_FRAME_BACK_CHAIN)
            if chain is None or (chain and not ksp < chain < base + size):
                ok = False
                break
        if ok:
            found.append(off)
    evidence = (
        f"inside its own stack in all {len(sleeping)} tasks not running, at a frame whose "
        "back chain stays in that stack"
    )
    ksp = _one("task_struct.thread.ksp", found, evidence)
    out.put("task_struct.thread.ksp", ksp, evidence)
    out.limit = ksp  # thread_struct is the last member of task_struct (sched.h)


def _state(
    out: Inferred,
    inp: ProbeInput,
    bufs: dict[int, bytes],
    currents: list[tuple[int, int, int]],
    tasks: list[int],
    every: list[int],
) -> None:
    width = 8 if inp.long_state else 4
    read = _w64 if width == 8 else _w32
    running = {cur for _, cur, _ in currents}
    found = []
    for off in _fields(bufs, width, out):
        if any(read(bufs[t], off) != 0 for t in running):
            continue
        values = [read(bufs[t], off) for t in every]
        if all(_is_state(v) for v in values) and TASK_IDLE in values:
            found.append(off)
    name = "task_struct.state" if inp.long_state else "task_struct.__state"
    evidence = (
        "0 in every running task, a task state (one state bit and modifiers) in every task, "
        "TASK_IDLE (0x402) in an idle worker"
    )
    out.put(name, _one(name, found, evidence), evidence, width)
    out.sizes[name] = width


def _is_state(value: int | None) -> bool:
    if value is None:
        return False
    base = value & ~STATE_MODIFIERS
    return base in STATE_BASE or value == 0


def _flags(out: Inferred, bufs: dict[int, bytes], init: int, tasks: list[int], parent: int) -> None:
    kthreadd = tasks[1]
    found = []
    for off in _fields(bufs, 4, out):
        if (_w32(bufs[init], off) or 0) & (PF_KTHREAD | PF_IDLE) != PF_KTHREAD | PF_IDLE:
            continue
        if not (_w32(bufs[kthreadd], off) or 0) & PF_KTHREAD:
            continue
        if (_w32(bufs[tasks[0]], off) or 0) & PF_KTHREAD:
            continue
        ok = True
        for t in tasks[2:]:
            flag = (_w32(bufs[t], off) or 0) & PF_KTHREAD
            if flag and _w64(bufs[t], parent) not in (kthreadd, init):
                ok = False
                break
        kthreads = sum(1 for t in tasks if (_w32(bufs[t], off) or 0) & PF_KTHREAD)
        if ok and kthreads >= 2:
            found.append(off)
    evidence = (
        "PF_KTHREAD|PF_IDLE in init_task, PF_KTHREAD in kthreadd and only in its children, "
        "not in init"
    )
    out.put("task_struct.flags", _one("task_struct.flags", found, evidence), evidence, 4)


def _exit_state(out: Inferred, bufs: dict[int, bytes], init: int, tasks: list[int]) -> None:
    found = []
    for off in _fields(bufs, 4, out):
        if off < 8 or _w32(bufs[init], off) != 0:
            continue
        if any(_w32(bufs[t], off) not in (0, SIGCHLD) for t in tasks[:2]):
            continue
        if (
            len(tasks) > 2
            and all(_w32(bufs[t], off) == SIGCHLD for t in tasks[2:])
            and all(_w32(bufs[t], off - 8) in EXIT_STATES for t in (init, *tasks))
        ):
            found.append(off)
    evidence = "SIGCHLD in every task forked after kthreadd"
    signal = _one("task_struct.exit_signal", found, evidence)
    out.put(
        "task_struct.exit_state",
        signal - 8,
        f"8 bytes before exit_signal ({evidence}; sched.h: exit_state, exit_code, exit_signal)",
        12,
    )


def _cpu(
    out: Inferred,
    inp: ProbeInput,
    bufs: dict[int, bytes],
    currents: list[tuple[int, int, int]],
    every: list[int],
) -> None:
    numbers = {cpu for cpu, _, _ in currents}
    limit = max(numbers) + 1
    found = []
    for off in _fields(bufs, 4, out):
        if any(_w32(bufs[cur], off) != cpu for cpu, cur, _ in currents):
            continue
        values = [_w32(bufs[t], off) for t in every]
        if all(v is not None and v < limit for v in values):
            found.append(off)
    name = "task_struct.thread_info.cpu" if inp.cpu_in_thread_info else "task_struct.cpu"
    evidence = "each CPU's number in its current task, a CPU number in every task"
    if len(numbers) < 2:
        raise _refuse(name, f"one CPU only: a CPU number cannot be told from 0 ({evidence})")
    if len(found) > 1:  # cpu, then recent_used_cpu and wake_cpu (sched.h)
        state = out.offsets.get("task_struct.__state", out.offsets.get("task_struct.state", 0))
        before = [o for o in found if o < state] if inp.cpu_in_thread_info else found[:1]
        off = _one(name, before, evidence + ", in thread_info" if inp.cpu_in_thread_info else "")
        out.put(name, off, evidence + "; the first such word (sched.h: cpu before wake_cpu)", 4)
        return
    out.put(name, _one(name, found, evidence), evidence, 4)


def _threads(
    out: Inferred, mem: _Memory, bufs: dict[int, bytes], tasks: list[int], pid: int
) -> None:
    """``signal``, ``thread_node`` and ``signal_struct.thread_head``: for every leader, the
    list at ``thread_node`` holds tasks of its group and one head inside ``*signal``."""
    tgid = out.offsets["task_struct.tgid"]
    common: set[tuple[int, int, int]] | None = None
    for leader in tasks:
        buf = bufs[leader]
        group = _w32(buf, pid)
        here: set[tuple[int, int, int]] = set()
        pointers: dict[int, list[int]] = {}
        for off in range(0, len(buf) - 7, 8):
            value = _w64(buf, off)
            if value and not value & 7:
                pointers.setdefault(value, []).append(off)
        for node_off in range(0, len(buf) - 15, 8):
            if node_off >= out.limit or not out.free(node_off, 16):
                continue
            head = _thread_head(mem, leader + node_off, node_off, tgid, group)
            if head is None:
                continue
            for value, offs in pointers.items():
                if 0 <= head - value < 0x400:
                    here.update(
                        (node_off, o, head - value)
                        for o in offs
                        if o not in (node_off, node_off + 8) and o < out.limit and out.free(o, 8)
                    )
        common = here if common is None else common & here
        if not common:
            break
    evidence = (
        "the list through every task holding only its thread group and a head inside the "
        "struct its signal pointer points to"
    )
    found = sorted(common or ())
    if len(found) != 1:
        _one("task_struct.thread_node", sorted({n for n, _, _ in found}), evidence)
        _one("task_struct.signal", sorted({s for _, s, _ in found}), evidence)
        _one("signal_struct.thread_head", sorted({h for _, _, h in found}), evidence)
    node, signal, head = found[0]
    out.put("task_struct.thread_node", node, evidence)
    out.put("task_struct.signal", signal, evidence)
    out.put("signal_struct.thread_head", head, evidence)


def _thread_head(
    mem: _Memory, start: int, node_off: int, tgid: int, group: int | None
) -> int | None:
    """The one entry of the list through ``start`` that is not a thread of ``group``."""
    first = mem.u64(start)
    if first is None or first == start or not first or first & 7:
        return None
    heads = []
    prev, node, count = start, first, 0
    while node != start:
        if count > MAX_THREADS or not node or node & 7 or mem.u64(node + 8) != prev:
            return None
        raw = mem.u64(node - node_off + tgid - 4)  # pid, tgid: the tgid is the low word
        if raw is None or raw & 0xFFFFFFFF != group:
            heads.append(node)
            if len(heads) > 1:
                return None
        nxt = mem.u64(node)
        if nxt is None:
            return None
        prev, node, count = node, nxt, count + 1
    return heads[0] if heads else None


def _missing(offsets: Iterable[str], sizes: Iterable[str]) -> tuple[str, ...]:
    have = set(offsets) | set(sizes)
    return tuple("|".join(g) for g in WANTED if not any(n in have for n in g))


def probe_types(kernel: Kernel, notes: Diagnostics) -> tuple[TypeProfile, int]:
    """The type profile of ``kernel`` inferred from its memory, and ``init_task``; what
    cannot be inferred of the modules is said in ``notes``.

    Raises:
        TypeInfoError: the evidence leaves a member with no candidate or with several.
    """
    from parsers.s390.layouts import STACK_FRAME_SIZE, kernel_version

    syms = kernel.symbols
    data = None
    init_task = stack_size = None
    if syms is not None:
        init_task = syms.address_of("init_task")
        start = syms.address_of("_etext") or syms.address_of("_stext")
        end = syms.address_of("_edata") or syms.address_of("__init_begin")
        if start is not None and end is not None and 0 < end - start <= 256 << 20:
            data = (start, end)
        stack = syms.address_of("init_stack")
        stop = syms.address_of("__end_init_stack") or syms.address_of("__end_init_task")
        if stack is not None and stop is not None:
            stack_size = stop - stack
    version = kernel_version(kernel.release or "6.1")[:2]
    inp = ProbeInput(
        read=kernel.space.read,
        cpus=tuple(
            (c.number, c.lowcore.current_task, c.lowcore.kernel_stack)
            for c in kernel.cpus
            if c.lowcore is not None
        ),
        stack_init_extra=STACK_FRAME_SIZE + kernel.pt_regs_size,
        init_task=init_task,
        data=data,
        init_stack_size=stack_size,
        long_state=version < (5, 14),
        cpu_in_thread_info=version >= (5, 16),
    )
    try:
        found = infer_offsets(inp)
    except DumpError as exc:
        raise exc.with_path(kernel.path) from None
    offsets, sizes, sources = dict(found.offsets), dict(found.sizes), dict(found.sources)
    for name, value in (("list_head.next", 0), ("list_head.prev", 8)):
        offsets[name] = value
        sources[name] = "probe: struct list_head { next, prev } (include/linux/types.h)"
    sizes["task_struct.comm"] = COMM_LEN
    sources["task_struct.comm"] = found.sources["task_struct.comm"]
    _add_modules(kernel, notes, version, offsets, sizes, sources)
    build_id = kernel.vmcoreinfo.get("BUILD-ID") if kernel.vmcoreinfo else None
    profile = TypeProfile(
        release=kernel.release,
        build_id=build_id,
        source="probe",
        offsets=offsets,
        sizes=sizes,
        member_sources=sources,
        missing=_missing(offsets, sizes),
    )
    return profile, found.init_task


def _add_modules(
    kernel: Kernel,
    notes: Diagnostics,
    version: tuple[int, ...],
    offsets: dict[str, int],
    sizes: dict[str, int],
    sources: dict[str, str],
) -> None:
    """The ``struct module`` members (explorer.sources.probe_modules); what cannot be
    inferred is said in ``notes`` and left out."""
    from explorer.sources.probe_modules import infer_module_layout

    syms = kernel.symbols
    head = syms.address_of("modules") if syms is not None else None
    if head is None:
        head = _modules_head(kernel)
    if head is None:
        notes.warnings.append(
            "--types probe: the list head 'modules' is unknown: loaded modules are not read"
        )
        return
    found = infer_module_layout(
        kernel.space.read, head, memory_array=version >= (6, 4), typetab=version >= (5, 2)
    )
    offsets.update(found.offsets)
    sizes.update(found.sizes)
    sources.update(found.sources)
    notes.warnings.extend(f"--types probe: modules: {p}" for p in found.problems)


def _modules_head(kernel: Kernel) -> int | None:
    """``&modules`` for text-only kallsyms: the LARL operand in ``find_module_all()`` that is
    an intact list of modules."""
    from explorer.sources.larl import larl_targets
    from explorer.sources.probe_modules import module_list

    syms = kernel.symbols
    start = syms.address_of("find_module_all") if syms is not None else None
    if syms is None or start is None:
        return None
    try:
        code = kernel.read(start, min(syms.size_of("find_module_all") or 0x400, 0x400))
    except DumpError:
        return None
    for target in larl_targets(code, start):
        if target % 8 == 0 and module_list(kernel.space.read, target) is not None:
            return target
    return None
