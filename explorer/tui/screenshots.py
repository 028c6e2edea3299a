"""Write the README screenshots: ``python -m explorer.tui.screenshots [FOLDER]``.

Opens the bundled busy sample at 120x40, waits for every verdict, and saves the overview and
the stack of init (pid 1) stepped to its end as SVG files in FOLDER (default: docs/).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from explorer.model.kernel import Options
from explorer.training.bundled import SAMPLES_DIR
from explorer.tui.app import BackchainApp
from explorer.tui.screens.stack import StackScreen

SIZE = (120, 40)


async def save(folder: Path, dump: Path) -> list[Path]:
    """Save ``overview.svg`` and ``stack.svg`` into ``folder``; return their paths."""
    app = BackchainApp(str(dump), Options())
    app.animation_level = "none"
    folder.mkdir(parents=True, exist_ok=True)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(1000):
            await pilot.pause(0.02)
            if app.overview.checked:
                break
        await pilot.pause()
        overview = Path(app.save_screenshot("overview.svg", str(folder)))
        session = app.session
        assert session is not None
        app.open_task(session.scan.by_pid(1)[0])
        await pilot.pause()
        assert isinstance(app.screen, StackScreen)
        await pilot.press("n", "n", "n", "n")
        await pilot.pause()
        stack = Path(app.save_screenshot("stack.svg", str(folder)))
    return [overview, stack]


def main(argv: list[str]) -> int:
    """Entry point."""
    folder = Path(argv[0]) if argv else Path("docs")
    dump = SAMPLES_DIR / "real" / "bpo12-6.12-busy" / "vmcore.zst"
    for path in asyncio.run(save(folder, dump)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
