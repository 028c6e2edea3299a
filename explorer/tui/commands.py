"""Command palette entries that depend on the open dump (posting-style state-aware provider)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.fuzzy import Matcher

from explorer.tui.protocol import Explorer, explorer_of

MAX_TASK_HITS = 50


class ExplorerCommands(Provider):
    """Open a task, go to an address or symbol, lowcore of a CPU, unwinder rules, toggles."""

    @property
    def explorer(self) -> Explorer:
        """The app, as its screens see it."""
        return explorer_of(self.app)

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
        if app.exercise is None:  # the verdicts are hidden in exercise mode
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
            yield DiscoveryHit(Content(name), run, help=help_text, text=name)

    async def search(self, query: str) -> Hits:
        """Fuzzy-match the commands against ``query``: tasks by pid or name first (as the help
        says), then the other commands, "Go to ... in memory" last."""
        matcher = self.matcher(query)
        ranked = rank(self._commands(query), query, matcher.match)
        for score, name, run, help_text in ranked[: MAX_TASK_HITS + 10]:
            yield Hit(score, highlight(matcher, name), run, help=help_text, text=name)


Command = tuple[str, Callable[[], object], str]


def highlight(matcher: Matcher, name: str) -> Content:
    """``name`` (plain text: a process name or the user's query may hold markup) with the
    characters ``matcher`` matched in its style (``Matcher.highlight`` parses markup)."""
    content = Content(name)
    _score, offsets = matcher.fuzzy_search.match(matcher.query, name)
    for offset in offsets:
        if not name[offset].isspace():
            content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


def rank(
    commands: list[Command], query: str, match: Callable[[str], float]
) -> list[tuple[float, str, Callable[[], object], str]]:
    """Commands matching ``query``, best first, scores in 0..1: a task whose pid is the query
    or whose name contains it, then other fuzzy matches, then going to memory (any hex-looking
    query resolves to an address, so it must never hide a task)."""
    text = query.strip().lower()
    out = []
    for name, run, help_text in commands:
        score = match(name)
        if score <= 0:
            continue
        if name.startswith("Open task "):
            pid, _, comm = name[len("Open task ") :].partition(" ")
            if text == pid:
                score = 1.0
            elif text and text in comm.lower():
                score = 0.9 + 0.05 * score
            else:
                score = 0.3 + 0.5 * score
        elif name.startswith("Go to "):
            score = 0.1 * score
        else:
            score = 0.3 + 0.5 * score
        out.append((min(score, 1.0), name, run, help_text))
    out.sort(key=lambda hit: -hit[0])
    return out
