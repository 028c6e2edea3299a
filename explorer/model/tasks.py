"""Find every task and its kernel stack, the way the kernel links them.

Tasks hang on the circular list ``init_task.tasks`` (thread-group leaders) and each group's
threads on ``signal->thread_head`` (linked through ``task_struct.thread_node``). Idle tasks
other than ``init_task`` (swapper/0) are on no list: they are found through each CPU's
``lowcore.current_task`` and the per-CPU pointer ``idle_threads``. Every walk is bounded and
remembers what it visited: a corrupted list ends with a warning, never a loop.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from explorer.image.lists import walk_list
from explorer.model.kernel import Kernel
from parsers.errors import DumpError, TypeInfoError
from parsers.s390.sched import (
    PF_IDLE,
    PF_KTHREAD,
    STATE_LETTERS,
    TASK_IDLE,
    TASK_REPORT,
    TASK_RTLOCK_WAIT,
)
from parsers.s390.stacks import StackRange

#: No dump of a real machine has more tasks than this; beyond it the list is corrupted.
MAX_TASKS = 1 << 22
#: PID_MAX_LIMIT on 64-bit (include/linux/threads.h) and the smallest pid_max (RESERVED_PIDS
#: + 1 above 300): the range a pid_max read from the dump must lie in.
PID_MAX_LIMIT = 1 << 22
PID_MAX_MIN = 301


_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


def task_state_letter(state: int, exit_state: int) -> str:
    """The letter ``ps`` shows (``task_state_to_char``)."""
    if state == TASK_IDLE:
        return "I"
    if state == TASK_RTLOCK_WAIT:
        return "D"
    report = (state | exit_state) & TASK_REPORT
    return STATE_LETTERS[report.bit_length()]


@dataclass(frozen=True, slots=True)
class Task:
    """One task as found in the dump.

    Attributes:
        address: the ``task_struct``.
        pid, tgid, ppid: ids (``ppid`` from ``real_parent->tgid``; None if unreadable).
        comm: command name.
        state: ``ps`` letter (R S D T t X Z P I). state_raw/exit_state: the raw fields.
        flags: ``task_struct.flags`` (PF_*).
        cpu: the CPU this task runs on now (it is that CPU's ``current``), else None.
        last_cpu: ``thread_info.cpu``: where it ran last.
        stack: base of its kernel stack (0 for an exited task whose stack was freed).
        ksp: saved kernel stack pointer (``thread.ksp``) of a task that is not running.
        found_by: "tasks list", "thread list", "lowcore", "idle_threads".
        start_time: when the task was forked, in ns since boot (``start_boottime``, before
            v5.5 ``real_start_time``, else ``start_time``); None when the types lack it. With
            pid it names one task of one boot: a reused pid has another start time.
    """

    address: int
    pid: int
    tgid: int
    ppid: int | None
    comm: str
    state: str
    state_raw: int
    exit_state: int
    flags: int
    cpu: int | None
    last_cpu: int
    stack: int
    ksp: int
    thread_size: int
    found_by: str
    start_time: int | None = None

    @property
    def is_kthread(self) -> bool:
        """A kernel thread (PF_KTHREAD)."""
        return bool(self.flags & PF_KTHREAD)

    @property
    def is_idle(self) -> bool:
        """An idle task (swapper/N; PF_IDLE)."""
        return bool(self.flags & PF_IDLE) or self.pid == 0

    @property
    def running(self) -> bool:
        """Running on a CPU at dump time."""
        return self.cpu is not None

    @property
    def stack_range(self) -> StackRange | None:
        """The task stack ``[stack, stack + THREAD_SIZE)``, None if it has none."""
        if not self.stack:
            return None
        return StackRange("task", self.stack, self.stack + self.thread_size)


@dataclass
class TaskScan:
    """Result of :func:`find_tasks`: tasks in discovery order and what went wrong."""

    tasks: list[Task] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def by_pid(self, pid: int) -> list[Task]:
        """Tasks with this pid (pid 0 has one idle task per CPU)."""
        return [t for t in self.tasks if t.pid == pid]

    def by_address(self, address: int) -> Task | None:
        """The task at this ``task_struct`` address."""
        for t in self.tasks:
            if t.address == address:
                return t
        return None


class _Layout:
    """The offsets task discovery needs, resolved once from the type profile."""

    def __init__(self, kernel: Kernel) -> None:
        types = kernel.types
        if types is None:
            raise TypeInfoError(
                "task_struct layout unknown: pass --vmlinux with debug info, --profile FILE "
                "(made by `backchain profile VMLINUX -o FILE`), or use a kernel with BTF"
                + (f" ({kernel.probe_problem})" if kernel.probe_problem else ""),
                kernel.path,
            )
        used: list[str] = []

        def o(name: str) -> int:
            used.append(name)
            return types.offset(name)

        self.used = used
        self.tasks = o("task_struct.tasks")
        self.pid = o("task_struct.pid")
        self.tgid = o("task_struct.tgid")
        self.comm = o("task_struct.comm")
        self.comm_len = types.sizes.get("task_struct.comm", 16)
        self.stack = o("task_struct.stack")
        self.state = o(types.first_of("task_struct.__state", "task_struct.state"))
        self.state_size = types.sizes.get(
            types.first_of("task_struct.__state", "task_struct.state"), 4
        )
        self.exit_state = o("task_struct.exit_state")
        self.flags = o("task_struct.flags")
        self.cpu = o(types.first_of("task_struct.thread_info.cpu", "task_struct.cpu"))
        self.real_parent = o("task_struct.real_parent")
        self.ksp = o("task_struct.thread.ksp")
        self.signal = o("task_struct.signal") if types.has("task_struct.signal") else None
        self.thread_node = (
            o("task_struct.thread_node") if types.has("task_struct.thread_node") else None
        )
        self.thread_head = (
            o("signal_struct.thread_head") if types.has("signal_struct.thread_head") else None
        )
        self.thread_group = (
            o("task_struct.thread_group") if types.has("task_struct.thread_group") else None
        )
        start = [
            name
            for name in (
                "task_struct.start_boottime",
                "task_struct.real_start_time",
                "task_struct.start_time",
            )
            if types.has(name)
        ]
        self.start_time = o(start[0]) if start else None
        self.size = (
            max(
                self.start_time or 0,
                self.tasks,
                self.pid,
                self.tgid,
                self.comm + self.comm_len,
                self.stack,
                self.state,
                self.exit_state,
                self.flags,
                self.cpu,
                self.real_parent,
                self.ksp,
            )
            + 16
        )


def _u64(buf: bytes, off: int) -> int:
    return int(_U64.unpack_from(buf, off)[0])


def _u32(buf: bytes, off: int) -> int:
    return int(_U32.unpack_from(buf, off)[0])


def read_task(
    kernel: Kernel,
    address: int,
    found_by: str,
    layout: _Layout | None = None,
    running: dict[int, int] | None = None,
) -> Task:
    """Decode one ``task_struct``.

    Raises:
        DumpError: the task_struct is not readable.
    """
    lay = layout or _Layout(kernel)
    buf = kernel.read(address, lay.size)
    state = _u64(buf, lay.state) if lay.state_size == 8 else _u32(buf, lay.state)
    parent = _u64(buf, lay.real_parent)
    ppid: int | None = None
    if parent and parent != address:
        try:
            ppid = _u32(kernel.read(parent + lay.tgid, 4), 0)
        except DumpError:
            ppid = None
    elif parent == address:
        ppid = 0
    comm = buf[lay.comm : lay.comm + lay.comm_len].split(b"\0", 1)[0]
    if running is None:
        running = {c.current_task: c.number for c in kernel.cpus if c.current_task}
    return Task(
        address=address,
        pid=_u32(buf, lay.pid),
        tgid=_u32(buf, lay.tgid),
        ppid=ppid,
        comm=comm.decode("utf-8", "replace"),
        state=task_state_letter(state & 0xFFFFFFFF, _u32(buf, lay.exit_state)),
        state_raw=state,
        exit_state=_u32(buf, lay.exit_state),
        flags=_u32(buf, lay.flags),
        cpu=running.get(address),
        last_cpu=_u32(buf, lay.cpu),
        stack=_u64(buf, lay.stack),
        ksp=_u64(buf, lay.ksp),
        thread_size=kernel.thread_size,
        found_by=found_by,
        start_time=None if lay.start_time is None else _u64(buf, lay.start_time),
    )


def offsets_used(kernel: Kernel) -> list[tuple[str, int, str]]:
    """The struct members task discovery reads: (member, offset, source), for --verbose."""
    lay = _Layout(kernel)
    assert kernel.types is not None
    return [(name, kernel.types.offset(name), kernel.types.source_of(name)) for name in lay.used]


def pid_max(kernel: Kernel) -> int:
    """``pid_max`` of the dumped kernel when readable and plausible, else ``PID_MAX_LIMIT``."""
    address = kernel.symbols.address_of("pid_max") if kernel.symbols is not None else None
    if address is not None:
        try:
            value = _u32(kernel.read(address, 4), 0)
        except DumpError:
            value = 0
        if PID_MAX_MIN <= value <= PID_MAX_LIMIT:
            return value
    return PID_MAX_LIMIT


def task_bound(kernel: Kernel, lay: _Layout, limit: int, pids: int) -> int:
    """How many tasks the dump can hold: no more ``task_struct``s than its memory has room
    for, no more than pids below ``pid_max`` (plus one idle task per CPU), never above
    ``limit``."""
    size = kernel.types.sizes.get("task_struct", lay.size) if kernel.types else lay.size
    room = kernel.memory_size // max(size, lay.size)
    return max(1, min(limit, room, pids + len(kernel.cpus)))


class _Sanity:
    """What every ``task_struct`` of a kernel satisfies; a candidate that does not is a
    pointer into something else (a damaged or forged list), counted and left out."""

    def __init__(self, kernel: Kernel, lay: _Layout, pids: int) -> None:
        self.pids = pids
        self.thread_size = kernel.thread_size
        types = kernel.types
        self.size = types.sizes.get("task_struct", lay.size) if types else lay.size
        #: the tasks taken, by ``address // size``: task_structs do not overlap, so each
        #: bucket holds at most one and a candidate's neighbours are in three buckets
        self.accepted: dict[int, int] = {}
        self.failed = 0
        self.first: str | None = None

    def problem(self, task: Task) -> str | None:
        """Why ``task`` cannot be a task_struct, or None."""
        if task.pid >= self.pids or task.tgid >= self.pids:
            return f"pid {task.pid}/tgid {task.tgid} not below pid_max {self.pids}"
        if task.stack % self.thread_size:
            return f"stack 0x{task.stack:x} not aligned to THREAD_SIZE 0x{self.thread_size:x}"
        bucket = task.address // self.size
        for other in (self.accepted.get(bucket + d) for d in (-1, 0, 1)):
            if other is not None and abs(task.address - other) < self.size:
                return f"overlaps the task_struct at 0x{other:x}"
        return None

    def judge(self, task: Task) -> bool:
        """True (and remembered) if ``task`` passes; else counted."""
        problem = self.problem(task)
        if problem is None:
            self.accepted[task.address // self.size] = task.address
            return True
        self.failed += 1
        if self.first is None:
            self.first = f"0x{task.address:x} ({task.found_by}): {problem}"
        return False

    def warning(self) -> str | None:
        if not self.failed:
            return None
        return (
            f"{self.failed} task candidate(s) failed a task_struct's sanity checks and are not "
            f"listed (the task lists are damaged); first: {self.first}"
        )


def find_tasks(kernel: Kernel, limit: int = MAX_TASKS) -> TaskScan:
    """Find all tasks: the tasks list, each group's threads, CPUs' current and idle tasks.

    Every list walk shares one visited set; candidates are bounded by :func:`task_bound`
    and each must pass :class:`_Sanity` (a warning counts those that do not).

    Raises:
        DumpError: no type information or no ``init_task`` symbol.
    """
    lay = _Layout(kernel)
    if kernel.symbols is None:
        raise DumpError(
            "cannot find tasks without symbols: pass --map System.map or --vmlinux", kernel.path
        )
    init_task = kernel.symbols.require("init_task")
    scan = TaskScan()
    running = {c.current_task: c.number for c in kernel.cpus if c.current_task}
    pids = pid_max(kernel)
    limit = task_bound(kernel, lay, limit, pids)
    sanity = _Sanity(kernel, lay, pids)
    seen: set[int] = set()
    nodes: set[int] = set()  # list entries and heads of every walk
    candidates = [0]

    def add(address: int, found_by: str) -> Task | None:
        if address in seen or not address:
            return None
        seen.add(address)
        candidates[0] += 1
        try:
            task = read_task(kernel, address, found_by, lay, running)
        except DumpError as exc:
            scan.warnings.append(f"task 0x{address:x} ({found_by}) unreadable: {exc.message}")
            return None
        if not sanity.judge(task):
            return None
        scan.tasks.append(task)
        return task

    leaders = [init_task]
    add(init_task, "tasks list")
    for node in walk_list(
        kernel.space.read_u64,
        init_task + lay.tasks,
        "init_task.tasks",
        scan.warnings,
        limit,
        seen=nodes,
    ):
        leaders.append(node - lay.tasks)
        add(node - lay.tasks, "tasks list")
    for leader in leaders:
        if candidates[0] >= limit:
            scan.warnings.append(f"more than {limit} task candidates; stopped")
            break
        if sanity.accepted.get(leader // sanity.size) != leader:
            continue  # a candidate that is no task_struct has no threads to follow
        for thread in _threads(kernel, lay, leader, scan, limit - candidates[0], nodes):
            add(thread, "thread list")
    for cpu in kernel.cpus:
        if cpu.current_task:
            add(cpu.current_task, "lowcore")
    idle = kernel.symbols.address_of("idle_threads")
    if idle is not None:
        for cpu in kernel.cpus:
            if cpu.lowcore is None:
                continue
            try:
                percpu = (idle + cpu.lowcore.percpu_offset) & 0xFFFFFFFFFFFFFFFF
                add(kernel.space.read_u64(percpu), "idle_threads")
            except DumpError:
                pass
    warning = sanity.warning()
    if warning:
        scan.warnings.append(warning)
    return scan


def _threads(
    kernel: Kernel, lay: _Layout, leader: int, scan: TaskScan, limit: int, seen: set[int]
) -> Iterator[int]:
    if lay.signal is not None and lay.thread_head is not None and lay.thread_node is not None:
        try:
            signal = kernel.space.read_u64(leader + lay.signal)
        except DumpError:
            return
        if not signal:
            return
        for node in walk_list(
            kernel.space.read_u64,
            signal + lay.thread_head,
            f"threads of task 0x{leader:x}",
            scan.warnings,
            limit,
            seen=seen,
        ):
            yield node - lay.thread_node
    elif lay.thread_group is not None:
        for node in walk_list(
            kernel.space.read_u64,
            leader + lay.thread_group,
            f"thread group of task 0x{leader:x}",
            scan.warnings,
            limit,
            seen=seen,
        ):
            yield node - lay.thread_group


# -- one convention for every face (ps, bt, check, the TUI) ---------------------------------------
def cpu_column(task: Task) -> str:
    """The CPU column: the running CPU (``"1"``) of a running task, else the CPU it last ran
    on (``thread_info.cpu``) in parentheses (``"(1)"``): crash shows the latter unmarked,
    which reads as if the task were running there."""
    return str(task.cpu) if task.cpu is not None else f"({task.last_cpu})"


def comm_column(task: Task) -> str:
    """The command name, kernel threads and idle tasks in brackets (like ``ps``)."""
    return f"[{task.comm}]" if task.is_kthread or task.is_idle else task.comm


def task_order(task: Task) -> tuple[int, int]:
    """The one task order of every listing: by pid, idle tasks by CPU."""
    return (task.pid, task.cpu if task.cpu is not None else task.last_cpu)


def task_fields(task: Task) -> dict[str, object]:
    """A task's fields in every JSON output that names a task (``ps``, ``bt``, ``check``)."""
    return {
        "pid": task.pid,
        "tgid": task.tgid,
        "ppid": task.ppid,
        "comm": task.comm,
        "state": task.state,
        "cpu": task.cpu,
        "last_cpu": task.last_cpu,
        "cpu_column": cpu_column(task),
        "task": f"0x{task.address:x}",
        "stack": f"0x{task.stack:x}" if task.stack else None,
        "ksp": f"0x{task.ksp:x}",
        "kthread": task.is_kthread,
        "idle": task.is_idle,
        "start_time_ns": task.start_time,
    }
