"""Driving the explorer in tests: the app on a dump, waiting for its workers, reading what a
screen shows, answering an exercise."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select

from explorer.model.kernel import Options
from explorer.tui.app import BackchainApp
from explorer.tui.screens.answer import AnswerForm
from explorer.tui.screens.stack import StackScreen
from explorer.tui.widgets.error import ErrorPanel

REAL = Path(__file__).resolve().parents[2] / "samples" / "real"


BUSY = REAL / "bpo12-6.12-busy" / "vmcore.zst"


PANIC = REAL / "bpo12-6.12-panic" / "vmcore.zst"


SIZE = (120, 40)


def sync(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test with asyncio (no async pytest plugin needed)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def make_app(path: Path, export_dir: Path | None = None) -> BackchainApp:
    """An app with animations off (deterministic)."""
    app = BackchainApp(str(path), Options(), export_dir=str(export_dir or "."))
    app.animation_level = "none"
    return app


async def wait_checked(app: BackchainApp, pilot: Pilot[None], timeout: float = 20) -> None:
    """Wait until the dump is open and every task is judged (or the load failed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause(0.02)
        if app.overview.checked or app.overview.query_one(ErrorPanel).display:
            await app.workers.wait_for_complete()
            await pilot.pause()
            return
    raise AssertionError("the explorer did not finish loading")


def cells(table: DataTable[object], row: int) -> list[str]:
    """Plain text of a table row."""
    return [str(getattr(c, "plain", c)) for c in table.get_row_at(row)]


def plain(widget: object) -> str:
    """The text a Static shows, without markup."""
    content = getattr(widget, "content", "")
    return content.plain if isinstance(content, Content) else Content.from_markup(content).plain


async def open_pid(app: BackchainApp, pilot: Pilot[None], pid: int) -> StackScreen:
    """Filter the overview to ``pid`` and open its stack with Enter."""
    await pilot.press("slash")
    app.overview.query_one("#filter", Input).value = f"pid:{pid}"
    await pilot.press("enter", "enter")
    await pilot.pause()
    assert isinstance(app.screen, StackScreen)
    return app.screen


async def answer(pilot: Pilot[None], frame: str, rule: str, kind: str | None = None) -> None:
    """Open the form with ``a``, type the frame, choose the rule (and kind), press Check."""
    app = pilot.app
    await pilot.press("a")
    await pilot.pause()
    form = app.screen
    assert isinstance(form, AnswerForm)
    form.query_one("#answer-rule", Select).value = rule
    await pilot.pause()  # the frame field appears for a rule that has a frame
    form.query_one("#answer-frame", Input).value = frame
    if kind is not None:
        await pilot.pause()
        assert form.query_one("#answer-kind").display
        form.query_one("#answer-kind", Select).value = kind
    await pilot.pause()  # the kind's Select appears or goes: the layout moves
    await pilot.click("#answer-check")
    await pilot.pause()
