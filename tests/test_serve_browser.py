"""The served explorer in a real browser: Debian's chromium, headless, driven by playwright.

A trainee opens the classroom URL (with its token) in a browser that reaches nothing else,
gives a name, picks an exercise, answers it through key presses (wrong first, then right) and
downloads the walk; the results file gets one line per answer and the trainer's page shows
them. The truth is the scenario's own expected answer (explorer/training/scenarios.py:
crossed_pt_regs at frame #4), checked against the tool's verdict by tests/test_scenarios.py.

Never downloads a browser: set BACKCHAIN_CHROMIUM to another binary, or install Debian's
(``apt-get install chromium``); without one the test is skipped. BACKCHAIN_SCREENSHOTS=1
also writes the README's pictures: docs/classroom-picker.png, docs/classroom-exercise.png,
docs/serve.png (after the answer) and docs/classroom-results.png.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from explorer.training import scenarios
from tests.helpers import oracles
from tests.helpers.serving import ROOT, Served, serve

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


def offline_context(browser: Any, served: Served) -> tuple[Any, list[str]]:
    """A browser context that reaches nothing but the server (as in an offline classroom),
    and the list of every other address it asked for."""
    from playwright.sync_api import Route

    elsewhere: list[str] = []

    def offline(route: Route) -> None:
        if route.request.url.startswith(served.url + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.route("**/*", offline)
    return context, elsewhere


def downloaded(downloads: list[Any], pump: Callable[[int], None]) -> tuple[str, str]:
    """The one download the page got (waiting up to 10 s): its suggested name and text."""
    for _ in range(100):
        if downloads:
            break
        pump(100)
    (download,) = downloads
    return download.suggested_filename, Path(download.path()).read_text()


def _trainer_url(served: Served, token: str) -> str:
    """The trainer's results URL from the server's banner (it carries the trainer's key)."""
    (line,) = [line for line in served.banner if "trainer's results:" in line]
    url = line.split("trainer's results:", 1)[1].strip()
    assert url.startswith(f"{served.url}/results?token={token}&key="), url
    return url


def test_a_classroom_in_an_offline_browser(tmp_path: Path) -> None:
    """Issue 23: a trainee in a browser that reaches nothing but the server gives a name,
    picks an exercise in the picker (shown by number, kernel and rules only), answers it once
    wrong and once right through key presses, downloads the walk; the trainer's results page
    shows both answers and the scenarios nobody tried. The truth is the scenario's expected
    answer (explorer/training/scenarios.py: crossed_pt_regs at frame #4), checked against the tool's
    verdict by tests/test_scenarios.py."""
    from playwright.sync_api import Download, sync_playwright

    truth = scenarios.get("preempted").answer
    assert (truth.rule, truth.frame) == ("crossed_pt_regs", 4)
    number = scenarios.number("preempted")
    results = tmp_path / "results.jsonl"
    token = "classroom-token"
    offered = "preempted,chain-loop,too-deep"
    shots: dict[str, bytes] = {}
    with (
        serve("--scenarios", offered, "--results", str(results), "--token", token) as served,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context, elsewhere = offline_context(browser, served)
            page = context.new_page()
            screen = Screen()
            page.on("websocket", lambda ws: ws.on("framereceived", screen.received))
            downloads: list[Download] = []
            page.on("download", lambda d: downloads.append(d))
            page.goto(f"{served.url}/?token={token}")
            keys = page.keyboard
            pump = page.wait_for_timeout

            def press(*names: str) -> None:  # as a person types: one key, then a moment
                for name in names:
                    keys.press(name)
                    pump(150)

            screen.wait_for("your name", pump)
            page.locator(".xterm-helper-textarea").focus()
            keys.type("Ada")
            press("Enter")
            screen.wait_for(
                f"exercise {number} of {len(scenarios.CATALOG)}", pump
            )  # the picker: numbers only
            shots["picker"] = page.screenshot()
            press("Enter")  # the first offered: preempted
            screen.wait_for("find the failing frame and rule", pump, timeout=60)
            press("n", "n", "n", "n")  # four more frames; the walk's length stays unknown
            screen.wait_for("5 frames so far", pump)
            pump(2500)  # until the "building" notification has gone
            shots["exercise"] = page.screenshot()

            press("a")  # a wrong answer first: "reliable"
            screen.wait_for("your answer", pump)
            press("Enter")  # the rule list opens
            screen.wait_for("task_running", pump)  # its last entry
            press("ArrowDown", "Enter")  # reliable, chosen: no frame to name, on to Check
            press("Enter")
            screen.wait_for("not quite", pump)
            first = _lines(results, 1)[0]

            press("a")  # then the right one: crossed_pt_regs at frame #4
            screen.wait_for("hint after your previous answer", pump)
            press("Enter")
            screen.wait_for("task_running", pump)
            press("ArrowDown", "ArrowDown", "Enter")  # reliable -> crossed_pt_regs: its frame
            screen.wait_for("failing frame: its number", pump)
            keys.type("4")
            press("Enter", "Enter")  # on to Check, then check
            screen.wait_for("Right", pump)  # the debriefing
            press("Escape")  # back to the stack, its verdict shown now
            screen.wait_for("crossed_pt_regs", pump)
            press("r")  # the whole walk, for the picture
            screen.wait_for("walk 10/10", pump)
            pump(4000)  # until the hint's notification has gone
            shots["answered"] = page.screenshot()

            press("x")  # the export: a download, nothing written on the server
            name, exported = downloaded(downloads, pump)

            trainer = context.new_page()
            trainer.goto(_trainer_url(served, token))
            report = trainer.inner_text("#results")
            shots["results"] = trainer.screenshot(full_page=True)
            trainer.goto(f"{served.url}/results?token={token}")  # a trainee: no key
            refused = trainer.inner_text("body")
        except AssertionError as exc:
            failed = tmp_path / "failed.png"
            page.screenshot(path=str(failed))
            raise AssertionError(f"{exc}\n(the page then: {failed})") from None
        finally:
            browser.close()

    assert elsewhere == []
    lines = _lines(results, 2)
    assert len(lines) == 2 and first == lines[0]
    second = lines[1]
    for line in lines:
        assert line["trainee"] == "Ada" and line["scenario"] == "preempted"
        assert line["pid"] == scenarios.get("preempted").pid
        assert isinstance(line["session"], str) and len(line["session"]) == 12
        assert line["revealed"] is False
    assert first["session"] == second["session"]
    assert (first["answer"], first["correct"], first["hints"]) == ("reliable", False, 0)
    assert (second["answer"], second["correct"], second["hints"]) == (
        "crossed_pt_regs at #4",
        True,
        1,
    )
    assert str(second["time"]).endswith("+00:00") and float(second["elapsed"]) > 0
    # the download: named by the tool (session, scenario, pid, comm), the story and the walk
    assert name == f"backchain-{first['session']}-preempted-100-cat.md", name
    assert (
        exported.startswith("## Scenario preempted: ") and "### Stack of cat (pid 100" in exported
    )
    # the trainer's page: both answers of Ada's session, and the two scenarios nobody tried
    who = f"Ada · {str(first['session'])[:6]}"
    assert "reliable ✗; crossed_pt_regs at #4 ✓" in report and who in report
    for untried in ("chain-loop", "too-deep"):
        row = next(line for line in report.splitlines() if untried in line)
        assert row.split("\t")[-1] == "not tried", row
    assert "2 of 3 scenarios not tried by anyone" in report
    assert "needs its token" in refused or "trainer" in refused
    for picture in shots.values():
        assert picture[:8] == b"\x89PNG\r\n\x1a\n" and len(picture) > 20_000  # drawn
    if os.environ.get("BACKCHAIN_SCREENSHOTS") == "1":
        for shot, file in (
            ("picker", "classroom-picker.png"),
            ("exercise", "classroom-exercise.png"),
            ("answered", "serve.png"),
            ("results", "classroom-results.png"),
        ):
            (ROOT / "docs" / file).write_bytes(shots[shot])


def test_export_downloads_in_an_offline_browser(tmp_path: Path) -> None:
    """Issue 27 item 1, issue 23 items 6 and 8: the page asks nothing of any other host (the
    browser is offline but for the server), and ``x`` in a stack gives the browser a download
    (named by the tool: session, pid, comm) while nothing is written on the server."""
    from playwright.sync_api import Download, sync_playwright

    before = set(ROOT.rglob("*.md"))
    with serve("--idle-timeout", "0") as served, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context, elsewhere = offline_context(browser, served)
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
            name, exported = downloaded(downloads, pump)
        finally:
            browser.close()
    assert elsewhere == []
    assert name.startswith("backchain-") and name.endswith(".md"), name
    assert "### Stack of " in exported
    assert set(ROOT.rglob("*.md")) == before


def test_a_livepatch_exercise_in_an_offline_browser(tmp_path: Path) -> None:
    """Issue 21 item 4: the stalled livepatch exercise in the browser classroom. The trainee
    finds the blocking task in the task list, opens its stack (no verdict, no kernel line),
    answers once wrong (it is running) and once right (sleeping on busymod_work_func); the
    truth is the kernel's own line in the sample's facts.json (explorer/training/klp.py,
    checked against backchain's replay by tests/test_klp_exercises.py)."""
    from playwright.sync_api import sync_playwright

    from explorer.training import klp

    if not any(s.name == "livepatch-stalled" for s in klp.catalog()):
        pytest.skip("no real livepatch sample bundled")
    (truth,) = scenarios.get("livepatch-stalled").answer.blockers
    assert (truth.pid, truth.cause, truth.function) == (43, "sleeping_on", "busymod_work_func")
    number = scenarios.number("livepatch-stalled")
    results = tmp_path / "results.jsonl"
    token = "classroom-token"
    with (
        serve(
            "--scenarios",
            "livepatch-stalled,livepatch-reversed",
            "--results",
            str(results),
            "--token",
            token,
        ) as served,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context, elsewhere = offline_context(browser, served)
            page = context.new_page()
            screen = Screen()
            page.on("websocket", lambda ws: ws.on("framereceived", screen.received))
            page.goto(f"{served.url}/?token={token}")
            keys = page.keyboard
            pump = page.wait_for_timeout

            def press(*names: str) -> None:
                for name in names:
                    keys.press(name)
                    pump(150)

            screen.wait_for("your name", pump)
            page.locator(".xterm-helper-textarea").focus()
            keys.type("Ada")
            press("Enter")
            screen.wait_for(f"exercise {number} of {len(scenarios.CATALOG)}", pump)
            press("Enter")  # the first offered: the stalled transition
            screen.wait_for("who blocks?", pump, timeout=90)
            screen.wait_for("enter: stack", pump, timeout=60)  # every task checked
            pump(1000)
            before = bytes(screen.data).decode("utf-8", "replace")
            press("/")
            screen.wait_for("pid:1", pump)  # the filter, focused
            keys.type("pid:43")
            pump(500)
            press("Enter", "Enter")  # the filter, then the task's stack
            screen.wait_for("which task blocks the transition", pump, timeout=60)
            press("r")  # the whole walk
            pump(1000)
            seen = bytes(screen.data).decode("utf-8", "replace")
            press("a")  # a wrong answer first: it is running
            screen.wait_for("your answer", pump)
            press("Enter", "Enter")  # the pid (43, from the stack) done; the cause list opens
            screen.wait_for("has an unreliable stack", pump)
            press("ArrowDown", "ArrowDown", "Enter")  # "is running": no function, on to Check
            press("Enter")
            screen.wait_for("not quite", pump)
            first = _lines(results, 1)[0]
            press("a")  # then the right one
            screen.wait_for("hint after your previous answer", pump)
            press("Enter", "Enter")
            screen.wait_for("has an unreliable stack", pump)
            press("ArrowUp", "Enter")  # "is sleeping on function": its name next
            screen.wait_for("as the kernel names it", pump)
            keys.type("busymod_work_func")
            press("Enter", "Enter")  # on to Check, then check
            screen.wait_for("Right", pump)
            press("Escape")
            screen.wait_for("sleeping on function busymod_work_func", pump)
            trainer = context.new_page()
            trainer.goto(_trainer_url(served, token))
            report = trainer.inner_text("#results")
        except AssertionError as exc:
            failed = tmp_path / "failed.png"
            page.screenshot(path=str(failed))
            raise AssertionError(f"{exc}\n(the page then: {failed})") from None
        finally:
            browser.close()
    assert elsewhere == []
    for text in (before, seen):  # before the answer: no kernel line, no mark
        assert "is sleeping on" not in text and "blocks klp" not in text
        assert "livepatch-stalled" not in text
    lines = _lines(results, 2)
    assert [(line["answer"], line["correct"]) for line in lines] == [
        ("pid 43 running", False),
        ("pid 43 sleeping_on busymod_work_func", True),
    ]
    assert first == lines[0] and {line["scenario"] for line in lines} == {"livepatch-stalled"}
    assert "pid 43 running ✗; pid 43 sleeping_on busymod_work_func ✓" in report
    row = next(line for line in report.splitlines() if "livepatch-reversed" in line)
    assert row.split("\t")[-1] == "not tried", row
