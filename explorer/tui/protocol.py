"""What the screens and the command palette may ask of the app: a small protocol, so that
they never import the app class (which imports them) nor reach it untyped."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from explorer.model.tasks import Task
    from explorer.training.exercise import Exercise
    from explorer.tui.session import Session
    from explorer.walk.analysis import TaskAnalysis


@runtime_checkable
class Explorer(Protocol):
    """The explorer app as its screens see it.

    Attributes:
        session: the open dump, or None while none is open.
        exercise: the exercise in exercise mode, else None.
        export_dir: where ``x`` offers to write Markdown (None: beside the dump).
    """

    session: Session | None
    exercise: Exercise | None
    export_dir: str | None

    def opened(self, session: Session) -> None:
        """The dump is open."""

    def revealed(self, task: Task, solved: bool) -> None:
        """Exercise mode: ``task``'s verdict is shown from now on; it was ``solved`` (answered
        right) or given up."""

    def answer_klp(self, pid: int | None = None) -> None:
        """A livepatch exercise: the answer form, starting from ``pid``."""

    def reveal_klp(self) -> None:
        """A livepatch exercise: give up and show the kernel's answer (after a confirmation)."""

    def klp_story(self) -> None:
        """A livepatch exercise: the situation before the answer, the debriefing after."""

    def open_task(self, task: Task) -> None:
        """Show the stack of ``task``."""

    def open_lowcore(self, cpu: int = 0) -> None:
        """Show the lowcore of CPU ``cpu``."""

    def open_memory(self, address: int | None, analysis: TaskAnalysis | None = None) -> None:
        """Show memory at ``address``."""

    def set_era(self, era: str) -> None:
        """Apply other unwinder rules."""

    def toggle_unreliable(self) -> None:
        """Overview: show only unreliable stacks, or all."""

    def open_scenario(self, scenario: Any, path: str) -> None:
        """The picker built ``scenario`` at ``path``: open it."""


def explorer_of(app: object) -> Explorer:
    """``app`` as the explorer its screens talk to.

    Raises:
        TypeError: the screen runs in another app (a programming error).
    """
    if not isinstance(app, Explorer):
        raise TypeError(f"{type(app).__name__} is not the backchain explorer")
    return app


__all__ = ["Explorer", "explorer_of"]
