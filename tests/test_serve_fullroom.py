"""A full classroom (issue 26 item 3): the session limit's polite page, idle sessions
reaped, the limits configurable, and sessions forked from a warm zygote.

Real servers on free 127.0.0.1 ports (a ``backchain serve`` subprocess, or a
:class:`ClassroomServer` in this process with a stand-in explorer), driven by aiohttp
speaking textual-serve's websocket protocol. Speed is measured by
benchmarks/bench_classroom.py, never here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest

from explorer.serve.forks import Zygote, ZygoteError
from explorer.serve.server import CLOSE_FULL, CLOSE_IDLE, ServeConfig
from tests.helpers.serving import (
    LOADED,
    ROOT,
    children_of,
    client,
    first_screen,
    in_process,
    serve,
    session_url,
    until_closed,
    ws_url,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- the limit ---------------------------------------------------------------------------------


def test_session_over_the_limit_gets_the_polite_page() -> None:
    """``--max-sessions 2``: the third browser gets HTTP 503 with a page saying the
    classroom is full (and when to retry), its websocket is closed with 1013, and no third
    explorer starts; once a trainee quits, the page opens again."""
    with serve("--max-sessions", "2", "--idle-timeout", "0") as served:

        async def run() -> None:
            async with client() as http:
                sessions = [await http.ws_connect(ws_url(served)) for _ in range(2)]
                for ws in sessions:
                    await first_screen(ws, LOADED)
                async with http.get(served.url + "/") as r:
                    assert r.status == 503
                    assert r.headers["Retry-After"] == "30"
                    assert r.content_type == "text/html"
                    page = await r.text()
                assert "<h1>The classroom is full</h1>" in page
                assert "All 2 explorer sessions are in use" in page
                assert "raise --max-sessions" in page
                third = await http.ws_connect(ws_url(served))
                msg = await third.receive(timeout=10)
                assert msg.type == aiohttp.WSMsgType.CLOSE
                assert (msg.data, msg.extra) == (CLOSE_FULL, "the classroom is full")
                assert len(served.children()) == 2
                await sessions[0].send_json(["stdin", "q"])
                await until_closed(sessions[0], 20)
                for _ in range(200):
                    async with http.get(served.url + "/") as r:
                        if r.status == 200:
                            break
                    await asyncio.sleep(0.1)
                assert r.status == 200 and len(served.children()) == 1
                await sessions[1].close()

        asyncio.run(run())


# -- idle sessions -----------------------------------------------------------------------------


def test_idle_sessions_are_reaped_and_their_explorers_end() -> None:
    """``--idle-timeout 3``: of two sessions, the one that types stays, the quiet one is
    closed (1001) no sooner than 3 s after its first screen and its explorer ends; then
    the typing one once it stops."""
    with serve("--idle-timeout", "3") as served:

        async def run() -> None:
            async with client() as http:
                quiet = await http.ws_connect(ws_url(served))
                while (await quiet.receive(timeout=60)).type != aiohttp.WSMsgType.BINARY:
                    pass
                drawn = time.monotonic()  # the idle clock starts at the first screen output
                busy = await http.ws_connect(ws_url(served))
                await first_screen(busy, b"backchain", keepalive=True)
                assert len(served.children()) == 2
                msg = None
                while msg is None:
                    await busy.send_json(["stdin", "\x1b[B"])  # input: it stays
                    last = time.monotonic()
                    try:
                        msg = await quiet.receive(timeout=0.5)
                    except TimeoutError:
                        continue
                    if msg.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        msg = None
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_IDLE
                assert time.monotonic() - drawn >= 2.9
                assert not busy.closed
                for _ in range(200):
                    if len(served.children()) == 1:
                        break
                    await asyncio.sleep(0.1)
                assert len(served.children()) == 1
                msg = await until_closed(busy, 30)
                assert msg.data == CLOSE_IDLE and time.monotonic() - last >= 2.9
            for _ in range(200):
                if not served.children():
                    break
                await asyncio.sleep(0.1)
            assert served.children() == []

        asyncio.run(run())


#: A stand-in explorer that takes a while to draw its first screen (a loaded machine).
_SLOW = textwrap.dedent(
    """
    import sys, time
    time.sleep({delay})
    out = sys.stdout.buffer
    out.write(b"__GANGLION__\\n")
    screen = b"first screen"
    out.write(b"D" + len(screen).to_bytes(4, "big") + screen)
    out.flush()
    while sys.stdin.buffer.read(1):
        pass
    """
)


def test_idle_clock_starts_at_the_first_screen() -> None:
    """Before: with a short --idle-timeout on a loaded server, every session was reaped
    before its explorer drew anything (30 at once, --idle-timeout 10: 0 of 30 ever drew).
    Now a session that takes 3 s to draw, with a 1.5 s idle timeout, is closed 1.5 s after
    its first screen, not before it."""
    config = ServeConfig(
        argv=(sys.executable, "-c", _SLOW.format(delay=3)), port=0, idle_timeout=1.5
    )

    async def run() -> None:
        async with in_process(config) as server, client() as http:
            opened = time.monotonic()
            ws = await http.ws_connect(session_url(server))
            msg = await ws.receive(timeout=30)
            assert msg.type == aiohttp.WSMsgType.BINARY, msg
            assert msg.data == b"first screen"
            drawn = time.monotonic()
            assert drawn - opened >= 2.9
            msg = await until_closed(ws, 30)
            assert msg.data == CLOSE_IDLE
            assert 1.4 <= time.monotonic() - drawn < 10

    asyncio.run(run())


# -- configurable ------------------------------------------------------------------------------


def test_limits_are_configurable_and_announced() -> None:
    with serve("--max-sessions", "7", "--idle-timeout", "90") as served:
        assert any("7 sessions at most; idle sessions end after 90 s" in b for b in served.banner)
    with serve("--idle-timeout", "0") as served:
        assert any("30 sessions at most; idle sessions end never" in b for b in served.banner)
    for bad, message in (
        (["--max-sessions", "0"], "argument --max-sessions: must be 1 or more"),
        (["--idle-timeout", "-1"], "--idle-timeout must be 0 (never) or more seconds"),
    ):
        run = subprocess.run(
            [sys.executable, "-m", "explorer", "serve", *bad, "--port", "1"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 2 and message in run.stderr, run.stderr
        assert "Traceback" not in run.stderr


# -- the zygote --------------------------------------------------------------------------------


def _zygote_of(server: int) -> int:
    """The server's zygote: its child in its own process group."""
    (zygote,) = [p for p in children_of(server) if os.getpgid(p) == os.getpgid(server)]
    return zygote


