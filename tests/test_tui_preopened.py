"""A served dump is opened and judged once, in the zygote, before any session forks
(``explorer.tui.session.preopen``); an explorer of that dump shows its overview from those
rows. The screen must be the one an explorer that opened and judged the dump itself shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from explorer.model.kernel import Options
from explorer.tui import session as sessions
from tests.helpers.tui import BUSY, make_app, sync, wait_checked


@pytest.fixture
def forget() -> Iterator[None]:
    """No dump stays preopened for the tests after this one."""
    yield
    sessions._PREOPENED.clear()


async def _screen(path: Path, size: tuple[int, int], *keys: str) -> tuple[str, list[str]]:
    """The overview as an SVG picture, and every row's task and verdict."""
    app = make_app(path)
    async with app.run_test(size=size) as pilot:
        await wait_checked(app, pilot)
        if keys:
            await pilot.press(*keys)
        shot = await _settled(app, pilot)
        rows = [
            f"{r.task.pid} {r.task.comm} {r.label} {r.functions}"
            for r in app.overview.query_one("#tasks").results
        ]  # type: ignore[attr-defined]
        return shot, rows


async def _settled(app: object, pilot: object, tries: int = 100) -> str:
    """The screen once drawing has stopped: the same picture twice, 50 ms apart, with no
    worker running (a rebuild after a key may take more than one pause on a busy machine)."""
    last = None
    for _ in range(tries):
        await app.workers.wait_for_complete()  # type: ignore[attr-defined]
        await pilot.pause(0.05)  # type: ignore[attr-defined]
        shot = app.export_screenshot()  # type: ignore[attr-defined]
        if shot == last:
            return shot
        last = shot
    raise AssertionError("the screen kept changing")


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
@sync
async def test_preopened_overview_is_the_one_opened_here(
    size: tuple[int, int], forget: None
) -> None:
    alone, alone_rows = await _screen(BUSY, size)
    ahead = sessions.preopen(str(BUSY), Options())
    judged = ahead.checked(ahead.era)
    assert judged is not None and len(judged) == len(ahead.tasks)
    served, served_rows = await _screen(BUSY, size)
    assert served_rows == alone_rows
    assert served == alone


@sync
async def test_preopened_rows_grouped_and_sorted_as_opened_here(forget: None) -> None:
    """The keys that rebuild the table from the rows: group, then sort (ungrouped)."""
    alone = [await _screen(BUSY, (120, 40), "G"), await _screen(BUSY, (120, 40), "s", "s")]
    sessions.preopen(str(BUSY), Options())
    served = [await _screen(BUSY, (120, 40), "G"), await _screen(BUSY, (120, 40), "s", "s")]
    assert served == alone


def test_check_every_is_each_task_checked(forget: None) -> None:
    """The rows judged ahead are each task's own check, in task order."""
    session = sessions.Session.open(str(BUSY), Options())
    rows = session.check_every()
    assert rows is not None and session.checked(session.era) is rows
    one_by_one = [session.check(t) for t in session.tasks]
    assert [(r.key, r.label, r.functions) for r in rows] == [
        (r.key, r.label, r.functions) for r in one_by_one
    ]
    other = next(e for e in session.eras if e != session.era)
    assert session.checked(other) is None


@sync
async def test_css_is_parsed_once_a_process() -> None:
    """A second explorer of the process takes the first one's parsed rules (the same
    objects) for the same CSS and theme, and draws the same screen with them."""
    from explorer.tui import stylesheet

    first, _ = await _screen(BUSY, (80, 24))
    app = make_app(BUSY)
    kept = set(map(id, (r for rules in stylesheet._PARSED.values() for r in rules)))
    assert kept
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_checked(app, pilot)
        assert isinstance(app.stylesheet, stylesheet.SharedStylesheet)
        assert {id(r) for r in app.stylesheet.rules} <= kept
        assert app.export_screenshot() == first
