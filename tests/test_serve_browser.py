"""The served explorer in a real browser: Debian's chromium, headless, driven by playwright.

A trainee opens the classroom URL (with its token), gives a name, answers the scenario
``preempted`` through key presses (wrong first, then right), and the results file gets one
line per answer. The truth is the scenario's own expected answer (explorer/training/scenarios.py:
crossed_pt_regs at frame #4), checked against the tool's verdict by tests/test_scenarios.py.

Never downloads a browser: set BACKCHAIN_CHROMIUM to another binary, or install Debian's
(``apt-get install chromium``); without one the test is skipped. BACKCHAIN_SCREENSHOTS=1
also writes the screenshot to docs/serve.png (the README's picture).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from explorer.training import scenarios
from tests.helpers import oracles
from tests.helpers.serving import ROOT, serve

CHROMIUM = os.environ.get("BACKCHAIN_CHROMIUM") or shutil.which("chromium") or ""
#: Quiet, self-contained headless chromium (root needs --no-sandbox; CI runs as root).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    oracles.needs("chromium"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


class Screen:
    """What the server sent the browser's terminal, to wait for text in it."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.mark = 0

    def received(self, payload: str | bytes) -> None:
        if isinstance(payload, bytes):
            self.data += payload

    def wait_for(self, text: str, pump: Callable[[int], None], timeout: float = 30) -> None:
        """Until ``text`` was drawn after the last wait (``pump`` lets the browser run)."""
        needle = text.encode()
        deadline = time.monotonic() + timeout
        while (found := self.data.find(needle, self.mark)) < 0:
            if time.monotonic() > deadline:
                tail = bytes(self.data[-2000:]).decode("utf-8", "replace")
                raise AssertionError(f"the explorer never drew {text!r}; last output:\n{tail}")
            pump(100)
        self.mark = found + len(needle)
        pump(300)  # the screen drawn is not yet focused: let it settle before keys


def _lines(path: Path, count: int, timeout: float = 20) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return [json.loads(line) for line in lines]
        time.sleep(0.1)
    raise AssertionError(f"{path} has {len(lines)} lines, not {count}")


def test_trainee_answers_an_exercise_in_the_browser(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    truth = scenarios.get("preempted").answer
    assert (truth.rule, truth.frame) == ("crossed_pt_regs", 4)
    results = tmp_path / "results.jsonl"
    token = "classroom-token"
    with (
        serve("--scenarios", "preempted", "--results", str(results), "--token", token) as served,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            screen = Screen()
            page.on("websocket", lambda ws: ws.on("framereceived", screen.received))
            page.goto(f"{served.url}/?token={token}")
            keys = page.keyboard
            pump = page.wait_for_timeout

            screen.wait_for("your name", pump)
            page.locator(".xterm-helper-textarea").focus()
            keys.type("Ada")
            keys.press("Enter")
            screen.wait_for("exercise preempted", pump)  # the title names the scenario
            screen.wait_for("find the failing frame and rule", pump)

            keys.press("a")  # a wrong answer first: frame 3, "reliable"
            screen.wait_for("your answer", pump)
            keys.type("3")
            keys.press("Enter")
            screen.wait_for("not quite", pump)
            first = _lines(results, 1)[0]

            keys.press("a")  # then the right one: frame 4, crossed_pt_regs
            screen.wait_for("hint after your previous answer", pump)
            keys.press("Backspace")
            keys.type("4")
            keys.press("Tab")  # the rule
            keys.press("Enter")
            pump(300)
            keys.press("ArrowDown")
            keys.press("ArrowDown")
            keys.press("Enter")
            pump(300)
            keys.press("Shift+Tab")  # back to the frame, where enter checks
            keys.press("Enter")
            screen.wait_for("Right", pump)  # the debriefing
            keys.press("Escape")  # back to the stack, its verdict shown now
            screen.wait_for("crossed_pt_regs", pump)
            keys.press("r")  # the whole walk, for the picture
            screen.wait_for("walk 10/10", pump)
            pump(3500)  # until the hint's notification has gone
            shot = page.screenshot(path=str(tmp_path / "serve.png"))
        except AssertionError as exc:
            failed = tmp_path / "failed.png"
            page.screenshot(path=str(failed))
            raise AssertionError(f"{exc}\n(the page then: {failed})") from None
        finally:
            browser.close()

    lines = _lines(results, 2)
    assert len(lines) == 2
    second = lines[1]
    assert first == lines[0]
    for line in lines:
        assert line["trainee"] == "Ada" and line["scenario"] == "preempted"
        assert line["pid"] == scenarios.get("preempted").pid
        assert isinstance(line["session"], str) and len(line["session"]) == 12
        assert line["revealed"] is False
    assert first["session"] == second["session"]
    assert (first["answer"], first["correct"], first["hints"]) == ("reliable at #3", False, 0)
    assert (second["answer"], second["correct"], second["hints"]) == (
        "crossed_pt_regs at #4",
        True,
        1,
    )
    assert str(second["time"]).endswith("+00:00") and float(second["elapsed"]) > 0
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 20_000  # a drawn page, not blank
    if os.environ.get("BACKCHAIN_SCREENSHOTS") == "1":
        (ROOT / "docs" / "serve.png").write_bytes(shot)


def test_export_downloads_in_an_offline_browser(tmp_path: Path) -> None:
    """Issue 27 item 1, issue 23 items 6 and 8: the page asks nothing of any other host (the
    browser is offline but for the server), and ``x`` in a stack gives the browser a download
    (named by the tool: session, pid, comm) while nothing is written on the server."""
    from playwright.sync_api import Download, Route, sync_playwright

    before = set(ROOT.rglob("*.md"))
    with serve("--idle-timeout", "0") as served, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            elsewhere: list[str] = []

            def offline(route: Route) -> None:
                if route.request.url.startswith(served.url + "/"):
                    route.continue_()
                else:
                    elsewhere.append(route.request.url)
                    route.abort()

            context.route("**/*", offline)
            page = context.new_page()
            screen = Screen()
            page.on("websocket", lambda ws: ws.on("framereceived", screen.received))
            page.goto(served.url + "/")
            pump = page.wait_for_timeout
            screen.wait_for(" tasks: ", pump, timeout=60)  # the sample is open and checked
            page.locator(".xterm-helper-textarea").focus()
            page.keyboard.press("Enter")  # the first task's stack
            screen.wait_for("frame #0", pump)
            downloads: list[Download] = []  # via a tab of its own, reported on this page
            page.on("download", lambda d: downloads.append(d))
            page.keyboard.press("x")
            for _ in range(100):
                if downloads:
                    break
                pump(100)
            (download,) = downloads
            exported = Path(download.path()).read_text()
            name = download.suggested_filename
        finally:
            browser.close()
    assert elsewhere == []
    assert name.startswith("backchain-") and name.endswith(".md"), name
    assert "### Stack of " in exported
    assert set(ROOT.rglob("*.md")) == before
