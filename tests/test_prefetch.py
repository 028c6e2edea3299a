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
from parsers.symbols.table import load_vmlinux_symbols
from tests.helpers import oracles

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "samples" / "real" / "deb12-6.1-idle" / "vmcore.zst"


def _gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def test_the_worker_builds_the_table_a_process_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vmlinux = str(oracles.debug_vmlinux("6.1.0-50-s390x"))
    monkeypatch.setenv("BACKCHAIN_CACHE", str(tmp_path))
    prefetch.start(vmlinux)
    assert prefetch.building(vmlinux)
    (pid, _) = prefetch._WORKERS[vmlinux]
    table = prefetch.take(vmlinux)
    assert table is not None and _gone(pid)
    here = load_vmlinux_symbols(vmlinux)
    assert table.source == here.source == f"vmlinux {vmlinux}"
    assert list(table.rows()) == list(here.rows())
    assert len(table) == len(here) > 90_000
    for name in ("_stext", "schedule", "init_task", "__start_BTF", "no_such_symbol_zz"):
        assert table.address_of(name) == here.address_of(name)
    assert prefetch.take(vmlinux) is None  # taken once


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


def test_a_worker_never_taken_is_ended(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vmlinux = str(oracles.debug_vmlinux("6.1.0-50-s390x"))
    monkeypatch.setenv("BACKCHAIN_CACHE", str(tmp_path))
    prefetch.start(vmlinux)
    (pid, _) = prefetch._WORKERS[vmlinux]
    prefetch._end_all()
    assert _gone(pid) and not prefetch.building(vmlinux)


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
