"""A Dask worker preload (``--preload /path/to/dump_killer.py``) that makes any dump whose
file name holds :data:`MARK` kill the worker reading it (``os._exit``), as a reader that
crashes its process on one dump would: tests/test_cluster.py checks that only that dump is
reported so, whatever batch it went out in."""

from __future__ import annotations

import os
from typing import Any

import explorer.fleet.cluster
from explorer.fleet.walk import check_dump as _check_dump

MARK = "kills-its-worker"


def _killing_check_dump(path: str, options: Any) -> Any:
    if MARK in os.path.basename(path):
        os._exit(70)
    return _check_dump(path, options)


# Dask imports a preload file again in each worker process a nanny starts: the original
# comes from explorer.fleet.walk, never patched.
explorer.fleet.cluster.check_dump = _killing_check_dump  # type: ignore[assignment]
