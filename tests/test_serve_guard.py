"""``backchain serve`` against a hostile network and hostile browsers (issue 27 items 1, 2,
12; issue 23 items 6, 8): foreign origins and hosts, huge resizes, malformed messages,
sockets that come and go, sessions whose explorer will not quit, tokens in the log, exports.

Real servers on free 127.0.0.1 ports (a subprocess, or in this process for the process-group
test), driven by aiohttp speaking textual-serve's websocket protocol; the processes checked
are the real ones in /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest

from explorer.cli.serve import urls
from explorer.serve import policy
from explorer.serve.policy import (
    MAX_HEIGHT,
    MAX_WIDTH,
    allowed_hosts,
    clamp_size,
    host_ok,
    origin_ok,
)
from explorer.serve.server import (
    CLOSE_MALFORMED,
    MalformedMessage,
    ServeConfig,
    parse_message,
)
from tests.helpers.serving import (
    LOADED,
    ROOT,
    Served,
    client,
    first_screen,
    in_process,
    serve,
    session_url,
    until_closed,
    ws_url,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

TOKEN = "t0ken-42"


def _alive(pid: int) -> bool:
    """``pid`` is a process that has not exited (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# -- policy, as plain functions ------------------------------------------------------------


def test_host_and_origin_policy() -> None:
    hosts = allowed_hosts("127.0.0.1")
    assert host_ok("127.0.0.1:8000", hosts, 8000) and host_ok("localhost:8000", hosts, 8000)
    assert host_ok("[::1]:8000", hosts, 8000)
    assert not host_ok("127.0.0.1:8001", hosts, 8000)  # another port
    assert not host_ok("evil.example:8000", hosts, 8000)  # DNS rebinding: a foreign name
    assert not host_ok(None, hosts, 8000) and not host_ok("", hosts, 8000)
    assert not host_ok("u@127.0.0.1:8000", hosts, 8000)
    assert origin_ok(None, hosts, 8000)  # not a browser's cross-site request
    assert origin_ok("http://127.0.0.1:8000", hosts, 8000)
    assert not origin_ok("http://evil.example", hosts, 8000)
    assert not origin_ok("http://127.0.0.1:9999", hosts, 8000)
    assert not origin_ok("null", hosts, 8000) and not origin_ok("file://", hosts, 8000)
    # loopback binds never allow the machine's other names; wildcard binds do
    assert "0.0.0.0" not in hosts
    wide = allowed_hosts("0.0.0.0")
    assert {n.lower() for n in policy.machine_names()} <= wide
    assert set(policy.machine_addresses()) <= wide


def test_terminal_size_is_clamped() -> None:
    assert clamp_size(2000, 2000) == (MAX_WIDTH, MAX_HEIGHT) == (500, 200)
    assert clamp_size(-5, 0) == (policy.MIN_WIDTH, policy.MIN_HEIGHT)
    assert clamp_size(120, 40) == (120, 40)
    assert clamp_size("80", 24) is None and clamp_size(True, 24) is None
    assert parse_message('["resize", {"width": 2000, "height": 2000}]') == ("resize", (500, 200))
    for bad in ("{", "[]", "{}", "[1]", '["stdin", 5]', '["resize", {"width": "x"}]', "[" * 5000):
        with pytest.raises(MalformedMessage):
            parse_message(bad)


def test_wildcard_bind_prints_one_url_per_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "machine_addresses", lambda: ["192.0.2.7", "2001:db8::7"])
    assert urls("0.0.0.0", 8000, "tok") == [
        "http://192.0.2.7:8000/?token=tok",
        "http://[2001:db8::7]:8000/?token=tok",
    ]
    monkeypatch.setattr(policy, "machine_addresses", lambda: [])
    monkeypatch.setattr(policy, "machine_names", lambda: ["classroom-pc"])
    assert urls("0.0.0.0", 8000, None) == ["http://classroom-pc:8000/"]
    assert urls("127.0.0.1", 8000, None) == ["http://127.0.0.1:8000/"]


