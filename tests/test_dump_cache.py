"""The cache of decompressed dumps: one file per content whatever the compressed file is
called, and bounded: the least recently used copies go first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import zstandard

from parsers.compressed import decompressed_path, dumps_budget, prune_dumps
from tests.helpers.caches import copies


def _zst(path: Path, data: bytes) -> Path:
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(data))
    return path


def test_one_copy_per_content_whatever_the_name(tmp_path: Path) -> None:
    cache = tmp_path / "dumps"
    data = os.urandom(1 << 16)
    a = decompressed_path(_zst(tmp_path / "incident.vmcore.zst", data), cache)
    b = decompressed_path(_zst(tmp_path / "renamed.zst", data), cache)
    assert a == b and a.read_bytes() == data
    assert len(copies(cache)) == 1
    c = decompressed_path(_zst(tmp_path / "other.zst", data + b"!"), cache)
    assert c != a and len(copies(cache)) == 2


def test_least_recently_used_copies_go_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "dumps"
    monkeypatch.setenv("BACKCHAIN_CACHE_DUMPS_GIB", str(2.5 * (1 << 16) / (1 << 30)))
    assert dumps_budget() == int(2.5 * (1 << 16))
    made = []
    for i in range(2):  # 64 KiB each on disk (no zero page: no hole); the budget holds two
        data = bytes([i + 1]) * (1 << 16)
        made.append(decompressed_path(_zst(tmp_path / f"d{i}.zst", data), cache))
        os.utime(cache / ".index" / f"copy-{made[-1].suffix[1:]}", (1000 + i, 1000 + i))
    # d0 is used again (a hit marks it recent), then a third dump arrives: d1 is the oldest.
    assert decompressed_path(tmp_path / "d0.zst", cache) == made[0]
    third = decompressed_path(_zst(tmp_path / "d2.zst", b"\3" * (1 << 16)), cache)
    assert [made[0].exists(), made[1].exists(), third.exists()] == [True, False, True]
    being_written = cache / f".x.abc.{os.getpid()}.r4nd0m.tmp"  # a live process's: untouched
    being_written.write_bytes(b"being written")
    assert prune_dumps(cache, budget=0) and being_written.exists()
    assert copies(cache) == []


def test_budget_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKCHAIN_CACHE_DUMPS_GIB", "1")
    assert dumps_budget() == 1 << 30
    monkeypatch.setenv("BACKCHAIN_CACHE_DUMPS_GIB", "lots")
    assert dumps_budget() == 16 << 30
