"""``check DUMP... --cluster dask://HOST:PORT``: the per-dump work of
:func:`explorer.fleet.walk.check_dump` run by a Dask ``distributed`` scheduler's workers.

The workers open the dumps by path, where they lie (shared storage): nothing but the
paths goes out and only the compact per-task records come back. A worker's directory is not
the client's, so relative paths (dumps, --vmlinux, --map, --profile) are made absolute here,
on the client; the results name each dump as the user spelled it. Needs the optional extra
``backchain[cluster]`` (PyPI ``distributed``) here and on the workers.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from explorer.fleet.walk import CheckOptions, DumpResult, check_dump
from parsers.errors import DumpError


class ClusterError(DumpError):
    """The cluster cannot be used (address, missing package, unreachable scheduler)."""


def scheduler_address(url: str) -> str:
    """``dask://HOST:PORT`` (or ``tcp://HOST:PORT``) as the ``tcp://`` address Dask takes.

    Raises:
        ClusterError: not such an address.
    """
    for scheme in ("dask://", "tcp://"):
        if url.startswith(scheme):
            rest = url[len(scheme) :]
            host, sep, port = rest.rpartition(":")
            if sep and host and port.isdigit():
                return f"tcp://{rest}"
    raise ClusterError(f"not a Dask scheduler address (dask://HOST:PORT): {url}")


def client_paths(paths: Sequence[str], options: CheckOptions) -> tuple[list[str], CheckOptions]:
    """The dump paths and the options' file paths made absolute against this process's
    directory (the workers run elsewhere)."""

    def absolute(path: str | None) -> str | None:
        return None if path is None else os.path.abspath(os.path.expanduser(path))

    given = options.options
    files = replace(
        options,
        options=replace(
            given,
            vmlinux=absolute(given.vmlinux),
            system_map=absolute(given.system_map),
            profile=absolute(given.profile),
            source=absolute(given.source),
        ),
    )
    return [os.path.abspath(os.path.expanduser(p)) for p in paths], files


def check_on_cluster(
    url: str,
    paths: Sequence[str],
    options: CheckOptions,
    timeout: float = 30.0,
    progress: Callable[[DumpResult], None] | None = None,
) -> list[DumpResult]:
    """:func:`check_dump` of every path on the cluster's workers; results in input order.

    The dumps go out in batches (:func:`batch_sizes`), a task each. ``progress`` is called
    with each dump's result as it comes back (a batch's dumps together, batches in the order
    they finish). A batch whose worker dies is run again on another worker by the scheduler;
    one that kills its workers again and again (Dask's ``allowed-failures``) is split into
    single dumps, and a dump that still does so is reported with an error; so is each dump of
    a batch that failed on the worker for another reason (backchain missing there), and
    every dump left when no worker has been connected for ``timeout`` seconds: each dump is
    reported exactly once.

    Raises:
        ClusterError: ``distributed`` is not installed or the scheduler cannot be reached.
    """
    address = scheduler_address(url)
    try:
        distributed = import_distributed()
    except ImportError:
        raise ClusterError(
            "--cluster needs Dask distributed: pip install 'backchain[cluster]'"
        ) from None
    with _dask_errors_only():
        return _run(distributed, address, paths, options, timeout, progress)


def import_distributed() -> Any:
    """``import distributed`` as a command-line client needs it, in 17% fewer instructions
    (the import is most of the client's start, while the workers wait for the first dumps):
    its YAML configuration read by libyaml (PyYAML's C loader, the same safe YAML) and
    without jinja2, which Dask imports only to render HTML for notebooks (it falls back when
    jinja2 is missing); the cyclic garbage collector paused meanwhile, and what exists then
    frozen (:func:`gc.freeze`: left out of every later collection, the one at the process's
    exit too): the modules' objects live as long as the process, and each full collection
    went through all of them, for none to free (8% of the client's instructions). ``yaml``
    and ``jinja2`` are as they were once the import is done.

    Raises:
        ImportError: distributed is not installed.
    """
    if "distributed" in sys.modules:
        return sys.modules["distributed"]
    import yaml

    safe_load = yaml.safe_load
    if getattr(yaml, "__with_libyaml__", False):

        def c_safe_load(stream: Any) -> Any:
            return yaml.load(stream, Loader=yaml.CSafeLoader)

        yaml.safe_load = c_safe_load
    blocked = "jinja2" not in sys.modules
    if blocked:
        sys.modules["jinja2"] = None  # type: ignore[assignment]  # "import jinja2" fails
    collecting = gc.isenabled()
    gc.disable()  # a module's objects live on: a collection meanwhile would find nothing
    try:
        import distributed
    finally:
        gc.freeze()  # ... and so would every later one that went through them again
        if collecting:
            gc.enable()
        yaml.safe_load = safe_load
        if blocked and sys.modules.get("jinja2", 0) is None:
            del sys.modules["jinja2"]
    return distributed


def check_batch(paths: Sequence[str], options: CheckOptions) -> list[DumpResult]:
    """:func:`check_dump` of each path in turn: one Dask task for several dumps (a task has
    a fixed cost on the client, the scheduler and the worker; a dump is ~50 ms of work)."""
    return [check_dump(p, options) for p in paths]


def batch_sizes(count: int, threads: int) -> list[int]:
    """How many dumps each task of a run gets, largest first ("guided" scheduling): each
    batch takes a :data:`SHARE` of what is left per worker thread (at most :data:`MAX_BATCH`),
    so the first tasks amortize the per-task cost and the last ones, a dump or two each,
    keep every thread busy to the end."""
    sizes = []
    left = count
    while left > 0:
        size = max(1, min(MAX_BATCH, -(-left // (SHARE * max(threads, 1)))))
        sizes.append(size)
        left -= size
    return sizes


#: Each batch takes 1/(SHARE x worker threads) of the dumps left.
SHARE = 2
#: The most dumps in one task: a result comes back (and the progress moves) at least every
#: this many dumps per thread.
MAX_BATCH = 16


def _run(
    distributed: Any,
    address: str,
    paths: Sequence[str],
    options: CheckOptions,
    timeout: float,
    progress: Callable[[DumpResult], None] | None,
) -> list[DumpResult]:
    try:
        client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    absolute, options = client_paths(paths, options)
    results: dict[int, DumpResult] = {}

    def report(i: int, result: DumpResult) -> None:
        if i in results:  # a batch run again after its worker died came back twice
            return
        results[i] = replace(result, path=paths[i])
        if progress is not None:
            progress(results[i])

    try:
        run = _Batches(client, uuid.uuid4().hex, absolute, options)
        sizes = batch_sizes(len(absolute), sum(client.nthreads().values()))
        ends = list(itertools.accumulate(sizes))
        run.submit([range(end - size, end) for size, end in zip(sizes, ends, strict=True)])
        done = distributed.as_completed(run.futures, with_results=True, raise_errors=False)
        idle = _Idle(client, timeout)
        while not done.is_empty():
            batch = done.next_batch(block=False)
            for future, value in batch:
                for i, result in run.outcomes(future, value, done):
                    report(i, result)
            if batch:
                idle.reset()
            elif idle.expired():
                for future in run.futures:
                    future.cancel()
                for i, path in enumerate(absolute):
                    if i not in results:
                        report(i, DumpResult(path, error=idle.error(path)))
                break
            else:
                time.sleep(POLL)
    finally:
        client.close()
    return [results[i] for i in range(len(paths))]


class _Batches:
    """The tasks of one run, each a batch of dumps (a range of the input), keyed
    ``KEY_PREFIX-RUN-FIRST-LAST`` (this run's keys: a dump path may be walked again after it
    changed on disk)."""

    def __init__(self, client: Any, run: str, paths: list[str], options: CheckOptions) -> None:
        self.client = client
        self.run = run
        self.paths = paths
        self.options = options
        self.futures: list[Any] = []
        self.dumps: dict[str, range] = {}
        #: How many times each dump's result was lost and the dump sent again.
        self.lost: dict[int, int] = {}

    def submit(self, batches: Sequence[range], priority: int = 0, attempt: int = 0) -> list[Any]:
        """A task per batch, all in one message to the scheduler: Dask queues a large group
        of tasks without dependencies on itself and hands each worker thread the next one
        as it frees (the order given here, by the keys), where a task sent alone would go
        out to a worker at once. ``attempt`` > 0: a dump sent again, under a key of its own
        (``RUN`` + ``rN``)."""
        run = f"{self.run}r{attempt}" if attempt else self.run
        keys = [f"{KEY_PREFIX}-{run}-{b.start:06d}-{b.stop - 1:06d}" for b in batches]
        futures = self.client.map(
            check_batch,
            [[self.paths[i] for i in b] for b in batches],
            options=self.options,
            key=keys,
            priority=priority,
            pure=False,
        )
        self.dumps.update(zip(keys, batches, strict=True))
        self.futures += futures
        return list(futures)

    def outcomes(self, future: Any, value: Any, done: Any) -> list[tuple[int, DumpResult]]:
        """Each dump of a finished task with its result. A batch whose workers died (Dask's
        KilledWorker) is split, each of its dumps a task of its own added to ``done``, so
        that only a dump that kills its worker is reported so. A task that ended with
        neither a result nor an error (its result lost with the worker that held it) has
        its dumps sent again, each on its own, up to :data:`RESENT` times. Any other failure
        is each dump's error."""
        dumps = self.dumps[future.key]
        if (
            future.status == "finished"
            and isinstance(value, list)
            and len(value) == len(dumps)
            and all(isinstance(r, DumpResult) for r in value)
        ):
            return list(zip(dumps, value, strict=True))
        if len(dumps) > 1 and _killed(future.status, value):
            self._each_again(dumps, done)
            return []
        status = future.status
        lost = max(self.lost.get(i, 0) for i in dumps)
        if status not in ("finished", "error") and lost < RESENT:
            # Neither a result nor an error: the result was lost (the worker holding it died
            # before it was gathered, and the task was given up rather than run again).
            # Nothing here cancels a task: each dump goes out again, on its own.
            self.lost.update(dict.fromkeys(dumps, lost + 1))
            self._each_again(dumps, done, attempt=lost + 1)
            return []
        if status == "finished":  # not what check_batch returns (another backchain there)
            wrong = TypeError(f"a batch of {len(dumps)} dumps gave {type(value).__name__}")
            status, value = "error", (TypeError, wrong, None)
        return [(i, _outcome(self.paths[i], status, value)) for i in dumps]

    def _each_again(self, dumps: range, done: Any, attempt: int = 0) -> None:
        """Each of ``dumps`` sent again as a task of its own, ahead of the batches still
        queued, and added to ``done`` (the tasks waited for)."""
        for single in self.submit([range(i, i + 1) for i in dumps], priority=1, attempt=attempt):
            done.add(single)


def _killed(status: str, value: Any) -> bool:
    return (
        status == "error"
        and isinstance(value, tuple)
        and len(value) == 3
        and type(value[1]).__name__ == "KilledWorker"
    )


@contextlib.contextmanager
def _dask_errors_only() -> Iterator[None]:
    """Dask's own log records below ERROR kept off stderr meanwhile: they tell of what is
    handled here ("Couldn't gather 1 keys, rescheduling" when a worker holding a result
    died: the dump runs again) and would break the progress line and the one line per
    failed dump."""
    names = ["distributed"]
    names += [n for n in logging.root.manager.loggerDict if n.startswith("distributed.")]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.ERROR))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


#: The first part of every task key (the Dask dashboard groups tasks by it).
KEY_PREFIX = "check_dump"

#: How many times a dump whose result was lost on the cluster is sent again before it is
#: reported as cancelled there.
RESENT = 2

#: Seconds between looks at finished dumps while none is ready.
POLL = 0.02


def _outcome(path: str, status: str, value: Any) -> DumpResult:
    """A finished future's result, or the dump's error when it failed on the cluster."""
    if status == "finished" and isinstance(value, DumpResult):
        return value
    if status == "error" and isinstance(value, tuple) and len(value) == 3:
        exc = value[1]
        if type(exc).__name__ == "KilledWorker":
            return DumpResult(
                path,
                error=f"{path}: the Dask workers reading it died (the last one {_worker(exc)})",
            )
        said = next(iter(str(exc).splitlines()), "")
        return DumpResult(
            path, error=f"{path}: failed on a Dask worker ({type(exc).__name__}: {said})"
        )
    return DumpResult(path, error=f"{path}: cancelled on the Dask cluster")


def _worker(exc: BaseException) -> str:
    worker = getattr(exc, "last_worker", None)
    return str(getattr(worker, "address", worker) or "unknown")


class _Idle:
    """How long the scheduler has been without any worker (looked at once a second while no
    result comes back)."""

    def __init__(self, client: Any, timeout: float) -> None:
        self.client = client
        self.timeout = timeout
        self.since: float | None = None
        self.looked = 0.0

    def reset(self) -> None:
        self.since = None

    def expired(self) -> bool:
        now = time.monotonic()
        if now - self.looked < 1.0:
            return self.since is not None and now - self.since >= self.timeout
        self.looked = now
        if self.client.nthreads():
            self.since = None
        elif self.since is None:
            self.since = now
        return self.since is not None and now - self.since >= self.timeout

    def error(self, path: str) -> str:
        return (
            f"{path}: not checked: no Dask worker connected to {self.client.scheduler.address} "
            f"for {self.timeout:g} s"
        )
