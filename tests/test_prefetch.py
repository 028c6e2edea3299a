"""A first run's vmlinux symbol table built by a forked worker (explorer.sources.prefetch): the
same table as one built in the process (itself checked against nm in test_symtab), cached
and hinted as before, no worker when the hint says it is cached, none left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from explorer.sources import prefetch
from tests.helpers import oracles

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "real" / "deb12-6.1-idle" / "vmcore.zst"


def _in_a_fresh_process(script: str, cache: Path, timeout: float = 300) -> None:
    """Run ``script`` (its asserts) in a new interpreter with ``VMLINUX`` and ``prefetch``
    bound: a worker is forked only where no other thread runs, and this test process may
    hold threads other tests left."""
    vmlinux = str(oracles.debug_vmlinux("6.1.0-50-s390x"))
    head = "import os, sys\nfrom explorer.sources import prefetch\nVMLINUX = sys.argv[1]\n"
    env = {**os.environ, "BACKCHAIN_CACHE": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", head + script, vmlinux],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr


_GONE = """
def gone(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False
"""


def test_the_worker_builds_the_table_a_process_builds(tmp_path: Path) -> None:
    _in_a_fresh_process(
        _GONE
        + """
from parsers.symbols.table import load_vmlinux_symbols
prefetch.start(VMLINUX)
assert prefetch.building(VMLINUX)
(pid, _) = prefetch._WORKERS[VMLINUX]
table = prefetch.take(VMLINUX)
assert table is not None and gone(pid)
here = load_vmlinux_symbols(VMLINUX)
assert table.source == here.source == f"vmlinux {VMLINUX}"
assert list(table.rows()) == list(here.rows())
assert len(table) == len(here) > 90_000
for name in ("_stext", "schedule", "init_task", "__start_BTF", "no_such_symbol_zz"):
    assert table.address_of(name) == here.address_of(name), name
assert prefetch.take(VMLINUX) is None  # taken once
""",
        tmp_path,
    )


def test_no_worker_for_what_is_not_an_elf_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKCHAIN_CACHE", str(tmp_path / "cache"))
    text = tmp_path / "vmlinux"
    text.write_bytes(b"(\xb5/\xfd not a vmlinux")
    for path in (str(text), str(tmp_path / "missing")):
        prefetch.start(path)
        assert not prefetch.building(path)
        assert prefetch.take(path) is None


def test_a_worker_never_taken_is_ended(tmp_path: Path) -> None:
    _in_a_fresh_process(
        _GONE
        + """
prefetch.start(VMLINUX)
(pid, _) = prefetch._WORKERS[VMLINUX]
prefetch._end_all()
assert gone(pid) and not prefetch.building(VMLINUX)
""",
        tmp_path,
    )


def test_a_table_larger_than_the_shared_memory_is_built_here(tmp_path: Path) -> None:
    """The worker hands nothing back when its table does not fit the memory it shares
    with this process; the table is then built here, as when a worker fails."""
    _in_a_fresh_process(
        _GONE
        + """
prefetch._SHARED_BYTES = 1 << 20  # a 6.1 table is 4 MB
prefetch.start(VMLINUX)
(pid, _) = prefetch._WORKERS[VMLINUX]
assert prefetch.take(VMLINUX) is None and gone(pid)
prefetch._SHARED_BYTES = 256 << 20
prefetch.start(VMLINUX)
table = prefetch.take(VMLINUX)
assert table is not None and len(table) > 90_000
assert not prefetch._SHARED  # each mapping closed once taken
""",
        tmp_path,
    )


def test_no_worker_while_another_thread_runs(tmp_path: Path) -> None:
    _in_a_fresh_process(
        """
import threading
stop = threading.Event()
other = threading.Thread(target=stop.wait)
other.start()
prefetch.start(VMLINUX)
assert not prefetch.building(VMLINUX) and prefetch.take(VMLINUX) is None
stop.set()
other.join()
""",
        tmp_path,
    )


def test_no_worker_for_a_fifo_and_no_wait_on_it(tmp_path: Path) -> None:
    """A FIFO named as the vmlinux (no writer): no worker, and its open does not wait."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _in_a_fresh_process(
        f"""
prefetch.start({str(fifo)!r})
assert not prefetch.building({str(fifo)!r})
""",
        tmp_path / "cache",
        timeout=30,
    )


def test_a_first_run_prints_what_a_warm_run_prints(tmp_path: Path) -> None:
    """``check --json`` with an empty cache (table built by the worker, profile meanwhile)
    and again with the cache it left: the same bytes; the cache holds the table and the
    hint, and the second run started no worker (it read the hint)."""
    vmlinux = str(oracles.debug_vmlinux("6.1.0-50-s390x"))
    env = {**os.environ, "BACKCHAIN_CACHE": str(tmp_path)}
    argv = [sys.executable, "-m", "explorer", "check", "--json", str(SAMPLE), "--vmlinux", vmlinux]
    first = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=True)
    (hint,) = (tmp_path / "symbols" / ".index").glob("vmlinux-*")
    (table,) = (tmp_path / "symbols").glob("file-*.syms")
    assert table.name == f"file-{hint.read_text()}-g4.syms"
    stamp = table.stat().st_mtime_ns
    second = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=True)
    assert first.stdout == second.stdout and first.stderr == second.stderr
    assert table.stat().st_mtime_ns == stamp
    facts = json.loads((SAMPLE.parent / "facts.json").read_text())
    pids = {task["pid"] for task in json.loads(first.stdout)}
    listed = {p["pid"] for p in facts["ps"]}  # the guest's ps, taken just before the dump
    assert facts["init_pid"] in pids and len(listed - pids) <= 1  # ps itself has exited
