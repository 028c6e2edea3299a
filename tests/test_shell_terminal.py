"""``backchain shell`` at a terminal (issue 15): tab completion of commands and of each
command's options, and the history kept in the cache, driven through a real pseudo-terminal
as a user types. Truth: the one-shot command's own output and the history file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.terminal import read_until

pty = pytest.importorskip("pty")
pytest.importorskip("readline")

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "real"
BUSY = str(SAMPLES / "bpo12-6.12-busy" / "vmcore.zst")


def test_tab_completes_commands_and_options_and_history_is_kept(tmp_path: Path) -> None:
    env = {**os.environ, "BACKCHAIN_CACHE": str(tmp_path), "TERM": "xterm", "COLUMNS": "200"}
    env.pop("PYTHONSTARTUP", None)
    parent, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "explorer", "shell", BUSY],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env,
        close_fds=True,
    )
    os.close(child)
    seen = bytearray()
    try:
        read_until(parent, b"backchain> ", seen)
        # "ps --pi<TAB>" completes the option: ps takes --pid (and no other --pi...)
        os.write(parent, b"ps --pi\t 1\r")
        read_until(parent, b"backchain> ", seen)
        # "che<TAB>" completes the command whole: check
        os.write(parent, b"che\t\r")
        read_until(parent, b"backchain> ", seen)
        os.write(parent, b"quit\r")
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(parent)
    text = seen.decode("utf-8", "replace").replace("\r", "")
    one = subprocess.run(
        [sys.executable, "-m", "explorer", "ps", BUSY, "--pid", "1"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert "backchain> ps --pid 1\n" in text  # the terminal shows the completed option
    assert one.splitlines()[1] in text  # "ps --pid 1" ran: init's row
    check = subprocess.run(
        [sys.executable, "-m", "explorer", "check", BUSY],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout
    assert check.splitlines()[0] in text  # "check" ran: its first summary line
    assert proc.returncode == 0
    history = (tmp_path / "shell_history").read_text().splitlines()
    assert history[-3:] == ["ps --pid 1", "check", "quit"]
