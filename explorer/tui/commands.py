"""Command palette entries that depend on the open dump (posting-style state-aware provider)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from explorer.tui.app import BackchainApp

MAX_TASK_HITS = 50


class ExplorerCommands(Provider):
    """Open a task, go to an address or symbol, lowcore of a CPU, unwinder rules, toggles."""

    @property
    def explorer(self) -> BackchainApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def _commands(self, query: str) -> list[tuple[str, Callable[[], object], str]]:
        app = self.explorer
        session = app.session
        out: list[tuple[str, Callable[[], object], str]] = []
        if session is None:
            return out
        for era in session.eras:
            if era != session.era:
                out.append(
                    (
                        f"Switch unwinder rules to {era}",
                        partial(app.set_era, era),
                        "re-run the analysis of every task under these rules",
                    )
                )
        out.append(
            ("Toggle unreliable only", app.toggle_unreliable, "overview: hide reliable stacks")
        )
        for cpu in session.kernel.cpus:
            out.append(
                (
                    f"Show lowcore of CPU {cpu.number}",
                    partial(app.open_lowcore, cpu.number),
                    "every lowcore field, save areas and PSWs decoded",
                )
            )
        text = query.strip()
        if text:
            address = session.resolve(text)
            if address is not None:
                out.append(
                    (
                        f"Go to {text} in memory",
                        partial(app.open_memory, address, None),
                        f"0x{address:x}",
                    )
                )
        for task in session.tasks:
            out.append(
                (
                    f"Open task {task.pid} {task.comm}",
                    partial(app.open_task, task),
                    f"stack of pid {task.pid} ({task.state}) task 0x{task.address:x}",
                )
            )
        return out

    async def discover(self) -> Hits:
        """What the palette shows before typing."""
        for name, run, help_text in self._commands("")[: 8 + MAX_TASK_HITS // 10]:
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        """Fuzzy-match the commands against ``query``."""
        matcher = self.matcher(query)
        hits = 0
        for name, run, help_text in self._commands(query):
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=help_text)
                hits += 1
                if hits >= MAX_TASK_HITS + 10:
                    return
