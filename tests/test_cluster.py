"""``check DUMP... --cluster dask://HOST:PORT`` on Dask clusters started here on the loopback:
``LocalCluster`` for the options, and real ``dask scheduler`` / ``dask worker`` processes (as
the README starts them across machines) for 100 dumps, an unreadable one, and a worker killed
mid-run. Truth: the same command in one process (``--jobs 1``), itself checked against the
kernel's own Call Traces (tests/test_fleet.py)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from explorer.cli import main
from explorer.fleet.cluster import (
    KEY_PREFIX,
    MAX_BATCH,
    ClusterError,
    batch_sizes,
    check_batch,
    scheduler_address,
)
from explorer.fleet.walk import DumpResult
from tests.helpers import dump_killer
from tests.helpers.dask_cluster import PRELOAD, dask_cluster, fleet_copies, stop
from tests.helpers.oracles import dask_distributed, needs

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples" / "real"
THREE = ("bpo12-6.12-busy", "bpo12-6.12-nmi", "deb12-6.1-idle")


def _local_cluster(distributed: Any, workers: int) -> Any:
    """A Dask cluster of ``workers`` processes on the loopback (no dashboard)."""
    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )


def _url(cluster: Any) -> str:
    return f"dask://127.0.0.1:{cluster.scheduler_address.rsplit(':', 1)[1]}"


def test_cluster_gives_the_json_of_jobs_2(capsys: pytest.CaptureFixture[str]) -> None:
    distributed = dask_distributed()
    paths = [str(SAMPLES / n / "vmcore.zst") for n in THREE]
    assert main(["check", *paths, "--jobs", "2", "--json"]) == 0
    local = capsys.readouterr().out
    with _local_cluster(distributed, 2) as cluster:
        url = _url(cluster)
        assert main(["check", *paths, "--cluster", url, "--json"]) == 0
        remote = capsys.readouterr().out
        with distributed.Client(cluster) as client:
            workers = client.scheduler_info()["workers"]
    assert len(workers) == 2
    assert all(w.startswith("tcp://127.0.0.1:") for w in workers)
    assert remote == local
    assert len(json.loads(remote)["dumps"]) == 3


def test_cluster_address_and_unreachable_scheduler(capsys: pytest.CaptureFixture[str]) -> None:
    assert scheduler_address("dask://10.0.0.5:8786") == "tcp://10.0.0.5:8786"
    with pytest.raises(ClusterError):
        scheduler_address("http://10.0.0.5:8786")
    dask_distributed()
    dump = str(SAMPLES / THREE[0] / "vmcore.zst")
    # Nothing listens on port 9 of the loopback: one line, exit 2.
    status = main(["check", dump, "--cluster", "dask://127.0.0.1:9", "--cluster-timeout", "2"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "127.0.0.1:9" in err


def test_what_fails_on_the_cluster_is_that_dumps_one_line_error() -> None:
    """A dump whose workers all died (Dask's KilledWorker after allowed-failures), one that
    failed on the worker (backchain missing there), one cancelled: each the dump's error."""
    from explorer.fleet.cluster import _outcome

    distributed = dask_distributed()
    gone = type("Worker", (), {"address": "tcp://10.0.0.7:40000"})()
    killed = distributed.KilledWorker("check_dump-x-3", gone, 3)
    missing = ModuleNotFoundError("No module named 'explorer'\nsecond line")
    cases = {
        "the Dask workers reading it died (the last one tcp://10.0.0.7:40000)": (
            "error",
            (type(killed), killed, None),
        ),
        "failed on a Dask worker (ModuleNotFoundError: No module named 'explorer')": (
            "error",
            (type(missing), missing, None),
        ),
        "cancelled on the Dask cluster": ("cancelled", None),
    }
    for said, (status, value) in cases.items():
        result = _outcome("/d/a.vmcore", status, value)
        assert result.error == f"/d/a.vmcore: {said}" and not result.tasks


def test_cluster_resolves_relative_paths_on_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The workers start in another directory than the client's: relative dump and --map
    paths are made absolute before they go out; the output names them as typed."""
    distributed = dask_distributed()
    elsewhere = tmp_path / "workers"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with _local_cluster(distributed, 1) as cluster:
        with distributed.Client(cluster) as client:
            (cwd,) = client.run(lambda: __import__("os").getcwd()).values()
        assert cwd == str(elsewhere)
        monkeypatch.chdir(SAMPLES)
        paths = [f"{n}/vmcore.zst" for n in THREE[:2]]
        argv = ["check", *paths, "--map", f"{THREE[0]}/System.map.zst", "--json"]
        assert main([*argv, "--cluster", _url(cluster)]) == 0
        remote = json.loads(capsys.readouterr().out)
    assert [d["path"] for d in remote["dumps"]] == paths
    assert all(d["error"] is None and d["tasks"] > 50 for d in remote["dumps"])
    assert main([*argv, "--jobs", "1"]) == 0
    assert json.loads(capsys.readouterr().out) == remote


#: Seconds the client of the real cluster may run (100 dumps take 5 s alone on an idle
#: 2-core machine, up to 30 s when the machine is shared).
CLIENT_SECONDS = 600.0


def _check_with_a_terminal(
    argv: list[str], folder: Path, first_result: Callable[[], None]
) -> tuple[int, str, str]:
    """``backchain ARGV`` in its own process with stderr on a terminal (where it shows its
    progress) and stdout in a file; ``first_result`` is called once the progress line says
    a dump came back. Returns (exit status, stdout, what the terminal received)."""
    code = "import sys; from explorer.cli import main; sys.exit(main(sys.argv[1:]))"
    master, slave = pty.openpty()
    out = folder / "stdout"
    try:
        with open(out, "wb") as stdout:
            proc = subprocess.Popen(
                [sys.executable, "-c", code, *argv],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=slave,
                cwd=ROOT,
                start_new_session=True,
            )
        os.close(slave)
        slave = -1
        seen = b""
        fired = False
        deadline = time.monotonic() + CLIENT_SECONDS
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 1.0)
                if not ready:
                    continue
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the process closed the terminal
                    chunk = b""
                if not chunk:
                    break
                seen += chunk
                if not fired and re.search(rb"checked [1-9]\d* of", seen):
                    fired = True
                    first_result()
            status = proc.wait(max(1.0, deadline - time.monotonic()))
        finally:
            stop(proc)
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    return status, out.read_text(), seen.decode(errors="replace").replace("\r\n", "\n")


def _batch_of(key: object) -> range:
    """The input positions a task key names (``KEY_PREFIX-RUN-FIRST-LAST``)."""
    first, last = str(key).rsplit("-", 2)[1:]
    return range(int(first), int(last) + 1)


def _per_dump(jsonl: str) -> dict[str, list[dict[str, Any]]]:
    """``check DUMP... --jsonl`` by dump (in its order), each record without its path."""
    out: dict[str, list[dict[str, Any]]] = {}
    for line in jsonl.splitlines():
        record = json.loads(line)
        out.setdefault(record.pop("dump"), []).append(record)
    return out


@needs("distributed")
def test_a_real_cluster_checks_100_dumps_through_a_dead_worker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1; 100 dumps (the
    samples hard-linked under distinct names) and one unreadable; one worker killed (SIGKILL)
    once the first dumps came back. Every dump is reported exactly once, each task with the
    verdict and stack of the same file checked in one process; the progress counts each dump
    as it finishes; the unreadable dump is one line on stderr, and nothing else is."""
    from distributed import Client

    copies = [str(p) for p in fleet_copies(tmp_path / "dumps", 100)]
    bad = tmp_path / "dumps" / "037-unreadable.vmcore.zst"
    with open(SAMPLES / THREE[0] / "vmcore.zst", "rb") as real:
        bad.write_bytes(real.read(1 << 16))  # a real dump cut short
    paths = [*copies[:37], str(bad), *copies[37:]]
    total = len(paths)
    assert len(set(paths)) == total == 101

    # The truth: one copy of each sample (the first ten) and the unreadable dump, checked in
    # one process; every other copy is the same file in the same folder.
    samples = len(set(Path(p).name[4:] for p in copies))
    assert main(["check", *copies[:samples], str(bad), "--jobs", "1", "--jsonl"]) == 2
    alone = _per_dump(capsys.readouterr().out)
    assert len(alone) == samples + 1 == 11
    assert all(len(alone[p]) > 50 and "error" not in alone[p][0] for p in copies[:samples])

    killed: dict[str, Any] = {}
    with dask_cluster(tmp_path / "cluster", workers=2) as cluster:
        pids = cluster.worker_pids(2)
        assert sorted(pids.values()) == sorted(w.pid for w in cluster.workers)
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in pids)
        with Client(cluster.address, timeout=60) as watcher:

            def kill_a_busy_worker() -> None:
                busy = {a: k for a, k in watcher.processing().items() if k}
                assert busy, "no dump in flight after the first result"
                addr = sorted(busy)[0]
                os.kill(pids[addr], signal.SIGKILL)
                killed.update(address=addr, keys=busy[addr])

            status, out, err = _check_with_a_terminal(
                ["check", *paths, "--cluster", cluster.url, "--jsonl"],
                tmp_path,
                kill_a_busy_worker,
            )
            left = set(watcher.nthreads())
        dead = next(w for w in cluster.workers if w.pid == pids[killed["address"]])
        assert dead.wait(30) == -signal.SIGKILL
        assert all(w.poll() is None for w in cluster.workers if w is not dead)
    # The dead worker had dumps in flight (queued or walking), a batch of several among
    # them; the scheduler saw it go.
    assert killed["keys"] and all(str(k).startswith(KEY_PREFIX) for k in killed["keys"])
    lost = [_batch_of(k) for k in killed["keys"]]
    assert any(len(b) > 1 for b in lost), killed["keys"]
    assert left == set(pids) - {killed["address"]}
    # Progress: one count per dump as it finishes, 0 to 101, each once, on one line.
    segments = [s for s in re.split(r"[\r\n]", err) if s.strip()]
    counts = [
        int(m.group(1))
        for s in segments
        if (m := re.fullmatch(r"checked (\d+) of 101 dumps(?: \(1 failed\))?", s))
    ]
    assert counts == list(range(total + 1)), err[-2000:]
    # The unreadable dump: one line naming it; nothing else on stderr.
    others = [s for s in segments if not s.startswith("checked ")]
    assert len(others) == 1 and others[0].startswith(f"backchain: {bad}:"), err[-2000:]
    assert "Traceback" not in err
    # Every dump once, each task with the verdict and stack of the one-process run.
    assert status == 2
    remote = _per_dump(out)
    assert list(remote) == [*copies, str(bad)]  # input order; unreadable ones last
    for i, path in enumerate(copies):
        assert remote[path] == alone[copies[i % samples]], path
    assert remote[str(bad)] == alone[str(bad)]


