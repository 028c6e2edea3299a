"""``check DUMP... --cluster dask://HOST:PORT``: the per-dump work of
:func:`explorer.fleet.walk.check_dump` run by a Dask ``distributed`` scheduler's workers.

The workers open the dumps by path, where they lie (shared storage): nothing but the
paths goes out and only the compact per-task records come back. A worker's directory is not
the client's, so relative paths (dumps, --vmlinux, --map, --profile) are made absolute here,
on the client; the results name each dump as the user spelled it. Needs the optional extra
``backchain[cluster]`` (PyPI ``distributed``) here and on the workers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace

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
    url: str, paths: Sequence[str], options: CheckOptions, timeout: float = 30.0
) -> list[DumpResult]:
    """:func:`check_dump` of every path on the cluster's workers; results in input order.

    Raises:
        ClusterError: ``distributed`` is not installed or the scheduler cannot be reached.
    """
    address = scheduler_address(url)
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError(
            "--cluster needs Dask distributed: pip install 'backchain[cluster]'"
        ) from None
    try:
        client = Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    absolute, options = client_paths(paths, options)
    try:
        # pure=False: a dump path may be walked again after it changed on disk.
        futures = client.map(check_dump, absolute, options=options, pure=False)
        results = list(client.gather(futures))
    finally:
        client.close()
    return [replace(r, path=given) for r, given in zip(results, paths, strict=True)]
