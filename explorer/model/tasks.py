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

from explorer.model.kernel import Kernel
from explorer.model.lists import walk_list
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
        self.size = (
            max(
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
    )


def offsets_used(kernel: Kernel) -> list[tuple[str, int, str]]:
    """The struct members task discovery reads: (member, offset, source), for --verbose."""
    lay = _Layout(kernel)
    assert kernel.types is not None
    return [(name, kernel.types.offset(name), kernel.types.source_of(name)) for name in lay.used]


def find_tasks(kernel: Kernel, limit: int = MAX_TASKS) -> TaskScan:
    """Find all tasks: the tasks list, each group's threads, CPUs' current and idle tasks.

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
    seen: set[int] = set()

    def add(address: int, found_by: str) -> Task | None:
        if address in seen or not address:
            return None
        seen.add(address)
        try:
            task = read_task(kernel, address, found_by, lay, running)
        except DumpError as exc:
            scan.warnings.append(f"task 0x{address:x} ({found_by}) unreadable: {exc.message}")
            return None
        scan.tasks.append(task)
        return task

    leaders = [init_task]
    add(init_task, "tasks list")
    for node in walk_list(
        kernel.space.read_u64, init_task + lay.tasks, "init_task.tasks", scan.warnings, limit
    ):
        leaders.append(node - lay.tasks)
        add(node - lay.tasks, "tasks list")
    for leader in leaders:
        if len(scan.tasks) >= limit:
            break
        for thread in _threads(kernel, lay, leader, scan, limit):
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
    return scan


def _threads(
    kernel: Kernel, lay: _Layout, leader: int, scan: TaskScan, limit: int
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
        ):
            yield node - lay.thread_node
    elif lay.thread_group is not None:
        for node in walk_list(
            kernel.space.read_u64,
            leader + lay.thread_group,
            f"thread group of task 0x{leader:x}",
            scan.warnings,
            limit,
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
