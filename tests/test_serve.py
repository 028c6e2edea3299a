"""``backchain serve``: token, session limit and idle timeout, against a real server process
on a free 127.0.0.1 port, driven by an aiohttp client speaking textual-serve's websocket
protocol (the browser test is tests/test_serve_browser.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from explorer.serve.policy import is_loopback, resolve_token, token_ok
from tests.helpers.serving import (
    LOADED,
    ROOT,
    client,
    first_screen,
    serve,
    until_closed,
    ws_url,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_token_refused_without_accepted_with() -> None:
    with serve("--token", "t0ken-42", "--idle-timeout", "0") as served:

        async def run() -> None:
            async with client() as http:
                async with http.get(served.url + "/") as r:
                    assert r.status == 403
                    assert "needs its token" in await r.text()
                async with http.get(served.url + "/?token=wrong") as r:
                    assert r.status == 403
                with pytest.raises(aiohttp.WSServerHandshakeError) as exc:
                    await http.ws_connect(ws_url(served))
                assert exc.value.status == 403
                assert served.children() == []  # no explorer was started for them
                # The token in the URL: the page, and a cookie for its websocket.
                async with http.get(served.url + "/?token=t0ken-42") as r:
                    assert r.status == 200
                    page = await r.text()
                    assert 'data-session-websocket-url="ws://127.0.0.1:' in page
                    assert r.cookies["backchain_token"].value == "t0ken-42"
                async with http.ws_connect(ws_url(served)) as ws:
                    await first_screen(ws, b"vmcore")  # the bundled sample is open
                    assert len(served.children()) == 1

        asyncio.run(run())


def test_session_limit_full_page_then_free_again() -> None:
    with serve("--max-sessions", "1", "--idle-timeout", "0") as served:

        async def run() -> None:
            async with client() as http:
                async with http.get(served.url + "/") as r:
                    assert r.status == 200
                first = await http.ws_connect(ws_url(served))
                await first_screen(first, LOADED)
                async with http.get(served.url + "/") as r:
                    assert r.status == 503
                    text = await r.text()
                    assert (
                        "The classroom is full" in text
                        and "The one explorer session is in use" in text
                    )
                second = await http.ws_connect(ws_url(served))
                msg = await second.receive(timeout=10)
                assert msg.type == aiohttp.WSMsgType.CLOSE
                assert msg.data == 1013 and msg.extra == "the classroom is full"
                assert len(served.children()) == 1
                await first.send_json(["stdin", "q"])  # the trainee quits the explorer
                await until_closed(first, 20)
                for _ in range(100):
                    async with http.get(served.url + "/") as r:
                        if r.status == 200:
                            break
                    await asyncio.sleep(0.1)
                assert r.status == 200

        asyncio.run(run())


def test_idle_session_ends_but_an_active_one_does_not() -> None:
    with serve("--idle-timeout", "2") as served:

        async def run() -> None:
            async with client() as http, http.ws_connect(ws_url(served)) as ws:
                await first_screen(ws, LOADED, keepalive=True)
                (explorer,) = served.children()
                # Input every 0.5 s for 4 s (twice the timeout): the session stays.
                for _ in range(8):
                    await ws.send_json(["stdin", "j"])
                    quiet = time.monotonic()  # the last input: the idle time counts from here
                    await asyncio.sleep(0.5)
                    assert not ws.closed
                msg = await until_closed(ws, 30)
                waited = time.monotonic() - quiet
                assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
                assert 1.9 < waited < 20  # the 2 s timeout, not earlier
            for _ in range(100):  # the explorer process of the session quits too
                if explorer not in served.children():
                    break
                await asyncio.sleep(0.1)
            assert served.children() == []

        asyncio.run(run())


def test_token_policy() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert resolve_token("127.0.0.1", None) == (None, False)
    assert resolve_token("127.0.0.1", "abc") == ("abc", False)
    token, generated = resolve_token("0.0.0.0", None)
    assert generated and token is not None and len(token) >= 20
    assert resolve_token("0.0.0.0", None)[0] != token
    with pytest.raises(ValueError):
        resolve_token("0.0.0.0", "")
    assert token_ok(None, None) and token_ok("a", "a")
    assert not token_ok("a", None) and not token_ok("a", "b")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/no/such/dump"], "/no/such/dump: no such file"),
        (["--scenarios", "nope"], "nope"),
        (["--results", "/no/such/dir/r.jsonl"], "cannot write the results file"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "explorer", "serve", *args, "--port", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2, run.stderr
    assert run.stderr.count("\n") == 1 and message in run.stderr
    assert run.stdout == ""


def test_scenarios_serves_the_picker(tmp_path: Path) -> None:
    """``--scenarios a,b`` runs ``scenarios open --only a,b`` per session: the picker."""
    results = tmp_path / "r.jsonl"
    with serve("--scenarios", "preempted,chain-loop", "--results", str(results)) as served:
        assert any("exercise answers go to" in line for line in served.banner)

        async def run() -> None:
            async with client() as http, http.ws_connect(ws_url(served)) as ws:
                await first_screen(ws, b"your name")
                await ws.send_json(["stdin", "Lin\r"])
                await first_screen(ws, b"2 exercises, 0 solved")

        asyncio.run(run())
    assert results.exists() and results.read_text() == ""  # created, nothing answered yet


def test_trainers_results_need_the_trainers_key(tmp_path: Path) -> None:
    """Issue 23: the results page tells the answers, and trainees have the token: it needs
    the trainer's key (printed in the banner only); names are shown as text."""
    from explorer.training import results

    path = tmp_path / "r.jsonl"
    attempt = results.Attempt(
        "0123456789ab", "<b>Ada</b>", "preempted", 100, "reliable", False, 0, "t", 1.0
    )
    results.append(str(path), attempt)
    offered = "preempted,too-deep"
    with serve("--scenarios", offered, "--results", str(path), "--token", "t0k") as served:
        (line,) = [line for line in served.banner if "trainer's results:" in line]
        url = line.split("trainer's results:")[1].strip()
        assert url.startswith(served.url + "/results?token=t0k&key=")
        key = url.rpartition("key=")[2]
        assert len(key) >= 16

        async def run() -> None:
            async with client() as http:
                async with http.get(f"{served.url}/results?key={key}") as r:
                    assert r.status == 403  # the token too
                for wrong in ("", "&key=", "&key=" + key[:-1]):
                    async with http.get(f"{served.url}/results?token=t0k{wrong}") as r:
                        assert r.status == 403
                async with http.get(url) as r:
                    assert r.status == 200
                    page = await r.text()
                assert "&lt;b&gt;Ada&lt;/b&gt; · 012345" in page and "<b>Ada" not in page
                assert "reliable ✗" in page and "1 of 2 scenarios not tried" in page
                assert "too-deep</td><td>0</td>" in page

        asyncio.run(run())
