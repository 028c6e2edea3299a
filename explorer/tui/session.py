"""What the explorer holds about one open dump: the kernel, its tasks and their verdicts.

Plain Python without Textual: the app's thread workers call :meth:`Session.open` and
:meth:`Session.check`, screens read the results. Nothing here decodes bytes; it asks the
model (``explorer.model.kernel``, ``explorer.walk.analysis``) and keeps what it answered.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from explorer.model.kernel import Cpu, Kernel, Options
from explorer.model.opening import open_kernel
from explorer.model.tasks import Task, TaskScan, find_tasks
from explorer.reports.info import info_facts
from explorer.walk.analysis import TaskAnalysis, analyse_task, unwind_context
from explorer.walk.unwind import ERAS, UnwindContext, Walk
from parsers.dumps.memory import LOWCORE_SIZE
from parsers.errors import DumpError
from parsers.s390.layouts import LowcoreField
from parsers.s390.records import LowcoreValue, lowcore_values

if TYPE_CHECKING:
    from explorer.debuginfo.cfi import Agreement
    from explorer.debuginfo.lines import FrameLines, FrameSource
    from explorer.walk.unwind import Step

Progress = Callable[[int, int], None]

_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[^\s/:()]+)+/([^\s/:()]+)")


def short_paths(text: str) -> str:
    """``text`` with every absolute path cut to its file name (stable across machines)."""
    return _PATH.sub(r"\1", text)


def dump_label(path: str) -> str:
    """The dump as the UI names it: ``folder/file`` (never an absolute path)."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.parent.name else p.name


@dataclass(frozen=True)
class TaskRow:
    """One task's verdict as the overview lists it.

    Attributes:
        analysis: the walk and verdict (``detailed=False``: no per-step checks).
        functions: symbol names of the frames, innermost first (``0x…`` when unknown).
    """

    analysis: TaskAnalysis
    functions: tuple[str, ...]

    @property
    def task(self) -> Task:
        """The task."""
        return self.analysis.task

    @property
    def key(self) -> str:
        """A unique row key (pid 0 exists once per CPU, so the task address)."""
        return f"{self.task.address:x}"

    @property
    def reliable(self) -> bool:
        """The verdict."""
        return self.analysis.verdict.reliable

    @property
    def label(self) -> str:
        """``reliable`` or the failing rule (``unwind_error/<kind>``)."""
        return self.analysis.verdict.label

    @property
    def top(self) -> str:
        """The innermost function, or how the walk ended when there is none."""
        if self.functions:
            return self.functions[0]
        return f"({self.analysis.walk.end.kind})"

    def matches(self, words: list[str], verdict: bool = True) -> bool:
        """Every word matches pid, comm, a function on the stack or the verdict.

        A word may be prefixed: ``pid:``, ``comm:``, ``fn:``, ``rule:``, ``cpu:``. With
        ``verdict`` False (exercise mode) the verdict matches nothing.
        """
        t = self.task
        for word in words:
            key, _, value = word.partition(":") if ":" in word else ("", "", word)
            value = value.lower()
            fields = {
                "pid": [str(t.pid)],
                "comm": [t.comm.lower()],
                "fn": [f.lower() for f in self.functions],
                "rule": [self.label.lower()] if verdict else [],
                "cpu": [] if self.analysis.cpu is None else [str(self.analysis.cpu)],
            }
            if key in fields:
                hay = fields[key]
                exact = key in ("pid", "cpu")
                if not any(value == h if exact else value in h for h in hay):
                    return False
            elif not any(value in h for hs in fields.values() for h in hs):
                return False
        return True


@dataclass(frozen=True)
class LowcoreRow:
    """One decoded lowcore field (arrays give one row per element)."""

    offset: int
    name: str
    kind: str
    value: LowcoreValue
    meaning: str


#: Dumps opened before the explorer started (:func:`preopen`), by path, options and the
#: file's identity.
_PREOPENED: dict[tuple[object, ...], Session] = {}


