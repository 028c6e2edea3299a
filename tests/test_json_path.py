"""``check --json`` written in large chunks to a widened pipe (issue 26): the same document
whatever the chunk size, and a pipe on stdout asked for 1 MiB (nothing else touched)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import sys
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


class _Bytes(io.BytesIO):
    """A BytesIO whose contents survive the TextIOWrapper over it being closed."""

    def close(self) -> None:
        self.kept = self.getvalue()
        super().close()


@pytest.mark.parametrize("chunk", [1000, 20_000, stream.WRITE_CHUNK])
@pytest.mark.parametrize("flag", ["--json", "--jsonl"])
def test_bytes_into_the_reused_buffer_are_the_text(
    flag: str, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Standard output over a binary stream takes each task's bytes through one reused
    buffer (tasks larger than it on their own); any other stream gets the text gathered as
    str. Both are the same document, "[" and "]" in their places, whatever the chunk."""
    dump = str(SAMPLE / "vmcore.zst")
    monkeypatch.setattr(stream, "WRITE_CHUNK", chunk)
    text = io.StringIO()  # no binary stream under it: the str path
    monkeypatch.setattr(sys, "stdout", text)
    assert main(["check", dump, flag]) == 0
    raw = _Bytes()
    wrapper = io.TextIOWrapper(raw, encoding="utf-8", write_through=False)
    monkeypatch.setattr(sys, "stdout", wrapper)
    assert main(["check", dump, flag]) == 0
    wrapper.flush()
    assert stream._binary_under(wrapper) is raw
    assert raw.getvalue().decode("ascii") == text.getvalue()
    assert text.getvalue().startswith("[\n  {" if flag == "--json" else '{"pid": ')
    assert len(text.getvalue()) > 3 * chunk or chunk == stream.WRITE_CHUNK


def test_only_an_ascii_safe_encoding_takes_bytes() -> None:
    for encoding, expected in (("utf-8", True), ("ASCII", True), ("utf-16", False)):
        wrapper = io.TextIOWrapper(io.BytesIO(), encoding=encoding)
        assert (stream._binary_under(wrapper) is not None) is expected, encoding
    assert stream._binary_under(io.StringIO()) is None
