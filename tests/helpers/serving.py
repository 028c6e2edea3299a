"""Run ``backchain serve`` in a subprocess on a free loopback port (for the serve tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from explorer.serve.server import ClassroomServer, ServeConfig

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on at 127.0.0.1 (right now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running server: its base URL, process and what it printed."""

    url: str
    process: subprocess.Popen[str]
    banner: list[str]
    log: list[str]

    def children(self) -> list[int]:
        """Pids of the sessions' explorers: the processes below the server that lead a
        process group of their own (one per session, whether the server started it or
        its zygote forked it; the zygote is in the server's group)."""
        return sessions_below(self.process.pid)


def children_of(pid: int) -> list[int]:
    """Pids of ``pid``'s child processes (none when it is gone)."""
    pids: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return pids
    for task in tasks:
        try:
            text = (task / "children").read_text()
        except OSError:  # a thread may exit between the listing and this read
            continue
        pids += [int(p) for p in text.split()]
    return pids


def sessions_below(server: int) -> list[int]:
    """Processes below ``server`` that lead their own process group, zombies left out."""
    found: list[int] = []
    todo = children_of(server)
    while todo:
        pid = todo.pop()
        todo += children_of(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] != "Z" and int(stat[2]) == pid:  # state; pgrp
            found.append(pid)
    return sorted(found)


def start(
    *args: str,
    port: int,
    env: dict[str, str] | None = None,
    timeout: float = 30,
    new_session: bool = False,
) -> tuple[subprocess.Popen[str], list[str]]:
    """Start ``backchain serve ARGS --port PORT`` and wait for its banner (up to its
    ``Ctrl+C`` line); returns the process and the banner's lines. ``new_session``: the
    server leads a process group of its own (to be ended with its sessions by killpg).

    Raises:
        AssertionError: it exited or printed no banner within ``timeout`` seconds (it is
            stopped then).
    """
    argv = [sys.executable, "-m", "explorer", "serve", *args, "--port", str(port)]
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        start_new_session=new_session,
    )
    assert process.stdout is not None
    banner: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise AssertionError("backchain serve exited:\n" + "".join(banner))
            banner.append(line)
            if line.strip().startswith("Ctrl+C"):
                return process, banner
        raise AssertionError("backchain serve printed no banner:\n" + "".join(banner))
    except BaseException:
        stop(process)
        raise


def stop(process: subprocess.Popen[str], group: bool = False) -> None:
    """SIGTERM the server (``group``: its whole process group), SIGKILL after 10 s."""
    kill = (lambda sig: os.killpg(process.pid, sig)) if group else process.send_signal
    kill(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        kill(signal.SIGKILL)
        process.wait()


@contextmanager
def serve(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> Iterator[Served]:
    """``backchain serve ARGS --port FREE`` until the block ends; waits for its banner."""
    port = free_port()
    process, banner = start(*args, port=port, env=env, timeout=timeout)
    try:
        log: list[str] = []
        drain(process, log.append)
        yield Served(f"http://127.0.0.1:{port}", process, banner, log)
    finally:
        stop(process)


def drain(process: subprocess.Popen[str], line: Callable[[str], object]) -> None:
    """Keep reading the server's log, each line to ``line``, so it never blocks on a full
    pipe (a daemon thread, until the server's output ends)."""
    import threading

    def run() -> None:
        assert process.stdout is not None
        for text in process.stdout:
            line(text)

    threading.Thread(target=run, daemon=True).start()


async def first_screen(
    ws: aiohttp.ClientWebSocketResponse,
    until: bytes = b"backchain",
    timeout: float = 60,
    keepalive: bool = False,
) -> bytes:
    """Wait until the explorer drew ``until`` (its process started and drew); with
    ``keepalive``, resize the terminal every 0.5 s meanwhile (input: the session is not idle
    however long a loaded machine takes to open the dump)."""
    data = b""
    deadline = time.monotonic() + timeout
    while until not in data:
        if time.monotonic() > deadline:
            raise AssertionError(f"the explorer never drew {until!r}")
        try:
            msg = await ws.receive(timeout=0.5)
        except TimeoutError:
            if keepalive:
                await ws.send_json(["resize", {"width": 100, "height": 30}])
            continue
        if msg.type == aiohttp.WSMsgType.BINARY:
            data += msg.data
        elif msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"websocket ended before the explorer drew: {msg}")
    return data


#: The overview's status line once the dump is open and checked ("78 tasks: 76 reliable...").
LOADED = b" tasks: "


def client() -> aiohttp.ClientSession:
    # Browsers keep cookies of 127.0.0.1; aiohttp only when told to.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


def ws_url(served: Served) -> str:
    return served.url.replace("http:", "ws:") + "/ws?width=100&height=30"


async def until_closed(ws: aiohttp.ClientWebSocketResponse, timeout: float) -> aiohttp.WSMessage:
    deadline = time.monotonic() + timeout
    while True:
        msg = await ws.receive(timeout=max(deadline - time.monotonic(), 0.1))
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return msg


@asynccontextmanager
async def in_process(config: ServeConfig) -> AsyncIterator[ClassroomServer]:
    """A :class:`ClassroomServer` of ``config`` in this process (its explorer usually a
    stand-in script), listening on a free 127.0.0.1 port (``server.port``; sessions at
    :func:`session_url`) until the block ends; then every session's process group still
    there is killed."""
    server = ClassroomServer(config)
    runner = web.AppRunner(await server._make_app())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    server.port = int(runner.addresses[0][1])
    try:
        yield server
    finally:
        for service, _ws in list(server.sessions.values()):
            if service.pid:
                os.killpg(service.pid, signal.SIGKILL)
        await runner.cleanup()


def session_url(server: ClassroomServer) -> str:
    """The websocket of a session of an in-process server."""
    return f"http://127.0.0.1:{server.port}/ws"
