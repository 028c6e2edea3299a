"""One dump's outcome as plain, picklable records: what a worker process (or a Dask
worker) sends back, without frames or kernel objects."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from explorer.model.options import Options

if TYPE_CHECKING:
    from explorer.walk.summary import TaskVerdict


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """One task's verdict and stack (function names, innermost first).

    Attributes:
        verdict: ``reliable``, the failing rule or ``unwind_error/<kind>``.
        frame: the failing frame's index, None when reliable.
        sleeping_on: the first of ``--functions`` on a reliable stack, if any.
    """

    pid: int
    comm: str
    state: str
    cpu: int | None
    reliable: bool
    verdict: str
    frame: int | None
    stack: tuple[str, ...]
    sleeping_on: str | None
    livepatch: str
    #: Fork time in ns since boot (``task_struct.start_boottime``), None when unknown.
    start_time: int | None = None
    last_cpu: int | None = None

    @property
    def blocks(self) -> bool:
        """True if this task keeps a livepatch transition from completing."""
        return not self.reliable or self.sleeping_on is not None

    @property
    def key(self) -> tuple[int, str]:
        """Where to look for this task in another dump: the pid (and the name for the idle
        tasks, all pid 0: ``swapper/N``, which is current on CPU N only while it idles)."""
        return (self.pid, self.comm if self.pid == 0 else "")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its values alone, rebuilt by :func:`_task_outcome`: a fleet's results
        cross a process (``--jobs``) or the network (``--cluster``) as thousands of these,
        and a frozen dataclass's own pickling (state gathered and set again field by field,
        in Python) cost the worker and the receiver ~0.6 ms each per dump, 3x this."""
        return (_task_outcome, _OUTCOME_VALUES(self))


#: A TaskOutcome's field values, in order.
_OUTCOME_VALUES = attrgetter(*(f.name for f in fields(TaskOutcome)))
#: The slots' own setters (a frozen dataclass refuses ``setattr``), in field order.
_OUTCOME_SETTERS = tuple(getattr(TaskOutcome, f.name).__set__ for f in fields(TaskOutcome))


def _task_outcome(*values: Any) -> TaskOutcome:
    """A pickled :class:`TaskOutcome` again, from its field values in order."""
    outcome = object.__new__(TaskOutcome)
    for set_slot, value in zip(_OUTCOME_SETTERS, values, strict=True):
        set_slot(outcome, value)
    return outcome


@dataclass(frozen=True, slots=True)
class DumpResult:
    """What ``check`` found in one dump (``error`` set, no tasks, when it could not be read)."""

    path: str
    release: str | None = None
    #: VMCOREINFO ``BUILD-ID`` of the dumped kernel.
    build_id: str | None = None
    era: str | None = None
    tasks: tuple[TaskOutcome, ...] = ()
    warnings: tuple[str, ...] = field(default=())
    error: str | None = None
    forced: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class CheckOptions:
    """The ``check`` options every dump of a fleet shares (picklable).

    Attributes:
        options: the symbol/type options each dump is opened with.
        functions: functions a livepatch would replace (``--functions``).
    """

    options: Options = field(default_factory=Options)
    functions: tuple[str, ...] = ()


def check_dump(path: str, options: CheckOptions) -> DumpResult:
    """Open ``path``, walk and judge every task; a dump that cannot be read gives a result
    with ``error`` (one line, as ``check`` would print it) instead of raising."""
    from explorer.model.opening import open_kernel
    from explorer.model.tasks import find_tasks
    from explorer.walk.analysis import analyse_all, unwind_context
    from explorer.walk.summary import summarizer
    from parsers.errors import DumpError

    try:
        kernel = open_kernel(path, options.options)
        try:
            ctx = unwind_context(kernel)
            scan = find_tasks(kernel)
            summarize = summarizer(kernel)
            rows = analyse_all(
                kernel, scan.tasks, ctx, options.functions, keep=lambda a: _row(summarize(a))
            )
            return DumpResult(
                path,
                kernel.release,
                (kernel.vmcoreinfo.get("BUILD-ID") or None) if kernel.vmcoreinfo else None,
                ctx.era,
                tuple(rows),
                tuple(kernel.warnings) + tuple(scan.warnings),
                forced=tuple(kernel.forced),
            )
        finally:
            kernel.close()
    except DumpError as exc:
        return DumpResult(path, error=str(exc))
    except OSError as exc:  # a read no reader turned into a DumpError
        return DumpResult(path, error=f"{path}: {exc.strerror or exc}")
    except Exception as exc:  # a fleet reports each dump's failure, then goes on
        return DumpResult(
            path, error=f"{path}: internal error reading it ({type(exc).__name__}: {exc})"
        )


def _row(v: TaskVerdict) -> TaskOutcome:
    t = v.task
    return TaskOutcome(
        t.pid,
        t.comm,
        t.state,
        v.cpu,
        v.verdict.reliable,
        v.verdict.label,
        v.verdict.frame,
        v.stack,
        v.sleeping_on,
        v.livepatch,
        t.start_time,
        t.last_cpu,
    )


def check_many(
    paths: Sequence[str],
    options: CheckOptions,
    jobs: int = 1,
    progress: Callable[[DumpResult], None] | None = None,
) -> list[DumpResult]:
    """:func:`check_dump` of every path, in ``jobs`` processes; results in input order.
    ``progress`` is called with each dump's result as it finishes."""
    results: dict[int, DumpResult] = {}

    def report(i: int, result: DumpResult) -> None:
        results[i] = result
        if progress is not None:
            progress(result)

    if jobs <= 1 or len(paths) <= 1:
        for i, p in enumerate(paths):
            report(i, check_dump(p, options))
        return [results[i] for i in range(len(paths))]
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=min(jobs, len(paths))) as pool:
        futures = {pool.submit(check_dump, p, options): i for i, p in enumerate(paths)}
        for future in as_completed(futures):
            try:
                report(futures[future], future.result())
            except BrokenProcessPool:  # a worker died (a signal): it breaks the whole pool
                pass
    # each dump the broken pool left undone again alone, so one that kills its process
    # is the only one reported for it
    for i, p in enumerate(paths):
        if i not in results:
            report(i, _alone(p, options))
    return [results[i] for i in range(len(paths))]


def _alone(path: str, options: CheckOptions) -> DumpResult:
    """:func:`check_dump` in a process of its own; its death is this dump's error."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    with ProcessPoolExecutor(max_workers=1) as pool:
        try:
            return pool.submit(check_dump, path, options).result()
        except BrokenProcessPool:
            return DumpResult(path, error=f"{path}: the process reading it died (a signal)")