# -- a real server ---------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, TOKEN])
def test_foreign_origin_or_host_is_refused(token: str | None) -> None:
    """A page elsewhere cannot open a websocket to the classroom (cross-site websocket
    hijacking), nor a name rebound to 127.0.0.1 reach it (DNS rebinding): with or without
    token, pages and websocket."""
    args = ["--idle-timeout", "0"] + (["--token", token] if token else [])
    query = f"&token={token}" if token else ""
    with serve(*args) as served:
        port = served.url.rsplit(":", 1)[1]

        async def run() -> None:
            async with client() as http:
                for headers in (
                    {"Origin": "http://evil.example"},
                    {"Origin": "null"},
                    {"Origin": f"http://127.0.0.1:{int(port) + 1}"},
                    {"Host": f"evil.example:{port}"},
                    {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"},
                ):
                    with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
                        await http.ws_connect(ws_url(served) + query, headers=headers)
                    assert exc.value.status == 403
                    async with http.get(served.url + "/?" + query[1:], headers=headers) as r:
                        assert r.status == 403 and "only its own address" in await r.text()
                assert served.children() == []  # no explorer was started for them
                # the classroom's own origin is welcome
                own = {"Origin": served.url}
                async with http.ws_connect(ws_url(served) + query, headers=own) as ws:
                    await first_screen(ws, b"vmcore")
                    assert len(served.children()) == 1

        asyncio.run(run())


def _drawn_width(screen: bytes) -> int:
    """The widest line the explorer drew (escape sequences left out; one cell a character
    on these screens)."""
    import re

    control = rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>]"
    moves = re.sub(rb"\x1b\[[0-9;]*H", b"\n", screen)  # a cursor move starts another line
    text = re.sub(control, b"", moves).decode("utf-8", "replace")
    return max(len(line) for line in text.split("\n"))


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "started-anew"])
def test_huge_resize_is_clamped_and_the_session_stays_small(fork: bool) -> None:
    """Before: a 2000x2000 resize grew a session to 7.4 GB. Now the explorer gets 500x200
    at most (the screen it draws is no wider) and stays small; whether forked by the
    zygote (its environment set after the fork: /proc shows the zygote's) or started anew
    (its environment in /proc)."""
    with serve("--idle-timeout", "0", *([] if fork else ["--no-fork"])) as served:

        async def run() -> None:
            async with client() as http:
                url = served.url.replace("http:", "ws:") + "/ws?width=3000&height=3000"
                async with http.ws_connect(url) as ws:
                    screen = await first_screen(ws, LOADED, keepalive=False)
                    assert _drawn_width(screen) == 500
                    (explorer,) = served.children()
                    env = Path(f"/proc/{explorer}/environ").read_bytes().split(b"\0")
                    if not fork:
                        assert b"COLUMNS=500" in env and b"ROWS=200" in env
                    for _ in range(3):
                        await ws.send_json(["resize", {"width": 2000, "height": 2000}])
                    peak = 0.0
                    deadline = time.monotonic() + 8
                    while time.monotonic() < deadline:
                        try:
                            await ws.receive(timeout=0.2)
                        except TimeoutError:
                            pass
                        peak = max(peak, _rss_mb(explorer))
                    assert peak < 600, f"{peak:.0f} MB"

        asyncio.run(run())


def test_rapid_connect_close_never_exceeds_max_sessions() -> None:
    """Before: 6 explorers ran under --max-sessions 3. Sockets opened and dropped in bursts
    (some before their explorer drew anything): never more than 3 explorer processes."""
    with serve("--max-sessions", "3", "--idle-timeout", "0") as served:
        most = 0
        done = False

        async def sample() -> None:
            nonlocal most
            while not done:
                most = max(most, len(served.children()))
                await asyncio.sleep(0.02)

        async def one(http: aiohttp.ClientSession, wait: float) -> None:
            try:
                ws = await http.ws_connect(ws_url(served))
            except aiohttp.WSServerHandshakeError:
                return
            await asyncio.sleep(wait)
            await ws.close()

        async def run() -> None:
            nonlocal done
            sampler = asyncio.create_task(sample())
            async with client() as http:
                for burst in range(6):
                    await asyncio.gather(*(one(http, 0.05 * (i % 4)) for i in range(6)))
                    if burst % 2:
                        await asyncio.sleep(0.5)
                for _ in range(300):  # every explorer goes
                    if not served.children():
                        break
                    await asyncio.sleep(0.1)
            done = True
            await sampler
            assert served.children() == []

        asyncio.run(run())
        assert 1 <= most <= 3


def test_malformed_message_is_one_log_line_and_ends_the_session() -> None:
    with serve("--idle-timeout", "0") as served:

        async def run() -> None:
            async with client() as http, http.ws_connect(ws_url(served)) as ws:
                await first_screen(ws, b"vmcore")
                (explorer,) = served.children()
                await ws.send_str('["resize", {"width": "wide"}]')
                msg = await until_closed(ws, 20)
                assert msg.data == CLOSE_MALFORMED
            for _ in range(100):
                if not _alive(explorer):
                    break
                await asyncio.sleep(0.1)
            assert not _alive(explorer)

        asyncio.run(run())
        time.sleep(0.5)
    bad = [line for line in served.log if "malformed" in line]
    assert len(bad) == 1 and "resize without an integer" in bad[0]
    assert not any("Traceback" in line for line in served.log)