def _identity(path: str, options: Options) -> tuple[object, ...]:
    """What makes an open dump the same one: the path as given, the options, and the
    file's device, inode, size and modification time (a rewritten file is another dump)."""
    try:
        st = os.stat(path)
    except OSError:
        return (path, options)
    return (path, options, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def preopen(path: str, options: Options) -> Session:
    """Open a dump now, for explorers this process forks later (``backchain serve``'s
    zygote): their :meth:`Session.open` of the same file and options returns it, and they
    share its memory with each other until they change it. Every task is judged now too
    (:meth:`Session.check_every`): each explorer's overview would judge them all alike."""
    session = Session.open(path, options)
    _ = session.transition  # read now, once, as the overview's load worker does
    session.check_every()
    _PREOPENED[_identity(path, options)] = session
    return session


def preopened(path: str, options: Options) -> Session | None:
    """The session :func:`preopen` opened for this file and options, if it did."""
    return _PREOPENED.get(_identity(path, options))


class Session:
    """One open dump and everything the explorer learnt about it.

    Args:
        kernel: the opened kernel.
        scan: its tasks.
    """

    def __init__(self, kernel: Kernel, scan: TaskScan) -> None:
        self.kernel = kernel
        self.scan = scan
        self.label = dump_label(kernel.path)
        self.facts: dict[str, Any] = info_facts(kernel)
        self.era = kernel.options.era or unwind_context(kernel).era
        self._ctx: dict[str, UnwindContext] = {}
        self._detail: dict[tuple[int, str], TaskAnalysis] = {}
        self._cfi: dict[tuple[int, str], Agreement | str] = {}
        self._rows: dict[str, tuple[TaskRow, ...]] = {}
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str, options: Options, progress: Progress | None = None) -> Session:
        """Open a dump and find its tasks (slow: run in a thread worker); a dump this
        process opened ahead (:func:`preopen`) is not opened again.

        Raises:
            DumpError: the dump or a named companion file cannot be used.
        """
        ahead = preopened(path, options)
        if ahead is not None:
            return ahead
        kernel = open_kernel(path, options, progress=progress)
        return cls(kernel, find_tasks(kernel))

    # -- analysis -----------------------------------------------------------------------------
    @property
    def eras(self) -> tuple[str, ...]:
        """The unwinder rule sets the explorer can apply."""
        return ERAS

    def context(self, era: str | None = None) -> UnwindContext:
        """The unwinder context of ``era`` (default: the session's)."""
        era = era or self.era
        with self._lock:
            if era not in self._ctx:
                self._ctx[era] = unwind_context(self.kernel, era)
            return self._ctx[era]

    def check(self, task: Task, era: str | None = None) -> TaskRow:
        """A task's verdict for the overview (``detailed=False``: fast)."""
        a = analyse_task(self.kernel, task, self.context(era), detailed=False)
        return TaskRow(a, self.functions(a.walk))

    def check_every(self, era: str | None = None) -> tuple[TaskRow, ...] | None:
        """Every task's :meth:`check` under ``era`` (default: the session's), in task
        order, kept for :meth:`checked`; None, and nothing kept, when a task cannot be
        judged (the overview's worker then says which, as it does for any dump)."""
        era = era or self.era
        try:
            rows = tuple(self.check(task, era) for task in self.tasks)
        except Exception:
            return None
        self._rows[era] = rows
        return rows

    def checked(self, era: str) -> tuple[TaskRow, ...] | None:
        """Every task's verdict under ``era`` when :meth:`check_every` judged them ahead."""
        return self._rows.get(era)

    def detail(self, task: Task) -> TaskAnalysis:
        """A task's walk with every check of every step (cached per era)."""
        key = (task.address, self.era)
        if key not in self._detail:
            self._detail[key] = analyse_task(self.kernel, task, self.context(), detailed=True)
        return self._detail[key]

    @cached_property
    def transition(self) -> Any:
        """The livepatch transition in progress (explorer.livepatch.watch.Transition), None
        when there is none or its state cannot be read ('backchain klp' says why)."""
        from explorer.livepatch.watch import Transition

        try:
            return Transition.of(self.kernel, self.scan)
        except DumpError:
            return None

    def blocks_livepatch(self, a: TaskAnalysis) -> bool:
        """Whether ``a``'s task blocks the livepatch transition in progress."""
        transition = self.transition
        decision = transition.decide(a) if transition is not None else None
        return decision is not None and decision.blocks

    def livepatch_line(self, a: TaskAnalysis) -> str | None:
        """While a transition is in progress: the kernel's decision for ``a``'s task."""
        transition = self.transition
        if transition is None:
            return None
        from explorer.livepatch.report import task_line

        line = task_line(transition.state, a.task, transition.decide(a))
        return line.removeprefix("livepatch: ")

    def functions(self, walk: Walk) -> tuple[str, ...]:
        """Function names of a walk's frames, innermost first (a loaded module's from its
        own symbols, as the kernel's Call Trace names them; ``0x…`` when unknown)."""
        out = []
        for s in walk.steps:
            sym = self.kernel.lookup_symbol(s.ip)
            out.append(sym.name if sym is not None else f"0x{s.ip:x}")
        return tuple(out)

    @cached_property
    def lines(self) -> FrameSource:
        """Source lines of frames from the vmlinux's DWARF (``--vmlinux``, ``--source``)."""
        from explorer.debuginfo.lines import FrameSource

        return FrameSource.open(self.kernel, self.kernel.options.source)

    def frame_lines(self, step: Step) -> FrameLines | None:
        """Function, source line and inline functions of a frame (None without DWARF)."""
        return self.lines.for_step(step) if self.lines.available else None

    def cfi(self, a: TaskAnalysis) -> Agreement | str:
        """The DWARF CFI unwind of ``a``'s stack beside its back chain, paired frame by frame
        and each difference explained as ``bt --cfi`` does it
        (:func:`explorer.reports.cfiexplain.explain`); or, in words, why there is none (no
        -dbg vmlinux, no ``.debug_frame``, no frame to start from)."""
        from explorer.debuginfo.cfi import cfi_for_walk, debug_frame_of
        from explorer.reports.cfiexplain import explain

        key = (a.task.address, self.era)
        if key in self._cfi:
            return self._cfi[key]
        found: Agreement | str
        try:
            table = debug_frame_of(self.kernel)
            cfi = None if table is None else cfi_for_walk(self.kernel, table, a.walk)
            explained = (
                None if table is None or cfi is None else explain(self.kernel, table, a.walk, cfi)
            )
        except DumpError as exc:
            found = f"no CFI: {short_paths(str(exc))}"
        else:
            if table is None:
                found = (
                    "no CFI: it needs the kernel's -dbg vmlinux (its .debug_frame); "
                    "open the dump with --vmlinux FILE"
                )
            elif cfi is None:
                found = "no CFI: the walk has no frame to start from"
            else:
                assert explained is not None
                found = explained  # each difference explained, as bt --cfi prints it
        self._cfi[key] = found
        return found

    def symbolize(self, address: int) -> str | None:
        """``name+0xoff/0xsize`` or None."""
        return self.kernel.symbolize(address)

    def text_symbol(self, address: int) -> str | None:
        """The symbol of ``address`` if it is kernel text (for annotating raw words)."""
        syms = self.kernel.symbols
        if syms is None or not syms.is_text(address):
            return None
        return self.kernel.symbolize(address)

    def resolve(self, text: str) -> int | None:
        """An address typed by a user: hex (with or without 0x) or a symbol (``name+0xoff``)."""
        text = text.strip()
        if not text:
            return None
        name, plus, off = text.partition("+")
        syms = self.kernel.symbols
        if syms is not None:
            base = syms.address_of(name.strip())
            if base is not None:
                try:
                    return base + (int(off, 0) if plus else 0)
                except ValueError:
                    return None
        try:
            return int(text, 16)
        except ValueError:
            return None

    # -- tasks and CPUs ------------------------------------------------------------------------
    @property
    def tasks(self) -> list[Task]:
        """Every task found."""
        return self.scan.tasks

    def task_at(self, address: int) -> Task | None:
        """The task whose ``task_struct`` is at ``address``."""
        return self.scan.by_address(address)

    def cpu(self, number: int) -> Cpu | None:
        """CPU ``number``."""
        return next((c for c in self.kernel.cpus if c.number == number), None)

    def lowcore(self, cpu: Cpu) -> list[LowcoreRow]:
        """Every lowcore field of ``cpu`` decoded, in offset order.

        Raises:
            DumpError: no prefix, or the lowcore is not in the dump.
        """
        prefix = cpu.registers.prefix
        if prefix is None:
            raise DumpError(f"CPU {cpu.number} has no prefix register note", self.kernel.path)
        layout = self.kernel.lowcore_fields
        values = lowcore_values(self.kernel.dump.read(prefix, LOWCORE_SIZE), layout)
        fields: dict[str, LowcoreField] = {f.name: f for f in layout.fields}
        rows: list[LowcoreRow] = []
        for name, value in values.items():
            f = fields[name]
            if isinstance(value, tuple):
                step = f.size // max(len(value), 1)
                for i, item in enumerate(value):
                    meaning = f.meaning if i == 0 else ""
                    rows.append(
                        LowcoreRow(f.offset + i * step, f"{name}[{i}]", f.kind, item, meaning)
                    )
            else:
                rows.append(LowcoreRow(f.offset, name, f.kind, value, f.meaning))
        return rows

    def close(self) -> None:
        """Release the dump (and the vmlinux's DWARF, if it was opened)."""
        if "lines" in self.__dict__:
            self.lines.close()
        self.kernel.close()
