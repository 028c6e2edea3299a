"""The footer of every screen: at 80 columns it drops the spacing and the palette hint so
that every primary key stays visible (the palette is still on ctrl+p).

Textual's :class:`Footer` rebuilds all its keys on every focus change and binding refresh
of its screen, even when they come out the same and even when its screen is covered by
another one; every key it mounts is restyled two or three times (its ``compact`` starts
``True`` and is bound to the footer's afterwards). In a classroom of 30 sessions on two
cores that was most of the CPU an exercise screen cost (issue 26). This footer rebuilds
only when what it shows changed and its screen can be seen, and builds each key with its
final ``compact`` (styled once)."""

from __future__ import annotations

from collections.abc import Iterator

from textual import events
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: Below this terminal width the footer is compact.
NARROW = 110


class KeyFooter(Footer):
    """A :class:`Footer` that fits narrow terminals and rebuilds only when it changed."""

    def __init__(self) -> None:
        super().__init__()
        #: What the keys on show were built from (None: nothing built yet).
        self._built: tuple[object, ...] | None = None
        #: A rebuild is queued after the next refresh.
        self._queued = False

    def on_mount(self) -> None:
        """Fit the terminal's width (Footer's own on_mount subscribes to the bindings)."""
        self._fit(self.app.size.width)

    def on_resize(self, event: events.Resize) -> None:
        """Fit again."""
        self._fit(self.app.size.width)

    def _fit(self, width: int) -> None:
        narrow = width < NARROW
        self.compact = narrow
        if self.show_command_palette == narrow:
            self.show_command_palette = not narrow
            if self._built is not None:  # the palette key comes or goes
                self.bindings_changed(self.screen)

    # -- rebuilding ------------------------------------------------------------------------------
    def bindings_changed(self, screen: Screen[object]) -> None:
        """The screen's bindings may have changed: look again after the next refresh (once,
        however many refreshes were asked meanwhile)."""
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._queued:
            self._queued = True
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        self._queued = False
        if not self.is_attached or self._covered():
            return  # the screen's resume refreshes its bindings: looked at again then
        shown = self._signature()
        if shown != self._built:
            self._built = shown
            await self.recompose()

    def _covered(self) -> bool:
        """A screen that is not modal lies over this footer's screen (it cannot be seen)."""
        stack = self.app.screen_stack
        mine = self.screen
        if mine not in stack:
            return True
        above = stack[stack.index(mine) + 1 :]
        return any(not isinstance(s, ModalScreen) for s in above)

    def _signature(self) -> tuple[object, ...]:
        """Everything :meth:`Footer.compose` builds the keys from."""
        app = self.app
        keys = tuple(
            (
                binding.key,
                app.get_key_display(binding),
                binding.description,
                binding.action,
                enabled,
                tooltip,
                binding.group,
            )
            for _node, binding, enabled, tooltip in self.screen.active_bindings.values()
            if binding.show
        )
        palette = None
        if self.show_command_palette and app.ENABLE_COMMAND_PALETTE:
            found = self.screen.active_bindings.get(app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, _tooltip = found
                display = app.get_key_display(binding)
                palette = (binding.key, display, binding.description, enabled, binding.tooltip)
        return keys, palette

    def compose(self) -> Iterator[Widget]:
        """Textual's keys, each built with the ``compact`` it gets once mounted (styled
        once): the footer's, but the palette key's, which Textual leaves at its default."""
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                palette = widget.has_class("-command-palette")
                compact = True if palette else self.compact  # True: FooterKey.compact default
                widget.set_reactive(FooterKey.compact, compact)
                widget.set_class(compact, "-compact", update=False)
            yield widget
