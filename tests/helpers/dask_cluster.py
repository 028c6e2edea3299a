"""A real Dask cluster on the loopback: ``dask scheduler`` and ``dask worker`` processes, as
the README tells a user to start them across machines, here on 127.0.0.1 with ports the
kernel picks. Every process is ours (its own session), waited for with a deadline and ended
by its own pid when the block ends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

#: Seconds a process may take to start (import distributed, bind, register) on a loaded
#: 2-core machine.
START_SECONDS = 120.0
#: A scheduler left behind (the test process killed) exits after this long without work;
#: a worker after this long without its scheduler.
ORPHAN_SECONDS = 600


#: What the README's commands give ``dask scheduler`` and ``dask worker``.
PRELOAD = ("--preload", "explorer.fleet.preload")


def dask_command() -> Path:
    """The ``dask`` command of this interpreter's environment (installed with distributed)."""
    return Path(sys.executable).parent / "dask"


@dataclass
class DaskCluster:
    """A running scheduler (``address``, ``tcp://127.0.0.1:PORT``) and its workers."""

    folder: Path
    address: str = ""
    #: ``--preload`` options of every process (``--preload explorer.fleet.preload`` as the
    #: README starts them).
    preload: tuple[str, ...] = PRELOAD
    scheduler: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The address as ``backchain check --cluster`` takes it."""
        return "dask://" + self.address.removeprefix("tcp://")

    def log(self, name: str) -> str:
        """What a process (``scheduler``, ``worker-0``, ...) wrote, for a failure message."""
        try:
            return (self.folder / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""

    def start_worker(self, nanny: bool = False) -> subprocess.Popen[bytes]:
        """One ``dask worker`` process of one thread, without a nanny (so that killing its
        pid kills the worker, as a machine that goes away), or with one (a worker that dies
        is started again, as ``--nworkers`` does)."""
        name = f"worker-{len(self.workers)}"
        proc = _spawn(
            [
                str(dask_command()),
                "worker",
                self.address,
                "--name",
                name,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--nanny" if nanny else "--no-nanny",
                "--no-dashboard",
                "--death-timeout",
                str(ORPHAN_SECONDS),
                "--local-directory",
                str(self.folder / name),
                *self.preload,
            ],
            self.folder / f"{name}.log",
        )
        self.workers.append(proc)
        return proc

    def worker_pids(self, count: int) -> dict[str, int]:
        """Wait until ``count`` workers are registered: worker address -> pid."""
        from distributed import Client

        with Client(self.address, timeout=START_SECONDS) as client:
            client.wait_for_workers(count, timeout=START_SECONDS)
            return {addr: int(pid) for addr, pid in client.run(os.getpid).items()}


@contextlib.contextmanager
def dask_cluster(
    folder: Path,
    workers: int,
    preload: tuple[str, ...] = PRELOAD,
    nanny: bool = False,
    scheduler_env: dict[str, str] | None = None,
) -> Iterator[DaskCluster]:
    """``dask scheduler`` on 127.0.0.1 (a free port, with ``scheduler_env`` added to its
    environment: Dask's settings) and ``workers`` ``dask worker`` processes registered with
    it; both with ``preload`` (backchain's, as the README starts them). All ended when the
    block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    cluster = DaskCluster(folder, preload=preload)
    info = folder / "scheduler.json"
    try:
        cluster.scheduler = _spawn(
            [
                str(dask_command()),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(info),
                "--idle-timeout",
                str(ORPHAN_SECONDS),
                *cluster.preload,
            ],
            folder / "scheduler.log",
            env=scheduler_env,
        )
        deadline = time.monotonic() + START_SECONDS
        while not cluster.address:
            if cluster.scheduler.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dask scheduler did not start:\n{cluster.log('scheduler')}")
            with contextlib.suppress(OSError, ValueError, KeyError):
                cluster.address = json.loads(info.read_text())["address"]
            time.sleep(0.1)
        for _ in range(workers):
            cluster.start_worker(nanny)
        if workers:
            cluster.worker_pids(workers)
        yield cluster
    finally:
        for proc in [*cluster.workers, cluster.scheduler]:
            if proc is not None:
                stop(proc)


def _spawn(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            argv,
            env={**os.environ, **env} if env else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,  # its own process group: ended with it, nothing else
        )


def stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """End one of our processes (and its group, its own session): SIGTERM, then SIGKILL.
    One already gone is left alone (its pid may be another's by now)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(grace)


#: The bundled real dumps the fleet copies are made of.
SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "real"


def fleet_copies(folder: Path, count: int = 100) -> list[Path]:
    """``count`` dumps under distinct names (``007-bpo12-6.12-busy.vmcore.zst``), the bundled
    samples in turn: hard links to them (symlinks where the file system refuses a link),
    so a hundred dumps take no room. Made again only when missing."""
    samples = sorted(SAMPLES.glob("*/vmcore.zst"))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        source = samples[i % len(samples)]
        copy = folder / f"{i:03d}-{source.parent.name}.vmcore.zst"
        if not copy.exists():
            try:
                os.link(source, copy)
            except OSError:
                copy.symlink_to(source)
        out.append(copy)
    return out