@needs("distributed")
def test_a_cluster_without_workers_reports_every_dump(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No worker ever connects: after --cluster-timeout every dump is reported as not
    checked (one line each, exit 2), none is lost and the command ends."""
    paths = [str(SAMPLES / n / "vmcore.zst") for n in THREE[:2]]
    with dask_cluster(tmp_path / "cluster", workers=0) as cluster:
        status = main(
            ["check", *paths, "--cluster", cluster.url, "--cluster-timeout", "5", "--json"]
        )
    captured = capsys.readouterr()
    assert status == 2
    assert [d["path"] for d in json.loads(captured.out)["dumps"]] == paths
    lines = captured.err.splitlines()
    assert len(lines) == 2
    for path, line in zip(paths, lines, strict=True):
        assert line.startswith(f"backchain: {path}: not checked: no Dask worker connected to ")


def test_batches_are_guided_largest_first() -> None:
    """Each batch is half of what is left per worker thread (at most MAX_BATCH), so the
    100 dumps of the benchmark go out in 15 tasks, not 100, and the last ones are single
    dumps that keep both threads busy to the end."""
    assert batch_sizes(100, 2) == [16, 16, 16, 13, 10, 8, 6, 4, 3, 2, 2, 1, 1, 1, 1]
    assert batch_sizes(12, 2) == [3, 3, 2, 1, 1, 1, 1]
    assert batch_sizes(1, 2) == [1] and batch_sizes(0, 2) == []
    for count in (1, 2, 7, 100, 1001):
        for threads in (0, 1, 2, 3, 64):
            sizes = batch_sizes(count, threads)
            assert sum(sizes) == count
            assert sizes == sorted(sizes, reverse=True)
            assert min(sizes) >= 1 and max(sizes) <= MAX_BATCH
            assert sizes[-1] == 1  # the tail is single dumps


class _FakeFuture:
    def __init__(self, key: str, status: str = "pending") -> None:
        self.key = key
        self.status = status


class _FakeClient:
    def __init__(self) -> None:
        self.submitted: list[tuple[list[list[str]], int]] = []

    def map(self, func: Any, batches: list[list[str]], **kw: Any) -> list[_FakeFuture]:
        assert func is check_batch and kw["pure"] is False
        self.submitted.append((batches, kw["priority"]))
        return [_FakeFuture(k) for k in kw["key"]]


def test_a_batch_that_failed_is_split_or_reported_dump_by_dump() -> None:
    """Without a cluster (what Dask hands back is made here): a batch's results go to its
    dumps in order; a batch whose workers died becomes a task per dump, added to those
    waited for (only a dump that kills its workers alone is reported so); any other failure
    of a batch is each of its dumps' one-line error; so is a result of the wrong shape."""
    from explorer.fleet.cluster import CheckOptions, _Batches

    distributed = dask_distributed()
    paths = [f"/d/{i}.vmcore" for i in range(6)]
    client = _FakeClient()
    run = _Batches(client, "r", paths, CheckOptions())
    whole, killed, failed, odd = run.submit([range(0, 2), range(2, 5), range(5, 6), range(0, 1)])
    assert [f.key for f in run.futures] == [
        "check_dump-r-000000-000001",
        "check_dump-r-000002-000004",
        "check_dump-r-000005-000005",
        "check_dump-r-000000-000000",
    ]
    assert client.submitted == [([paths[0:2], paths[2:5], paths[5:6], paths[0:1]], 0)]
    added: list[_FakeFuture] = []
    waiting = type("Done", (), {"add": lambda self, f: added.append(f)})()

    whole.status = "finished"
    results = [DumpResult(paths[0], release="6.1"), DumpResult(paths[1], release="6.12")]
    assert run.outcomes(whole, results, waiting) == [(0, results[0]), (1, results[1])]

    killed.status = "error"
    gone = type("Worker", (), {"address": "tcp://10.0.0.7:40000"})()
    exc = distributed.KilledWorker("check_dump-r-2-4", gone, 3)
    assert run.outcomes(killed, (type(exc), exc, None), waiting) == []
    assert [f.key for f in added] == [
        "check_dump-r-000002-000002",
        "check_dump-r-000003-000003",
        "check_dump-r-000004-000004",
    ]
    assert client.submitted[1] == ([[paths[2]], [paths[3]], [paths[4]]], 1)
    single = added[1]
    single.status = "error"
    said = run.outcomes(single, (type(exc), exc, None), waiting)
    assert said == [
        (
            3,
            DumpResult(
                paths[3],
                error=f"{paths[3]}: the Dask workers reading "
                "it died (the last one tcp://10.0.0.7:40000)",
            ),
        )
    ]
    assert len(added) == 3  # a single dump is not split again

    failed.status = "error"
    missing = ModuleNotFoundError("No module named 'explorer'")
    (only,) = run.outcomes(failed, (type(missing), missing, None), waiting)
    assert only[0] == 5 and only[1].error == (
        f"{paths[5]}: failed on a Dask worker (ModuleNotFoundError: No module named 'explorer')"
    )
    odd.status = "finished"
    (bad,) = run.outcomes(odd, None, waiting)
    assert bad[1].error == (
        f"{paths[0]}: failed on a Dask worker (TypeError: a batch of 1 dumps gave NoneType)"
    )


def test_a_lost_result_is_sent_again_then_reported() -> None:
    """Without a cluster: a task that ends neither finished nor failed (its result lost
    with the worker that held it, as a busy CI run once saw: the dump was reported
    "cancelled" while the cluster was fine) has each of its dumps sent again on its own,
    under a key of its own, RESENT times; only then is the dump reported, once."""
    from explorer.fleet.cluster import RESENT, CheckOptions, _Batches

    paths = [f"/d/{i}.vmcore" for i in range(3)]
    client = _FakeClient()
    run = _Batches(client, "r", paths, CheckOptions())
    (batch,) = run.submit([range(0, 3)])
    added: list[_FakeFuture] = []
    waiting = type("Done", (), {"add": lambda self, f: added.append(f)})()
    batch.status = "cancelled"
    assert run.outcomes(batch, None, waiting) == []
    assert [f.key for f in added] == [f"check_dump-rr1-00000{i}-00000{i}" for i in range(3)]
    assert client.submitted[1] == ([[p] for p in paths], 1)
    done = DumpResult(paths[0], release="6.1")
    added[0].status = "finished"
    assert run.outcomes(added[0], [done], waiting) == [(0, done)]
    lost = added[1]
    for attempt in range(2, RESENT + 1):
        lost.status = "lost"
        assert run.outcomes(lost, None, waiting) == []
        lost = added[-1]
        assert lost.key == f"check_dump-rr{attempt}-000001-000001"
    lost.status = "cancelled"
    (said,) = run.outcomes(lost, None, waiting)
    assert said == (1, DumpResult(paths[1], error=f"{paths[1]}: cancelled on the Dask cluster"))
    assert len(added) == 3 + RESENT - 1  # nothing sent again after the last time


@needs("distributed")
def test_a_dump_that_kills_its_workers_is_the_only_one_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A real scheduler and two workers with nannies (a worker that dies is started again),
    Dask told to give a task up at the first death of its worker (allowed-failures 0) and to
    hand each worker one task at a time (so that a death blames only the task it ran). Of
    12 dumps, the 6th kills any worker that reads it: its batch (dumps 4 to 6) dies, is split,
    and only that dump is reported, as one line; every other dump has the verdicts and
    stacks of the same file checked in one process."""
    copies = [str(p) for p in fleet_copies(tmp_path / "dumps", 11)]
    killer = tmp_path / "dumps" / f"005-{dump_killer.MARK}.vmcore.zst"
    os.link(copies[0], killer)
    paths = [*copies[:5], str(killer), *copies[5:]]
    assert batch_sizes(len(paths), 2)[:2] == [3, 3]  # the killer goes out in a batch of 3
    samples = len(set(Path(p).name[4:] for p in copies))
    assert main(["check", *copies[:samples], "--jobs", "1", "--jsonl"]) == 0
    alone = _per_dump(capsys.readouterr().out)
    settings = {
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
    }
    preload = (*PRELOAD, "--preload", dump_killer.__file__)
    with dask_cluster(
        tmp_path / "cluster", workers=2, preload=preload, nanny=True, scheduler_env=settings
    ) as cluster:
        status = main(["check", *paths, "--cluster", cluster.url, "--jsonl"])
        scheduler_log = cluster.log("scheduler")
    out, err = capsys.readouterr()
    assert status == 2
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"backchain: {killer}: the Dask workers reading it died (the last one tcp://127.0.0.1:"
    ), err
    # The batch of dumps 4 to 6 died first, then the killer alone.
    failed = re.findall(r"Task check_dump-\w+-(\d+)-(\d+) marked as failed", scheduler_log)
    assert failed == [("000003", "000005"), ("000005", "000005")], scheduler_log
    remote = _per_dump(out)
    assert list(remote) == [*copies, str(killer)]
    for i, path in enumerate(copies):
        assert remote[path] == alone[copies[i % samples]], path
    assert len(remote[str(killer)]) == 1 and "died" in remote[str(killer)][0]["error"]
