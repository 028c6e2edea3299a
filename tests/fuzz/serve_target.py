"""The ``serve`` fuzz target: websocket messages, origins, hosts and resizes against a real
:class:`~explorer.serve.server.ClassroomServer` on a free 127.0.0.1 port (loopback only).

One server runs for the whole fuzz run, in a thread of its own; its sessions run a small
stand-in explorer (this file run as a script) that speaks the web driver's packet protocol
and records the largest terminal it was given, so each input costs a socket and a short
process, not a dump. An input (JSON bytes, see :func:`serve_inputs`) is one or more sockets
opened with the given ``Origin``/``Host``, each sending the messages, then closed. What must
hold after every input: foreign origins and hosts refused (403) and never a session; no
terminal beyond 500x200; never more explorer processes than ``--max-sessions``; every
session's process gone and its slot free within the grace periods; the server still answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

MAX_SESSIONS = 2
#: The stand-in writes the largest size it saw here (one file per process).
_SIZES = Path(tempfile.gettempdir()) / f"backchain-fuzz-serve-{os.getpid()}"
_MARK = "backchain-fuzz-serve-standin"


def _standin() -> None:
    """A session's explorer: ``__GANGLION__``, then read packets until ``quit`` or EOF,
    writing the largest resize to ``argv[1]/<pid>``."""
    out = Path(sys.argv[1]) / str(os.getpid())
    sys.stdout.write("__GANGLION__\n")
    sys.stdout.flush()
    stdin = sys.stdin.buffer
    widest = (0, 0)
    while True:
        head = stdin.read(5)
        if len(head) < 5:
            return
        payload = stdin.read(int.from_bytes(head[1:], "big"))
        if head[:1] != b"M":
            continue
        meta = json.loads(payload)
        if meta.get("type") == "quit":
            return
        if meta.get("type") == "resize":
            widest = (max(widest[0], meta["width"]), max(widest[1], meta["height"]))
            out.write_text(f"{widest[0]} {widest[1]}")


class _Server:
    """The one server of this fuzz run and the port it listens on."""

    def __init__(self) -> None:
        from explorer.serve.server import ClassroomServer, ServeConfig

        _SIZES.mkdir(exist_ok=True)
        logging.getLogger("backchain.serve").setLevel(logging.ERROR)  # ends are expected
        argv = (sys.executable, __file__, str(_SIZES), _MARK)
        config = ServeConfig(argv=argv, port=0, max_sessions=MAX_SESSIONS, idle_timeout=0)
        self.server = ClassroomServer(config)
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        if not ready.wait(30):
            raise RuntimeError("the fuzz server did not start")

    def _run(self, ready: threading.Event) -> None:
        from aiohttp import web

        async def main() -> None:
            runner = web.AppRunner(await self.server._make_app())
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.server.port = int(runner.addresses[0][1])
            ready.set()
            await asyncio.Event().wait()

        asyncio.run(main())


_server: _Server | None = None


def server() -> Any:
    """The running :class:`ClassroomServer` (started on first use)."""
    global _server
    if _server is None:
        _server = _Server()
    return _server.server


def standins() -> list[int]:
    """Pids of this process's stand-in explorers that have not exited."""
    pids = []
    for task in Path("/proc/self/task").iterdir():
        try:  # a thread may exit between the listing and this read
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in children:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if _MARK.encode() in cmdline and state != "Z":
                pids.append(int(pid))
    return pids


_FOREIGN = ("http://evil.example", "null", "http://127.0.0.1:1", "file://", "http://[::1", "")


@st.composite
def serve_inputs(draw: st.DrawFn) -> bytes:
    """``{"origin", "host", "sockets", "messages"}`` as JSON bytes: an origin (none, ours,
    foreign), a host (ours, foreign), 1..4 sockets at once, messages (well-formed, resizes
    of any size, or anything)."""
    size = st.integers(-(2**40), 2**40)
    message = st.one_of(
        st.builds(lambda w, h: json.dumps(["resize", {"width": w, "height": h}]), size, size),
        st.builds(lambda t: json.dumps(["stdin", t]), st.text(max_size=200)),
        st.sampled_from(['["ping", 1]', '["blur"]', '["focus"]', '["stdin", "q"]']),
        st.text(max_size=300),
        st.builds(lambda n: "[" * n, st.integers(0, 20_000)),
        st.builds(lambda n: '["stdin", "' + "x" * n + '"]', st.sampled_from([10, 70_000])),
    )
    value = {
        "origin": draw(st.sampled_from([None, "own", *_FOREIGN])),
        "host": draw(st.sampled_from(["own", "own", "evil.example", "127.0.0.1:1", "::"])),
        "sockets": draw(st.integers(1, 4)),
        "messages": draw(st.lists(message, max_size=6)),
    }
    return json.dumps(value).encode()


def check_serve(data: bytes) -> None:
    """One input against the server; see the module's docstring for what must hold."""
    import aiohttp

    try:
        value = json.loads(data)
        assert isinstance(value, dict)
    except (ValueError, AssertionError):
        value = {"messages": [data.decode("utf-8", "replace")]}
    srv = server()
    port = srv.port
    own = f"127.0.0.1:{port}"
    origin = value.get("origin")
    origin = f"http://{own}" if origin == "own" else origin
    host = own if value.get("host", "own") == "own" else str(value.get("host"))
    foreign = host != own or origin not in (None, f"http://{own}")
    headers = {"Host": host, **({"Origin": origin} if origin is not None else {})}
    most = 0

    async def one(http: aiohttp.ClientSession) -> None:
        nonlocal most
        url = f"ws://{own}/ws?width=80&height=24"
        try:
            ws = await http.ws_connect(url, headers=headers, max_msg_size=0)
        except aiohttp.WSServerHandshakeError as error:
            assert foreign and error.status == 403, (error.status, headers)
            return
        assert not foreign, f"a websocket with {headers} was accepted"
        async with ws:
            for text in value.get("messages", [])[:6]:
                if ws.closed:
                    break
                try:
                    await ws.send_str(str(text))
                except (ConnectionError, RuntimeError):
                    break
                most = max(most, len(standins()))
            await asyncio.sleep(0.05)
            most = max(most, len(standins()))

    async def run() -> None:
        async with aiohttp.ClientSession() as http:
            sockets = max(1, min(int(value.get("sockets", 1)), 4))
            await asyncio.gather(*(one(http) for _ in range(sockets)))
            async with http.get(f"http://{own}/", headers={"Host": own}) as r:
                assert r.status in (200, 503), r.status  # the server still answers

    asyncio.run(run())
    deadline = time.monotonic() + 15
    while srv.sessions or standins():
        assert time.monotonic() < deadline, "a session outlived its socket"
        most = max(most, len(standins()))
        time.sleep(0.02)
    assert most <= MAX_SESSIONS, f"{most} explorers under --max-sessions {MAX_SESSIONS}"
    for record in _SIZES.iterdir():
        width, height = map(int, record.read_text().split())
        record.unlink()
        assert width <= 500 and height <= 200, (width, height)


if __name__ == "__main__":
    _standin()