def test_log_is_quiet_and_never_shows_a_token() -> None:
    """Default: one line when a session starts, one when it ends; ``-v``: a line per request,
    its path without the query (no token, right or wrong, in any line)."""
    for verbose in (False, True):
        with serve("--token", TOKEN, *(["-v"] if verbose else [])) as served:

            async def run(served: Served = served) -> None:
                async with client() as http:
                    for token in ("wrong-token", TOKEN):
                        async with http.get(f"{served.url}/?token={token}") as r:
                            await r.read()
                    async with http.get(f"{served.url}/static/js/textual.js") as r:
                        assert r.status == 200
                    async with http.get(f"{served.url}/static/") as r:  # no folder listing
                        assert r.status in (403, 404) and "textual.js" not in await r.text()
                    async with http.ws_connect(ws_url(served) + f"&token={TOKEN}") as ws:
                        await first_screen(ws, b"vmcore")
                        await ws.send_json(["stdin", "q"])
                        await until_closed(ws, 20)
                    for _ in range(100):
                        if not served.children():
                            break
                        await asyncio.sleep(0.1)

            asyncio.run(run())
            time.sleep(0.5)
            log = list(served.log)
        assert not any(TOKEN in line or "wrong-token" in line for line in log), log
        sessions = [line for line in log if " session " in line]
        assert len(sessions) == 2 and "started" in sessions[0] and "ended" in sessions[1], log
        if verbose:
            assert any("GET /static/js/textual.js 200" in line for line in log), log
        else:
            assert len(log) == 2, log


def test_page_loads_nothing_from_elsewhere() -> None:
    with serve() as served:

        async def run() -> str:
            async with client() as http, http.get(served.url + "/") as r:
                return await r.text()

        page = asyncio.run(run())
    import re

    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert links and all(link.startswith(served.url + "/static/") for link in links), links
    assert "googleapis" not in page and "@import" not in page


def test_export_is_a_browser_download_and_writes_nothing_on_the_server(tmp_path: Path) -> None:
    """Issue 27 item 1: ``x`` in a served session delivers the walk to the browser (its
    name: the session's id, the pid, the comm) and writes no file on the server."""
    before = {p for p in ROOT.rglob("*.md")}
    with serve("--idle-timeout", "0") as served:

        async def run() -> tuple[str, str]:
            async with client() as http, http.ws_connect(ws_url(served)) as ws:
                await first_screen(ws, LOADED)
                await ws.send_json(["stdin", "\r"])  # the first task's stack
                await first_screen(ws, b"frame #0")
                await ws.send_json(["stdin", "x"])
                deadline = time.monotonic() + 30
                while True:
                    assert time.monotonic() < deadline, "no download offered"
                    msg = await ws.receive(timeout=30)
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        kind, key = json.loads(msg.data)
                        if kind == "deliver_file_start":
                            break
                async with http.get(f"{served.url}/download/{key}") as r:
                    assert r.status == 200
                    return r.headers["Content-Disposition"], await r.text()

        disposition, text = asyncio.run(run())
    assert disposition.startswith("attachment; filename=backchain-") and disposition.endswith(".md")
    assert "### Stack of " in text
    assert {p for p in ROOT.rglob("*.md")} == before  # nothing written on the server


def test_session_process_group_is_killed_when_its_socket_goes(tmp_path: Path) -> None:
    """An explorer that ignores quit and SIGTERM, with a child of its own: both are gone
    within the grace periods once the websocket closes, and the slot stays taken until
    then."""
    pids = tmp_path / "pids"
    stubborn = textwrap.dedent(
        f"""
        import os, signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen(["sleep", "300"])
        open({str(pids)!r}, "w").write(f"{{os.getpid()}} {{child.pid}}")
        sys.stdout.write("__GANGLION__\\n"); sys.stdout.flush()
        while True:
            time.sleep(1)
        """
    )
    config = ServeConfig(argv=(sys.executable, "-c", stubborn), port=0, idle_timeout=0)

    async def run() -> None:
        async with in_process(config) as server, client() as http:
            ws = await http.ws_connect(session_url(server))
            for _ in range(200):
                if pids.exists() and pids.read_text():
                    break
                await asyncio.sleep(0.05)
            leader, child = map(int, pids.read_text().split())
            assert os.getpgid(child) == leader  # its own process group
            await ws.close()
            started = time.monotonic()
            while _alive(leader) or _alive(child):
                assert server.sessions, "the slot was freed before the explorer was gone"
                assert time.monotonic() - started < 15
                await asyncio.sleep(0.1)
            for _ in range(50):
                if not server.sessions:
                    break
                await asyncio.sleep(0.1)
            assert not server.sessions

    asyncio.run(run())


def test_serve_is_not_a_shell_command() -> None:
    """Issue 27 item 12: the shell cannot start a server."""
    import subprocess

    from explorer.training.bundled import default_sample

    run = subprocess.run(
        [sys.executable, "-m", "explorer", "shell", default_sample()],
        input="serve --port 1\nquit\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "'serve' is not a shell command" in run.stderr