def test_sessions_are_forked_from_the_zygote_and_start_anew_without_it() -> None:
    """Sessions are children of one warm zygote, each leading its own process group; with
    the zygote gone a session still starts (anew, as a child of the server), and says so
    in the log; ``--no-fork`` starts every one anew."""
    with serve("--idle-timeout", "0") as served:
        zygote = _zygote_of(served.process.pid)
        assert "explorer.cli.zygote" in Path(f"/proc/{zygote}/cmdline").read_text()

        async def run() -> None:
            async with client() as http:
                a = await http.ws_connect(ws_url(served))
                b = await http.ws_connect(ws_url(served))
                for ws in (a, b):
                    await first_screen(ws, LOADED)
                pids = served.children()
                assert len(pids) == 2 and sorted(children_of(zygote)) == pids
                assert all(os.getpgid(p) == p for p in pids)
                os.kill(zygote, signal.SIGKILL)
                c = await http.ws_connect(ws_url(served))
                await first_screen(c, LOADED)
                (new,) = set(served.children()) - set(pids)
                assert new in children_of(served.process.pid) and os.getpgid(new) == new
                for ws in (a, b):  # the forked sessions outlive their zygote
                    await ws.send_json(["stdin", "\x1b[B"])
                    await ws.receive(timeout=10)
                for ws in (a, b, c):
                    await ws.close()

        asyncio.run(run())
        assert any("not forked" in line for line in served.log), served.log
    with serve("--no-fork", "--idle-timeout", "0") as served:
        assert [p for p in children_of(served.process.pid)] == []


#: A zygote whose children report what they were given (explorer.serve.forks' protocol).
_ECHO = textwrap.dedent(
    """
    import json, os, sys
    from explorer.serve.forks import channel_of, serve_forks

    def run(argv):
        line = sys.stdin.readline()
        print(json.dumps({
            "argv": argv, "x": os.environ.get("X"), "line": line, "pid": os.getpid(),
            "pgid": os.getpgid(0), "sid": os.getsid(0),
        }), flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        return int(argv[0])

    serve_forks(channel_of(sys.argv[-1]), run)
    """
)


def test_fork_protocol() -> None:
    """A forked child gets its own argv, environment, stdin, stdout and stderr, leads a
    new session, and its end is seen by the server (it is not the server's child)."""

    async def run() -> None:
        zygote = Zygote([sys.executable, "-c", _ECHO], {**os.environ, "PYTHONPATH": str(ROOT)})
        zygote.start()
        try:
            assert await zygote.wait_ready()
            children = []
            for i in range(2):
                child = await zygote.spawn([str(i), "b c"], {"X": f"x{i}"})
                child.stdin.write(f"hello {i}\n".encode())
                await child.stdin.drain()
                report = json.loads(await asyncio.wait_for(child.stdout.readline(), 30))
                assert report == {
                    "argv": [str(i), "b c"],
                    "x": f"x{i}",
                    "line": f"hello {i}\n",
                    "pid": child.pid,
                    "pgid": child.pid,
                    "sid": child.pid,
                }
                assert await child.stderr.readline() == b"to stderr\n"
                await asyncio.wait_for(child.wait(), 30)
                assert child.returncode == 0
                children.append(child.pid)
            assert children[0] != children[1]
        finally:
            zygote.stop()
        assert zygote.process is not None and zygote.process.returncode == 0
        with pytest.raises(ZygoteError):
            await zygote.spawn(["0"], {})
        broken = Zygote([sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
        broken.start()
        assert not await broken.wait_ready()  # it never said ready: sessions start anew
        with pytest.raises(ZygoteError):
            await broken.spawn(["0"], {})

    asyncio.run(run())


def test_preopened_dump_is_shared_until_the_file_changes(tmp_path: Path) -> None:
    """The zygote opens the served dump once (``preopen``); the explorer's open of the same
    file and options returns it; another file, other options or a rewritten file do not."""
    import shutil

    from explorer.model.kernel import Options
    from explorer.training.bundled import default_sample
    from explorer.tui import session as sessions

    dump = tmp_path / "vmcore.zst"
    shutil.copy(default_sample(), dump)
    try:
        ahead = sessions.preopen(str(dump), Options())
        assert sessions.Session.open(str(dump), Options()) is ahead
        assert sessions.Session.open(str(dump), Options(era="v5.5")) is not ahead
        os.utime(dump, ns=(0, 0))  # the file changed
        again = sessions.Session.open(str(dump), Options())
        assert again is not ahead and len(again.tasks) == len(ahead.tasks)
    finally:
        sessions._PREOPENED.clear()
