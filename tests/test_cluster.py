"""``check DUMP... --cluster dask://HOST:PORT`` on a local Dask cluster of two worker
processes (loopback only, started here): the same JSON as ``--jobs 2``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from explorer.cli import main
from explorer.fleet.cluster import ClusterError, scheduler_address

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
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
    distributed = pytest.importorskip("distributed", reason="pip install 'backchain[cluster]'")
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
    pytest.importorskip("distributed")
    dump = str(SAMPLES / THREE[0] / "vmcore.zst")
    # Nothing listens on port 9 of the loopback: one line, exit 2.
    status = main(["check", dump, "--cluster", "dask://127.0.0.1:9", "--cluster-timeout", "2"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1 and "127.0.0.1:9" in err


def test_cluster_resolves_relative_paths_on_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The workers start in another directory than the client's: relative dump and --map
    paths are made absolute before they go out; the output names them as typed."""
    distributed = pytest.importorskip("distributed", reason="pip install 'backchain[cluster]'")
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
