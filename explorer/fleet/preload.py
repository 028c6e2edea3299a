"""A Dask preload for the processes of a backchain cluster:

    dask scheduler ... --preload explorer.fleet.preload
    dask worker ... --preload explorer.fleet.preload

A worker imports backchain's checking code once, when it starts (0.4 s of CPU a first dump
would pay otherwise), and runs without Dask's statistical profiler of its tasks: it samples
the running task's stack every 10 ms, which costs a dump's walk a third more CPU (the
walk's stacks are deep, and each sample takes the GIL from it). Both kinds of process look
at their own health less often (event loop ticks every 0.5 s instead of 20 ms, resource
samples every 2 s instead of 0.5 s, a worker's memory every second instead of every 0.1 s):
on a machine whose cores do the checking, the idle processes stay out of their way.

Dask imports this module while it builds the server (before a worker reads its profiler and
memory settings) and calls :func:`dask_setup` once the server exists.
"""

from __future__ import annotations

from typing import Any

import dask

dask.config.set(
    {
        "distributed.worker.profile.enabled": False,
        "distributed.worker.memory.monitor-interval": "1s",
    }
)

#: Milliseconds between runs of the servers' own periodic checks (Dask's names), at least.
INTERVALS = {"tick": 500, "monitor": 2000}

#: What :func:`explorer.fleet.walk.check_dump` imports when it first runs.
CHECKING = (
    "explorer.fleet.cluster",
    "explorer.model.opening",
    "explorer.model.tasks",
    "explorer.model.modules",
    "explorer.walk.analysis",
    "explorer.walk.summary",
    "zstandard",
)


def dask_setup(server: Any) -> None:
    """Slow the server's own periodic checks; on a worker, import the checking code."""
    import importlib

    callbacks = getattr(server, "periodic_callbacks", {})
    for name, ms in INTERVALS.items():
        callback = callbacks.get(name)
        if callback is not None:
            callback.callback_time = max(callback.callback_time, ms)
    if hasattr(server, "executor"):  # a worker (a scheduler runs no tasks)
        for module in CHECKING:
            importlib.import_module(module)
