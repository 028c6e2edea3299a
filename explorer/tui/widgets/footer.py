"""The footer of every screen: at 80 columns it drops the spacing and the palette hint so
that every primary key stays visible (the palette is still on ctrl+p)."""

from __future__ import annotations

from textual import events
from textual.widgets import Footer

#: Below this terminal width the footer is compact.
NARROW = 110


class KeyFooter(Footer):
    """A :class:`Footer` that fits narrow terminals."""

    def on_mount(self) -> None:
        """Fit the terminal's width."""
        self._fit(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        """Fit again."""
        self._fit(self.app.size.width)

    def _fit(self, width: int) -> None:
        narrow = width < NARROW
        self.compact = narrow
        self.show_command_palette = not narrow
