"""``check --json`` written in large chunks to a widened pipe (issue 26): the same document
whatever the chunk size, and a pipe on stdout asked for 1 MiB (nothing else touched)."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import pytest

import explorer.reports.stream as stream
from explorer.cli import main
from explorer.cli.common import PIPE_SIZE, widen_pipe

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "real" / "deb12-6.1-idle"
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)


@pytest.mark.parametrize("flag", ["--json", "--jsonl"])
def test_chunked_output_is_the_same_document(
    flag: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dump = str(SAMPLE / "vmcore.zst")
    assert main(["check", dump, flag]) == 0
    whole = capsys.readouterr().out
    monkeypatch.setattr(stream, "WRITE_CHUNK", 1000)  # many writes, each of several tasks
    assert main(["check", dump, flag]) == 0
    chunked = capsys.readouterr().out
    assert chunked == whole
    docs = json.loads(whole) if flag == "--json" else [json.loads(x) for x in whole.splitlines()]
    assert len(docs) > 50 and {d["pid"] for d in docs} >= {1, 2}


def test_a_pipe_is_widened_and_a_file_is_left_alone(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    try:
        with os.fdopen(write_end, "w") as out:
            before = fcntl.fcntl(out.fileno(), F_GETPIPE_SZ)
            widen_pipe(out)
            after = fcntl.fcntl(out.fileno(), F_GETPIPE_SZ)
    finally:
        os.close(read_end)
    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    allowed = limit >= PIPE_SIZE or os.geteuid() == 0  # else Linux refuses: nothing changes
    assert after == (PIPE_SIZE if allowed else before)
    with open(tmp_path / "out.json", "w") as f:
        widen_pipe(f)  # a regular file: nothing to ask, no error
        f.write("[]")
    assert (tmp_path / "out.json").read_text() == "[]"
    widen_pipe(object())  # no fileno at all: nothing happens
