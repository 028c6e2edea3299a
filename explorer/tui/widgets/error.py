"""An error shown in place of what could not be loaded: a message, never a traceback."""

from __future__ import annotations

from textual.widgets import Static

from explorer.tui.markup import markup
from explorer.tui.session import short_paths
from parsers.errors import DumpError


def error_text(exc: BaseException) -> str:
    """A one-paragraph description of ``exc`` for a user (no traceback)."""
    if isinstance(exc, DumpError):
        return short_paths(str(exc))
    if isinstance(exc, OSError):
        return short_paths(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
    return f"internal error ({type(exc).__name__}): {short_paths(str(exc))}"


class ErrorPanel(Static):
    """A titled box saying what went wrong and what the user can do next."""

    DEFAULT_CSS = """
    ErrorPanel {
        border: round $error;
        border-title-color: $error;
        color: $text;
        padding: 1 2;
        height: auto;
    }
    """

    def show(self, title: str, exc: BaseException, hint: str = "") -> None:
        """Display ``exc`` under ``title``."""
        self.border_title = title
        body = markup("[b $text-error]$error[/]", error=error_text(exc))
        if hint:
            body += "\n\n" + hint
        self.update(body)
        self.display = True
