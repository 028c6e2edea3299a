"""The explorer with the -dbg vmlinux: the walk and the frame inspector show each frame's
function, source line and inline functions, and with --source the lines around it."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.model.kernel import Options
from explorer.tui.app import BackchainApp
from explorer.tui.widgets.walk import WalkTable
from tests.helpers import oracles
from tests.helpers.tui import cells, open_pid, plain, sync, wait_checked

IDLE = Path(__file__).resolve().parent.parent / "samples" / "real" / "deb12-6.1-idle"


def vmlinux() -> Path:
    return oracles.debug_vmlinux_of(IDLE.name)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
@sync
async def test_walk_and_inspector_show_source_lines(size: tuple[int, int], tmp_path: Path) -> None:
    tree = tmp_path / "linux"
    (tree / "kernel" / "sched").mkdir(parents=True)
    (tree / "kernel" / "sched" / "core.c").write_text(
        "".join(f"source line {n}\n" for n in range(1, 8000))
    )
    options = Options(
        vmlinux=str(vmlinux()), system_map=str(IDLE / "System.map.zst"), source=str(tree)
    )
    app = BackchainApp(str(IDLE / "vmcore.zst"), options)
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        await wait_checked(app, pilot)
        screen = await open_pid(app, pilot, 1)
        await pilot.press("r", "0")
        await pilot.pause()
        walk = screen.query_one(WalkTable)
        function = cells(walk, 0)[3]
        assert function.startswith("__schedule+0x")
        assert "core.c:6562" in function and "context_switch" in function  # 6.1.176
        source = plain(screen.query_one("#frame-source"))
        assert "kernel/sched/core.c:5245 inlined context_switch" in source
        assert "kernel/sched/core.c:6562 in __schedule" in source
        assert "5245  source line 5245" in source  # from the --source tree
