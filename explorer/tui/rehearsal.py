"""The explorer's overview drawn once, headless, in ``backchain serve``'s zygote before it
forks sessions (``explorer.cli.zygote``).

A forked session then starts from a process that has already composed, styled and drawn
that screen: the CSS is parsed (:mod:`explorer.tui.stylesheet`), Textual's and Rich's own
caches hold what every session computes alike, and the code run for it is warm; the pages
are shared with every session until one writes them. Nothing of the headless app is kept
but those caches; its worker threads have ended when this returns (the zygote forks only
with one thread).
"""

from __future__ import annotations

import asyncio
import time

from explorer.model.kernel import Options

#: The terminal the overview is drawn for (the benchmark's and a laptop browser's).
SIZE = (120, 40)
#: Seconds the overview may take to show every verdict.
TIMEOUT = 60.0


def rehearse(path: str, options: Options, size: tuple[int, int] = SIZE) -> bool:
    """Draw ``path``'s overview headless until every task is shown with its verdict (the
    dump preopened: ``explorer.tui.session.preopen``); False when it did not get there
    (it failed or took longer than :data:`TIMEOUT`)."""
    return asyncio.run(_draw(path, options, size))


async def _draw(path: str, options: Options, size: tuple[int, int]) -> bool:
    from explorer.tui.app import BackchainApp

    app = BackchainApp(path, options)
    shown = False
    async with app.run_test(size=size, tooltips=True, notifications=True) as pilot:
        deadline = time.monotonic() + TIMEOUT
        while not app.overview.checked and time.monotonic() < deadline:
            await pilot.pause(0.01)
        shown = app.overview.checked
        await app.workers.wait_for_complete()
        await pilot.pause()
    return shown
